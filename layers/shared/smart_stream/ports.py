"""The ports: what the services need of the world, as small Protocols, and the values that
cross them. Adapters (``adapters/``) implement them; ``bootstrap`` picks one of each.

- ``Storage``: audio objects and queue packs (S3, or a local directory).
- ``Catalog``: audio records, queues, stream cursors and small values (DynamoDB, or SQLite).
- ``SpeechEngine``: text in, PCM out (Polly, or eSpeak NG).
- ``Secrets``: the management token and the device-URL signing key.
- ``YotoApi``: HTTP calls to Yoto's sign-in and API, retried.

What adapters tell of the changes they make is in ``changes``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from smart_stream.domain.layout import Span
from smart_stream.domain.records import AudioRecord, AudioStatus, QueueRecord, StreamCursor

__all__ = [
    "Catalog",
    "Chunk",
    "ObjectInfo",
    "ObjectStream",
    "Page",
    "Pcm",
    "PresignedPost",
    "Secrets",
    "Span",
    "SpeechEngine",
    "Storage",
    "Voice",
    "YotoApi",
    "YotoResponse",
]

#: A piece of a body on its way to the client: a memoryview lets an adapter read straight
#: into a buffer it then hands on (never to reuse it) instead of copying it into bytes.
Chunk = bytes | memoryview


# Storage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    """What storage knows of one object. ``etag`` is a strong entity tag, quotes included."""

    name: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]


class ObjectStream:
    """The bytes of one ranged read, as chunks, from one request to storage.

    ``close()`` stops reading from storage at once (a client that went away costs nothing).
    """

    def __init__(
        self, info: ObjectInfo, chunks: Iterator[bytes], close: Callable[[], object] | None = None
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._close = close

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if self._close is not None:
            self._close()


class Storage(Protocol):
    """Audio objects by filename, and queue packs by key. Errors are domain errors
    (``AudioNotFoundError`` ...)."""

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
        """Store ``source`` whole under ``name`` (a library filename, or an upload's
        ``incoming/`` key), atomically: readers see the old object or the new one, never
        part; a large one goes up in parts, so memory stays flat. With ``overwrite=False`` an
        existing object raises ``AudioExistsError`` and is left alone."""
        ...

    def copy(self, source: str, name: str) -> ObjectInfo:
        """Store a copy of the object ``source`` as ``name`` (an upload's key into the
        library, or a library file under ``incoming/``), replacing it, without the bytes
        passing through here (S3's CopyObject)."""
        ...

    def delete(self, name: str) -> None:
        """Remove a library file or an upload; ``AudioNotFoundError`` when it is not there."""
        ...

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

    def upload_origin(self, base_url: str) -> str:
        """The origin (``scheme://host[:port]``) that ``presigned_post`` forms are sent to:
        the page's Content-Security-Policy must allow it."""
        ...


# Catalog --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    records: list[AudioRecord]
    #: The filename to continue after, or None on the last page.
    after: str | None


class Catalog(Protocol):
    """Audio records, queues, stream cursors and small values. Opening one does no I/O: the
    first call that needs the store opens it. ``migrate`` brings the schema forward; only
    where writes are expected calls it (the local server's start-up, the writing functions)."""

    def migrate(self) -> None: ...

    def schema_version(self) -> int: ...

    def get_audio(self, filename: str) -> AudioRecord | None: ...

    def put_audio(
        self,
        record: AudioRecord,
        *,
        sequencer: str | None = None,
        keep_version: bool = False,
        if_source: str | None = None,
    ) -> bool:
        """Create or replace the record of ``record.filename``; False, and nothing written,
        when a condition stops it:
        - ``sequencer`` (the S3 event's): only if newer than the last applied to this name;
        - ``keep_version``: not over a finished record of the same object version (the
          upload or TTS function catalogued it meanwhile, perhaps with its transcript);
        - ``if_source``: only over a record that still waits for that upload (a delete, or
          a newer upload, during a conversion wins).
        """
        ...

    def delete_audio(self, filename: str, *, sequencer: str | None = None) -> bool:
        """Remove the record; False if there was none (or, with a ``sequencer``, if a newer
        event was applied already). With a sequencer a tombstone keeps it."""
        ...

    def list_audio(
        self, *, limit: int, after: str | None, statuses: Collection[AudioStatus]
    ) -> Page:
        """Records in filename order, starting after ``after``, with a status in ``statuses``."""
        ...

    def search_audio(
        self, needle: str, *, statuses: Collection[AudioStatus]
    ) -> Iterator[AudioRecord]:
        """Records whose searchable text contains ``needle`` (already case-folded)."""
        ...

    def get_queue(self, name: str) -> QueueRecord | None: ...

    def put_queue(self, record: QueueRecord, *, expected_version: int | None) -> bool:
        """Write ``record`` if the stored queue is still at ``expected_version`` (None: if
        there is none). False, and nothing written, when another writer got there first."""
        ...

    def delete_queue(self, name: str) -> bool: ...

    def list_queues(self) -> list[QueueRecord]: ...

    def get_cursor(self, key: str) -> StreamCursor | None: ...

    def put_cursor(self, key: str, cursor: StreamCursor) -> None: ...

    def get_value(self, key: str) -> str | None: ...

    def put_value(self, key: str, value: str) -> None: ...

    def delete_value(self, key: str) -> None: ...


# Speech ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    voice_id: str
    engine: str | None = None  # Polly's engine; None for engines that have one kind


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers, as the page lists it."""

    id: str
    name: str
    language: str


@dataclass(frozen=True)
class Pcm:
    """Signed 16-bit little-endian mono samples."""

    samples: bytes
    sample_rate: int


class SpeechEngine(Protocol):
    #: What ``GET /api/tts/voices`` calls the engine: ``polly`` or ``local``.
    name: str
    #: The longest text (characters) one ``synthesize`` call takes.
    max_request_chars: int

    def list_voices(self) -> list[VoiceInfo]:
        """Every voice the engine offers, sorted by language then name."""
        ...

    def resolve_voice(self, voice: str | None, engine: str | None) -> Voice:
        """The voice to use (a default when None); ``UnprocessableError`` if unknown."""
        ...

    def synthesize(self, text: str, voice: Voice, *, ssml: bool) -> Pcm: ...


# Secrets, Yoto ---------------------------------------------------------------------------


class Secrets(Protocol):
    def api_token(self) -> str:
        """The management token."""
        ...

    def signing_key(self) -> bytes:
        """The key of device-URL credentials (and of what else the app signs)."""
        ...


class YotoResponse(Protocol):
    status_code: int

    def json(self) -> Any: ...


class YotoApi(Protocol):
    def request(
        self, method: str, url: str, *, retry_statuses: frozenset[int] | None = None, **kwargs: Any
    ) -> YotoResponse:
        """One call, retried on time-outs and ``retry_statuses`` (default: 429 and 5xx);
        ``YotoFailedError`` once the retries are spent."""
        ...
