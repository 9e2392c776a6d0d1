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

from smart_stream.bootstrap import services
from smart_stream.http.resolver import logger
from smart_stream.ports import ObjectInfo


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: Any) -> dict[str, int]:
    root = services()
    root.migrate()  # this function writes the catalogue: its schema comes forward first
    handled = 0
    for record in event.records:
        s3_object = record.s3.get_object
        name = unquote_plus(s3_object.key)  # keys arrive URL-encoded
        if record.event_name.startswith("ObjectRemoved"):
            root.pipeline.object_removed(name, sequencer=s3_object.sequencer)
        else:
            stored = ObjectInfo(
                name=name,
                size=s3_object.size,
                etag=s3_object.etag,
                last_modified=datetime.fromisoformat(record.event_time.replace("Z", "+00:00")),
            )
            root.pipeline.object_created(stored, sequencer=s3_object.sequencer)
        handled += 1
    return {"handled": handled}
