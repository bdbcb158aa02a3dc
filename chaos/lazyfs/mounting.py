"""Start, wait for and take down a LazyFS mount from a harness or a test.

`mount_lazyfs` starts `python -m chaos.lazyfs mount ...` as a child process and returns once
the kernel lists the mount and its control socket answers `ping` with the child's pid.
`unmount` asks `fusermount3 -u`, detaches lazily (`-u -z`) when that is refused (a process still
has a file open, or the lazyfs process is gone), and waits for the lazyfs process to exit.
Every wait polls with a deadline.
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chaos.lazyfs.control import LazyFSControl, LazyFSError
from chaos.lazyfs.model import Stats

REPO_ROOT = Path(__file__).resolve().parents[2]
FSTYPE = "fuse.lazyfs"
POLL_INTERVAL = 0.02
INSTALL_HINT = (
    "install Debian's fuse3 (apt-get install fuse3) and, in a container, give it /dev/fuse and "
    "CAP_SYS_ADMIN (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
)


def fuse_unavailable_reason() -> str | None:
    """Why this machine cannot mount LazyFS, or None when it has all it needs."""
    if not Path("/dev/fuse").exists():
        return "/dev/fuse does not exist"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not on the PATH"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse3 (libfuse3.so.3) is not installed"
    return None


def _unescape(field: str) -> str:
    """A mountinfo path: the kernel writes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounted_fstype(mountpoint: Path, mountinfo: str | None = None) -> str | None:
    """The type of what is mounted at `mountpoint` (the last mount there), or None."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    # Resolve the parent only: stat of a dead FUSE mount itself fails (ENOTCONN).
    target = str(Path(os.path.realpath(mountpoint.parent)) / mountpoint.name)
    found: str | None = None
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split(" ")
        if len(parts) >= 5 and _unescape(parts[4]) == target and rest:
            found = rest.split(" ")[0]
    return found


@dataclass
class LazyFSMount:
    """A running mount: its process, its control channel and how it was started."""

    backing: Path
    mountpoint: Path
    control_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    debug: bool = False

    @property
    def control(self) -> LazyFSControl:
        return LazyFSControl(self.control_path)

    def cut(self) -> Stats:
        return self.control.cut()

    def stats(self) -> Stats:
        return self.control.stats()

    def unmount(self, timeout: float = 30.0) -> None:
        unmount(self.mountpoint, process=self.process, timeout=timeout)

    def remount(self, timeout: float = 30.0) -> LazyFSMount:
        """Unmount, then mount the same backing directory again: the kernel forgets its cache."""
        self.unmount(timeout=timeout)
        return mount_lazyfs(
            self.backing,
            self.mountpoint,
            self.control_path,
            log_path=self.log_path,
            timeout=timeout,
            debug=self.debug,
        )

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def mount_lazyfs(
    backing: Path,
    mountpoint: Path,
    control: Path,
    *,
    log_path: Path | None = None,
    timeout: float = 30.0,
    debug: bool = False,
) -> LazyFSMount:
    """Mount `backing` at `mountpoint` with its control socket at `control`; wait until ready.

    The process logs to `log_path` (default: the control path with `.log` added). A lazyfs
    mount left at `mountpoint` by a killed earlier run is taken down first. Raises LazyFSError
    (with the log's tail) when the process exits or is not ready within `timeout` seconds.
    """
    reason = fuse_unavailable_reason()
    if reason is not None:
        raise LazyFSError(f"cannot mount LazyFS: {reason}; {INSTALL_HINT}")
    left = mounted_fstype(mountpoint)
    if left == FSTYPE:
        unmount(mountpoint, timeout=timeout)
    elif left is not None:
        raise LazyFSError(f"{mountpoint} already has a {left} filesystem mounted")
    log = log_path if log_path is not None else control.with_name(control.name + ".log")
    argv = [
        sys.executable,
        "-m",
        "chaos.lazyfs",
        "mount",
        "--backing",
        str(backing),
        "--mount",
        str(mountpoint),
        "--control",
        str(control),
    ]
    if debug:
        argv.append("--debug")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # Its own session: a signal meant for the harness's process group does not unmount it.
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    mount = LazyFSMount(backing, mountpoint, control, log, process, debug)
    client = LazyFSControl(control, timeout=1.0)
    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline
        code = process.poll()
        if code is not None:
            raise LazyFSError(f"lazyfs exited with {code} before mounting:\n{mount.log_tail()}")
        if mounted_fstype(mountpoint) == FSTYPE:
            try:
                if client.ping() == process.pid:
                    return mount
            except LazyFSError:
                pass  # the socket is not bound yet
        if time.monotonic() > deadline:
            _stop(process, timeout=5.0)
            if mounted_fstype(mountpoint) == FSTYPE:
                unmount(mountpoint, timeout=5.0)
            raise LazyFSError(f"LazyFS not ready after {timeout} s:\n{mount.log_tail()}")
        time.sleep(POLL_INTERVAL)


def unmount(
    mountpoint: Path,
    *,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 30.0,
) -> None:
    """Unmount a LazyFS mount and wait for its process (if given) to exit.

    A clean unmount syncs everything the mount held. When the mount can only be detached
    lazily and a user keeps it alive past `timeout`, the lazyfs process is killed: what it
    still held unsynced is lost, as at a cut (after a cut, nothing is).
    """
    deadline = time.monotonic() + timeout
    if mounted_fstype(mountpoint) is not None:
        done = _fusermount(["-u"], mountpoint, timeout)
        if not done and mounted_fstype(mountpoint) is not None:
            # Busy, or its process is gone ("transport endpoint is not connected").
            done = _fusermount(["-u", "-z"], mountpoint, timeout)
            if not done and mounted_fstype(mountpoint) is not None:
                raise LazyFSError(f"could not unmount {mountpoint}")
    if process is not None:
        _stop(process, timeout=max(0.0, deadline - time.monotonic()))


def _fusermount(flags: list[str], mountpoint: Path, timeout: float) -> bool:
    try:
        result = subprocess.run(
            ["fusermount3", *flags, str(mountpoint)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the process to exit; SIGKILL it if it does not within `timeout`."""
    try:
        process.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10.0)
