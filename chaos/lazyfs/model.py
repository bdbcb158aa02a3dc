"""The LazyFS filesystem without FUSE: a backing directory that holds only what was synced, and
in memory everything that was not, so that `cut()` loses exactly what a power loss would.

The backing directory is the disk. It holds a file's bytes as of its last fsync or fdatasync,
and a directory's entries as of its last fsync; in memory sit the writes and truncates since
(an `Overlay` per file) and the visible namespace (every directory's entries now). Every file
the mount knows has one backing inode, kept under the hidden staging folder `.lazyfs/` by its
number; its durable names are hard links to that inode, made or removed when their directory
is fsynced. So a file created, written and fsynced whose directory was never fsynced has its
bytes on the disk under `.lazyfs/` only, and vanishes at a cut, as an orphan inode would.

Operations and what they touch at once:

* write, truncate: the file's overlay (reads merge it over the backing bytes);
* fsync, fdatasync of a file: write the overlay into the backing inode, drop it;
* create, mkdir, unlink, rmdir, rename, link: the visible namespace only;
* fsync of a directory: make its backing entries match its visible ones, name by name (a new
  file name becomes a hard link to the file's inode, a new directory an empty directory, a
  gone name is removed; an entry of a removed directory goes with it);
* chmod, chown, utimens: straight to the backing inode (see the simplifications);
* `cut()`: forget the overlays, the namespace and the open handles, empty `.lazyfs/`, and read
  the backing directory again: the same state a remount after a power loss would find.

Files named `*-shm` pass straight through: their writes and truncates go to the backing inode
at once, and no overlay holds them. SQLite's wal-index is shared memory that every connection
maps (MAP_SHARED); it is never fsynced, and after a crash the first connection to open the
database, finding no other, truncates it and rebuilds it from the WAL. Its content after a cut
therefore never matters; holding it in an overlay would only grow memory and count as
unsynced bytes that no fsync will ever write. Its directory entry is buffered like any other.

Simplifications (each either safe for SQLite in WAL mode or documented as a limit):

* fdatasync is fsync: both write a file's data and size, since the model keeps no other
  unsynced metadata. They are counted apart.
* One outcome of a power loss, the harshest in one respect: every unsynced byte and entry is
  lost, none kept. Real disks may keep some of them, in any order; synced writes are never
  reordered or torn here (no torn sectors, no partial fsync), and a cut drops whole blocks.
* A cut is of the filesystem only: the kernel's page cache and dentry cache above the mount
  still hold what was dropped, so a cut on a live mount is only valid followed by an unmount
  and a remount (the harness kills every process using the mount first). Handles still open at a
  cut fail with EIO from then on.
* Inode attributes (mode, owner, times set by utimens) are written through, durable at once;
  an unsynced write advances the mtime in memory only.
* A directory fsync is applied name by name without a journal: the lazyfs process killed in the
  middle of one leaves part of it done (a kill of the lazyfs process is itself a cut: the next
  mount empties `.lazyfs/`). A replaced file name is swapped atomically (link, then rename).
* fsync of a directory whose own entry is not yet durable first makes that entry durable in
  its parent (and so up to the root), as a journaling filesystem in practice does; POSIX would
  promise nothing without an fsync of the parent.
* A file renamed across directories is durable under each name whose directory was fsynced:
  both names survive a cut if only the destination was fsynced, neither if only the source
  was. Renaming a directory is refused with EXDEV (callers such as mv then copy).
* Regular files and directories only: no symlinks, devices or FIFOs (a backing directory
  holding one is refused at mount). The root name `.lazyfs` is reserved.
* Hard links are kept; new files and directories are owned by the caller the adapter passes.
* A clean unmount (or SIGTERM to the lazyfs process) syncs everything, as a real unmount does;
  only `cut()`, or SIGKILL of the lazyfs process, loses anything.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from chaos.lazyfs.overlay import Overlay

STAGING = ".lazyfs"
MAX_NAME_BYTES = 255


def is_passthrough(name: str) -> bool:
    """Files whose bytes skip the overlay: SQLite's wal-index (see the module docstring)."""
    return name.endswith("-shm")


def _error(code: int, detail: str = "") -> OSError:
    message = os.strerror(code)
    return OSError(code, f"{message}: {detail}" if detail else message)


@dataclass
class Stats:
    """Counters of one mount: what is unsynced now, and what happened since the mount."""

    unsynced_bytes: int = 0
    dirty_files: int = 0
    dirty_dirs: int = 0
    writes: int = 0
    fsyncs: int = 0
    fdatasyncs: int = 0
    dir_fsyncs: int = 0
    cuts: int = 0


@dataclass(frozen=True)
class Attributes:
    """What stat(2) shows of a file or directory on the mount."""

    mode: int
    nlink: int
    size: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int


@dataclass(eq=False)
class FileNode:
    ino: int
    passthrough: bool
    fd: int | None = None
    overlay: Overlay | None = None
    nlink: int = 0  # visible names
    durable_links: int = 0  # names in the backing directories
    opens: int = 0


@dataclass(eq=False)
class DirNode:
    """A directory. Directories are never renamed, so one that is durable lives in the backing
    at the path made of its parents' names and its own."""

    parent: DirNode | None
    name: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    children: dict[str, Node] = field(default_factory=dict)  # visible now
    durable: dict[str, Node] = field(default_factory=dict)  # in the backing directory
    is_durable: bool = False

    def relpath(self) -> str:
        if self.parent is None:
            return ""
        parent = self.parent.relpath()
        return f"{parent}/{self.name}" if parent else self.name


Node: TypeAlias = FileNode | DirNode


class LazyFS:
    """The model, safe to call from FUSE's threads and the control thread (one lock).

    Paths are the mount's: absolute, '/'-separated. Errors are OSError with the errno FUSE
    returns."""

    def __init__(self, backing: Path) -> None:
        self.backing = backing.resolve()
        if not self.backing.is_dir():
            raise NotADirectoryError(f"backing directory {self.backing} does not exist")
        self._lock = threading.Lock()
        self._next_ino = 1
        self._next_fh = 1
        self._files: dict[int, FileNode] = {}
        self._handles: dict[int, FileNode] = {}
        self._stats = Stats()
        self.root = self._load()

    # --- loading and cutting ---------------------------------------------------------------

    def _load(self) -> DirNode:
        """Forget everything in memory and read the durable state from the backing directory."""
        for node in self._files.values():
            if node.fd is not None:
                os.close(node.fd)
        self._files = {}
        self._handles = {}
        staging = self.backing / STAGING
        # Whatever staging holds is orphaned inodes of an earlier mount: gone, as after fsck.
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        info = os.stat(self.backing)
        root = DirNode(
            None, "", stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_mtime_ns
        )
        root.is_durable = True
        by_inode: dict[int, FileNode] = {}
        self._scan(root, self.backing, by_inode)
        return root

    def _scan(self, directory: DirNode, path: Path, by_inode: dict[int, FileNode]) -> None:
        with os.scandir(path) as entries:
            listing = sorted(entries, key=lambda e: e.name)
        for entry in listing:
            if directory.parent is None and entry.name == STAGING:
                continue
            info = entry.stat(follow_symlinks=False)
            node: Node
            if stat.S_ISDIR(info.st_mode):
                node = DirNode(
                    directory,
                    entry.name,
                    stat.S_IMODE(info.st_mode),
                    info.st_uid,
                    info.st_gid,
                    info.st_mtime_ns,
                    is_durable=True,
                )
                self._scan(node, Path(entry.path), by_inode)
            elif stat.S_ISREG(info.st_mode):
                found = by_inode.get(info.st_ino)
                if found is None:
                    found = self._new_file(is_passthrough(entry.name))
                    os.link(entry.path, self._staging_path(found))
                    by_inode[info.st_ino] = found
                node = found
                node.nlink += 1
                node.durable_links += 1
            else:
                raise OSError(
                    errno.EOPNOTSUPP,
                    f"LazyFS keeps regular files and directories only; found {entry.path}",
                )
            directory.children[entry.name] = node
            directory.durable[entry.name] = node

    def cut(self) -> Stats:
        """Power loss: drop every unsynced byte and directory entry; return the stats after."""
        with self._lock:
            self.root = self._load()
            self._stats.cuts += 1
            return self._stats_now()

    def sync_all(self) -> None:
        """What a clean unmount does: every file's overlay and every directory's entries."""
        with self._lock:
            for node in list(self._files.values()):
                self._flush(node)
            self._sync_tree(self.root)

    def _sync_tree(self, directory: DirNode) -> None:
        self._commit_dir(directory)
        for child in list(directory.children.values()):
            if isinstance(child, DirNode):
                self._sync_tree(child)

    def close(self) -> None:
        """Let go of the backing directory: close its files and remove the staging folder (an
        inode with no durable name goes with it, as at any unmount)."""
        with self._lock:
            for node in self._files.values():
                if node.fd is not None:
                    os.close(node.fd)
                    node.fd = None
            self._files = {}
            self._handles = {}
            shutil.rmtree(self.backing / STAGING, ignore_errors=True)

    # --- stats -----------------------------------------------------------------------------

    def stats(self) -> Stats:
        with self._lock:
            return self._stats_now()

    def _stats_now(self) -> Stats:
        overlays = [n.overlay for n in self._files.values() if n.overlay is not None]
        self._stats.unsynced_bytes = sum(o.held_bytes for o in overlays)
        self._stats.dirty_files = len(overlays)
        self._stats.dirty_dirs = self._count_dirty_dirs(self.root)
        return Stats(**vars(self._stats))

    def _count_dirty_dirs(self, directory: DirNode) -> int:
        dirty = int(directory.children != directory.durable or not directory.is_durable)
        for child in directory.children.values():
            if isinstance(child, DirNode):
                dirty += self._count_dirty_dirs(child)
        return dirty

    # --- lookups ---------------------------------------------------------------------------

    def _lookup(self, path: str) -> Node:
        node: Node = self.root
        for part in _parts(path):
            if not isinstance(node, DirNode):
                raise _error(errno.ENOTDIR, path)
            child = node.children.get(part)
            if child is None:
                raise _error(errno.ENOENT, path)
            node = child
        return node

    def _lookup_dir(self, path: str) -> DirNode:
        node = self._lookup(path)
        if not isinstance(node, DirNode):
            raise _error(errno.ENOTDIR, path)
        return node

    def _parent_and_name(self, path: str) -> tuple[DirNode, str]:
        parts = _parts(path)
        if not parts:
            raise _error(errno.EBUSY, "the root")
        parent = self._lookup_dir("/" + "/".join(parts[:-1]))
        return parent, parts[-1]

    def _new_entry(self, path: str) -> tuple[DirNode, str]:
        """The parent and name of a path about to be made; its name must be free and allowed."""
        parent, name = self._parent_and_name(path)
        if parent.parent is None and name == STAGING:
            raise _error(errno.EPERM, f"{STAGING} is reserved for LazyFS at the root")
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise _error(errno.ENAMETOOLONG, path)
        return parent, name

    def _handle(self, fh: int) -> FileNode:
        node = self._handles.get(fh)
        if node is None:
            # Handles opened before a cut: their process should be dead by now.
            raise _error(errno.EIO, "file handle from before a cut")
        return node

    # --- attributes and listing ------------------------------------------------------------

    def getattr(self, path: str | None, fh: int | None = None) -> Attributes:
        with self._lock:
            node = self._handle(fh) if fh is not None else self._lookup(_need(path))
            if isinstance(node, DirNode):
                subdirs = sum(isinstance(c, DirNode) for c in node.children.values())
                return Attributes(
                    mode=stat.S_IFDIR | node.mode,
                    nlink=2 + subdirs,
                    size=4096,
                    uid=node.uid,
                    gid=node.gid,
                    atime_ns=node.mtime_ns,
                    mtime_ns=node.mtime_ns,
                    ctime_ns=node.mtime_ns,
                )
            info = os.fstat(self._fd(node))
            overlay = node.overlay
            return Attributes(
                mode=info.st_mode,
                nlink=node.nlink,
                size=info.st_size if overlay is None else overlay.size,
                uid=info.st_uid,
                gid=info.st_gid,
                atime_ns=info.st_atime_ns,
                mtime_ns=info.st_mtime_ns if overlay is None else overlay.mtime_ns,
                ctime_ns=info.st_ctime_ns,
            )

    def readdir(self, path: str) -> list[str]:
        with self._lock:
            return sorted(self._lookup_dir(path).children)

    def chmod(self, path: str, mode: int) -> None:
        with self._lock:
            node = self._lookup(path)
            if isinstance(node, DirNode):
                node.mode = stat.S_IMODE(mode)
                if node.is_durable:
                    os.chmod(self.backing / node.relpath(), node.mode)
            else:
                os.fchmod(self._fd(node), stat.S_IMODE(mode))

    def chown(self, path: str, uid: int, gid: int) -> None:
        with self._lock:
            node = self._lookup(path)
            if isinstance(node, DirNode):
                node.uid = node.uid if uid == -1 else uid
                node.gid = node.gid if gid == -1 else gid
                if node.is_durable:
                    os.chown(self.backing / node.relpath(), node.uid, node.gid)
            else:
                os.fchown(self._fd(node), uid, gid)

    def utimens(self, path: str, atime_ns: int | None, mtime_ns: int | None) -> None:
        """Set a file's times; None keeps that time as it is."""
        with self._lock:
            node = self._lookup(path)
            if isinstance(node, DirNode):
                node.mtime_ns = node.mtime_ns if mtime_ns is None else mtime_ns
                return
            fd = self._fd(node)
            info = os.fstat(fd)
            overlay = node.overlay
            current_mtime = info.st_mtime_ns if overlay is None else overlay.mtime_ns
            atime = info.st_atime_ns if atime_ns is None else atime_ns
            mtime = current_mtime if mtime_ns is None else mtime_ns
            os.utime(fd, ns=(atime, mtime))
            if overlay is not None:
                overlay.mtime_ns = mtime

    def statfs(self) -> os.statvfs_result:
        return os.statvfs(self.backing)

    # --- namespace -------------------------------------------------------------------------

    def create(
        self, path: str, mode: int, flags: int = 0, owner: tuple[int, int] | None = None
    ) -> int:
        """Open `path`, making it if it does not exist; a new open handle."""
        with self._lock:
            parent, name = self._new_entry(path)
            existing = parent.children.get(name)
            if existing is not None:
                if flags & os.O_EXCL:
                    raise _error(errno.EEXIST, path)
                if isinstance(existing, DirNode):
                    raise _error(errno.EISDIR, path)
                return self._open_node(existing, flags)
            node = self._new_file(is_passthrough(name))
            fd = os.open(
                self._staging_path(node), os.O_RDWR | os.O_CREAT | os.O_EXCL, stat.S_IMODE(mode)
            )
            node.fd = fd
            # The mode as asked, not as this process's umask left it (the caller's umask is
            # already applied by the kernel).
            os.fchmod(fd, stat.S_IMODE(mode))
            if owner is not None:
                os.fchown(fd, *owner)
            self._attach(parent, name, node)
            return self._open_node(node, flags & ~os.O_TRUNC)

    def open(self, path: str, flags: int) -> int:
        with self._lock:
            node = self._lookup(path)
            if isinstance(node, DirNode):
                raise _error(errno.EISDIR, path)
            return self._open_node(node, flags)

    def _open_node(self, node: FileNode, flags: int) -> int:
        if flags & os.O_TRUNC:
            self._truncate(node, 0)
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = node
        node.opens += 1
        return fh

    def release(self, fh: int) -> None:
        with self._lock:
            node = self._handles.pop(fh, None)
            if node is None:
                return  # released after a cut
            node.opens -= 1
            self._collect(node)

    def mkdir(self, path: str, mode: int, owner: tuple[int, int] | None = None) -> None:
        with self._lock:
            parent, name = self._new_entry(path)
            if name in parent.children:
                raise _error(errno.EEXIST, path)
            uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
            node = DirNode(parent, name, stat.S_IMODE(mode), uid, gid, time.time_ns())
            self._attach(parent, name, node)

    def rmdir(self, path: str) -> None:
        with self._lock:
            parent, name = self._parent_and_name(path)
            node = self._lookup(path)
            if not isinstance(node, DirNode):
                raise _error(errno.ENOTDIR, path)
            if node.children:
                raise _error(errno.ENOTEMPTY, path)
            self._detach(parent, name)

    def unlink(self, path: str) -> None:
        with self._lock:
            parent, name = self._parent_and_name(path)
            if isinstance(self._lookup(path), DirNode):
                raise _error(errno.EISDIR, path)
            self._detach(parent, name)

    def link(self, existing: str, new: str) -> None:
        with self._lock:
            node = self._lookup(existing)
            if isinstance(node, DirNode):
                raise _error(errno.EPERM, existing)
            parent, name = self._new_entry(new)
            if name in parent.children:
                raise _error(errno.EEXIST, new)
            self._attach(parent, name, node)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            node = self._lookup(old)
            if isinstance(node, DirNode):
                raise _error(errno.EXDEV, "LazyFS does not rename directories")
            old_parent, old_name = self._parent_and_name(old)
            new_parent, new_name = self._new_entry(new)
            target = new_parent.children.get(new_name)
            if target is node:
                return  # two names of one file: rename(2) does nothing
            if isinstance(target, DirNode):
                raise _error(errno.EISDIR, new)
            if target is not None:
                self._detach(new_parent, new_name)
            self._detach(old_parent, old_name, collect=False)
            self._attach(new_parent, new_name, node)

    def _attach(self, parent: DirNode, name: str, node: Node) -> None:
        parent.children[name] = node
        parent.mtime_ns = time.time_ns()
        if isinstance(node, FileNode):
            node.nlink += 1

    def _detach(self, parent: DirNode, name: str, *, collect: bool = True) -> None:
        node = parent.children.pop(name)
        parent.mtime_ns = time.time_ns()
        if isinstance(node, FileNode):
            node.nlink -= 1
            if collect:
                self._collect(node)

    # --- data ------------------------------------------------------------------------------

    def read(self, fh: int, size: int, offset: int) -> bytes:
        with self._lock:
            node = self._handle(fh)
            fd = self._fd(node)
            if node.overlay is None:
                return os.pread(fd, size, offset)
            return node.overlay.read(offset, size, lambda at, n: os.pread(fd, n, at))

    def write(self, fh: int, data: bytes, offset: int) -> int:
        with self._lock:
            node = self._handle(fh)
            fd = self._fd(node)
            self._stats.writes += 1
            if node.passthrough:
                _pwrite_all(fd, data, offset)
                return len(data)
            self._overlay(node).write(offset, data, lambda at, n: os.pread(fd, n, at))
            self._overlay(node).mtime_ns = time.time_ns()
            return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        with self._lock:
            node = self._handle(fh) if fh is not None else self._lookup(_need(path))
            if isinstance(node, DirNode):
                raise _error(errno.EISDIR, path or "")
            self._truncate(node, length)

    def _truncate(self, node: FileNode, length: int) -> None:
        if node.passthrough:
            os.ftruncate(self._fd(node), length)
            return
        overlay = self._overlay(node)
        overlay.truncate(length)
        overlay.mtime_ns = time.time_ns()

    def fsync(self, fh: int, datasync: bool) -> None:
        with self._lock:
            node = self._handle(fh)
            if datasync:
                self._stats.fdatasyncs += 1
            else:
                self._stats.fsyncs += 1
            self._flush(node)

    def fsync_dir(self, path: str) -> None:
        with self._lock:
            self._stats.dir_fsyncs += 1
            self._commit_dir(self._lookup_dir(path))

    # --- internals -------------------------------------------------------------------------

    def _new_file(self, passthrough: bool) -> FileNode:
        node = FileNode(self._next_ino, passthrough)
        self._next_ino += 1
        self._files[node.ino] = node
        return node

    def _staging_path(self, node: FileNode) -> Path:
        return self.backing / STAGING / str(node.ino)

    def _fd(self, node: FileNode) -> int:
        if node.fd is None:
            node.fd = os.open(self._staging_path(node), os.O_RDWR)
        return node.fd

    def _overlay(self, node: FileNode) -> Overlay:
        if node.overlay is None:
            info = os.fstat(self._fd(node))
            node.overlay = Overlay(info.st_size, info.st_mtime_ns)
        return node.overlay

    def _flush(self, node: FileNode) -> None:
        overlay = node.overlay
        if overlay is None:
            return
        fd = self._fd(node)
        overlay.flush(
            os.fstat(fd).st_size,
            lambda length: os.ftruncate(fd, length),
            lambda data, at: _pwrite_all(fd, data, at),
        )
        os.utime(fd, ns=(os.fstat(fd).st_atime_ns, overlay.mtime_ns))
        node.overlay = None

    def _collect(self, node: FileNode) -> None:
        """Forget a file nothing refers to any more: no name, visible or durable, no handle."""
        if node.nlink or node.durable_links or node.opens:
            return
        if node.fd is not None:
            os.close(node.fd)
            node.fd = None
        self._staging_path(node).unlink(missing_ok=True)
        del self._files[node.ino]

    def _ensure_durable(self, directory: DirNode) -> bool:
        """Make a directory's own entry durable (and its parents'); False if it was removed."""
        if directory.is_durable:
            return True
        parent = directory.parent
        if parent is None or parent.children.get(directory.name) is not directory:
            return False
        if not self._ensure_durable(parent):
            return False
        self._commit_entry(parent, directory.name)
        return True

    def _commit_dir(self, directory: DirNode) -> None:
        if not self._ensure_durable(directory):
            return
        names = set(directory.children) | set(directory.durable)
        # New and replaced names first, removals last: a rename within the directory is then
        # never a moment with neither name should the lazyfs process die in between.
        for name in sorted(names, key=lambda n: (n not in directory.children, n)):
            self._commit_entry(directory, name)

    def _commit_entry(self, directory: DirNode, name: str) -> None:
        """Make the backing entry `name` of a durable directory what the visible one is."""
        want = directory.children.get(name)
        have = directory.durable.get(name)
        if want is have:
            return
        path = self.backing / directory.relpath() / name
        if isinstance(want, FileNode) and isinstance(have, FileNode):
            swap = self.backing / STAGING / f"swap-{want.ino}"
            os.link(self._staging_path(want), swap)
            os.replace(swap, path)
            have.durable_links -= 1
            self._collect(have)
        else:
            if have is not None:
                self._drop_durable(have, path)
            if isinstance(want, FileNode):
                os.link(self._staging_path(want), path)
            elif want is not None:
                os.mkdir(path, want.mode)
                os.chown(path, want.uid, want.gid)
                want.durable = {}
                want.is_durable = True
        if want is None:
            del directory.durable[name]
        else:
            directory.durable[name] = want
            if isinstance(want, FileNode):
                want.durable_links += 1

    def _drop_durable(self, node: Node, path: Path) -> None:
        """Remove a durable entry from the backing; a directory takes its durable entries."""
        if isinstance(node, FileNode):
            os.unlink(path)
            node.durable_links -= 1
            self._collect(node)
            return
        self._forget_durable(node)
        shutil.rmtree(path)

    def _forget_durable(self, directory: DirNode) -> None:
        for child in directory.durable.values():
            if isinstance(child, FileNode):
                child.durable_links -= 1
                self._collect(child)
            else:
                self._forget_durable(child)
        directory.durable = {}
        directory.is_durable = False


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _need(path: str | None) -> str:
    if path is None:
        # FUSE passes no path for a file unlinked while open; only its handle reaches it.
        raise _error(errno.ENOENT, "no path and no handle")
    return path


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):  # bounded: each pass writes at least one byte or raises
        count = os.pwrite(fd, view[written:], offset + written)
        if count <= 0:
            raise _error(errno.EIO, "short write to the backing file")
        written += count
