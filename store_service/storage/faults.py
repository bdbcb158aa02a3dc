"""The database failing under the store (a full disk, a read-only or vanished file, I/O
errors): recognised, reported once, and noticed again when it clears.

The writer turns such an SQLite error into `StorageUnavailable` (the API answers a 503
`storage-unavailable` problem with Retry-After) and tells the `StorageFaults` of its process,
which health (`database: down` while set), metrics and the log read. One error line when a
condition starts, one reminder a minute while it lasts, one info line when writes succeed
again: a full disk must not be made fuller by a log line per failed request.

Nothing a failed write touched is kept: the transaction is rolled back (SQLite undoes a
failed COMMIT), so a 503 means "not recorded", except for an I/O error during the COMMIT's
fsync, whose outcome nobody can know; the problem says to retry with the same operation_id,
which is safe either way (a recorded change is answered as a replay).
"""

import sqlite3
import threading
import time
from collections import Counter

import structlog

from store_service.domain import StorageCondition

log = structlog.get_logger(__name__)

REMIND_EVERY_SECONDS = 60.0
_PRIMARY = {
    sqlite3.SQLITE_FULL: StorageCondition.DISK_FULL,
    sqlite3.SQLITE_READONLY: StorageCondition.READ_ONLY,
    sqlite3.SQLITE_CANTOPEN: StorageCondition.MISSING,
    sqlite3.SQLITE_IOERR: StorageCondition.IO_ERROR,
}
_SQLITE_READONLY_DBMOVED = 1032  # the database file was unlinked or renamed while open


class StorageUnavailable(Exception):
    """A write failed because of the storage, not the request; retry later."""

    def __init__(self, condition: StorageCondition, cause: str) -> None:
        super().__init__(f"{condition}: {cause}")
        self.condition = condition


def classify(exc: BaseException) -> StorageCondition | None:
    """The storage condition behind an SQLite error; None for any other error."""
    if isinstance(exc, StorageUnavailable):
        return exc.condition
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    if code == _SQLITE_READONLY_DBMOVED:
        return StorageCondition.MISSING
    return _PRIMARY.get(code & 0xFF)


class StorageFaults:
    """The storage condition of one process; safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.condition: StorageCondition | None = None
        self.since: float | None = None
        self.failures: Counter[StorageCondition] = Counter()
        self._reminded_at = 0.0
        self._unlogged = 0

    def failed(self, exc: BaseException) -> BaseException:
        """Record `exc` if it is a storage condition and return what the caller should raise:
        `StorageUnavailable` for a storage condition, `exc` itself otherwise."""
        condition = classify(exc)
        if condition is None:
            return exc
        now = time.monotonic()
        with self._lock:
            self.failures[condition] += 1
            if condition is not self.condition:
                self.condition, self.since, self._reminded_at = condition, now, now
                self._unlogged = 0
                log.error("storage_unavailable", condition=condition.value, error=repr(exc))
            elif now - self._reminded_at >= REMIND_EVERY_SECONDS:
                log.error(
                    "storage_still_unavailable",
                    condition=condition.value,
                    failures_since_last_line=self._unlogged + 1,
                    seconds=round(now - (self.since or now)),
                )
                self._reminded_at, self._unlogged = now, 0
            else:
                self._unlogged += 1
        if isinstance(exc, StorageUnavailable):
            return exc
        return StorageUnavailable(condition, str(exc))

    def succeeded(self) -> None:
        """A write went through: any condition has cleared."""
        if self.condition is None:  # the common case, without the lock
            return
        with self._lock:
            if self.condition is not None:
                log.info(
                    "storage_recovered",
                    condition=self.condition.value,
                    seconds=round(time.monotonic() - (self.since or 0.0)),
                )
                self.condition = self.since = None

    def unavailable_for(self) -> float | None:
        """Seconds since writes started failing; None while they succeed."""
        since = self.since
        return None if since is None else time.monotonic() - since
