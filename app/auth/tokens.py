"""Secret tokens: 256 random bits behind a recognisable prefix, and the SHA-256 hash that is all we store.

SHA-256 (not a slow password hash) is right for random 256-bit tokens: there is nothing to guess.
"""

from __future__ import annotations

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
