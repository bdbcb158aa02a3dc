"""The LazyFS control channel over a real Unix socket, serving a model without FUSE; and the
mountinfo parsing the mount helpers wait on."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lazyfs.control import ControlServer, LazyFSControl, LazyFSError, answer
from chaos.lazyfs.model import LazyFS
from chaos.lazyfs.mounting import mounted_fstype


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A Unix socket's path must fit in 108 bytes; pytest's tmp_path may not.
    path = Path(tempfile.mkdtemp(prefix="lzc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def model(short_dir: Path) -> LazyFS:
    backing = short_dir / "backing"
    backing.mkdir()
    return LazyFS(backing)


@pytest.fixture
def server(short_dir: Path, model: LazyFS) -> Iterator[ControlServer]:
    served = ControlServer(short_dir / "ctl.sock", model)
    served.start()
    yield served
    served.close()


def test_ping_stats_and_cut_through_the_client(server: ControlServer, model: LazyFS) -> None:
    client = LazyFSControl(server.path, timeout=5.0)
    assert client.ping() == os.getpid()
    fh = model.create("/f", 0o644)
    model.write(fh, b"unsynced", 0)
    model.release(fh)
    before = client.stats()
    assert (before.unsynced_bytes, before.dirty_files, before.writes) == (4096, 1, 1)
    after = client.cut()
    assert (after.unsynced_bytes, after.dirty_files, after.cuts) == (0, 0, 1)
    assert model.readdir("/") == []


def test_one_connection_carries_several_requests(server: ControlServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(str(server.path))
        sock.sendall(b'{"cmd": "ping"}\n{"cmd": "stats"}\nnot json\n{"cmd": "reboot"}\n')
        with sock.makefile("rb") as lines:
            answers = [json.loads(lines.readline()) for _ in range(4)]
    assert answers[0] == {"ok": True, "pid": os.getpid()}
    assert answers[1]["ok"] is True
    assert answers[1]["stats"]["cuts"] == 0
    assert answers[2]["ok"] is False
    assert "not JSON" in answers[2]["error"]
    assert answers[3] == {
        "ok": False,
        "error": "unknown command 'reboot'; use ping, stats or cut",
    }


def test_the_socket_is_private_and_removed_on_close(short_dir: Path, model: LazyFS) -> None:
    path = short_dir / "ctl.sock"
    path.write_text("left by a killed run")
    served = ControlServer(path, model)
    served.start()
    assert path.stat().st_mode & 0o777 == 0o600
    served.close()
    assert not path.exists()


def test_a_refused_request_raises_lazyfs_error(model: LazyFS, short_dir: Path) -> None:
    assert answer(model, b'["cmd", "cut"]')["ok"] is False
    with pytest.raises(LazyFSError, match="control socket"):
        LazyFSControl(short_dir / "nobody.sock", timeout=1.0).ping()


def test_a_socket_path_too_long_is_refused_with_its_reason(model: LazyFS) -> None:
    with pytest.raises(LazyFSError, match="longer than 107 bytes"):
        ControlServer(Path("/tmp/" + "x" * 120), model)


def test_mountinfo_lines_find_a_mount_point_with_escaped_spaces(tmp_path: Path) -> None:
    mountpoint = tmp_path / "my mount"
    escaped = str(mountpoint).replace(" ", "\\040")
    mountinfo = (
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"90 22 0:55 / {escaped} rw,nosuid,nodev,relatime shared:50 - fuse.lazyfs lazyfs rw\n"
    )
    assert mounted_fstype(mountpoint, mountinfo) == "fuse.lazyfs"
    assert mounted_fstype(tmp_path / "other", mountinfo) is None
