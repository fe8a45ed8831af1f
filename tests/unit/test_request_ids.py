"""Request ids made by the server: unique within and across processes, 16 hex digits, a client's sane id kept."""

from __future__ import annotations

import re
from unittest import mock

from app.platform.logs import RequestIds, request_id_from


def test_new_ids_are_unique_hex_and_a_sane_client_id_is_kept() -> None:
    ids = [request_id_from(None) for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert request_id_from(b"trace-42.a") == "trace-42.a"
    assert re.fullmatch(r"[0-9a-f]{16}", request_id_from(b"bad id\n"))


def test_each_process_gets_its_own_prefix() -> None:
    ids = RequestIds()
    with mock.patch("app.platform.logs.os.getpid", return_value=101):
        first = {ids.next_id() for _ in range(100)}
    with mock.patch("app.platform.logs.os.getpid", return_value=102):  # a worker started after the first
        second = {ids.next_id() for _ in range(100)}
    assert not first & second
    assert len({i[:8] for i in first}) == 1 and len({i[:8] for i in second}) == 1
