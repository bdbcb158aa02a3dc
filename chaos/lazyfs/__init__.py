"""LazyFS: a FUSE filesystem that loses, on command, everything a power cut would lose.

Like Jepsen's LazyFS, it passes reads and writes through to a backing directory but keeps in
memory every byte written since the last fsync or fdatasync of its file, and every directory
entry made or removed (create, unlink, rename, link, mkdir, rmdir) since the last fsync of its
directory. A *cut* discards all of that at once, as a disk does after a power loss; what was
synced stays. A test puts a program's data directory on the mount, runs it, kills it, cuts,
unmounts and remounts, restarts it and checks that nothing it acknowledged is gone.

What is kept unsynced
    A file's writes and truncates until that file is fsynced or fdatasynced (both write its
    data and size). A directory's new, removed and renamed entries until that directory is
    fsynced: a file created and fsynced whose directory never was vanishes at a cut, bytes and
    all. Inode attributes (mode, owner, times) are written through at once.

What a cut does
    Drops every unsynced byte and entry, invalidates the open handles (EIO from then on), and
    reads the backing directory again, which then shows exactly what a remount would. The
    kernel above the mount still caches pages and names from before, so a cut is only valid
    followed by an unmount and a remount, after killing every process that uses the mount:

        mount = mount_lazyfs(backing, mountpoint, control_socket)  # waits until it answers
        ...                                 # run the program on mountpoint, then SIGKILL it
        stats = mount.cut()                 # or LazyFSControl(control_socket).cut()
        mount = mount.remount()             # unmount (fusermount3 -u, -u -z) and mount again

    The control socket's path must fit in 107 bytes (a Unix socket's limit). Open nothing on
    the mount between the kill and the cut: SQLite's last connection to close checkpoints
    with its own synchronous setting, so even a read-only check syncs what it finds.

    Killing the lazyfs process itself with SIGKILL is a cut too (the next mount finds only the
    synced state); SIGTERM or a plain unmount syncs everything first, as a real unmount does.

SQLite's `-shm`
    Files named `*-shm` pass straight through to the backing file. The wal-index is memory that
    every connection maps shared, SQLite never fsyncs it, and the first connection to open the
    database after a crash truncates and rebuilds it from the WAL, so what it holds after a cut
    never matters. The mount never uses direct_io, so shared writable mmap works and several
    processes can use one WAL database at once.

Limits
    One power-loss outcome, the harshest for unsynced data: all of it is lost, none kept. Synced
    writes are never reordered, torn or partly lost; there are no torn sector writes and no
    errors injected on read or fsync. The cut is of this filesystem only, not of the kernel's
    caches (hence the remount). Directories cannot be renamed (EXDEV). `model.py` lists every
    simplification.

Modules: `overlay` (one file's unsynced bytes), `model` (the filesystem without FUSE),
`fuse_ops` (the FUSE adapter, the only importer of the binding), `control` (the Unix-socket
control channel and its client), `mounting` (start, wait for, unmount a mount), and
`__main__` (`python -m chaos.lazyfs mount --backing DIR --mount DIR --control SOCKET`).
"""

from chaos.lazyfs.control import LazyFSControl, LazyFSError
from chaos.lazyfs.model import Stats
from chaos.lazyfs.mounting import LazyFSMount, fuse_unavailable_reason, mount_lazyfs, unmount

__all__ = [
    "LazyFSControl",
    "LazyFSError",
    "LazyFSMount",
    "Stats",
    "fuse_unavailable_reason",
    "mount_lazyfs",
    "unmount",
]
