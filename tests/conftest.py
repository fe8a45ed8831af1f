"""Nothing here on purpose: database fixtures live in tests/integration/conftest.py, helpers in tests/support."""
