"""The queue device route: ``GET|HEAD /api/streams/{name}/stream.mp3``, one continuous MP3.

Finite modes (sequential, shuffle) answer like a file: exact Content-Length, strong ETag,
Range and conditional requests. Open modes (loop, endless-shuffle) are ``OpenStream``s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from smart_stream.device.app import device_app, device_request
from smart_stream.device.conditions import (
    Outcome,
    evaluate_preconditions,
    http_date,
    select_range,
)
from smart_stream.device.context import ContextProvider, DeviceContext
from smart_stream.device.open_stream import OPEN_CHUNK_BYTES, OpenStream
from smart_stream.device.read_ahead import read_ahead
from smart_stream.domain.credentials import QUEUE_KIND
from smart_stream.domain.errors import (
    AudioNotFoundError,
    ObjectChangedError,
    QueueEmptyError,
    QueueNotFoundError,
)
from smart_stream.domain.layout import FiniteLayout
from smart_stream.domain.names import validate_queue_name
from smart_stream.domain.play_order import cursor_key
from smart_stream.domain.records import PlayMode, QueueRecord
from smart_stream.http.requests import play_mode
from smart_stream.ports import Chunk
from smart_stream.services.urls import STREAM_ROUTE

FINITE_CACHE_CONTROL = "private, max-age=60"


def _record(context: DeviceContext, name: str) -> QueueRecord:
    record = context.queue_records.get(name)
    if record is None:
        raise QueueNotFoundError(name)
    return record


def finite_pieces(
    context: DeviceContext, name: str, layout: FiniteLayout, start: int, end: int
) -> Generator[Chunk, None, None]:
    """The stream's bytes ``start``..``end`` (inclusive): the title tag's part at once (the
    start never waits on storage), then the rest from the queue's pack when it has one (one
    read), else from the files' spans, read as storage reads them best."""
    head = len(layout.prefix)
    if start < head:
        yield layout.prefix[start : min(end + 1, head)]
        start = head
    if start > end:
        return
    pack = context.packs.open(name, layout, start, end, context.chunk_bytes)
    if pack is not None:
        try:
            yield from pack
        finally:
            pack.close()  # a hang-up stops the read under way
        return
    reads = context.storage.read_spans(layout.spans(start, end), chunk_size=context.chunk_bytes)
    try:
        yield from reads
    except (ObjectChangedError, AudioNotFoundError):
        # A file changed after the record was read (a cached record, or a re-upload in
        # between): this response is cut short; the player's retry reads the queue afresh.
        context.queue_records.forget(name)
        raise
    finally:
        reads.close()  # a hang-up stops the storage reads under way


def _drain(chunks: Generator[Chunk, None, None]) -> AsyncIterator[Chunk]:
    # Closing the generator closes the storage read under way: nothing more is read.
    return read_ahead(chunks, chunks.close)


async def _queue_stream(request: Request, context: DeviceContext) -> Response:
    name = validate_queue_name(request.path_params["name"])
    headers, credential = await device_request(request, context.access)
    record = await run_in_threadpool(_record, context, name)
    await run_in_threadpool(
        context.access.require_device,
        headers,
        credential,
        QUEUE_KIND,
        name,
        record.credential_version,
    )
    mode = play_mode(request.query_params.get("play_mode"), record.play_mode)
    if not record.entries:
        raise QueueEmptyError(f"The queue {name!r} has no files left to play.")
    if mode.finite:
        return await _finite(request, context, record, mode, headers)
    return await _open(request, context, record, mode, credential)


async def _finite(
    request: Request,
    context: DeviceContext,
    record: QueueRecord,
    mode: PlayMode,
    headers: dict[str, str],
) -> Response:
    layout = context.layouts.finite(record, mode)
    response_headers = {
        "Accept-Ranges": "bytes",
        "ETag": layout.etag,
        "Last-Modified": http_date(record.updated_at),
        "Cache-Control": FINITE_CACHE_CONTROL,
    }
    if evaluate_preconditions(headers, layout.etag, record.updated_at) is Outcome.NOT_MODIFIED:
        return Response(status_code=304, headers=response_headers)
    byte_range = select_range(headers, layout.size, layout.etag, record.updated_at)
    if byte_range is not None:
        status, start, end = 206, byte_range.start, byte_range.end
        response_headers["Content-Range"] = byte_range.content_range
    else:
        status, start, end = 200, 0, layout.size - 1
    response_headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=response_headers, media_type="audio/mpeg")
    chunks = finite_pieces(context, record.name, layout, start, end)
    return StreamingResponse(
        _drain(chunks), status_code=status, headers=response_headers, media_type="audio/mpeg"
    )


async def _open(
    request: Request,
    context: DeviceContext,
    record: QueueRecord,
    mode: PlayMode,
    credential: str | None,
) -> Response:
    response_headers = {"Cache-Control": "no-store", "Accept-Ranges": "none"}
    if request.method == "HEAD":
        return Response(status_code=200, headers=response_headers, media_type="audio/mpeg")
    # Made off the event loop: the first one imports mutagen.
    title_tag = await run_in_threadpool(context.layouts.title_tag, record.title)
    stream = OpenStream(
        record,
        mode,
        cursor_key(record.name, mode, credential),
        catalog=context.catalog,
        storage=context.storage,
        title_tag=title_tag,
        clock=context.clock,
        session_seconds=context.session_seconds,
        session_bytes=context.session_bytes,
        chunk_size=min(context.chunk_bytes, OPEN_CHUNK_BYTES),
    )
    return StreamingResponse(
        _drain(stream.chunks()), status_code=200, headers=response_headers, media_type="audio/mpeg"
    )


def create_queue_stream_app(context: ContextProvider) -> Starlette:
    """The queue device function's ASGI app (also mounted by the local server)."""

    async def queue_stream(request: Request) -> Response:
        return await _queue_stream(request, context())

    return device_app(Route(STREAM_ROUTE, queue_stream, methods=["GET", "HEAD"]), name="queue")
