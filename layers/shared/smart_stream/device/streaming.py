"""The single-file device route: ``GET|HEAD /api/audio/{filename}`` with RFC 9110 ranges and
conditional requests, streamed from storage in chunks with constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from smart_stream.catalog import get_catalog
from smart_stream.device.asgi import device_app, device_request, read_ahead
from smart_stream.device.cache import DeviceCache
from smart_stream.device.conditions import (
    ByteRange,
    Outcome,
    evaluate_preconditions,
    http_date,
    select_range,
)
from smart_stream.domain.errors import AudioNotFoundError, ObjectChangedError
from smart_stream.domain.names import validate_filename
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.services import auth
from smart_stream.services.library import AUDIO_KIND
from smart_stream.settings import get_settings
from smart_stream.storage import ObjectStream, get_storage

CACHE_CONTROL = "private, max-age=300"


#: Audio records by filename (the single-file route).
records: DeviceCache[AudioRecord] = DeviceCache(lambda name: get_catalog().get_audio(name))


def _headers(record: AudioRecord) -> dict[str, str]:
    return {
        "Accept-Ranges": "bytes",
        "ETag": record.etag,
        "Last-Modified": http_date(record.uploaded_at),
        "Cache-Control": CACHE_CONTROL,
    }


def _lookup(filename: str) -> AudioRecord:
    record = records.get(filename)
    if record is None or record.status is not AudioStatus.READY:
        raise AudioNotFoundError(filename)
    return record


def _open(record: AudioRecord, byte_range: ByteRange | None) -> ObjectStream:
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, None)
    return get_storage().open_range(
        record.filename,
        start,
        end,
        if_match=record.etag,
        chunk_size=get_settings().stream_chunk_bytes,
    )


def _body(stream: ObjectStream) -> AsyncIterator[bytes]:
    # When the client goes away the body stops being consumed: storage reads stop with it.
    return read_ahead(iter(stream), stream.close)


async def stream_audio(request: Request) -> Response:
    filename = validate_filename(request.path_params["filename"])
    headers, credential = await device_request(request)
    # Twice at most: a cached record can name a version of the object that has since been
    # replaced (re-uploaded with ?overwrite=true); then answer from a fresh record rather
    # than fail the player with a 503.
    for attempt in range(2):
        record = await run_in_threadpool(_lookup, filename)
        await run_in_threadpool(
            auth.require_device,
            headers,
            credential,
            AUDIO_KIND,
            filename,
            record.credential_version,
        )

        response_headers = _headers(record)
        outcome = evaluate_preconditions(headers, record.etag, record.uploaded_at)
        if outcome is Outcome.NOT_MODIFIED:
            return Response(status_code=304, headers=response_headers)
        byte_range = select_range(headers, record.size, record.etag, record.uploaded_at)
        if byte_range is not None:
            status, length = 206, byte_range.length
            response_headers["Content-Range"] = byte_range.content_range
        else:
            status, length = 200, record.size
        response_headers["Content-Length"] = str(length)

        if request.method == "HEAD":
            return Response(status_code=status, headers=response_headers, media_type="audio/mpeg")
        try:
            stream = await run_in_threadpool(_open, record, byte_range)
        except (ObjectChangedError, AudioNotFoundError):
            # The object moved since the record was read (re-uploaded or deleted): forget the
            # record, and look again (a deleted file then answers 404).
            records.forget(filename)
            if attempt:
                raise
            continue
        return StreamingResponse(
            _body(stream), status_code=status, headers=response_headers, media_type="audio/mpeg"
        )
    raise AssertionError("unreachable")


def create_stream_app() -> Starlette:
    """The device function's ASGI app (also mounted by the local server)."""
    # :name so that a name with an encoded slash or line break reaches validation (400).
    return device_app(Route("/api/audio/{filename:name}", stream_audio, methods=["GET", "HEAD"]))
