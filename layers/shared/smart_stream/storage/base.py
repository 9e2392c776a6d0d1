"""The Storage port: where audio bytes live (S3, or a local directory)."""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from smart_stream.changes import Listeners


@dataclass(frozen=True)
class ObjectInfo:
    """What storage knows of one object. ``etag`` is a strong entity tag, quotes included."""

    name: str
    size: int
    etag: str
    last_modified: datetime


#: Called after every write ("ObjectCreated", info) and delete ("ObjectRemoved", info) made
#: through an adapter, so that the local server can deliver the S3-shaped events the template
#: subscribes to (deployed, S3 itself sends them and nothing listens here).
ChangeListener = Callable[[str, ObjectInfo], None]
change_listeners: Listeners[ChangeListener] = Listeners()


def notify_change(kind: str, info: ObjectInfo) -> None:
    for listener in change_listeners:
        listener(kind, info)


#: A piece of a body on its way to the client: a memoryview lets an adapter read straight
#: into a buffer it then hands on (never to reuse it) instead of copying it into bytes.
Chunk = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes ``first``..``last`` (inclusive) of the object ``name``, as it was at ``etag``
    (None: whatever version is there)."""

    name: str
    first: int
    last: int
    etag: str | None = None

    @property
    def length(self) -> int:
        return self.last - self.first + 1


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


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]


class ObjectStream:
    """The bytes of one ranged read, as chunks, from one request to storage.

    ``close()`` stops reading from storage at once (a client that went away costs nothing).
    """

    def __init__(self, info: ObjectInfo, chunks: Iterator[bytes], close: object = None) -> None:
        self.info = info
        self._chunks = chunks
        self._close = close

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if callable(self._close):
            self._close()


class Storage(Protocol):
    """Audio objects by filename. Errors are domain errors (``AudioNotFoundError`` ...)."""

    def head(self, name: str) -> ObjectInfo: ...

    def exists(self, name: str) -> bool: ...

    def open_range(
        self,
        name: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 256 * 1024,
    ) -> ObjectStream:
        """Start one read of bytes ``start``..``end`` (inclusive; None: to the end) of a file
        or a pack.

        The request is made before this returns, so a missing or changed object raises here
        (``AudioNotFoundError``, ``ObjectChangedError`` when ``if_match`` no longer holds).
        """
        ...

    def read_spans(self, spans: Sequence[Span], *, chunk_size: int) -> Generator[Chunk, None, None]:
        """The bytes of ``spans``, one after another, as chunks of at most ``chunk_size``
        that may cross span boundaries: each adapter reads many spans the way that is fast
        for it. Closing the generator stops reading at once. A span whose object is gone or
        no longer at its etag raises (``AudioNotFoundError``, ``ObjectChangedError``) when
        its turn comes."""
        ...

    def put(
        self,
        name: str,
        source: BinaryIO,
        *,
        overwrite: bool = True,
        content_type: str = "audio/mpeg",
    ) -> ObjectInfo:
        """Store ``source`` whole under ``name``, atomically: readers see the old object or
        the new one, never part. With ``overwrite=False`` an existing object raises
        ``AudioExistsError`` and is left alone."""
        ...

    def delete(self, name: str) -> None: ...

    def put_pack(self, key: str, chunks: Iterable[Chunk]) -> ObjectInfo:
        """Store a queue's pack (``names.is_pack_key``) from ``chunks``, atomically, as
        ``put`` does a file, but outside the library: no change is announced, and it is never
        listed. ``open_range`` reads it back."""
        ...

    def delete_pack(self, key: str) -> None:
        """Remove a pack; one that is already gone is not an error."""
        ...

    def iter_packs(self, queue: str | None = None) -> Iterator[str]:
        """The keys of the packs stored for ``queue`` (None: for every queue)."""
        ...

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every stored audio object (names that pass filename validation only)."""
        ...

    def presigned_post(
        self, name: str, *, max_size: int, expires_in: int, base_url: str
    ) -> PresignedPost:
        """A form upload the client sends straight to storage, limited to ``max_size`` bytes
        of ``audio/mpeg``."""
        ...
