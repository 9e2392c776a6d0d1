"""A read-only, seekable file object over ranged reads, with a block cache.

mutagen and the frame walker read through it as through a local file; only the blocks they
touch are fetched (neighbouring missing blocks in one request), so finding an MP3's duration
costs a few KB of a file of any length.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable

#: fetch(start, end_inclusive) -> exactly those bytes (fewer only at the end of the object).
Fetch = Callable[[int, int], bytes]

DEFAULT_BLOCK_SIZE = 64 * 1024


class RangedFile(io.RawIOBase):
    def __init__(
        self, fetch: Fetch, size: int, *, block_size: int = DEFAULT_BLOCK_SIZE, max_blocks: int = 64
    ) -> None:
        super().__init__()
        if block_size <= 0 or max_blocks <= 0:
            raise ValueError("block_size and max_blocks must be positive")
        self._fetch = fetch
        self.size = size
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        #: What it cost: requests made and bytes fetched.
        self.requests = 0
        self.bytes_fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise OSError("negative seek position")
        self._pos = target
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        end = min(self._pos + size, self.size)
        if end <= self._pos:
            return b""
        data = self.pread(self._pos, end)
        self._pos = end
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def pread(self, start: int, end: int) -> bytes:
        """Bytes ``start``..``end`` (exclusive), through the cache, without moving."""
        end = min(end, self.size)
        if start >= end:
            return b""
        first, last = start // self.block_size, (end - 1) // self.block_size
        self._load(first, last)
        parts = [self._blocks[index] for index in range(first, last + 1)]
        while len(self._blocks) > max(self.max_blocks, len(parts)):
            self._blocks.popitem(last=False)  # least recently used first
        joined = b"".join(parts) if len(parts) > 1 else parts[0]
        offset = start - first * self.block_size
        return joined[offset : offset + (end - start)]

    def _load(self, first: int, last: int) -> None:
        index = first
        while index <= last:
            if index in self._blocks:
                self._blocks.move_to_end(index)
                index += 1
                continue
            run_end = index
            while run_end + 1 <= last and run_end + 1 not in self._blocks:
                run_end += 1
            self._fetch_run(index, run_end)
            index = run_end + 1

    def _fetch_run(self, first: int, last: int) -> None:
        start = first * self.block_size
        stop = min((last + 1) * self.block_size, self.size)
        data = self._fetch(start, stop - 1)
        self.requests += 1
        self.bytes_fetched += len(data)
        if len(data) != stop - start:
            raise OSError(f"short read: wanted {stop - start} bytes at {start}, got {len(data)}")
        for index in range(first, last + 1):
            offset = (index - first) * self.block_size
            self._blocks[index] = data[offset : offset + self.block_size]
            self._blocks.move_to_end(index)
