"""The unsynced content of one file, held over its backing bytes until an fsync writes it down.

An `Overlay` is what a kernel's page cache holds for a file between two fsyncs: whole 4 KiB
blocks that were written to, the file's logical size, and a *floor* — the smallest length a
truncate cut the file to since the last fsync, because backing bytes at or past it must read as
zeros (a truncate then an extension does not bring the old bytes back). Reading merges the blocks
over the backing bytes; `flush` writes them down in one go, and dropping the overlay is a cut.

The backing file is reached through callables so that this module knows nothing of file
descriptors or paths, and its tests need no file at all.
"""

from __future__ import annotations

from collections.abc import Callable

BLOCK = 4096

# read_backing(offset, length) -> at most `length` bytes of the backing file from `offset`
# (fewer at its end).
ReadBacking = Callable[[int, int], bytes]


class Overlay:
    """Unsynced writes and truncates of one file since its last fsync or fdatasync.

    Invariants: `floor <= size`; no block lies wholly at or past `size`; the bytes of a block past
    `size` are zeros (so an extension reads zeros there).
    """

    __slots__ = ("blocks", "floor", "mtime_ns", "size")

    def __init__(self, durable_size: int, mtime_ns: int) -> None:
        self.size = durable_size
        self.floor = durable_size
        self.blocks: dict[int, bytearray] = {}
        # Writes advance the file's mtime only here: the backing inode is not touched until fsync.
        self.mtime_ns = mtime_ns

    @property
    def held_bytes(self) -> int:
        return len(self.blocks) * BLOCK

    def read(self, offset: int, length: int, read_backing: ReadBacking) -> bytes:
        """Up to `length` bytes from `offset`, as the file reads now (short at the logical end)."""
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        out = bytearray()
        index = offset // BLOCK
        last = (end - 1) // BLOCK
        while index <= last:
            if index in self.blocks:
                out += self.blocks[index]
                index += 1
                continue
            # A run of blocks held nowhere in memory comes from the backing in one read.
            run_end = index
            while run_end + 1 <= last and run_end + 1 not in self.blocks:
                run_end += 1
            out += self._backing_span(index * BLOCK, (run_end + 1 - index) * BLOCK, read_backing)
            index = run_end + 1
        start = offset - (offset // BLOCK) * BLOCK
        return bytes(out[start : start + (end - offset)])

    def write(self, offset: int, data: bytes, read_backing: ReadBacking) -> None:
        position = 0
        while position < len(data):
            index, within = divmod(offset + position, BLOCK)
            take = min(BLOCK - within, len(data) - position)
            block = self.blocks.get(index)
            if block is None:
                # A write covering the whole block need not read what it replaces.
                if take == BLOCK:
                    block = bytearray(BLOCK)
                else:
                    block = self._backing_span(index * BLOCK, BLOCK, read_backing)
                self.blocks[index] = block
            block[within : within + take] = data[position : position + take]
            position += take
        self.size = max(self.size, offset + len(data))

    def truncate(self, length: int) -> None:
        if length < self.size:
            for index in [i for i in self.blocks if i * BLOCK >= length]:
                del self.blocks[index]
            index, within = divmod(length, BLOCK)
            block = self.blocks.get(index)
            if block is not None and within:
                block[within:] = bytes(BLOCK - within)
            self.floor = min(self.floor, length)
        self.size = length

    def flush(
        self,
        backing_size: int,
        truncate: Callable[[int], None],
        pwrite: Callable[[bytes, int], None],
    ) -> None:
        """Write this overlay into a backing file of `backing_size` bytes, which then reads as the
        overlay did. The caller drops the overlay afterwards."""
        if self.floor < backing_size:
            truncate(self.floor)
        for index in sorted(self.blocks):
            start = index * BLOCK
            pwrite(bytes(self.blocks[index][: min(BLOCK, self.size - start)]), start)
        truncate(self.size)

    def _backing_span(self, start: int, length: int, read_backing: ReadBacking) -> bytearray:
        """`length` bytes of the backing from `start` (a block boundary), cut at the floor and
        padded with zeros."""
        visible = max(0, min(length, self.floor - start))
        data = bytearray(read_backing(start, visible) if visible else b"")
        data += bytes(length - len(data))
        return data
