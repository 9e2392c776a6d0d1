"""ConvertAudioFunction: uploads kept under ``incoming/`` become house MP3s in the library.

Two triggers:
- the bucket's "Object Created" events, through EventBridge, for ``incoming/`` keys only
  (the template's rule): ``Conversions.convert_incoming`` converts an upload to the house MP3
  and catalogues it (an upload URL's house MP3 is copied as it is, and catalogued by the
  metadata function); ``Stories.speak_job`` speaks a long story. Either removes what waited.
  EventBridge delivers at least once and in any order, but what waits has a key of its own
  (``incoming/<id>/``, written once), so no sequencer is needed:
  a retried event starts again from the start, and one that comes twice, or after a delete
  or a newer upload won, finds no record waiting for that upload, which is then removed;
- an hourly schedule (an EventBridge "Scheduled Event"): ``Upkeep.sweep`` marks
  conversions whose heartbeat stopped (a timeout, an out-of-memory kill) invalid, and
  converts non-house MP3s in the library in place.

A failing conversion is recorded on its file (``invalid``, with the reason); only a failing
service raises, for Lambda to retry and then hand to the on-failure destination.
"""

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent

from smart_stream.bootstrap import services
from smart_stream.domain.names import INCOMING_PREFIX, is_story_key
from smart_stream.ports import ObjectInfo
from smart_stream.telemetry import entry_point, logger


@entry_point
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    root = services()
    root.migrate()  # this function writes the catalogue: its schema comes forward first
    if event.get("detail-type") == "Scheduled Event":
        root.upkeep.sweep()
        return {"swept": True}
    s3 = S3EventBridgeNotificationEvent(event)
    s3_object = s3.detail.object
    # The key as stored (not URL-encoded in EventBridge's S3 events; see extract_metadata).
    key: str = s3_object["key"]
    if s3.detail_type != "Object Created" or not key.startswith(INCOMING_PREFIX):
        logger.info("not an upload to convert", extra={"key": key})
        return {"handled": 0}
    upload = ObjectInfo(
        name=key,
        size=s3_object.size or 0,
        etag=f'"{s3_object.etag}"',  # EventBridge's is unquoted; an ObjectInfo's is quoted
        last_modified=datetime.fromisoformat(s3.time.replace("Z", "+00:00")),
    )
    logger.info("converting", extra={"key": key, "sequencer": s3_object.sequencer})
    if is_story_key(key):
        root.stories.speak_job(upload)  # a long story, spoken in the background
    else:
        root.conversions.convert_incoming(upload)
    return {"handled": 1}
