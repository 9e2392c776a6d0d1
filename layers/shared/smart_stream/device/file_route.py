"""The single-file device route: ``GET|HEAD /api/audio/{filename}`` with RFC 9110 ranges and
conditional requests, streamed from storage in chunks with constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from smart_stream.device.app import device_app, device_request, register_name_convertor
from smart_stream.device.conditions import (
    ByteRange,
    Outcome,
    evaluate_preconditions,
    http_date,
    select_range,
)
from smart_stream.device.context import ContextProvider, DeviceContext
from smart_stream.device.read_ahead import read_ahead
from smart_stream.domain.credentials import AUDIO_KIND
from smart_stream.domain.errors import AudioNotFoundError, ObjectChangedError
from smart_stream.domain.names import validate_filename
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import Chunk, ObjectStream
from smart_stream.services.urls import AUDIO_ROUTE

CACHE_CONTROL = "private, max-age=300"


def _headers(record: AudioRecord) -> dict[str, str]:
    return {
        "Accept-Ranges": "bytes",
        "ETag": record.etag,
        "Last-Modified": http_date(record.uploaded_at),
        "Cache-Control": CACHE_CONTROL,
    }


def _lookup(context: DeviceContext, filename: str) -> AudioRecord:
    record = context.audio_records.get(filename)
    if record is None or record.status is not AudioStatus.READY:
        raise AudioNotFoundError(filename)
    return record


def _open(
    context: DeviceContext, record: AudioRecord, byte_range: ByteRange | None
) -> ObjectStream:
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, None)
    return context.storage.open_range(
        record.filename, start, end, if_match=record.etag, chunk_size=context.chunk_bytes
    )


def _body(stream: ObjectStream) -> AsyncIterator[Chunk]:
    # When the client goes away the body stops being consumed: storage reads stop with it.
    return read_ahead(iter(stream), stream.close)


async def _stream_audio(request: Request, context: DeviceContext) -> Response:
    filename = validate_filename(request.path_params["filename"])
    headers, credential = await device_request(request, context.access)
    # Twice at most: a cached record can name a version of the object that has since been
    # replaced (re-uploaded with ?overwrite=true); then answer from a fresh record rather
    # than fail the player with a 503.
    for attempt in range(2):
        record = await run_in_threadpool(_lookup, context, filename)
        await run_in_threadpool(
            context.access.require_device,
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
            stream = await run_in_threadpool(_open, context, record, byte_range)
        except (ObjectChangedError, AudioNotFoundError):
            # The object moved since the record was read (re-uploaded or deleted): forget the
            # record, and look again (a deleted file then answers 404).
            context.audio_records.forget(filename)
            if attempt:
                raise
            continue
        return StreamingResponse(
            _body(stream), status_code=status, headers=response_headers, media_type="audio/mpeg"
        )
    raise AssertionError("unreachable")


def create_stream_app(context: ContextProvider) -> Starlette:
    """The device function's ASGI app (also mounted by the local server)."""

    async def stream_audio(request: Request) -> Response:
        return await _stream_audio(request, context())

    register_name_convertor()
    # :name so that a name with an encoded slash or line break reaches validation (400).
    return device_app(Route(AUDIO_ROUTE, stream_audio, methods=["GET", "HEAD"]), name="file")
