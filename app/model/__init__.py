"""The model: the reading, the alert, the principal, the errors and the payloads, as msgspec structs; imports nothing
from the rest of the app."""
