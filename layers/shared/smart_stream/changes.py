"""The change feed: what adapters tell of the changes they make. The device caches forget
what changed; the local server turns the changes into the events S3 and DynamoDB Streams
send deployed."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from smart_stream.ports import ObjectInfo


@dataclass(frozen=True)
class ObjectChanged:
    """An audio object was stored or removed through a Storage adapter."""

    kind: Literal["ObjectCreated", "ObjectRemoved"]
    info: ObjectInfo


@dataclass(frozen=True)
class AudioChanged:
    """An audio record was written or removed through a Catalog adapter."""

    filename: str


@dataclass(frozen=True)
class QueueChanged:
    """A queue was written or removed through a Catalog adapter (``existed``: before the
    change; ``exists``: after it)."""

    name: str
    existed: bool
    exists: bool


C = TypeVar("C")


class ChangeFeed:
    """Listeners told of each change, in the order they subscribed, on the writer's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[tuple[type[Any], Callable[[Any], None]]] = []

    def subscribe(self, kind: type[C], listener: Callable[[C], None]) -> None:
        with self._lock:
            self._listeners.append((kind, listener))

    def unsubscribe(self, kind: type[C], listener: Callable[[C], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove((kind, listener))

    def publish(self, change: object) -> None:
        with self._lock:
            listeners = [listener for kind, listener in self._listeners if isinstance(change, kind)]
        for listener in listeners:
            listener(change)
