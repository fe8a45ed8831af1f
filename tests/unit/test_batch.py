"""Batch preparation, the ingest hot loop: keys, in-batch duplicates, request owners and newest per robot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.model.reading import TIME, Record, Row, candidate, is_newer
from app.telemetry.batch import count_accepted, first_occurrences, newest_per_robot, prepare_batch
from tests.support.builders import make_row

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEYS = {"a": 1, "b": 2}


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_rows_get_their_robot_key_in_place_of_the_id() -> None:
    prepared = prepare_batch([[make_row("a", at(0)), make_row("b", at(0))]], KEYS)
    assert [record[0] for record in prepared.records] == [1, 2]
    assert [record[1:] for record in prepared.records] == [row[1:] for row in prepared.rows]


def test_in_batch_repeats_are_kept_for_the_table_and_the_first_occurrence_wins() -> None:
    first = make_row("a", at(0), battery_level=10)
    again = make_row("a", at(0), battery_level=99)  # same (robot, time), other values: a replay
    prepared = prepare_batch([[first], [again, make_row("a", at(1))]], KEYS)
    assert prepared.rows == [first, again, make_row("a", at(1))]
    assert prepared.owners == [0, 1, 1]
    assert first_occurrences(prepared.records) == [True, False, True]
    # What the table then stores: the first occurrence, so the first request added one row and the second one.
    assert count_accepted(prepared.owners, first_occurrences(prepared.records), 2) == [1, 1]
    # Its newest is the first occurrence too: an equal one never replaces it.
    assert prepared.newest[1] == prepared.records[2]


def test_newest_per_robot_is_the_latest_time_whatever_the_order() -> None:
    rows: list[Row] = [make_row("a", at(5)), make_row("a", at(9)), make_row("a", at(1)), make_row("b", at(2))]
    prepared = prepare_batch([rows[:2], rows[2:]], KEYS)
    assert {key: record[TIME] for key, record in prepared.newest.items()} == {1: at(9), 2: at(2)}
    assert newest_per_robot(prepared.records) == prepared.newest


def test_within_a_flush_the_latest_timestamp_is_the_newest_by_the_rule() -> None:
    # A flush's rows share one stored_at; "newer wins" then agrees with the latest timestamp, future-stamped too.
    stored_at = at(100)
    for times in ([5, 9, 1], [99, 150, 120], [101, 100]):
        records = [record_at(t) for t in times]
        best = max(records, key=lambda r: r[TIME])
        assert newest_per_robot(records)[1] == best
        assert all(not is_newer(candidate(r, stored_at), candidate(best, stored_at)) for r in records)


def test_only_new_rows_count_after_a_conflict() -> None:
    assert count_accepted([0, 0, 1, 2], [True, False, False, True], 3) == [1, 0, 1]


def record_at(seconds: int) -> Record:
    return (1, *make_row("a", at(seconds))[1:])


def test_newer_wins_and_an_equal_one_does_not_replace() -> None:
    older, newer = candidate(record_at(0), at(0)), candidate(record_at(1), at(1))
    assert is_newer(older, None)
    assert is_newer(newer, older) and not is_newer(older, newer)
    assert not is_newer(older, older)


def test_a_late_reading_never_regresses_the_state() -> None:
    current = candidate(record_at(100), at(100))
    backfill = candidate(record_at(10), at(500))  # store-and-forward: old timestamp, arriving late
    assert not is_newer(backfill, current)


def test_a_future_stamped_reading_does_not_hide_the_next_one() -> None:
    fast_clock = candidate(record_at(100 + 540), at(100))  # stamped 9 minutes ahead, received at 100
    corrected = candidate(record_at(101), at(101))  # the robot's next reading, stamped right, a second later
    assert fast_clock[0] == at(100)  # it counts as "now" when it arrived, not as its own claim
    assert is_newer(corrected, fast_clock)
    # Two readings both stamped ahead in one request: the later timestamp wins the tie.
    assert is_newer(candidate(record_at(700), at(100)), fast_clock)
