"""PackQueueFunction: the catalogue's stream of queue changes -> each queue's pack.

DynamoDB Streams delivers every change of a queue item, in order for each queue, with its
old and new images (``NEW_AND_OLD_IMAGES``); the template's filter passes queue items only.
A record that fails is reported alone (``ReportBatchItemFailures``): it is retried, then
handed to the on-failure queue, without holding up the queues after it.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from smart_stream import packs
from smart_stream.api import logger
from smart_stream.catalog.dynamodb import queue_from_image

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def pack_one(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if change is None:
        return
    old = queue_from_image(change.old_image)
    new = queue_from_image(change.new_image)
    packs.queue_changed(old, new)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=pack_one, processor=processor, context=context
    )
