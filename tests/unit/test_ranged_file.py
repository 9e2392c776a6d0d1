"""RangedFile: the seekable file mutagen and the frame walker read an S3 object through.
Whatever is read, in whatever order, the bytes are the object's; the requests it makes are
few (neighbouring missing blocks in one), the cache stays bounded, and a short answer from
storage is an error, never silently wrong audio."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_stream.audio.ranged_file import RangedFile
from tests.examples import examples


class Source:
    """An object in storage that records every ranged read made of it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def fetch(self, start: int, end: int) -> bytes:
        assert 0 <= start <= end < len(self.data), f"fetch outside the object: {start}-{end}"
        self.calls.append((start, end))
        return self.data[start : end + 1]


def pattern(size: int) -> bytes:
    """Bytes whose value says where they are (a misplaced block is seen at once)."""
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


# One operation on the file: ("seek", offset, whence), ("read", n), ("pread", start, end).
_ops = st.one_of(
    st.tuples(st.just("seek"), st.integers(0, 700), st.just(io.SEEK_SET)),
    st.tuples(st.just("seek"), st.integers(-300, 300), st.just(io.SEEK_CUR)),
    st.tuples(st.just("seek"), st.integers(-700, 50), st.just(io.SEEK_END)),
    st.tuples(st.just("read"), st.integers(-1, 400)),
    st.tuples(st.just("readinto"), st.integers(0, 400)),
    st.tuples(st.just("pread"), st.integers(0, 700), st.integers(0, 700)),
)


@settings(max_examples=examples(300), deadline=None)
@given(
    size=st.integers(0, 600),
    block_size=st.integers(1, 97),
    max_blocks=st.integers(1, 9),
    ops=st.lists(_ops, max_size=40),
)
def test_any_sequence_of_seeks_and_reads_returns_the_objects_bytes(
    size, block_size, max_blocks, ops
):
    """Given an object of any size and a cache of any shape, when any sequence of seeks and
    reads is made, then every read returns exactly what a local file of the same bytes
    returns, the position moves the same way, and no block is fetched twice while cached."""
    data = pattern(size)
    source = Source(data)
    f = RangedFile(source.fetch, size, block_size=block_size, max_blocks=max_blocks)
    model = io.BytesIO(data)
    for op in ops:
        if op[0] == "seek":
            _, offset, whence = op
            target = {io.SEEK_SET: 0, io.SEEK_CUR: model.tell(), io.SEEK_END: size}[whence]
            if target + offset < 0:
                with pytest.raises(OSError):
                    f.seek(offset, whence)
                continue
            assert f.seek(offset, whence) == model.seek(offset, whence)
        elif op[0] == "read":
            assert f.read(op[1]) == model.read(op[1])
        elif op[0] == "readinto":
            ours, theirs = bytearray(op[1]), bytearray(op[1])
            assert f.readinto(ours) == model.readinto(theirs)
            assert ours == theirs
        else:
            _, start, end = op
            before = f.tell()
            assert f.pread(start, end) == data[start:end]
            assert f.tell() == before, "pread must not move the position"
        assert f.tell() == model.tell()
    # What it says it cost is what it cost, and every request is whole blocks.
    assert f.requests == len(source.calls)
    assert f.bytes_fetched == sum(end - start + 1 for start, end in source.calls)
    for start, end in source.calls:
        assert start % block_size == 0
        assert (end + 1) % block_size == 0 or end == size - 1


@settings(max_examples=examples(200), deadline=None)
@given(
    size=st.integers(1, 2000),
    block_size=st.integers(1, 64),
    cached=st.sets(st.integers(0, 60), max_size=20),
    read=st.tuples(st.integers(0, 2000), st.integers(1, 2000)),
)
def test_one_request_per_run_of_missing_blocks(size, block_size, cached, read):
    """Given some blocks cached already, when a span is read, then one request is made for
    each run of neighbouring missing blocks in it (never one per block, never a cached one)."""
    data = pattern(size)
    source = Source(data)
    f = RangedFile(source.fetch, size, block_size=block_size, max_blocks=10_000)
    last_block = (size - 1) // block_size
    cached = {b for b in cached if b <= last_block}
    for block in sorted(cached):
        f.pread(block * block_size, block * block_size + 1)
    assert f.requests == len(cached)
    source.calls.clear()
    start = min(read[0], size - 1)
    end = min(start + read[1], size)

    assert f.pread(start, end) == data[start:end]

    wanted = range(start // block_size, (end - 1) // block_size + 1)
    missing = [b for b in wanted if b not in cached]
    runs = sum(1 for i, b in enumerate(missing) if i == 0 or missing[i - 1] != b - 1)
    assert len(source.calls) == runs
    fetched_blocks = {
        b for s, e in source.calls for b in range(s // block_size, e // block_size + 1)
    }
    assert fetched_blocks == set(missing)


def test_a_long_read_is_one_request():
    source = Source(pattern(10_000))
    f = RangedFile(source.fetch, 10_000, block_size=100)
    assert f.read() == source.data
    assert source.calls == [(0, 9_999)]
    assert (f.requests, f.bytes_fetched) == (1, 10_000)
    # Read again: block 0 is still cached and now the most recent; trimming back to 64
    # blocks drops the least recently used ones (1..36), not the last ones.
    f.seek(0)
    assert f.read(10) == source.data[:10]
    assert f.pread(9_990, 10_000) == source.data[9_990:]
    assert f.requests == 1
    assert len(f._blocks) == 64
    assert f.pread(150, 160) == source.data[150:160]
    assert f.requests == 2, "block 1 was evicted"


def test_the_cache_keeps_the_most_recently_used_blocks_only():
    """Given room for two blocks, when a third is read, then the least recently used one is
    dropped (and fetched again if wanted), and the cache never grows past its bound."""
    source = Source(pattern(1_000))
    f = RangedFile(source.fetch, 1_000, block_size=10, max_blocks=2)
    f.pread(0, 5)  # block 0
    f.pread(10, 15)  # block 1
    f.pread(0, 1)  # block 0 again: most recent now
    f.pread(20, 25)  # block 2 evicts block 1, not block 0
    assert f.requests == 3
    f.pread(3, 4)
    assert f.requests == 3, "block 0 was kept"
    f.pread(12, 13)
    assert f.requests == 4, "block 1 was evicted"
    assert source.calls[-1] == (10, 19)
    for offset in range(0, 1_000, 10):
        f.pread(offset, offset + 1)
        assert len(f._blocks) <= 2
    # One read larger than the cache still answers whole, then trims back.
    assert f.pread(0, 1_000) == source.data
    f.pread(0, 1)
    assert len(f._blocks) <= 2


def test_memory_stays_bounded_on_a_long_sequential_read():
    size = 1_000_000
    source = Source(pattern(size))
    f = RangedFile(source.fetch, size, block_size=1_000, max_blocks=8)
    out = bytearray()
    while chunk := f.read(777):
        out += chunk
        assert len(f._blocks) <= 8
        assert sum(len(b) for b in f._blocks.values()) <= 8 * 1_000
    assert out == source.data
    assert f.bytes_fetched == size, "sequential reading fetches every byte once"


def test_a_short_answer_from_storage_is_an_error_not_wrong_bytes():
    """Given storage that answers fewer bytes than asked (an object cut short under us), when
    the file is read, then OSError is raised, and nothing wrong stays in the cache."""
    data = pattern(500)
    answers = {"short": True}

    def fetch(start: int, end: int) -> bytes:
        chunk = data[start : end + 1]
        return chunk[:-1] if answers["short"] else chunk

    f = RangedFile(fetch, 500, block_size=64)
    with pytest.raises(OSError):
        f.read(100)
    with pytest.raises(OSError):
        f.pread(450, 500)
    answers["short"] = False
    f.seek(0)
    assert f.read() == data
    assert f.pread(450, 500) == data[450:]


def test_an_empty_answer_is_an_error_too():
    f = RangedFile(lambda start, end: b"", 100, block_size=16)
    with pytest.raises(OSError):
        f.read(1)


def test_edges():
    source = Source(pattern(100))
    f = RangedFile(source.fetch, 100, block_size=16)
    assert f.read(0) == b""
    assert f.pread(50, 50) == b""
    assert f.pread(60, 40) == b""
    f.seek(500)
    assert f.read() == b""
    assert f.read(10) == b""
    assert source.calls == [], "nothing to read, nothing fetched"
    assert f.seek(-10, io.SEEK_END) == 90
    assert f.read(None) == source.data[90:]
    assert f.readable() and f.seekable()
    with pytest.raises(ValueError):
        f.seek(0, 7)
    with pytest.raises(ValueError):
        RangedFile(source.fetch, 100, block_size=0)
    with pytest.raises(ValueError):
        RangedFile(source.fetch, 100, max_blocks=0)
    empty = RangedFile(Source(b"").fetch, 0)
    assert empty.read() == b""
    assert empty.requests == 0


def test_works_under_a_buffered_reader():
    """mutagen and the standard library wrap raw files: the bytes stay right."""
    source = Source(pattern(5_000))
    buffered = io.BufferedReader(RangedFile(source.fetch, 5_000, block_size=256), 100)
    buffered.seek(1_234)
    assert buffered.read(2_000) == source.data[1_234:3_234]
    assert buffered.read() == source.data[3_234:]
