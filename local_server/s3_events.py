"""The bucket's events for local writes, shaped as S3 sends them to EventBridge, delivered to
the functions whose rules in the template match them.

Deployed, S3 sends every change of the bucket to EventBridge, whose rules route it by key
(``template.yaml``: library files to the metadata function, ``incoming/`` uploads to the
conversion function, packs to neither), and EventBridge invokes each function
asynchronously: Lambda retries a failed invocation twice. Locally each subscribed function
has a worker thread of its own, handling its events in order, so a long conversion never
holds up the metadata of other files, nor a request (the writer only queues). An event is
retried as Lambda would, then logged and left (never lost in between). Routing looks at
nothing but the rules: whatever key storage announces is matched the same way.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from local_server.events import EventDispatcher
from local_server.lambda_bridge import LocalLambdaContext, load_handler
from local_server.patterns import matches
from local_server.stream_events import scheduled_event
from local_server.template import LOCAL_BUCKET, EventRule, FunctionSpec
from smart_stream.changes import ObjectChanged
from smart_stream.ports import ObjectInfo

logger = logging.getLogger("local_server")

LOCAL_ACCOUNT = "000000000000"
_DETAIL_TYPES = {"ObjectCreated": "Object Created", "ObjectRemoved": "Object Deleted"}


class Sequencer:
    """S3's per-key ``sequencer``: hex that only grows, compared as a string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:020X}"


def s3_event(
    kind: str, info: ObjectInfo, sequencer: str, bucket: str = LOCAL_BUCKET
) -> dict[str, Any]:
    """What EventBridge receives from S3 for one object created or deleted (the S3 user
    guide's "EventBridge event message structure"): the key as it is, not URL-encoded as in
    S3's own notifications; the etag without quotes; size and etag only when created."""
    obj: dict[str, Any] = {"key": info.name}
    detail: dict[str, Any] = {"version": "0", "bucket": {"name": bucket}, "object": obj}
    if kind == "ObjectCreated":
        obj.update(size=info.size, etag=info.etag.strip('"'))
        reason = {"reason": "PutObject"}
    else:
        reason = {"reason": "DeleteObject", "deletion-type": "Permanently Deleted"}
    obj["sequencer"] = sequencer
    detail.update(
        {"request-id": sequencer, "requester": LOCAL_ACCOUNT, "source-ip-address": "127.0.0.1"}
    )
    detail.update(reason)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _DETAIL_TYPES[kind],
        "source": "aws.s3",
        "account": LOCAL_ACCOUNT,
        "time": _event_time(info),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


def _event_time(info: ObjectInfo) -> str:
    # S3 stamps an event with the time of the write; EventBridge's "time" has whole seconds.
    moment = info.last_modified or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _what(event: dict[str, Any]) -> str:
    key = event.get("detail", {}).get("object", {}).get("key")
    return f"{event.get('detail-type')} {key!r}" if key is not None else "the schedule"


class FunctionWorker(EventDispatcher):
    """One function's events, one at a time and in order, on a thread of its own."""

    def __init__(self, function: FunctionSpec) -> None:
        super().__init__(f"events-{function.logical_id}", True)
        self.function = function

    def pending(self) -> int:
        """Events queued and not yet handled."""
        return self._queue.unfinished_tasks

    def deliver(self, event: dict[str, Any]) -> None:
        name = self.function.logical_id
        handler = load_handler(self.function)
        for attempt in range(1, self.RETRIES + 2):
            try:
                handler(event, LocalLambdaContext(name, 900))
                return
            except Exception:
                logger.exception("%s failed on %s (attempt %d)", name, _what(event), attempt)


class S3EventDispatcher:
    """A storage-change listener (and the directory watcher's ``emit``): each change, as the
    event S3 sends EventBridge, to every rule that matches it, on the worker of the rule's
    function. Scheduled functions with a worker here run on it when asked."""

    RETRIES = EventDispatcher.RETRIES

    def __init__(self, rules: list[EventRule], schedules: Sequence[FunctionSpec] = ()) -> None:
        self.rules = rules
        self.sequencer = Sequencer()
        self.workers: dict[str, FunctionWorker] = {}
        for rule in rules:
            self.workers.setdefault(rule.function.logical_id, FunctionWorker(rule.function))
        #: The scheduled functions this dispatcher runs (those subscribed to the bucket).
        self.schedules = [f for f in schedules if f.logical_id in self.workers]

    @property
    def active(self) -> bool:
        return bool(self.workers)

    def __call__(self, kind: str, info: ObjectInfo) -> None:
        if self.workers:
            self.publish(s3_event(kind, info, self.sequencer.next()))

    def on_change(self, change: ObjectChanged) -> None:
        self(change.kind, change.info)

    def publish(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for each function with a rule that matches it (once per rule, as
        EventBridge invokes a target once per matching rule)."""
        for rule in self.rules:
            if matches(rule.pattern, event):
                self.workers[rule.function.logical_id].put(copy.deepcopy(event))

    def run_schedules(self) -> None:
        for function in self.schedules:
            self.workers[function.logical_id].put(scheduled_event(function))

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def drain(self) -> None:
        """Wait until every event queued so far has been handled, and every event those
        led to (a conversion's MP3, then its metadata)."""
        while True:
            for worker in self.workers.values():
                worker.drain()
            # A worker queues for another before its own event is done: all idle is all done.
            if all(worker.pending() == 0 for worker in self.workers.values()):
                return
