"""A full disk under a running store API: the database on a small tmpfs the test mounts, filled
to the last byte while updates keep coming on one kept-alive connection.

Promises (docs/api.md#security-and-limits): every update gets an HTTP answer (200, or a 503
`storage-unavailable` problem with Retry-After, never a generic 500 or a dropped connection);
health says the database is down while writes fail and recovers by itself once space returns;
one error line per condition, not one per request; nothing acknowledged is lost and nothing
answered 503 is recorded.
"""

import errno
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.processes import poll
from harness.store import StoreApi, start_store_api
from tests.support.metrics import scrape
from tests.support.processes import require

pytestmark = pytest.mark.integration

TMPFS_SIZE = "6m"
MAX_UPDATES = 2_000  # bounded: the disk fills long before (each update adds WAL frames)
ENOUGH_REFUSALS = 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    # Not root: passwordless sudo where there is one (GitHub's runners), the mount owned by us.
    as_root = [] if os.geteuid() == 0 or shutil.which("sudo") is None else ["sudo", "-n"]
    options = f"size={TMPFS_SIZE},uid={os.getuid()},gid={os.getgid()},mode=0700"
    result = subprocess.run(
        [*as_root, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(
        result.returncode == 0,
        f"a tmpfs mount for the disk-full test ({result.stderr.strip() or 'refused'})",
        "run the tests as root or with passwordless sudo (CI does either)",
    )
    try:
        yield mount_point
    finally:
        subprocess.run([*as_root, "umount", "-l", str(mount_point)], check=False)


def fill(path: Path) -> None:
    """Write `path` until the filesystem has not a byte left."""
    chunk = b"\0" * 65_536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


def recorded(database: Path, operation_ids: list[str]) -> set[str]:
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute("SELECT operation_id FROM changes").fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows} & set(operation_ids)


def database_health(api: StoreApi) -> tuple[int, dict[str, object]]:
    response = httpx.get(api.base_url + "/health", timeout=10)
    return response.status_code, response.json()["components"]["database"]


def test_a_full_disk_is_a_503_problem_health_goes_down_and_recovers(
    small_disk: Path, tmp_path: Path
) -> None:
    api = start_store_api(
        tmp_path / "run",
        STORE_DATABASE_URL=f"sqlite:///{small_disk / 'store.db'}",
        STORE_DATA_DIR=str(small_disk),
        STORE_LOG_LEVEL="INFO",
    )
    try:
        filler = small_disk / "filler"
        acknowledged: list[str] = []
        refused: list[str] = []
        with httpx.Client(base_url=api.base_url, timeout=10) as client:
            for n in range(20):  # acknowledged before the disk fills: must survive it
                operation_id = f"before-{n}-{uuid.uuid4().hex[:8]}"
                response = client.post(
                    f"/v1/local/inventory/FULL-{n}/update",
                    json={"delta": 1, "operation_id": operation_id},
                )
                assert response.status_code == 200
                acknowledged.append(operation_id)
        mark = api.process.log_size()
        fill(filler)
        with httpx.Client(base_url=api.base_url, timeout=10) as client:
            for n in range(MAX_UPDATES):
                operation_id = f"full-{n}-{uuid.uuid4().hex[:8]}"
                response = client.post(
                    f"/v1/local/inventory/FULL-{n % 50}/update",
                    json={"delta": 1, "operation_id": operation_id},
                )
                if response.status_code == 200:
                    acknowledged.append(operation_id)
                    continue
                assert response.status_code == 503, response.text
                problem = response.json()
                assert problem["type"].endswith("/storage-unavailable")
                assert problem["condition"] == "disk_full"
                assert int(response.headers["retry-after"]) > 0
                refused.append(operation_id)
                if len(refused) >= ENOUGH_REFUSALS:
                    break
        assert len(refused) == ENOUGH_REFUSALS, "the disk never filled up"

        status, database = database_health(api)
        assert status == 503
        assert database["status"] == "down"
        assert "disk_full" in str(database.get("detail"))
        metrics = scrape(api.base_url + "/metrics")
        assert metrics.value("store_storage_unavailable") == 1
        assert metrics.value("store_storage_failures_total", condition="disk_full") >= 1
        assert metrics.value("store_updates_total", outcome="storage_unavailable") == len(refused)
        assert metrics.value("store_updates_total", outcome="error") == 0
        logged = api.process.log_since(mark)
        assert logged.count('"storage_unavailable"') == 1, logged[-3000:]
        assert "Traceback" not in logged
        assert "Exception in ASGI application" not in logged

        filler.unlink()  # space returns: the store notices without a restart
        poll(
            "the database healthy again",
            lambda: database_health(api)[0] == 200 or None,
            timeout=30,
        )
        with httpx.Client(base_url=api.base_url, timeout=10) as client:
            after = f"after-{uuid.uuid4().hex[:8]}"
            response = client.post(
                "/v1/local/inventory/FULL-0/update", json={"delta": 1, "operation_id": after}
            )
            assert response.status_code == 200
        assert scrape(api.base_url + "/metrics").value("store_storage_unavailable") == 0
        assert '"storage_recovered"' in api.process.log_since(mark)
    finally:
        api.process.stop()
    assert recorded(small_disk / "store.db", acknowledged) == set(acknowledged)
    assert recorded(small_disk / "store.db", refused) == set()
