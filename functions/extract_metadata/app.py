"""ExtractMetadataFunction: S3 ObjectCreated/ObjectRemoved -> the Catalog.

S3 delivers events at least once and in no particular order; the pipeline drops duplicates
and stale events by the records' sequencers. A file that is not audio is catalogued as
invalid with its reason (never retried); only a failing service raises, for Lambda to retry
and then hand to the on-failure destination.
"""

from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source

from smart_stream.http.api import logger
from smart_stream.services import metadata


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: Any) -> dict[str, int]:
    handled = 0
    for record in event.records:
        s3_object = record.s3.get_object
        name = unquote_plus(s3_object.key)  # keys arrive URL-encoded
        if record.event_name.startswith("ObjectRemoved"):
            metadata.object_removed(name, sequencer=s3_object.sequencer)
        else:
            metadata.object_created(
                name,
                size=s3_object.size,
                etag=s3_object.etag,
                uploaded_at=datetime.fromisoformat(record.event_time.replace("Z", "+00:00")),
                sequencer=s3_object.sequencer,
            )
        handled += 1
    return {"handled": handled}
