"""The LazyFS model without FUSE, over a real backing directory: what a cut keeps and loses.

Each test drives the model as FUSE would (paths, handles, fsync of files and directories),
cuts, and looks both through the model and at the backing directory itself."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from chaos.lazyfs.model import STAGING, LazyFS


@pytest.fixture
def backing(tmp_path: Path) -> Path:
    path = tmp_path / "backing"
    path.mkdir()
    return path


@pytest.fixture
def fs(backing: Path) -> LazyFS:
    return LazyFS(backing)


def write(fs: LazyFS, path: str, data: bytes, *, offset: int = 0, fsync: bool = False) -> None:
    """Create or open `path`, write, optionally fsync, close."""
    fh = fs.create(path, 0o644)
    try:
        fs.write(fh, data, offset)
        if fsync:
            fs.fsync(fh, datasync=False)
    finally:
        fs.release(fh)


def read(fs: LazyFS, path: str) -> bytes:
    fh = fs.open(path, os.O_RDONLY)
    try:
        return fs.read(fh, 1 << 20, 0)
    finally:
        fs.release(fh)


def exists(fs: LazyFS, path: str) -> bool:
    try:
        fs.getattr(path)
    except FileNotFoundError:
        return False
    return True


@contextmanager
def refused_with(code: int) -> Iterator[None]:
    with pytest.raises(OSError, match=re.escape(os.strerror(code))) as refused:
        yield
    assert refused.value.errno == code


def durable_file(fs: LazyFS, path: str, data: bytes) -> None:
    """A file whose bytes and name are both synced."""
    write(fs, path, data, fsync=True)
    fs.fsync_dir(path.rsplit("/", 1)[0] or "/")


def test_reads_see_unsynced_writes_and_the_backing_does_not(fs: LazyFS, backing: Path) -> None:
    durable_file(fs, "/a", b"old contents")
    write(fs, "/a", b"NEW")
    assert read(fs, "/a") == b"NEW contents"
    assert (backing / "a").read_bytes() == b"old contents"


def test_unsynced_bytes_vanish_at_a_cut(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"synced")
    write(fs, "/a", b"unsynced, longer than before", offset=0)
    stats = fs.cut()
    assert read(fs, "/a") == b"synced"
    assert stats.cuts == 1
    assert stats.unsynced_bytes == 0
    assert stats.dirty_files == 0


def test_synced_bytes_survive_a_cut(fs: LazyFS, backing: Path) -> None:
    durable_file(fs, "/a", b"first")
    write(fs, "/a", b"FIRST and more", fsync=True)
    fs.cut()
    assert read(fs, "/a") == b"FIRST and more"
    assert (backing / "a").read_bytes() == b"FIRST and more"


def test_fdatasync_writes_the_data_down_too(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"")
    fh = fs.open("/a", os.O_WRONLY)
    fs.write(fh, b"data", 0)
    fs.fsync(fh, datasync=True)
    fs.release(fh)
    stats = fs.stats()
    fs.cut()
    assert read(fs, "/a") == b"data"
    assert (stats.fsyncs, stats.fdatasyncs) == (1, 1)


def test_a_truncate_after_fsync_is_undone_by_a_cut(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"hello world")
    fs.truncate("/a", 5)
    assert read(fs, "/a") == b"hello"
    fs.truncate("/a", 8)
    assert read(fs, "/a") == b"hello\0\0\0"
    fs.cut()
    assert read(fs, "/a") == b"hello world"


def test_open_with_o_trunc_is_an_unsynced_truncate(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"keep me")
    fh = fs.open("/a", os.O_WRONLY | os.O_TRUNC)
    fs.release(fh)
    assert read(fs, "/a") == b""
    fs.cut()
    assert read(fs, "/a") == b"keep me"


def test_overlapping_writes_merge_and_a_later_fsync_writes_the_merge(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"." * 10_000)
    fh = fs.open("/a", os.O_RDWR)
    fs.write(fh, b"A" * 6_000, 1_000)
    fs.write(fh, b"B" * 10, 4_090)
    fs.write(fh, b"C" * 3, 6_998)
    expected = bytearray(b"." * 10_000)
    expected[1_000:7_000] = b"A" * 6_000
    expected[4_090:4_100] = b"B" * 10
    expected[6_998:7_001] = b"C" * 3
    assert fs.read(fh, 20_000, 0) == bytes(expected)
    assert fs.read(fh, 6, 4_088) == b"AABBBB"
    fs.fsync(fh, datasync=False)
    fs.release(fh)
    fs.cut()
    assert read(fs, "/a") == bytes(expected)


def test_a_file_synced_in_a_directory_never_synced_vanishes(fs: LazyFS, backing: Path) -> None:
    write(fs, "/new", b"synced bytes, unsynced name", fsync=True)
    assert not (backing / "new").exists()
    staged = [p.read_bytes() for p in (backing / STAGING).iterdir()]
    assert staged == [b"synced bytes, unsynced name"], "the bytes wait under .lazyfs/"
    fs.cut()
    assert not exists(fs, "/new")
    assert list((backing / STAGING).iterdir()) == []


def test_a_directory_fsync_links_a_synced_file_into_place(fs: LazyFS, backing: Path) -> None:
    write(fs, "/new", b"bytes", fsync=True)
    fs.fsync_dir("/")
    fs.cut()
    assert read(fs, "/new") == b"bytes"
    assert (backing / "new").read_bytes() == b"bytes"


def test_a_durable_name_with_unsynced_bytes_comes_back_empty(fs: LazyFS) -> None:
    write(fs, "/new", b"never fsynced")
    fs.fsync_dir("/")
    fs.cut()
    assert read(fs, "/new") == b""


def test_directory_entries_made_since_the_last_directory_fsync_vanish(fs: LazyFS) -> None:
    durable_file(fs, "/kept", b"k")
    fs.mkdir("/dir", 0o755)
    write(fs, "/also-new", b"x", fsync=True)
    fs.fsync_dir("/dir")  # the directory's own entry becomes durable with it (documented)
    write(fs, "/dir/inner", b"y", fsync=True)
    fs.cut()
    assert fs.readdir("/") == ["dir", "kept"]
    assert fs.readdir("/dir") == []


def test_mkdir_vanishes_without_an_fsync_of_its_parent(fs: LazyFS, backing: Path) -> None:
    fs.mkdir("/d", 0o750)
    write(fs, "/d/f", b"data", fsync=True)
    assert fs.getattr("/d").mode & 0o777 == 0o750
    fs.cut()
    assert fs.readdir("/") == []
    assert not (backing / "d").exists()


def test_unlink_not_yet_directory_synced_is_undone(fs: LazyFS, backing: Path) -> None:
    durable_file(fs, "/a", b"still here")
    fs.unlink("/a")
    assert not exists(fs, "/a")
    assert (backing / "a").exists()
    fs.cut()
    assert read(fs, "/a") == b"still here"


def test_unlink_then_directory_fsync_is_durable(fs: LazyFS, backing: Path) -> None:
    durable_file(fs, "/a", b"gone")
    fs.unlink("/a")
    fs.fsync_dir("/")
    assert not (backing / "a").exists()
    fs.cut()
    assert not exists(fs, "/a")
    assert list((backing / STAGING).iterdir()) == []


def test_rename_not_yet_directory_synced_is_undone(fs: LazyFS) -> None:
    durable_file(fs, "/old", b"contents")
    fs.rename("/old", "/new")
    assert fs.readdir("/") == ["new"]
    fs.cut()
    assert fs.readdir("/") == ["old"]
    assert read(fs, "/old") == b"contents"


def test_write_fsync_rename_over_fsync_dir_replaces_atomically(fs: LazyFS, backing: Path) -> None:
    durable_file(fs, "/config", b"version 1")
    write(fs, "/config.tmp", b"version 2", fsync=True)
    fs.rename("/config.tmp", "/config")
    fs.cut()
    assert fs.readdir("/") == ["config"]
    assert read(fs, "/config") == b"version 1", "the rename was not dir-synced"
    write(fs, "/config.tmp", b"version 2", fsync=True)
    fs.rename("/config.tmp", "/config")
    fs.fsync_dir("/")
    fs.cut()
    assert fs.readdir("/") == ["config"]
    assert read(fs, "/config") == b"version 2"
    assert sorted(p.name for p in backing.iterdir()) == [STAGING, "config"]


def test_a_rename_across_directories_is_durable_under_each_synced_name(fs: LazyFS) -> None:
    fs.mkdir("/src", 0o755)
    fs.mkdir("/dst", 0o755)
    fs.fsync_dir("/")
    durable_file(fs, "/src/f", b"moved")
    fs.rename("/src/f", "/dst/f")
    fs.fsync_dir("/dst")
    fs.cut()
    assert read(fs, "/src/f") == b"moved"
    assert read(fs, "/dst/f") == b"moved"
    assert fs.getattr("/dst/f").nlink == 2


def test_renaming_a_directory_is_refused(fs: LazyFS) -> None:
    fs.mkdir("/d", 0o755)
    with refused_with(errno.EXDEV):
        fs.rename("/d", "/e")


def test_rmdir_with_unsynced_unlinks_inside(fs: LazyFS, backing: Path) -> None:
    fs.mkdir("/d", 0o755)
    fs.fsync_dir("/")
    durable_file(fs, "/d/f", b"f")
    fs.unlink("/d/f")
    fs.rmdir("/d")
    fs.cut()
    assert read(fs, "/d/f") == b"f", "neither the unlink nor the rmdir was synced"
    fs.unlink("/d/f")
    fs.rmdir("/d")
    fs.fsync_dir("/")
    assert not (backing / "d").exists()
    fs.cut()
    assert fs.readdir("/") == []


def test_rmdir_refuses_a_directory_that_is_not_empty(fs: LazyFS) -> None:
    fs.mkdir("/d", 0o755)
    write(fs, "/d/f", b"")
    with refused_with(errno.ENOTEMPTY):
        fs.rmdir("/d")


def test_hard_links_share_one_file(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"shared")
    fs.link("/a", "/b")
    fs.fsync_dir("/")
    write(fs, "/b", b"SH", fsync=True)
    fs.cut()
    assert read(fs, "/a") == b"SHared"
    assert fs.getattr("/a").nlink == 2


def test_a_file_unlinked_while_open_lives_until_released(fs: LazyFS, backing: Path) -> None:
    fh = fs.create("/tmpfile", 0o600)
    fs.write(fh, b"scratch", 0)
    fs.unlink("/tmpfile")
    assert fs.read(fh, 100, 0) == b"scratch"
    assert fs.getattr(None, fh).nlink == 0
    fs.fsync(fh, datasync=False)
    fs.release(fh)
    assert list((backing / STAGING).iterdir()) == []


def test_shm_files_pass_straight_through(fs: LazyFS, backing: Path) -> None:
    write(fs, "/db-shm", b"wal-index")
    fs.fsync_dir("/")
    assert (backing / "db-shm").read_bytes() == b"wal-index", "no overlay, no fsync needed"
    assert fs.stats().unsynced_bytes == 0
    write(fs, "/db-shm", b"WAL")
    fs.cut()
    assert read(fs, "/db-shm") == b"WAL-index"


def test_handles_open_at_a_cut_fail_with_eio(fs: LazyFS) -> None:
    durable_file(fs, "/a", b"x")
    fh = fs.open("/a", os.O_RDWR)
    fs.cut()
    with refused_with(errno.EIO):
        fs.write(fh, b"late", 0)
    fs.release(fh)  # a release after the cut is quietly ignored


def test_stats_count_unsynced_state_and_syncs(fs: LazyFS) -> None:
    write(fs, "/a", b"x" * 5_000)
    write(fs, "/b", b"y")
    stats = fs.stats()
    assert stats.unsynced_bytes == 3 * 4096
    assert stats.dirty_files == 2
    assert stats.dirty_dirs == 1
    assert stats.writes == 2
    fh = fs.open("/a", os.O_RDONLY)
    fs.fsync(fh, datasync=False)
    fs.release(fh)
    fs.fsync_dir("/")
    stats = fs.stats()
    assert (stats.unsynced_bytes, stats.dirty_files, stats.dirty_dirs) == (4096, 1, 0)
    assert (stats.fsyncs, stats.dir_fsyncs, stats.cuts) == (1, 1, 0)


def test_a_cut_is_what_a_new_mount_of_the_backing_sees(fs: LazyFS, backing: Path) -> None:
    fs.mkdir("/d", 0o755)
    fs.fsync_dir("/")
    durable_file(fs, "/d/a", b"a")
    durable_file(fs, "/b", b"b")
    write(fs, "/b", b"B")
    write(fs, "/c", b"c", fsync=True)
    fs.unlink("/d/a")
    fs.cut()
    after_cut = (fs.readdir("/"), fs.readdir("/d"), read(fs, "/b"), read(fs, "/d/a"))
    fresh = LazyFS(backing)
    assert (fresh.readdir("/"), fresh.readdir("/d"), read(fresh, "/b"), read(fresh, "/d/a")) == (
        after_cut
    )
    assert after_cut == (["b", "d"], ["a"], b"b", b"a")


def test_sync_all_then_close_leave_a_plain_backing_directory(fs: LazyFS, backing: Path) -> None:
    fs.mkdir("/d", 0o755)
    write(fs, "/d/f", b"all of it")
    fs.sync_all()
    fs.close()
    assert sorted(p.name for p in backing.iterdir()) == ["d"]
    assert (backing / "d" / "f").read_bytes() == b"all of it"


def test_the_staging_name_is_reserved_and_hidden(fs: LazyFS) -> None:
    assert fs.readdir("/") == []
    with refused_with(errno.EPERM):
        fs.mkdir(f"/{STAGING}", 0o755)
    fs.mkdir("/d", 0o755)
    fs.mkdir(f"/d/{STAGING}", 0o755)  # reserved at the root only


def test_a_backing_directory_with_a_symlink_is_refused(backing: Path) -> None:
    (backing / "link").symlink_to("elsewhere")
    with pytest.raises(OSError, match="regular files and directories only") as refused:
        LazyFS(backing)
    assert refused.value.errno == errno.EOPNOTSUPP


def test_existing_hard_links_are_one_file_after_a_mount(backing: Path) -> None:
    (backing / "a").write_bytes(b"one inode")
    os.link(backing / "a", backing / "b")
    fs = LazyFS(backing)
    write(fs, "/a", b"ONE", fsync=True)
    assert read(fs, "/b") == b"ONE inode"
    assert fs.getattr("/b").nlink == 2
