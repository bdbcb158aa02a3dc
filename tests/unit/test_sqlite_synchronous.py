"""STORE_SQLITE_SYNCHRONOUS: FULL by default, one unsafe value for the chaos suite's negative
control, and every connection the store opens takes it (a single FULL connection would sync
the others' commits at its checkpoints and hide the weakness the control must show)."""

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from structlog.testing import capture_logs

from harness.processes import free_port
from store_service.api.app import create_app
from store_service.config import Settings
from store_service.domain import SqliteSynchronous
from store_service.storage import db
from store_service.storage.writer import Writer
from store_service.sync import heartbeat, refresh, run
from tests.support.fake_central import FakeCentral
from tests.support.store_db import local_update, make_settings

UNSAFE = SqliteSynchronous.OFF_UNSAFE_FOR_TESTS
PRAGMA_VALUE = {SqliteSynchronous.FULL: 2, UNSAFE: 0}  # what PRAGMA synchronous reads back


def synchronous_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def test_full_is_the_default_and_the_only_other_value_says_it_is_unsafe(db_path: Path) -> None:
    assert make_settings(db_path).sqlite_synchronous is SqliteSynchronous.FULL
    unsafe = make_settings(db_path, sqlite_synchronous="OFF-UNSAFE-FOR-TESTS")
    assert unsafe.sqlite_synchronous is UNSAFE
    for value in ("OFF", "NORMAL", "off-unsafe-for-tests", "0"):
        with pytest.raises(ValidationError):
            make_settings(db_path, sqlite_synchronous=value)


def test_the_environment_variable_sets_it(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_SQLITE_SYNCHRONOUS", "OFF-UNSAFE-FOR-TESTS")
    assert Settings(database_url=f"sqlite:///{db_path}").sqlite_synchronous is UNSAFE


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("setting", list(SqliteSynchronous))
def test_connect_applies_the_setting(
    conn: sqlite3.Connection, db_path: Path, setting: SqliteSynchronous, readonly: bool
) -> None:
    opened = db.connect(db_path, readonly=readonly, synchronous=setting)
    try:
        assert synchronous_of(opened) == PRAGMA_VALUE[setting]
    finally:
        opened.close()
    assert synchronous_of(conn) == PRAGMA_VALUE[SqliteSynchronous.FULL], "default: FULL"


def test_the_api_writer_and_reader_take_the_setting(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    settings = make_settings(db_path, sqlite_synchronous=UNSAFE, migrate_on_startup=False)
    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]  # Starlette's app is Any-typed here
        assert runtime.writer.run_blocking(synchronous_of) == 0
        assert synchronous_of(runtime.reader) == 0
        update = client.post(
            "/v1/local/inventory/SKU-1/update", json={"delta": 1, "operation_id": "o-1"}
        )
        assert update.status_code == 200


def test_a_writer_defaults_to_full(conn: sqlite3.Connection, db_path: Path) -> None:
    writer = Writer(db_path).start()
    try:
        assert writer.run_blocking(synchronous_of) == 2
    finally:
        writer.stop()


def _recording_connect(seen: list[int]) -> Callable[..., sqlite3.Connection]:
    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened = db.connect(*args, **kwargs)
        seen.append(synchronous_of(opened))
        return opened

    return connect


def test_the_worker_sync_run_refresh_and_heartbeat_take_the_setting(
    conn: sqlite3.Connection, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No central listens on a free port: the refresh fails after opening its connection.
    settings = make_settings(
        db_path,
        sqlite_synchronous=UNSAFE,
        central_url=f"http://127.0.0.1:{free_port()}",
        central_connect_timeout_seconds=0.5,
    )
    local_update(conn, "SKU-1", 2, "op-1")
    seen: list[int] = []
    for module in (run, refresh, heartbeat):
        monkeypatch.setattr(module, "connect", _recording_connect(seen))

    run.run_sync(settings, client=FakeCentral())
    assert refresh.refresh_many(settings, ["SKU-1"]) == (0, ["SKU-1"])
    beat = heartbeat.HeartbeatThread(settings).start()
    beat.stop()

    assert seen == [0, 0, 0]


def test_an_unsafe_setting_is_logged_at_start_and_full_is_not() -> None:
    with capture_logs() as logs:
        db.warn_if_unsafe(SqliteSynchronous.FULL)
        db.warn_if_unsafe(UNSAFE)
    assert [entry["event"] for entry in logs] == ["sqlite_synchronous_unsafe"]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["setting"] == "OFF-UNSAFE-FOR-TESTS"
