"""The catalogue table's keys and item shapes, and the one translation of DynamoDB's
failures into domain errors (no AWS error text ever reaches a client)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from smart_stream.domain.errors import ServiceUnavailableError
from smart_stream.domain.records import AudioStatus, QueueRecord

AUDIO_PK = "AUDIO"
QUEUE_PK = "QUEUE"
CURSOR_PK = "CURSOR"
VALUE_PK = "VALUE"
SCHEMA_KEY = {"pk": {"S": "SCHEMA"}, "sk": {"S": "VERSION"}}
T = TypeVar("T")


def guard(call: Callable[[], T]) -> T:
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise ServiceUnavailableError("The catalogue is unavailable; try again shortly.") from exc


def conditional(call: Callable[[], object]) -> bool:
    """A conditional write: False when its condition failed (another writer got there first)."""
    try:
        call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise ServiceUnavailableError("The catalogue is unavailable; try again shortly.") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailableError("The catalogue is unavailable; try again shortly.") from exc
    return True


def status_filter(statuses: Collection[AudioStatus]) -> tuple[str, dict[str, Any]]:
    names = [f":s{i}" for i in range(len(statuses))]
    values = {name: {"S": status.value} for name, status in zip(names, statuses, strict=True)}
    return f"#status IN ({', '.join(names)})", values


def queue_item(record: QueueRecord) -> dict[str, Any]:
    """A queue's item, in DynamoDB's typed JSON."""
    return {
        "pk": {"S": QUEUE_PK},
        "sk": {"S": record.name},
        "version": {"N": str(record.version)},
        "record": {"S": record.model_dump_json()},
    }
