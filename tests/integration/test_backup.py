"""`python -m store_service.backup` against a real store API taking updates the whole time."""

import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.store import StoreApi, start_store_api
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreApi]:
    api = start_store_api(tmp_path / "store")
    yield api
    api.process.stop()


class Writer(threading.Thread):
    """Updates one after another until stopped, remembering which were acknowledged."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.acknowledged: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            for i in range(20_000):  # bounded: the test stops it long before
                if self.stop.is_set():
                    return
                op = f"backup-{uuid.uuid4()}"
                body = {"delta": 1, "operation_id": op}
                if client.post(f"/v1/local/inventory/SKU-{i % 50}/update", json=body).is_success:
                    self.acknowledged.append(op)


def run_backup(store: StoreApi, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "store_service.backup", str(dest)],
        env=store.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_backup_taken_under_writes_is_whole_and_holds_every_change_acknowledged_before_it(
    store: StoreApi, tmp_path: Path
) -> None:
    writer = Writer(store.base_url)
    writer.start()
    try:
        while len(writer.acknowledged) < 200 and writer.is_alive():
            writer.join(0.05)
        before = list(writer.acknowledged)
        dest = tmp_path / "backups" / "store.db"
        done = run_backup(store, dest)
        after = list(writer.acknowledged)
    finally:
        writer.stop.set()
        writer.join(30)
    assert done.returncode == 0, done.stderr
    assert len(after) > len(before), "the writer must keep writing while the backup runs"

    copy = sqlite3.connect(dest)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        ops = {row[0] for row in copy.execute("SELECT operation_id FROM changes")}
        quantities = dict(copy.execute("SELECT sku, quantity FROM inventory_items").fetchall())
    finally:
        copy.close()
    assert set(before) <= ops
    # Nothing the writer did not send: every change is one it acknowledged, or the one request
    # in flight when it stopped (acknowledged by the store, not yet seen by the writer).
    assert len(ops - set(after)) <= 1
    # A snapshot of one commit: the items agree with the changes the copy holds.
    assert sum(quantities.values()) == len(ops)
    assert not dest.with_name(dest.name + ".partial").exists()


def test_a_second_backup_replaces_the_first_atomically(store: StoreApi, tmp_path: Path) -> None:
    dest = tmp_path / "store-backup.db"
    with httpx.Client(base_url=store.base_url, timeout=10) as client:
        body = {"delta": 3, "operation_id": "backup-one"}
        assert client.post("/v1/local/inventory/SKU-B/update", json=body).status_code == 200
        assert run_backup(store, dest).returncode == 0
        body = {"delta": 4, "operation_id": "backup-two"}
        assert client.post("/v1/local/inventory/SKU-B/update", json=body).status_code == 200
    done = run_backup(store, dest)
    assert done.returncode == 0, done.stderr
    assert "2 changes" in done.stdout
    copy = sqlite3.connect(dest)
    try:
        row = copy.execute("SELECT quantity FROM inventory_items WHERE sku = 'SKU-B'").fetchone()
    finally:
        copy.close()
    assert row == (7,)


def test_the_backup_refuses_a_store_without_a_database(tmp_path: Path) -> None:
    env = {"STORE_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "store_service.backup", str(tmp_path / "out.db")],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no database" in done.stderr
    assert not (tmp_path / "out.db").exists()
