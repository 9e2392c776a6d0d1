"""Moving bytes to and from S3: a readable file over chunks (for managed uploads), and a
ranged GET's body read in chunks with S3's failures turned into domain errors."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smart_stream.ports import Chunk


class ChunkReader(io.RawIOBase):
    """A readable file over an iterable of chunks, for uploads that want a file object."""

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk).cast("B")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def iter_body(
    body: Any, chunk_size: int, name: str, translate: Callable[[Exception, str], Exception]
) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, name) from exc
    finally:
        body.close()
