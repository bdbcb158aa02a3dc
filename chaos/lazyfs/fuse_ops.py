"""The FUSE adapter: libfuse3's high-level (path) API, through mfusepy, onto the model.

mfusepy is ctypes over the `libfuse3.so.3` that Debian's fuse3 installs, so it needs no
compiler, headers or async framework (pyfuse3 would build against libfuse3-dev and run on
trio). This is the only module that imports it: importing it loads libfuse, and the model and
its tests must not need that.

Mount options, and why:

* no `direct_io`: reads and writes go through the kernel's page cache, which shared writable
  mmap needs (SQLite maps `-shm` MAP_SHARED in every connection); FUSE refuses such an mmap on
  a direct_io file. So, also, the page cache survives a cut: remount (see the package doc).
* `hard_remove`: unlink removes the name at once; libfuse would otherwise rename a file that
  is still open to `.fuse_hidden*`, an entry that a directory fsync would then make durable.
* `default_permissions`: the kernel checks modes, since the model does not.
* no writeback cache (libfuse's default): every write(2) reaches the model before it returns,
  so a SIGKILLed writer leaves nothing in the kernel that the model has not seen.

mfusepy passes a path or, for a file unlinked while open, None; handles are the model's.
mfusepy drops rename(2)'s flags (RENAME_NOREPLACE, RENAME_EXCHANGE): such a rename is a plain
one here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mfusepy

from chaos.lazyfs.model import Attributes, LazyFS

# utimensat(2)'s special nanosecond values, as libfuse passes them with tv_sec 0.
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def _caller() -> tuple[int, int]:
    uid, gid, _pid = mfusepy.fuse_get_context()
    return int(uid), int(gid)


def _stat_dict(attributes: Attributes) -> dict[str, int]:
    return {
        "st_mode": attributes.mode,
        "st_nlink": attributes.nlink,
        "st_size": attributes.size,
        "st_uid": attributes.uid,
        "st_gid": attributes.gid,
        "st_atime": attributes.atime_ns,
        "st_mtime": attributes.mtime_ns,
        "st_ctime": attributes.ctime_ns,
        "st_blksize": 4096,
        "st_blocks": (attributes.size + 511) // 512,
    }


def _time(value: int) -> int | None:
    if value == UTIME_OMIT:
        return None
    if value == UTIME_NOW:
        return time.time_ns()
    return value


class LazyOperations:
    """The callbacks mfusepy registers: each method it finds here, and only those."""

    use_ns = True  # times as integer nanoseconds

    def __init__(self, model: LazyFS) -> None:
        self.model = model
        self.started = False

    def init(self, path: str) -> None:
        self.started = True  # the kernel accepted the mount

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        return _stat_dict(self.model.getattr(path, fh))

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *self.model.readdir(path)]

    def create(self, path: str, mode: int, flags: int) -> int:
        return self.model.create(path, mode, flags, owner=_caller())

    def open(self, path: str, flags: int) -> int:
        return self.model.open(path, flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return self.model.read(fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        return self.model.write(fh, data, offset)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self.model.truncate(path, length, fh)
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0  # close(2) is no sync: nothing to do

    def release(self, path: str | None, fh: int) -> int:
        self.model.release(fh)
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        self.model.fsync(fh, datasync=bool(datasync))
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self.model.fsync_dir(path)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self.model.mkdir(path, mode, owner=_caller())
        return 0

    def rmdir(self, path: str) -> int:
        self.model.rmdir(path)
        return 0

    def unlink(self, path: str) -> int:
        self.model.unlink(path)
        return 0

    def rename(self, old: str, new: str) -> int:
        self.model.rename(old, new)
        return 0

    def link(self, target: str, source: str) -> int:
        # mfusepy's order: `target` is the new name, `source` the existing file.
        self.model.link(source, target)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self.model.chmod(path, mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self.model.chown(path, uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            now = time.time_ns()
            self.model.utimens(path, now, now)
        else:
            self.model.utimens(path, _time(times[0]), _time(times[1]))
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        info = self.model.statfs()
        return {
            "f_bsize": info.f_bsize,
            "f_frsize": info.f_frsize,
            "f_blocks": info.f_blocks,
            "f_bfree": info.f_bfree,
            "f_bavail": info.f_bavail,
            "f_files": info.f_files,
            "f_ffree": info.f_ffree,
            "f_favail": info.f_favail,
            "f_namemax": info.f_namemax,
        }

    def destroy(self, path: str) -> None:
        # A clean unmount, or SIGTERM: sync everything, as a real unmount does.
        self.model.sync_all()
        self.model.close()


def run_fuse(model: LazyFS, mountpoint: Path, *, debug: bool = False) -> None:
    """Serve `model` at `mountpoint` in the foreground until it is unmounted; RuntimeError
    when the mount is refused."""
    options: dict[str, Any] = {
        "foreground": True,
        "fsname": "lazyfs",
        "subtype": "lazyfs",
        "hard_remove": True,
        "default_permissions": True,
    }
    if debug:
        options["debug"] = True
    operations = LazyOperations(model)
    try:
        mfusepy.FUSE(operations, str(mountpoint), **options)
    except RuntimeError:
        # libfuse reports a stop by SIGTERM, SIGINT or SIGHUP as an error (8) too; after the
        # mount had started that is a clean unmount (destroy ran and synced).
        if not operations.started:
            raise
