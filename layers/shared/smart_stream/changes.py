"""A list of callables told of changes, in the order they were added (storage writes, queue
changes): what the local server hangs its event delivery on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Listeners(Generic[F]):
    def __init__(self) -> None:
        self._listeners: list[F] = []

    def add(self, listener: F) -> None:
        self._listeners.append(listener)

    def remove(self, listener: F) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def __iter__(self) -> Iterator[F]:
        # A copy: a listener may add or remove listeners while it is told.
        return iter(list(self._listeners))
