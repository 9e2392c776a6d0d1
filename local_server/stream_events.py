"""Real-shaped DynamoDB stream records for local queue changes, and scheduled events,
delivered to the functions the template subscribes to them (``PackQueueFunction``).

Deployed, DynamoDB Streams sends a record for every write to the table (``KEYS_ONLY``: which
item changed), and EventBridge runs the schedules. Locally the catalogue adapter tells the
change feed of each queue write; each becomes the record the stream would carry, one per
batch.
Each scheduled function runs once at start-up (catching up with what changed while the
server was stopped), on the same worker, so it never overlaps a change being handled.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from local_server.events import EventDispatcher
from local_server.lambda_bridge import LocalLambdaContext, load_handler
from local_server.patterns import matches  # the filters' syntax is EventBridge's
from local_server.template import FunctionSpec, StreamSubscription
from smart_stream.adapters.aws.dynamo_items import QUEUE_PK
from smart_stream.changes import QueueChanged

logger = logging.getLogger("local_server")

_STREAM_ARN = "arn:aws:dynamodb:local:000000000000:table/local-catalog/stream/local"
_SCHEDULED = "Scheduled Event"


def stream_record(change: QueueChanged, sequence: int) -> dict[str, Any]:
    """The stream record of one queue change (a ``KEYS_ONLY`` stream: the item's key)."""
    keys = {"pk": {"S": QUEUE_PK}, "sk": {"S": change.name}}
    event_name = "INSERT" if not change.existed else "MODIFY" if change.exists else "REMOVE"
    return {
        "eventID": f"local-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": int(time.time()),
            "Keys": keys,
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": len(str(keys)),
            "StreamViewType": "KEYS_ONLY",
        },
        "eventSourceARN": _STREAM_ARN,
    }


def scheduled_event(function: FunctionSpec) -> dict[str, Any]:
    """What EventBridge sends a function on its schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _SCHEDULED,
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:local:000000000000:rule/{function.logical_id}"],
        "detail": {},
    }


class CatalogStreamDispatcher(EventDispatcher):
    """A change-feed listener: each queue change, as a stream record, to every subscribed
    function whose filters let it through; and, when asked, each scheduled function's
    event. A record the function reports as failed (or a function that raises) is delivered
    again, twice at most, as Lambda retries a stream."""

    def __init__(
        self, subscriptions: list[StreamSubscription], schedules: Sequence[FunctionSpec] = ()
    ) -> None:
        super().__init__("catalog-stream", bool(subscriptions) or bool(schedules))
        self.subscriptions = subscriptions
        self.schedules = list(schedules)
        self._sequence = itertools.count(1)

    def __call__(self, change: QueueChanged) -> None:
        if self.subscriptions:
            self.put(stream_record(change, next(self._sequence)))

    def run_schedules(self) -> None:
        for function in self.schedules:
            self.put({"function": function, "event": scheduled_event(function)})

    def deliver(self, item: dict[str, Any]) -> None:
        if "function" in item:
            self._invoke(item["function"], item["event"], "the schedule")
            return
        for subscription in self.subscriptions:
            patterns = subscription.patterns
            if patterns and not any(matches(p, item) for p in patterns):
                continue
            self._invoke(subscription.function, {"Records": [item]}, item["eventID"])

    def _invoke(self, function: FunctionSpec, event: dict[str, Any], what: str) -> None:
        name = function.logical_id
        handler = load_handler(function)
        for attempt in range(1, self.RETRIES + 2):
            try:
                answer = handler(event, LocalLambdaContext(name, 900))
            except Exception:
                logger.exception("%s failed on %s (attempt %d)", name, what, attempt)
                continue
            if not (answer or {}).get("batchItemFailures"):
                return
            logger.warning("%s reported %s failed (attempt %d)", name, what, attempt)
