"""Whether a WAL checkpoint is running in a SQLite database right now, seen from outside.

SQLite's wal-index (the `-shm` file beside a WAL database) is memory that every connection
maps shared; reading its bytes and its locks opens no connection and changes nothing, so the
harness may do it on a LazyFS mount while the store runs (see `chaos.lazyfs`: an SQLite
connection must not be opened between a kill and a cut; this never opens one).

What is read (SQLite's wal.c and os_unix.c; the layout is fixed since 3.11.0, which added
`nBackfillAttempted`):

* bytes 0-47, the wal-index header: `mxFrame` (u32 at 16), the last valid frame of the WAL;
* bytes 96-135, the checkpoint info: `nBackfill` (u32 at 96), the frames copied into the
  database file *and synced*; `nBackfillAttempted` (u32 at 128), the frames a checkpoint has
  begun to copy. A checkpoint sets `nBackfillAttempted` before its first page write and
  `nBackfill` only after the database file is synced, so while it copies, the database file
  holds pages that are written and not synced;
* the checkpoint lock: a checkpoint holds an exclusive POSIX lock on byte 121 of the `-shm`
  file (`UNIX_SHM_BASE` 120 + `WAL_CKPT_LOCK` 1) from its start to its end. `F_GETLK` names
  the process holding it.

A checkpoint is *running* when that lock is held; it is *copying* when, besides,
`nBackfillAttempted > nBackfill`. The lock is the proof: after crash recovery the counters say
`nBackfillAttempted = mxFrame > nBackfill = 0` with no checkpoint at all. Integers are in the
machine's byte order (the wal-index is never shared between machines).
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

HEADER_BYTES = 136
MX_FRAME_OFFSET = 16
N_BACKFILL_OFFSET = 96
N_BACKFILL_ATTEMPTED_OFFSET = 128
CHECKPOINT_LOCK_BYTE = 121
# struct flock on Linux: l_type, l_whence (short); l_start, l_len (off_t); l_pid (pid_t).
_FLOCK = "hhqqi"


@dataclass(frozen=True, slots=True)
class WalIndex:
    """One reading of a wal-index: its frame counters and who holds the checkpoint lock."""

    wal_frames: int  # mxFrame
    backfilled: int  # nBackfill: copied into the database file and synced
    backfill_attempted: int  # nBackfillAttempted
    checkpointer_pid: int | None  # the process holding the checkpoint lock, if any

    @property
    def checkpoint_running(self) -> bool:
        return self.checkpointer_pid is not None

    @property
    def copying(self) -> bool:
        """A checkpoint runs and has written pages into the database file it has not synced."""
        return self.checkpoint_running and self.backfill_attempted > self.backfilled

    @property
    def frames_being_copied(self) -> int:
        return max(0, self.backfill_attempted - self.backfilled) if self.copying else 0

    def as_dict(self) -> dict[str, int | bool | None]:
        return {
            "wal_frames": self.wal_frames,
            "backfilled": self.backfilled,
            "backfill_attempted": self.backfill_attempted,
            "checkpointer_pid": self.checkpointer_pid,
            "copying": self.copying,
        }


def parse_counters(header: bytes) -> tuple[int, int, int]:
    """(mxFrame, nBackfill, nBackfillAttempted) from the first HEADER_BYTES of a `-shm`."""
    if len(header) < HEADER_BYTES:
        raise ValueError(f"a wal-index header has {HEADER_BYTES} bytes, got {len(header)}")
    (mx_frame,) = struct.unpack_from("=I", header, MX_FRAME_OFFSET)
    (backfilled,) = struct.unpack_from("=I", header, N_BACKFILL_OFFSET)
    (attempted,) = struct.unpack_from("=I", header, N_BACKFILL_ATTEMPTED_OFFSET)
    return int(mx_frame), int(backfilled), int(attempted)


class WalIndexReader:
    """Reads one database's `-shm` through a descriptor held open between readings (opening
    a FUSE file anew would drop its cached pages, which the store's processes map)."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-shm")
        self._fd: int | None = None

    def read(self) -> WalIndex | None:
        """The current reading, or None while the database has no wal-index yet."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return None
        header = os.pread(self._fd, HEADER_BYTES, 0)
        if len(header) < HEADER_BYTES:
            return None
        mx_frame, backfilled, attempted = parse_counters(header)
        return WalIndex(mx_frame, backfilled, attempted, self._lock_holder(self._fd))

    @staticmethod
    def _lock_holder(fd: int) -> int | None:
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, CHECKPOINT_LOCK_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        lock_type, _whence, _start, _length, pid = struct.unpack(_FLOCK, answer)
        return None if lock_type == fcntl.F_UNLCK else int(pid)

    def close(self) -> None:
        """Close the descriptor (before a cut: nothing may hold a file on the mount open)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
