"""One file's unsynced bytes over its backing bytes: merging, truncates, and the flush that
writes them down. The backing file is a bytearray here."""

from __future__ import annotations

import random

import pytest

from chaos.lazyfs.overlay import BLOCK, Overlay


class Backing:
    """A backing file in memory, with the callables an overlay reads and flushes through."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def truncate(self, length: int) -> None:
        if length < len(self.data):
            del self.data[length:]
        else:
            self.data += bytes(length - len(self.data))

    def pwrite(self, data: bytes, offset: int) -> None:
        if offset > len(self.data):
            self.data += bytes(offset - len(self.data))
        self.data[offset : offset + len(data)] = data


def overlay_over(backing: Backing) -> Overlay:
    return Overlay(len(backing.data), mtime_ns=0)


def visible(overlay: Overlay, backing: Backing) -> bytes:
    return overlay.read(0, overlay.size + BLOCK, backing.read)


def test_a_clean_overlay_reads_the_backing_bytes() -> None:
    backing = Backing(b"0123456789" * 1000)
    overlay = overlay_over(backing)
    assert overlay.read(5, 20, backing.read) == backing.read(5, 20)
    assert overlay.read(9_990, 100, backing.read) == b"0123456789"
    assert overlay.read(10_000, 10, backing.read) == b""
    assert overlay.held_bytes == 0


def test_overlapping_writes_merge_over_the_backing_bytes() -> None:
    backing = Backing(b"a" * 10_000)
    overlay = overlay_over(backing)
    overlay.write(4_090, b"B" * 20, backing.read)  # across a block boundary
    overlay.write(4_095, b"CC", backing.read)  # inside the first write
    overlay.write(4_105, b"D" * 10, backing.read)  # overlapping its end
    expected = bytearray(b"a" * 10_000)
    expected[4_090:4_110] = b"B" * 20
    expected[4_095:4_097] = b"CC"
    expected[4_105:4_115] = b"D" * 10
    assert visible(overlay, backing) == bytes(expected)
    assert overlay.read(4_094, 4, backing.read) == b"BCCB"
    assert backing.data == b"a" * 10_000, "the backing is untouched until a flush"
    assert overlay.held_bytes == 2 * BLOCK


def test_a_write_past_the_end_leaves_a_hole_of_zeros() -> None:
    backing = Backing(b"xyz")
    overlay = overlay_over(backing)
    overlay.write(3 * BLOCK + 1, b"end", backing.read)
    data = visible(overlay, backing)
    assert len(data) == 3 * BLOCK + 4
    assert data[:3] == b"xyz"
    assert data[3 : 3 * BLOCK + 1] == bytes(3 * BLOCK - 2)
    assert data.endswith(b"end")


def test_a_truncate_then_an_extension_reads_zeros_not_the_old_bytes() -> None:
    backing = Backing(b"q" * 10_000)
    overlay = overlay_over(backing)
    overlay.truncate(5_000)
    assert overlay.size == 5_000
    overlay.truncate(9_000)
    data = visible(overlay, backing)
    assert data[:5_000] == b"q" * 5_000
    assert data[5_000:] == bytes(4_000)


def test_a_truncate_zeroes_the_tail_of_a_written_block() -> None:
    backing = Backing()
    overlay = overlay_over(backing)
    overlay.write(0, b"w" * 100, backing.read)
    overlay.truncate(10)
    overlay.write(50, b"!", backing.read)
    assert visible(overlay, backing) == b"w" * 10 + bytes(40) + b"!"


def test_flush_makes_the_backing_read_as_the_overlay_did() -> None:
    backing = Backing(b"r" * 9_000)
    overlay = overlay_over(backing)
    overlay.write(100, b"W" * 50, backing.read)
    overlay.truncate(4_000)
    overlay.truncate(12_000)
    overlay.write(11_000, b"tail", backing.read)
    expected = visible(overlay, backing)
    overlay.flush(len(backing.data), backing.truncate, backing.pwrite)
    assert bytes(backing.data) == expected
    assert len(backing.data) == 12_000


@pytest.mark.parametrize("seed", range(20))
def test_random_writes_and_truncates_match_a_plain_byte_array(seed: int) -> None:
    rng = random.Random(seed)
    start = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 3 * BLOCK)))
    backing = Backing(start)
    overlay = overlay_over(backing)
    expected = bytearray(start)
    for _ in range(40):
        if rng.random() < 0.7:
            offset = rng.randrange(0, 4 * BLOCK)
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 2 * BLOCK)))
            overlay.write(offset, data, backing.read)
            if offset > len(expected):
                expected += bytes(offset - len(expected))
            expected[offset : offset + len(data)] = data
        else:
            length = rng.randrange(0, 5 * BLOCK)
            overlay.truncate(length)
            if length < len(expected):
                del expected[length:]
            else:
                expected += bytes(length - len(expected))
        offset = rng.randrange(0, len(expected) + 1)
        assert overlay.read(offset, 3_000, backing.read) == bytes(expected[offset : offset + 3_000])
    assert visible(overlay, backing) == bytes(expected)
    overlay.flush(len(backing.data), backing.truncate, backing.pwrite)
    assert backing.data == expected
