"""`python -m store_service.backup DEST`: a consistent copy of the store's SQLite file, taken
while the API and the worker keep writing.

Copying the file with `cp` while the store runs is not a backup: the WAL holds the latest
commits and the main file may be mid-checkpoint. SQLite's online backup API copies the pages of
one read transaction, a snapshot that WAL mode lets writers go on past, so the copy is exactly
the database as of one commit. The copy is written beside DEST, checked with
`PRAGMA integrity_check`, fsynced, then renamed onto DEST, so DEST is either the previous
backup or a complete new one, never half a file.

Restore: stop the API, the worker and beat; move the database file and its `-wal` and `-shm`
files aside; copy the backup to the database path; start the services. Changes acknowledged
after the backup was taken are not in it: whatever central has not received from them is lost
with the file, which is why backups complement syncing, not replace it.
"""

import argparse
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from store_service.config import Settings
from store_service.storage.db import connect


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    bytes: int
    changes: int
    seconds: float


class BackupFailed(Exception):
    """The copy did not pass `integrity_check`; DEST was left as it was."""


def backup(source: Path, dest: Path) -> Backup:
    """Copy `source` to `dest` as of one commit; see the module docstring."""
    started = time.monotonic()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    src = connect(source, readonly=True)
    try:
        out = sqlite3.connect(partial, isolation_level=None)
        try:
            # pages=-1: every page in one step, inside one read transaction (one snapshot).
            src.backup(out, pages=-1)
            # The copy is a plain rollback-journal file: a backup wants no -wal beside it.
            out.execute("PRAGMA journal_mode=DELETE")
            verdict = out.execute("PRAGMA integrity_check").fetchone()[0]
            changes = out.execute("SELECT count(*) FROM changes").fetchone()[0]
        finally:
            out.close()
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise BackupFailed(f"integrity_check on the copy: {verdict}")
    _fsync(partial)
    partial.replace(dest)
    _fsync(dest.parent)  # the rename itself survives power loss only once its directory is synced
    return Backup(dest, dest.stat().st_size, changes, time.monotonic() - started)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m store_service.backup",
        description="Copy the store's SQLite database (STORE_DATABASE_URL) while it runs.",
    )
    parser.add_argument("dest", type=Path, help="the backup file to write (replaced atomically)")
    args = parser.parse_args(argv)
    source = Settings().database_path
    if not source.exists():
        print(f"no database at {source}", file=sys.stderr)
        return 2
    try:
        done = backup(source, args.dest)
    except BackupFailed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(
        f"backed up {source} to {done.path}: {done.bytes} bytes, "
        f"{done.changes} changes, {done.seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
