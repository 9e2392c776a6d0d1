"""What the device routes use, handed to them by the composition root (``bootstrap``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smart_stream.changes import AudioChanged, ChangeFeed, QueueChanged
from smart_stream.device.cache import DeviceCache
from smart_stream.domain.records import AudioRecord, QueueRecord
from smart_stream.ports import Catalog, Storage
from smart_stream.services.access import Access
from smart_stream.services.layouts import Layouts
from smart_stream.services.packs import Packs


@dataclass(frozen=True)
class DeviceContext:
    access: Access
    storage: Storage
    catalog: Catalog
    #: Records read lately, by filename and by queue name (forgotten when they change).
    audio_records: DeviceCache[AudioRecord]
    queue_records: DeviceCache[QueueRecord]
    layouts: Layouts
    packs: Packs
    chunk_bytes: int
    #: An open-ended stream ends, on a frame boundary, after this long or this many bytes.
    session_seconds: float
    session_bytes: int
    #: Seconds, for the open-ended streams' deadlines.
    clock: Callable[[], float]

    @classmethod
    def build(
        cls,
        *,
        access: Access,
        storage: Storage,
        catalog: Catalog,
        changes: ChangeFeed,
        layouts: Layouts,
        packs: Packs,
        cache_seconds: float,
        chunk_bytes: int,
        session_seconds: float,
        session_bytes: int,
        clock: Callable[[], float],
    ) -> DeviceContext:
        """The context, its caches subscribed to ``changes``: writes in this process forget
        what they change at once (elsewhere, within ``cache_seconds``)."""
        audio_records: DeviceCache[AudioRecord] = DeviceCache(
            catalog.get_audio, cache_seconds, clock
        )
        queue_records: DeviceCache[QueueRecord] = DeviceCache(
            catalog.get_queue, cache_seconds, clock
        )
        changes.subscribe(AudioChanged, lambda change: audio_records.forget(change.filename))
        changes.subscribe(QueueChanged, lambda change: queue_records.forget(change.name))
        return cls(
            access=access,
            storage=storage,
            catalog=catalog,
            audio_records=audio_records,
            queue_records=queue_records,
            layouts=layouts,
            packs=packs,
            chunk_bytes=chunk_bytes,
            session_seconds=session_seconds,
            session_bytes=session_bytes,
            clock=clock,
        )


#: How a device app finds its context at request time (tests install their own).
ContextProvider = Callable[[], DeviceContext]
