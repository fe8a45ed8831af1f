"""The reading is declared once: the row tuple, the column list and the output struct agree."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

from app.model.reading import COLUMN_NAMES, COLUMNS, ReadingArgs, Record, Row, StoredReading, stored_reading, to_row
from app.telemetry import queries as telemetry_sql
from tests.support.builders import make_row


def test_row_and_record_have_one_slot_per_column_after_the_robot() -> None:
    assert len(typing.get_args(Row)) == len(COLUMNS) + 1
    assert len(typing.get_args(Record)) == len(COLUMNS) + 1
    assert len(make_row("a", datetime.now(UTC))) == len(COLUMNS) + 1


def test_output_fields_cover_every_column() -> None:
    # Each column surfaces in StoredReading (the location and pose columns as their objects).
    grouped = {"latitude": "location", "longitude": "location", "pose_frame": "pose", "pose_x": "pose"}
    grouped |= {"pose_y": "pose", "pose_yaw": "pose", "time": "timestamp"}
    assert {grouped.get(name, name) for name in COLUMN_NAMES} == set(StoredReading.__struct_fields__)
    assert len(typing.get_args(ReadingArgs)) == len(StoredReading.__struct_fields__)
    assert isinstance(stored_reading(make_row("a", datetime.now(UTC))[1:]), StoredReading)


def test_sql_column_lists_come_from_the_declaration() -> None:
    assert telemetry_sql.TELEMETRY_COLUMNS == ("robot_key", *COLUMN_NAMES)
    for name in COLUMN_NAMES:
        assert (
            name in telemetry_sql.UPSERT_LATEST
            and name in telemetry_sql.SELECT_HISTORY_PAGE
            and name in telemetry_sql.SELECT_ROBOT_STATES
        )
    assert telemetry_sql.EXPORT_CSV_COLUMNS[2:] == COLUMN_NAMES[1:]
    assert to_row.__doc__  # the one constructor of a Row
