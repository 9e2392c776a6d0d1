"""Catalogue records a device function read recently.

Players send several requests in a row (a Range request to resume, a HEAD, a reconnect); a
few seconds of trust (``DEVICE_CACHE_SECONDS``) saves a catalogue round trip on each, at the
price of a revoked URL working for those few seconds more on other warm containers. Writes
made in this process forget what they change at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_LIMIT = 1024


class DeviceCache(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[str], T | None],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, T]] = {}
        # Bumped by every forget: a fetch that began before a write must not store what it
        # read (the record as it was) after the write has forgotten it.
        self._generation = 0

    def get(self, key: str) -> T | None:
        ttl = self._ttl
        now = self._clock()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
            generation = self._generation
        record = self._fetch(key)
        if record is not None and ttl > 0:
            with self._lock:
                if self._generation != generation:
                    return record  # a write came in meanwhile: serve it once, keep nothing
                if len(self._items) >= _LIMIT:
                    self._items.clear()
                self._items[key] = (now + ttl, record)
        return record

    def forget(self, key: str) -> None:
        with self._lock:
            self._generation += 1
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._items.clear()
