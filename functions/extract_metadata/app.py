"""ExtractMetadataFunction: the bucket's "Object Created" / "Object Deleted" events, through
EventBridge, for library files (the template's rule leaves out ``incoming/`` and ``packs/``)
-> the Catalog.

EventBridge delivers S3's events at least once and in no particular order, one object an
event; the pipeline drops duplicates and stale events by the object's ``sequencer``. A file
that is not audio is catalogued as invalid with its reason (never retried); only a failing
service raises, for Lambda to retry and then hand to the on-failure destination.
"""

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import (
    S3EventBridgeNotificationEvent,
    event_source,
)

from smart_stream.bootstrap import services
from smart_stream.ports import ObjectInfo
from smart_stream.telemetry import entry_point


@entry_point
@event_source(data_class=S3EventBridgeNotificationEvent)
def lambda_handler(event: S3EventBridgeNotificationEvent, context: Any) -> dict[str, int]:
    root = services()
    root.migrate()  # this function writes the catalogue: its schema comes forward first
    s3_object = event.detail.object
    # The key as stored: S3 URL-encodes keys in its own notifications, not in the events it
    # sends EventBridge (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html),
    # so the raw field, not Powertools' ``key`` (which URL-decodes it: "a+b.mp3" -> "a b.mp3").
    name: str = s3_object["key"]
    if event.detail_type == "Object Deleted":
        root.pipeline.object_removed(name, sequencer=s3_object.sequencer)
    elif event.detail_type == "Object Created":
        stored = ObjectInfo(
            name=name,
            size=s3_object.size or 0,
            etag=s3_object.etag,
            last_modified=datetime.fromisoformat(event.time.replace("Z", "+00:00")),
        )
        root.pipeline.object_created(stored, sequencer=s3_object.sequencer)
    else:  # the rule sends nothing else
        return {"handled": 0}
    return {"handled": 1}
