"""PackQueueFunction: each queue's pack kept as the queue is.

Two triggers:
- the catalogue's DynamoDB stream (``KEYS_ONLY``; the template's filter passes queue items
  only): each record names a queue that changed, and ``Packs.sync`` makes its packs match
  the queue as the catalogue has it now. A record that fails is reported alone
  (``ReportBatchItemFailures``): the records before it are done with, and the batch is
  retried from it (twice, then its place goes to the failure queue);
- an hourly schedule (an EventBridge "Scheduled Event"): ``Packs.sweep`` catches up with
  every queue, whatever changes were missed.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from smart_stream.bootstrap import services
from smart_stream.telemetry import entry_point

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def pack_one(record: DynamoDBRecord) -> None:
    keys = record.dynamodb.keys if record.dynamodb else None
    if keys and keys.get("sk"):
        services().packs.sync(str(keys["sk"]))


@entry_point
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" not in event:  # the schedule
        services().packs.sweep()
        return {"swept": True}
    return dict(
        process_partial_response(
            event=event, record_handler=pack_one, processor=processor, context=context
        )
    )
