"""What the device routes use, handed to them by the composition root (``bootstrap``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


#: How a device app finds its context at request time (tests install their own).
ContextProvider = Callable[[], DeviceContext]
