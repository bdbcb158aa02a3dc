"""LazyFS on a real FUSE mount: what survives a cut, an unmount and a remount.

The negative control is SQLite in WAL mode, written by child processes that are SIGKILLed as
the store's would be: with synchronous=FULL every acknowledged commit survives the cut, with
synchronous=OFF acknowledged commits are lost, which proves the cut can catch a durability bug.

Where FUSE cannot mount, the tests skip saying what is missing and how to get it; in CI
(CI=true) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lazyfs import LazyFSError, LazyFSMount, mount_lazyfs, unmount
from chaos.lazyfs.mounting import fuse_unavailable_reason, mounted_fstype
from tests.support.lazyfs import cannot_mount
from tests.support.processes import REPO_ROOT

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

STEP_TIMEOUT = 30.0
WRITER = [sys.executable, "-m", "tests.support.sqlite_writer"]


class Rig:
    """One backing directory, one mount point, and the mount currently serving them."""

    def __init__(self, root: Path) -> None:
        self.backing = root / "backing"
        self.mountpoint = root / "mnt"
        self.control = root / "ctl.sock"
        self.backing.mkdir()
        self.mountpoint.mkdir()
        self.mount: LazyFSMount | None = None

    def start(self) -> LazyFSMount:
        self.mount = mount_lazyfs(self.backing, self.mountpoint, self.control, timeout=STEP_TIMEOUT)
        return self.mount

    @property
    def live(self) -> LazyFSMount:
        assert self.mount is not None
        return self.mount

    def cut_and_remount(self) -> None:
        """The harness's sequence, once every user of the mount is dead."""
        stats = self.live.cut()
        assert stats.cuts == 1
        assert (stats.unsynced_bytes, stats.dirty_files, stats.dirty_dirs) == (0, 0, 0)
        self.mount = self.live.remount(timeout=STEP_TIMEOUT)

    def stop(self) -> None:
        if self.mount is not None:
            self.mount.unmount(timeout=STEP_TIMEOUT)
        elif mounted_fstype(self.mountpoint) is not None:
            unmount(self.mountpoint, timeout=STEP_TIMEOUT)


@pytest.fixture
def rig() -> Iterator[Rig]:
    reason = fuse_unavailable_reason()
    if reason is not None:
        cannot_mount(reason)
    # Short paths: the control socket's must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="lazyfs-", dir="/tmp"))
    made = Rig(root)
    try:
        try:
            made.start()
        except LazyFSError as exc:
            cannot_mount(str(exc))
        yield made
    finally:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_fsynced_writes_survive_a_cut_and_unsynced_ones_vanish(rig: Rig) -> None:
    mnt = rig.mountpoint
    write_file(mnt / "synced", b"bytes and name synced", fsync=True)
    write_file(mnt / "name-only", b"", fsync=False)
    fsync_dir(mnt)
    write_file(mnt / "name-only", b"bytes never synced", fsync=False)
    write_file(mnt / "bytes-only", b"bytes synced, name never", fsync=True)
    assert (mnt / "name-only").read_bytes() == b"bytes never synced"
    assert rig.live.stats().dirty_files == 1

    rig.cut_and_remount()

    assert sorted(p.name for p in mnt.iterdir()) == ["name-only", "synced"]
    assert (mnt / "synced").read_bytes() == b"bytes and name synced"
    assert (mnt / "name-only").read_bytes() == b"", "the kernel's cached pages are gone too"


def test_a_clean_unmount_keeps_everything(rig: Rig) -> None:
    (rig.mountpoint / "dir").mkdir()
    write_file(rig.mountpoint / "dir" / "file", b"never fsynced", fsync=False)
    rig.mount = rig.live.remount(timeout=STEP_TIMEOUT)
    assert (rig.mountpoint / "dir" / "file").read_bytes() == b"never fsynced"
    assert (rig.backing / "dir" / "file").read_bytes() == b"never fsynced"


def test_sigkill_of_the_lazyfs_process_is_a_cut(rig: Rig) -> None:
    write_file(rig.mountpoint / "kept", b"synced", fsync=True)
    fsync_dir(rig.mountpoint)
    write_file(rig.mountpoint / "kept", b"SYNCED NOT", fsync=False)
    process = rig.live.process
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=STEP_TIMEOUT)
    rig.mount = None
    # The dead mount is still listed ("transport endpoint is not connected"): mounting again
    # takes it down first.
    rig.start()
    assert (rig.mountpoint / "kept").read_bytes() == b"synced"


class Writer:
    """A `sqlite_writer write` child process and the row ids it acknowledged."""

    def __init__(self, db: Path, sync: str, first: int, rows: int) -> None:
        argv = [*WRITER, "write", "--db", str(db), "--sync", sync]
        argv += ["--first", str(first), "--rows", str(rows)]
        self.process = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.acked: list[int] = []
        self.done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # ends when the process dies
            if line.strip() == "done":
                self.done.set()
            else:
                self.acked.append(int(line))

    def wait_done(self, deadline: float) -> None:
        if not self.done.wait(timeout=max(0.0, deadline - time.monotonic())):
            self.kill()
            pytest.fail(f"the writer did not finish; acknowledged {len(self.acked)} rows")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STEP_TIMEOUT)
        self._reader.join(timeout=STEP_TIMEOUT)


def run_writer(*args: str) -> str:
    result = subprocess.run(
        [*WRITER, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def check_db(db: Path) -> dict[str, list[str | int]]:
    answer: dict[str, list[str | int]] = json.loads(run_writer("check", "--db", str(db)))
    return answer


def test_sqlite_full_commits_survive_a_cut_with_two_writers_at_once(rig: Rig) -> None:
    db = rig.mountpoint / "store.db"
    run_writer("setup", "--db", str(db))
    # Two processes on one WAL database at once: both map its -shm, shared and writable.
    writers = [Writer(db, "FULL", 1, 40), Writer(db, "FULL", 1001, 40)]
    deadline = time.monotonic() + STEP_TIMEOUT
    for writer in writers:
        writer.wait_done(deadline)
    assert (db.parent / "store.db-shm").exists()
    for writer in writers:
        writer.kill()
    acked = sorted(row for writer in writers for row in writer.acked)
    assert len(acked) == 80
    stats = rig.live.stats()
    assert stats.fsyncs + stats.fdatasyncs >= 80, "each FULL commit syncs the WAL"

    rig.cut_and_remount()

    after = check_db(db)
    assert after["integrity"] == ["ok"]
    missing = sorted(set(acked) - set(after["ids"]))
    assert missing == [], f"acknowledged rows lost with synchronous=FULL: {missing}"


def test_sqlite_synchronous_off_loses_acknowledged_commits_at_a_cut(rig: Rig) -> None:
    db = rig.mountpoint / "store.db"
    run_writer("setup", "--db", str(db))  # the schema is committed with synchronous=FULL
    writer = Writer(db, "OFF", 1, 40)
    writer.wait_done(time.monotonic() + STEP_TIMEOUT)
    writer.kill()
    assert len(writer.acked) == 40
    # No other connection may open the database before the cut: the last one to close
    # checkpoints with its own synchronous setting (FULL by default) and so syncs every row.
    assert rig.live.stats().unsynced_bytes > 0

    rig.cut_and_remount()

    after = check_db(db)
    assert after["tables"] == ["item"], "what was synced (the schema) survives"
    lost = sorted(set(writer.acked) - set(after["ids"]))
    assert lost, (
        "a cut lost nothing that synchronous=OFF acknowledged: the injector would miss a "
        f"durability bug (integrity {after['integrity']})"
    )
