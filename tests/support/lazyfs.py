"""Whether LazyFS can mount here: tests that need a FUSE mount skip, saying what is missing and
how to get it, or fail under CI=true (where the mount is part of what CI must run)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from chaos.lazyfs import LazyFSError, fuse_unavailable_reason, mount_lazyfs
from chaos.lazyfs.mounting import INSTALL_HINT
from tests.support.processes import require

PROBE_TIMEOUT_SECONDS = 30.0


def cannot_mount(reason: str) -> None:
    """Skip (fail under CI=true) with why the mount was refused and how to fix it."""
    require(False, f"a LazyFS FUSE mount ({reason})", INSTALL_HINT)


def require_lazyfs() -> None:
    """The machine has what a mount needs, and one throwaway mount and unmount work."""
    reason = fuse_unavailable_reason()
    if reason is not None:
        cannot_mount(reason)
    root = Path(tempfile.mkdtemp(prefix="lazyfs-probe-", dir="/tmp"))  # a socket path is short
    try:
        (root / "disk").mkdir()
        (root / "mnt").mkdir()
        try:
            mount = mount_lazyfs(
                root / "disk", root / "mnt", root / "ctl.sock", timeout=PROBE_TIMEOUT_SECONDS
            )
        except LazyFSError as exc:
            cannot_mount(str(exc))
        mount.unmount(timeout=PROBE_TIMEOUT_SECONDS)
    finally:
        shutil.rmtree(root, ignore_errors=True)
