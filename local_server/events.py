"""Events for the functions the template subscribes to a source, delivered in the background
and in order on a thread of their own, like the AWS service would (but never lost)."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

logger = logging.getLogger("local_server")


class EventDispatcher:
    """A worker thread that hands each queued event to ``deliver`` in turn."""

    #: Lambda retries a failed asynchronous or stream invocation twice by default.
    RETRIES = 2

    def __init__(self, name: str, active: bool) -> None:
        self.name = name
        self.active = active  # whether anything subscribes: if not, nothing is queued
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def put(self, event: dict[str, Any]) -> None:
        if self.active:
            self._queue.put(event)

    def start(self) -> None:
        if self.active and self._worker is None:
            self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=10)
            self._worker = None

    def drain(self) -> None:
        """Wait until every event queued so far has been handled."""
        self._queue.join()

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self.deliver(event)
            except Exception:  # a dispatcher bug must not stop the ones after it
                logger.exception("%s: an event could not be delivered", self.name)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def deliver(self, event: dict[str, Any]) -> None:
        raise NotImplementedError
