"""Packs: a queue's finite stream stored whole, so that playing it costs one storage read
per request instead of one per file.

A queue of 500 one-second files is 500 objects of 16 KB; read one by one, each costs a
round trip (an S3 GET, or a local open and stat), and the stream runs at a fraction of a
single file's speed. Its finite stream (title tag, then each file's audio span) is fixed by
the queue's content, so it is written once, when the queue changes (``PackQueueFunction``
on the catalogue's stream of changes, and hourly for what changes missed; the local server
calls it the same way), and served with the single-file machinery: one ranged read, the
stored object's own speed.

A pack is named by a hash of exactly what it holds (``packs/<queue>/<hash>.mp3``): a stale
pack is never served, since a changed queue, title or file version is another name. Until a
queue's pack exists (just after a change, or for a play mode other than the queue's own),
the stream reads the files' spans, byte for byte the same.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable

from smart_stream.domain.errors import (
    AudioNotFoundError,
    ObjectChangedError,
    ServiceUnavailableError,
)
from smart_stream.domain.layout import FiniteLayout
from smart_stream.domain.names import PACK_PREFIX
from smart_stream.domain.records import QueueRecord
from smart_stream.ports import Catalog, ObjectInfo, ObjectStream, Storage
from smart_stream.services.layouts import Layouts

logger = logging.getLogger("smart_stream.packs")

#: Chunks read from the files while a pack is written.
BUILD_CHUNK = 1024 * 1024


def pack_key(name: str, layout: FiniteLayout) -> str:
    return f"{PACK_PREFIX}{name}/{layout.content}.mp3"


class PackMisses:
    """Pack keys found missing lately: a miss costs a storage request (an S3 GET that
    answers 404), so it is not asked again for ``ttl`` seconds. A pack written by this
    process clears its key at once."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def recent(self, key: str) -> bool:
        with self._lock:
            until = self._until.get(key)
            return until is not None and until > self._clock()

    def add(self, key: str) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            if len(self._until) >= 1024:
                self._until.clear()
            self._until[key] = self._clock() + self._ttl

    def discard(self, key: str) -> None:
        with self._lock:
            self._until.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


class Packs:
    def __init__(
        self, storage: Storage, catalog: Catalog, layouts: Layouts, misses: PackMisses
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.layouts = layouts
        self.misses = misses

    def packed_layout(self, record: QueueRecord | None) -> FiniteLayout | None:
        """The layout a queue's pack holds: its own play mode's, when that one is finite."""
        if record is None or not record.entries or not record.play_mode.finite:
            return None
        return self.layouts.finite(record, record.play_mode)

    def open(
        self, name: str, layout: FiniteLayout, start: int, end: int, chunk_size: int
    ) -> ObjectStream | None:
        """Bytes ``start``..``end`` of the stream from its pack, or None when there is none."""
        key = pack_key(name, layout)
        if self.misses.recent(key):
            return None
        try:
            stream = self.storage.open_range(key, start, end, chunk_size=chunk_size)
        except AudioNotFoundError:
            self.misses.add(key)
            return None
        except ServiceUnavailableError:
            # Nothing is sent yet: the files can still give these bytes.
            logger.warning("a pack could not be read; reading the files", extra={"key": key})
            return None
        if stream.info.size != layout.size:  # never expected: the name says what it holds
            stream.close()
            self.misses.add(key)
            logger.warning("a pack has the wrong size", extra={"key": key})
            return None
        return stream

    def keys(self, records: Iterable[QueueRecord]) -> set[str]:
        """The packs these queues should have."""
        layouts = ((r.name, self.packed_layout(r)) for r in records)
        return {pack_key(name, layout) for name, layout in layouts if layout is not None}

    def build(self, record: QueueRecord) -> ObjectInfo | None:
        """Write the pack of a queue's own play mode, unless it exists. None when the queue
        has no finite stream, or when one of its files changed under it (the queue's own
        update, which follows, brings a pack of its own)."""
        layout = self.packed_layout(record)
        if layout is None:
            return None
        storage = self.storage
        key = pack_key(record.name, layout)
        try:
            return storage.head(key)
        except AudioNotFoundError:
            pass
        started = time.perf_counter()
        reads = storage.read_spans(layout.spans(), chunk_size=BUILD_CHUNK)
        try:
            info = storage.put_pack(key, itertools.chain([layout.prefix], reads))
        except (AudioNotFoundError, ObjectChangedError) as exc:
            logger.info("queue changed while packed", extra={"queue": record.name, "why": str(exc)})
            return None
        finally:
            reads.close()
        if info.size != layout.size:
            # A file shrank between its stat and its read: never keep a pack that would lie.
            storage.delete_pack(key)
            logger.warning("pack size mismatch, removed", extra={"key": key})
            return None
        self.misses.discard(key)
        logger.info(
            "queue packed",
            extra={
                "queue": record.name,
                "key": key,
                "bytes": info.size,
                "files": len(record.entries),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return info

    def sync(self, name: str) -> None:
        """Make a queue's packs match the queue as the catalogue has it now: its pack written
        if missing, every other pack of it removed (all of them once the queue is gone). It
        reads the queue rather than trusting the change that prompted it, so changes handled
        twice, late or out of order all end the same."""
        record = self.catalog.get_queue(name)
        if record is not None:
            self.build(record)
        # A change saved while this one was written keeps its pack too: its own sync decides.
        keep = self.keys(r for r in (record, self.catalog.get_queue(name)) if r is not None)
        for key in self.storage.iter_packs(name):
            if key not in keep:
                self.storage.delete_pack(key)

    def sweep(self) -> None:
        """Every queue's packs as they should be, and the packs of queues that are gone
        removed: what changes missed (handled before packs existed, or given up on after
        retries) is caught up with here. Deployed, the template runs it every hour."""
        names = [record.name for record in self.catalog.list_queues()]
        for name in names:
            self.sync(name)
        for key in self.storage.iter_packs():
            if key.removeprefix(PACK_PREFIX).split("/", 1)[0] not in names:
                self.storage.delete_pack(key)
