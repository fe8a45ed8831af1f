"""Settings: grouped, read from FLEET_* variables, and a misspelt or bad variable stops start-up by name."""

from __future__ import annotations

import os
from datetime import timedelta

import msgspec
import pytest

from app.platform.settings import (
    GROUP_OF_FIELD,
    SCRIPT_ONLY_VARIABLES,
    Settings,
    SettingsError,
    load_settings,
    replace_settings,
)


def test_settings_read_prefixed_environment() -> None:
    settings = load_settings(
        {"FLEET_FLUSH_MAX_ROWS": "123", "FLEET_MIGRATE_ON_START": "false", "FLEET_PORT": "9000", "OTHER": "x"}
    )
    assert settings.ingest.flush_max_rows == 123
    assert settings.database.migrate_on_start is False
    assert settings.server.port == 9000
    assert settings.ingest.flush_interval_ms == Settings().ingest.flush_interval_ms


def test_misspelt_variable_stops_start_up_with_its_name() -> None:
    with pytest.raises(SettingsError, match="FLEET_FLUSH_MAX_ROW "):
        load_settings({"FLEET_FLUSH_MAX_ROW": "1"})


def test_bad_value_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="FLEET_FLUSH_MAX_ROWS"):
        load_settings({"FLEET_FLUSH_MAX_ROWS": "0"})
    with pytest.raises(SettingsError, match="FLEET_LOG_LEVEL"):
        load_settings({"FLEET_LOG_LEVEL": "loud"})


def test_script_only_variables_are_allowed_and_ignored() -> None:
    assert load_settings(dict.fromkeys(SCRIPT_ONLY_VARIABLES, "x")) == Settings()


def test_every_field_has_its_own_variable_in_exactly_one_group() -> None:
    groups = msgspec.structs.fields(Settings)
    declared = [name for group in groups for name in group.type.__struct_fields__]
    assert sorted(declared) == sorted(GROUP_OF_FIELD)
    assert len(declared) == len(set(declared))


def test_replace_changes_only_the_named_fields() -> None:
    tuned = replace_settings(Settings(), flush_max_rows=7, stale_after_s=9)
    assert (tuned.ingest.flush_max_rows, tuned.query.stale_after_s) == (7, 9)
    assert tuned.database == Settings().database
    with pytest.raises(SettingsError):
        replace_settings(Settings(), no_such_setting=1)


def test_retention_shorter_than_the_accepted_past_is_refused() -> None:
    assert load_settings({"FLEET_RETENTION": "90d"}).database.retention_period == timedelta(days=90)
    assert load_settings({}).database.retention_period is None
    with pytest.raises(SettingsError, match="longer than FLEET_MAX_PAST_S"):
        load_settings({"FLEET_RETENTION": "7d"})
    with pytest.raises(SettingsError, match="longer than FLEET_MAX_PAST_S"):
        load_settings({"FLEET_RETENTION": "40d", "FLEET_MAX_PAST_S": str(50 * 86_400)})
    with pytest.raises(SettingsError, match="FLEET_RETENTION must be off or a duration"):
        load_settings({"FLEET_RETENTION": "ninety days"})


@pytest.mark.parametrize(
    ("cores", "url", "workers"),
    [
        (2, "postgresql://postgres@127.0.0.1:55432/fleet", 2),
        (1, "postgresql://postgres@localhost/fleet", 1),
        (4, "postgresql://postgres@[::1]/fleet", 3),
        (8, "postgresql:///fleet?host=/var/run/postgresql", 6),
        (8, "postgresql://fleet@db.internal:5432/fleet", 8),
        (8, "postgresql://fleet@10.0.0.5/fleet?host=/tmp", 8),
    ],
)
def test_auto_workers_are_the_cores_less_the_local_databases_share(
    monkeypatch: pytest.MonkeyPatch, cores: int, url: str, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    settings = load_settings({"FLEET_DATABASE_URL": url})
    assert settings.server.workers == "auto"
    assert settings.worker_count == workers
    assert load_settings({"FLEET_DATABASE_URL": url, "FLEET_WORKERS": "3"}).worker_count == 3
    with pytest.raises(SettingsError, match="FLEET_WORKERS"):
        load_settings({"FLEET_WORKERS": "0"})
