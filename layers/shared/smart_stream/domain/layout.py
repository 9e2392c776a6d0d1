"""The byte layout of a queue's finite stream: a title tag, then each file's audio span in
play order. It is a pure function of the queue record, the play mode and the title tag's
bytes, which is what makes Content-Length exact, the ETag strong and Range requests answer
exactly the bytes of the full response."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from smart_stream.domain.play_order import round_order
from smart_stream.domain.records import PlayMode, QueueEntry, QueueRecord


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


@dataclass(frozen=True)
class Piece:
    """A run of the stream's bytes: the title tag, or one file's audio span."""

    offset: int  # where it starts in the stream
    length: int
    entry: QueueEntry | None  # None: the title tag


@dataclass(frozen=True)
class FiniteLayout:
    pieces: list[Piece]
    prefix: bytes
    size: int
    etag: str
    #: A hash of exactly the stream's bytes (title tag, then each file version's span in
    #: order): what names the queue's pack.
    content: str

    def spans(self, start: int = 0, end: int | None = None) -> list[Span]:
        """The files' bytes that make the stream's bytes ``start``..``end`` (inclusive; None:
        to the end), in order; the title tag's part of them is ``prefix``."""
        end = self.size - 1 if end is None else end
        spans = []
        for piece in self.pieces:
            lo = max(start, piece.offset)
            hi = min(end, piece.offset + piece.length - 1)
            if piece.entry is not None and lo <= hi:
                base = piece.entry.audio_start - piece.offset
                spans.append(Span(piece.entry.filename, lo + base, hi + base, piece.entry.etag))
        return spans


def layout_key(record: QueueRecord, mode: PlayMode) -> tuple[object, ...]:
    """What a layout depends on: equal keys, equal layouts."""
    spans = tuple((e.filename, e.etag, e.audio_start, e.audio_end) for e in record.entries)
    return (record.name, record.version, record.seed, mode, record.title, spans)


def make_layout(record: QueueRecord, mode: PlayMode, prefix: bytes) -> FiniteLayout:
    """The layout of a finite stream that starts with ``prefix`` (the title tag)."""
    pieces = [Piece(0, len(prefix), None)]
    offset = len(prefix)
    for index in round_order(record, mode, 0):
        entry = record.entries[index]
        pieces.append(Piece(offset, entry.length, entry))
        offset += entry.length
    spans = [
        [p.entry.filename, p.entry.etag, p.entry.audio_start, p.entry.audio_end]
        for p in pieces
        if p.entry
    ]
    identity = json.dumps([record.name, record.version, mode.value, record.title, spans])
    etag = '"q-' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'
    content = hashlib.sha256(json.dumps([prefix.hex(), spans]).encode()).hexdigest()[:32]
    return FiniteLayout(pieces, prefix, offset, etag, content)
