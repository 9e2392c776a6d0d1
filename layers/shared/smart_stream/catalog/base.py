"""The Catalog port: metadata of every audio file (later queues and stream cursors too)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Protocol

from smart_stream.domain.records import AudioRecord, AudioStatus, QueueRecord, StreamCursor

#: The catalogue's schema version; adapters migrate forward to it when they start.
SCHEMA_VERSION = 4
#: Status of the record left where an object was deleted, so that an older event arriving
#: late cannot bring it back. Never listed, never returned.
TOMBSTONE = "deleted"


@dataclass(frozen=True)
class Page:
    records: list[AudioRecord]
    #: The filename to continue after, or None on the last page.
    after: str | None


_QUEUE_CACHE_SIZE = 64
_parsed_queues: dict[str, QueueRecord] = {}


def parse_queue(raw: str) -> QueueRecord:
    """A stored queue, parsed once per stored version: a 500-file queue is ~3 ms of pydantic
    work that every request on its stream would otherwise pay before its first byte. Parsed
    records are shared, so nothing may change one in place (they are changed by copy)."""
    record = _parsed_queues.get(raw)
    if record is None:
        record = QueueRecord.model_validate_json(raw)
        if len(_parsed_queues) >= _QUEUE_CACHE_SIZE:
            _parsed_queues.pop(next(iter(_parsed_queues)))
        _parsed_queues[raw] = record
    return record


def normalize_sequencer(sequencer: str) -> str:
    """S3 sequencers are hex strings of varying length: compare them left-padded."""
    return sequencer.upper().rjust(32, "0")


def search_text(record: AudioRecord) -> str:
    """What search looks in, folded once at write time so a query is one substring test."""
    fields = (record.filename, record.title, record.artist, record.album, record.transcript)
    return "\n".join(value.casefold() for value in fields if value)


class Catalog(Protocol):
    def schema_version(self) -> int: ...

    def get_audio(self, filename: str) -> AudioRecord | None: ...

    def put_audio(
        self, record: AudioRecord, *, sequencer: str | None = None, keep_version: bool = False
    ) -> bool:
        """Create or replace the record of ``record.filename``.

        With the ``sequencer`` of the S3 event it comes from, only if that event is newer than
        the last one applied to this name (False, and nothing written, when it is not). With
        ``keep_version``, not over a finished record of the same object version (the upload
        or TTS function catalogued it meanwhile, perhaps with its transcript).
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

    # Queues -------------------------------------------------------------------------------

    def get_queue(self, name: str) -> QueueRecord | None: ...

    def put_queue(self, record: QueueRecord, *, expected_version: int | None) -> bool:
        """Write ``record`` if the stored queue is still at ``expected_version`` (None: if
        there is none). False, and nothing written, when another writer got there first."""
        ...

    def delete_queue(self, name: str) -> bool: ...

    def list_queues(self) -> list[QueueRecord]: ...

    # Stream cursors -------------------------------------------------------------------------

    def get_cursor(self, key: str) -> StreamCursor | None: ...

    def put_cursor(self, key: str, cursor: StreamCursor) -> None: ...

    # Small app state (the Yoto sign-in, encrypted by its owner) --------------------------------

    def get_value(self, key: str) -> str | None: ...

    def put_value(self, key: str, value: str) -> None: ...

    def delete_value(self, key: str) -> None: ...
