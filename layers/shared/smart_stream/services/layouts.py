"""Finite stream layouts, made once per queue content and play mode, and shared by the
device route, the pack writer and the sweep (one instance, owned by ``bootstrap``)."""

from __future__ import annotations

import threading
from typing import Any

from smart_stream.audio.id3 import title_tag
from smart_stream.domain.layout import FiniteLayout, layout_key, make_layout
from smart_stream.domain.records import PlayMode, QueueRecord

#: Layouts (and title tags) kept; the oldest goes first.
LIMIT = 64


class Layouts:
    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._by_key: dict[tuple[object, ...], FiniteLayout] = {}
        # The layouts of the record objects seen last (the device route's cached records):
        # found without building the key, which walks every entry. Holding the record keeps
        # its id from being reused.
        self._by_record: dict[tuple[int, PlayMode], tuple[QueueRecord, FiniteLayout]] = {}
        self._titles: dict[str, bytes] = {}

    def title_tag(self, title: str) -> bytes:
        with self._lock:
            tag = self._titles.get(title)
        if tag is None:
            tag = title_tag(title)
            with self._lock:
                self._keep(self._titles, title, tag)
        return tag

    def _keep(self, cache: dict[Any, Any], key: object, value: object) -> None:
        if len(cache) >= self._limit:
            cache.pop(next(iter(cache)))
        cache[key] = value

    def finite(self, record: QueueRecord, mode: PlayMode) -> FiniteLayout:
        """The layout of a queue's finite stream in ``mode``."""
        with self._lock:
            seen = self._by_record.get((id(record), mode))
        if seen is not None and seen[0] is record:
            return seen[1]
        key = layout_key(record, mode)
        with self._lock:
            layout = self._by_key.get(key)
        if layout is None:
            layout = make_layout(record, mode, self.title_tag(record.title))
        with self._lock:
            self._keep(self._by_key, key, layout)
            self._keep(self._by_record, (id(record), mode), (record, layout))
        return layout
