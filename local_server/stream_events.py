"""Real-shaped DynamoDB stream records for local queue changes, delivered to the functions
the template subscribes to the catalogue's stream (``PackQueueFunction``).

Deployed, DynamoDB Streams sends them for every write to the table; locally ``queues`` tells
its listeners of each queue change it makes, with the old and the new record, and this
turns each into the record the stream would carry (``NEW_AND_OLD_IMAGES``), one per batch.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from local_server.events import EventDispatcher
from local_server.lambda_bridge import LocalLambdaContext, load_handler
from local_server.template import StreamSubscription
from smart_stream.catalog.dynamodb import queue_item
from smart_stream.models import QueueRecord

logger = logging.getLogger("local_server")

_STREAM_ARN = "arn:aws:dynamodb:local:000000000000:table/local-catalog/stream/local"


def stream_record(
    old: QueueRecord | None, new: QueueRecord | None, sequence: int
) -> dict[str, Any]:
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "SequenceNumber": f"{sequence:021d}",
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = queue_item(new)
    if old is not None:
        change["OldImage"] = queue_item(old)
    image = change.get("NewImage") or change["OldImage"]
    change["Keys"] = {"pk": image["pk"], "sk": image["sk"]}
    change["SizeBytes"] = sum(len(str(v)) for v in image.values())
    return {
        "eventID": f"local-{sequence}",
        "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": _STREAM_ARN,
    }


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style pattern matching, the subset the template's filters use: objects
    match field by field, and a list of values matches any one of them."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and matches(sub, value[key]) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        return value in pattern
    return bool(pattern == value)


class CatalogStreamDispatcher(EventDispatcher):
    """A ``queues`` listener: each queue change, as a stream record, to every subscribed
    function whose filters let it through. A record the function reports as failed (or a
    function that raises) is delivered again, twice at most, as Lambda retries a stream."""

    def __init__(self, subscriptions: list[StreamSubscription]) -> None:
        super().__init__("catalog-stream", bool(subscriptions))
        self.subscriptions = subscriptions
        self._sequence = itertools.count(1)

    def __call__(self, old: QueueRecord | None, new: QueueRecord | None) -> None:
        if self.active:
            self.put(stream_record(old, new, next(self._sequence)))

    def deliver(self, record: dict[str, Any]) -> None:
        for subscription in self.subscriptions:
            patterns = subscription.patterns
            if patterns and not any(matches(p, record) for p in patterns):
                continue
            name = subscription.function.logical_id
            handler = load_handler(subscription.function)
            event_id = record["eventID"]
            for attempt in range(1, self.RETRIES + 2):
                try:
                    answer = handler({"Records": [record]}, LocalLambdaContext(name, 900))
                except Exception:
                    logger.exception("%s failed on %s (attempt %d)", name, event_id, attempt)
                    continue
                if not (answer or {}).get("batchItemFailures"):
                    break
                logger.warning("%s reported %s failed (attempt %d)", name, event_id, attempt)
