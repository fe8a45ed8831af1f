"""Keyset-page cursors: opaque tokens naming the last item a page returned, and the page size rule."""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import msgspec

from app.model.errors import BadCursor, BadParameter
from app.platform.timeranges import MIN_TIME

_EPOCH = MIN_TIME
_US = timedelta(microseconds=1)


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


class _Position(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    stored_us: int
    robot_id: str
    time_us: int


_decode_position = msgspec.msgpack.Decoder(_Position).decode

# A live reading's place in the stream: (stored_at, robot_id, timestamp), the order a resume reads back in.
Position = tuple[datetime, str, datetime]


def encode_position(position: Position) -> str:
    """A live event's ``id:``: where a client that reconnects with it as Last-Event-ID resumes from."""
    stored_at, robot_id, time = position
    raw = _Position((stored_at - _EPOCH) // _US, robot_id, (time - _EPOCH) // _US)
    return base64.urlsafe_b64encode(_encode_cursor(raw)).decode().rstrip("=")


def decode_position(token: str) -> Position:
    try:
        raw = _decode_position(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return _EPOCH + raw.stored_us * _US, raw.robot_id, _EPOCH + raw.time_us * _US
    except (binascii.Error, ValueError, OverflowError, msgspec.DecodeError):
        raise BadCursor("Last-Event-ID is not an event id this API issued") from None


def page_size(limit: int | None, default: int, maximum: int) -> int:
    """The page size asked for, or the default; above the maximum is refused, never silently cut."""
    if limit is None:
        return default
    if limit > maximum:
        raise BadParameter(f"limit may be at most {maximum}")
    return limit


T = TypeVar("T")
SortKey = tuple[Any, ...]


def _encode_named(name: str, key: object) -> str:
    """A list's cursor: the list's name and the key of the last item returned."""
    return base64.urlsafe_b64encode(_encode_cursor((name, key))).decode().rstrip("=")


def _decode_named(token: str, name: str, decode: Callable[[bytes], tuple[str, Any]]) -> Any:
    """The key a cursor of list ``name`` holds; BadCursor for a token this API did not issue, or another list's."""
    try:
        found, key = decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadCursor("cursor is not one this API issued") from None
    if found != name:
        raise BadCursor("cursor belongs to another list")
    return key


class ListPager(Generic[T]):
    """Keyset pages over a list answered in full (a fleet's robots): sorted by ``key``, each page starts after
    the key its cursor names. The cursor names its list, so one list's cursor is refused by another."""

    def __init__(self, name: str, key: Callable[[T], SortKey], key_type: Any) -> None:
        self._name = name
        self._key = key
        self._decode = msgspec.msgpack.Decoder(tuple[str, key_type]).decode

    def page(self, items: Sequence[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
        ordered = sorted(items, key=self._key)
        start = 0
        if cursor is not None:
            start = bisect_right(ordered, tuple(_decode_named(cursor, self._name, self._decode)), key=self._key)
        page = ordered[start : start + size]
        more = start + size < len(ordered)
        return page, _encode_named(self._name, self._key(page[-1])) if more and page else None


class IdPager:
    """Keyset pages the database answers, by an integer id: a cursor names its list and the last id returned."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._decode = msgspec.msgpack.Decoder(tuple[str, int]).decode

    def encode(self, last_id: int) -> str:
        return _encode_named(self._name, last_id)

    def decode(self, token: str | None) -> int | None:
        return None if token is None else int(_decode_named(token, self._name, self._decode))

    def next_cursor(self, ids: Sequence[int], size: int) -> str | None:
        """The cursor after a page of ``size`` asked for: None when the page came back short (the end)."""
        return self.encode(ids[-1]) if len(ids) == size and ids else None
