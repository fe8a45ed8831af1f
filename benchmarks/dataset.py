"""The rows every ingest method is fed: generated once by the simulator's fleet model, then encoded per method."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

import asyncpg
import msgspec

from app.auth import queries as auth_sql
from app.model.reading import Location, Reading, Row, Status, encode_fields, stored_reading, to_row
from app.telemetry import queries as telemetry_sql
from simulator.fleet import build_fleet, voltage_for

CENTRE = (37.4275, -122.1697)
STEP_S = 1.0
_encode = msgspec.json.Encoder().encode


def iter_rows(
    robots: int,
    per_robot: int,
    seed: int = 42,
    end: datetime | None = None,
    step_s: float = STEP_S,
    with_fields: bool = False,
) -> Iterator[list[Row]]:
    """``per_robot`` rounds of one reading per robot, ``step_s`` apart, the newest a minute before ``end``.
    ``with_fields`` adds four diagnostics of the robot's own to each reading (the ``fields`` object).

    Yields one list per round, so a large dataset can be written without being held in memory.
    """
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(seconds=(per_robot - 1) * step_s)
    fleet = build_fleet(robots, CENTRE, seed)
    for step in range(per_robot):
        at = start + timedelta(seconds=step * step_s)
        rows: list[Row] = []
        for robot in fleet:
            robot.step(step_s)
            robot.seq += 1
            reading = Reading(
                robot_id=robot.robot_id,
                battery_level=round(robot.battery, 2),
                location=Location(round(robot.latitude, 7), round(robot.longitude, 7)),
                battery_voltage=voltage_for(robot.battery),
                status=cast(Status, robot.status),
                seq=robot.seq,
            )
            fields_json = None
            if with_fields:
                reading.fields = {
                    "motor_temp_c": round(20 + robot.battery / 5, 1),
                    "odometer_m": round(robot.odometer_m, 1),
                    "estop": False,
                    "firmware": "2.4.1",
                }
                fields_json = encode_fields(reading.fields)
            rows.append(to_row(reading, at, fields_json))
        yield rows


async def copy_fleet(
    conn: asyncpg.Connection,
    robots: int,
    per_robot: int,
    end: datetime,
    rows_per_copy: int,
    on_copied: Callable[[int], None] | None = None,
    step_s: float = STEP_S,
) -> int:
    """``iter_rows``' readings, their robots registered, COPYed into the readings table ``rows_per_copy`` at a time
    (each COPY its own transaction); how many. ``on_copied`` hears the running total after each COPY."""
    keys: dict[str, int] = {}
    buffer: list[tuple[object, ...]] = []
    loaded = 0
    for rows in iter_rows(robots, per_robot, end=end, step_s=step_s):
        if not keys:
            ids = [row[0] for row in rows]
            await conn.execute(auth_sql.REGISTER_ROBOTS, ids)
            keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch(auth_sql.SELECT_ROBOT_KEYS, ids)}
        buffer.extend((keys[row[0]], *row[1:]) for row in rows)
        if len(buffer) >= rows_per_copy:
            await conn.copy_records_to_table(
                telemetry_sql.TELEMETRY_TABLE, records=buffer, columns=telemetry_sql.TELEMETRY_COLUMNS
            )
            loaded += len(buffer)
            buffer = []
            if on_copied is not None:
                on_copied(loaded)
    if buffer:
        await conn.copy_records_to_table(
            telemetry_sql.TELEMETRY_TABLE, records=buffer, columns=telemetry_sql.TELEMETRY_COLUMNS
        )
        loaded += len(buffer)
    return loaded


def generate_rows(
    robots: int, per_robot: int, seed: int = 42, end: datetime | None = None, with_fields: bool = False
) -> list[Row]:
    return [row for rows in iter_rows(robots, per_robot, seed, end, with_fields=with_fields) for row in rows]


def reading_doc(row: Row) -> dict[str, object]:
    """The seed-shaped reading a robot would send for this row (the optional fields it does not use left out)."""
    stored = stored_reading(row[1:])
    extra = {} if stored.fields is None else {"fields": stored.fields}
    return {
        **extra,
        "robot_id": row[0],
        "timestamp": stored.timestamp,
        "location": stored.location,
        "battery_level": stored.battery_level,
        "battery_voltage": stored.battery_voltage,
        "status": stored.status,
        "seq": stored.seq,
    }


T = TypeVar("T")


def chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def json_bodies(rows: Sequence[Row], per_request: int) -> list[bytes]:
    """API request bodies: arrays of ``per_request`` readings, or single readings when it is 1."""
    if per_request == 1:
        return [_encode(reading_doc(row)) for row in rows]
    return [_encode([reading_doc(row) for row in chunk]) for chunk in chunks(rows, per_request)]


def line_protocol_bodies(rows: Sequence[Row], per_request: int) -> list[bytes]:
    """InfluxDB 1.x line protocol, microsecond precision, robot_id as the tag (the series key)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    bodies = []
    for chunk in chunks(rows, per_request):
        lines = [
            f"telemetry,robot_id={r[0]} latitude={r[2]},longitude={r[3]},battery_level={r[4]},"
            f'battery_voltage={r[5]},status="{r[6]}",seq={r[7]}i {(r[1] - epoch) // timedelta(microseconds=1)}'
            for r in chunk
        ]
        bodies.append("\n".join(lines).encode())
    return bodies
