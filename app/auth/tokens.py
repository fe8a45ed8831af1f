"""Secret tokens: 256 random bits behind a recognisable prefix, and the SHA-256 hash that is all we store.

SHA-256 (not a slow password hash) is right for random 256-bit tokens: there is nothing to guess.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Final, Literal

TOKEN_BYTES: Final = 32  # 256 bits
ROBOT_TOKEN_PREFIX: Final = "flt_r_"
KEY_PREFIX: Final = "flt_k_"
SHOWN_PREFIX_CHARS: Final = 10  # of the token, kept in clear to tell tokens apart in listings

CredentialKind = Literal["robot", "key"]


def generate_token(kind: CredentialKind) -> str:
    prefix = ROBOT_TOKEN_PREFIX if kind == "robot" else KEY_PREFIX
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# Mosquitto's password-file hash ("$7$": PBKDF2-SHA512, 12 bytes of salt), with its own default iterations: the
# broker checks a robot's token itself when it connects over MQTT, so it needs a hash in its own form. Few
# iterations suffice for the same reason SHA-256 does above.
BROKER_HASH_ITERATIONS: Final = 101
BROKER_SALT_BYTES: Final = 12


def broker_hash(token: str, salt: bytes | None = None) -> str:
    """The token's hash as a line of Mosquitto's password file carries it after ``username:``."""
    salt = secrets.token_bytes(BROKER_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", token.encode(), salt, BROKER_HASH_ITERATIONS)
    encode = base64.b64encode
    return f"$7${BROKER_HASH_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


def shown_prefix(token: str) -> str:
    return token[:SHOWN_PREFIX_CHARS]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token
