"""What both Catalog adapters store the same way: the schema version, tombstones, S3
sequencers, the search text, and stored queues parsed once per version."""

from __future__ import annotations

import threading

from smart_stream.domain.records import AudioRecord, QueueRecord

#: The catalogue's schema version; ``migrate`` brings a store forward to it.
SCHEMA_VERSION = 4
#: Status of the record left where an object was deleted, so that an older event arriving
#: late cannot bring it back. Never listed, never returned.
TOMBSTONE = "deleted"


def normalize_sequencer(sequencer: str) -> str:
    """S3 sequencers are hex strings of varying length: compare them left-padded."""
    return sequencer.upper().rjust(32, "0")


def search_text(record: AudioRecord) -> str:
    """What search looks in, folded once at write time so a query is one substring test."""
    fields = (record.filename, record.title, record.artist, record.album, record.transcript)
    return "\n".join(value.casefold() for value in fields if value)


class QueueParser:
    """Stored queues, parsed once per stored version: a 500-file queue is ~3 ms of pydantic
    work that every request on its stream would otherwise pay before its first byte. Parsed
    records are shared, so nothing may change one in place (they are changed by copy)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._parsed: dict[str, QueueRecord] = {}

    def __call__(self, raw: str) -> QueueRecord:
        with self._lock:
            record = self._parsed.get(raw)
        if record is None:
            record = QueueRecord.model_validate_json(raw)
            with self._lock:
                if len(self._parsed) >= self._size:
                    self._parsed.pop(next(iter(self._parsed)))
                self._parsed[raw] = record
        return record
