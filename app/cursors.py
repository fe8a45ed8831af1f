"""Keyset-page cursors: opaque tokens naming the last reading a page returned."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

import msgspec

from app.errors import BadCursor, BadParameter
from app.timeranges import MIN_TIME

_EPOCH = MIN_TIME


class _Cursor(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    before_us: int  # microseconds since the epoch of the last reading already returned


_encode_cursor = msgspec.msgpack.Encoder().encode
_decode_cursor = msgspec.msgpack.Decoder(_Cursor).decode


def encode_cursor(before: datetime) -> str:
    us = (before - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(_encode_cursor(_Cursor(us))).decode().rstrip("=")


def decode_cursor(token: str) -> datetime:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return _EPOCH + timedelta(microseconds=_decode_cursor(raw).before_us)
    except (binascii.Error, ValueError, OverflowError, msgspec.DecodeError):
        raise BadCursor("cursor is not one this API issued") from None


def page_size(limit: int | None, default: int, maximum: int) -> int:
    """The page size asked for, or the default; above the maximum is refused, never silently cut."""
    if limit is None:
        return default
    if limit > maximum:
        raise BadParameter(f"limit may be at most {maximum}")
    return limit
