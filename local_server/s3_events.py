"""Real-shaped S3 notifications for local writes, delivered to the functions the template
subscribes to the bucket, in the background and in order, like S3 (but never lost)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from local_server.events import EventDispatcher
from local_server.lambda_bridge import LocalLambdaContext, load_handler
from local_server.template import S3Subscription
from smart_stream.changes import ObjectChanged
from smart_stream.ports import ObjectInfo

logger = logging.getLogger("local_server")

LOCAL_BUCKET = "local-audio"
_EVENT_NAMES = {"ObjectCreated": "ObjectCreated:Put", "ObjectRemoved": "ObjectRemoved:Delete"}


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
    obj: dict[str, Any] = {"key": quote_plus(info.name), "sequencer": sequencer}
    if kind == "ObjectCreated":
        obj.update(size=info.size, eTag=info.etag.strip('"'))
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": _event_time(info),
                "eventName": _EVENT_NAMES[kind],
                "userIdentity": {"principalId": "local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": sequencer, "x-amz-id-2": "local"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "local",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "local"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def _event_time(info: ObjectInfo) -> str:
    # S3 stamps an event with the time the object was written.
    moment = info.last_modified or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _subscribed(patterns: tuple[str, ...], event_name: str) -> bool:
    full = f"s3:{event_name}"
    return any(p == full or (p.endswith("*") and full.startswith(p[:-1])) for p in patterns)


class S3EventDispatcher(EventDispatcher):
    """Takes storage changes (a ``storage.local`` listener) and calls subscribed handlers on a
    worker thread. A handler that raises is retried twice, as Lambda does for async events."""

    def __init__(self, subscriptions: list[S3Subscription]) -> None:
        super().__init__("s3-events", bool(subscriptions))
        self.subscriptions = subscriptions
        self.sequencer = Sequencer()

    def __call__(self, kind: str, info: ObjectInfo) -> None:
        if self.active:
            self.put(s3_event(kind, info, self.sequencer.next()))

    def on_change(self, change: ObjectChanged) -> None:
        self(change.kind, change.info)

    def deliver(self, event: dict[str, Any]) -> None:
        name = event["Records"][0]["eventName"]
        for subscription in self.subscriptions:
            if not _subscribed(subscription.events, name):
                continue
            handler = load_handler(subscription.function)
            for attempt in range(self.RETRIES + 1):
                try:
                    handler(event, LocalLambdaContext(subscription.function.logical_id, 900))
                    break
                except Exception:
                    logger.exception(
                        "%s failed on %s (attempt %d)",
                        subscription.function.logical_id,
                        name,
                        attempt + 1,
                    )
