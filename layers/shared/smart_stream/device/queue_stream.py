"""The queue device route: ``GET|HEAD /api/streams/{name}/stream.mp3``, one continuous MP3.

Finite modes (sequential, shuffle) answer like a file: exact Content-Length, strong ETag,
Range and conditional requests. Open modes (loop, endless-shuffle) stream until just before
the function's deadline, end on a frame boundary, and leave a cursor so that the next request
on the same URL carries on where this one stopped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Generator, Iterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from smart_stream.audio.frames import parse_frame_header
from smart_stream.catalog import get_catalog
from smart_stream.device.asgi import device_app, device_request, read_ahead
from smart_stream.device.conditions import Outcome, evaluate_preconditions, http_date, select_range
from smart_stream.domain.errors import AudioNotFoundError, NotFoundError, ObjectChangedError
from smart_stream.domain.records import PlayMode, QueueRecord, StreamCursor
from smart_stream.services import auth, packs, queues
from smart_stream.settings import get_settings
from smart_stream.storage import Chunk, get_storage

FINITE_CACHE_CONTROL = "private, max-age=60"


class QueueEmptyError(NotFoundError):
    code = "queue_empty"


def _finite_pieces(
    name: str, layout: queues.FiniteLayout, start: int, end: int, chunk_size: int
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
    pack = packs.open_pack(name, layout, start, end, chunk_size)
    if pack is not None:
        try:
            yield from pack
        finally:
            pack.close()  # a hang-up stops the read under way
        return
    reads = get_storage().read_spans(layout.spans(start, end), chunk_size=chunk_size)
    try:
        yield from reads
    except (ObjectChangedError, AudioNotFoundError):
        # A file changed after the record was read (a cached record, or a re-upload in
        # between): this response is cut short; the player's retry reads the queue afresh.
        queues.device_records.forget(name)
        raise
    finally:
        reads.close()  # a hang-up stops the storage reads under way


def _drain(chunks: Generator[Chunk, None, None]) -> AsyncIterator[Chunk]:
    # Closing the generator closes the storage read under way: nothing more is read.
    return read_ahead(chunks, chunks.close)


def _whole_frames(chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Re-cut a run of audio frames into pieces that each end on a frame boundary."""
    carry = b""
    for chunk in chunks:
        buf = carry + chunk
        pos = 0
        while len(buf) - pos >= 4:
            header = parse_frame_header(buf, pos)
            if header is None:
                pos = len(buf)  # not a frame (never inside a span): pass it on whole
                break
            if pos + header.length > len(buf):
                break
            pos += header.length
        if pos:
            yield buf[:pos]
        carry = buf[pos:]
    if carry:
        yield carry


class OpenStream:
    """An open-ended (loop / endless-shuffle) stream of one device URL."""

    def __init__(self, record: QueueRecord, mode: PlayMode, key: str) -> None:
        settings = get_settings()
        self.record = record
        self.mode = mode
        self.key = key
        self.deadline = time.monotonic() + settings.stream_session_seconds
        self.byte_budget = settings.stream_session_bytes
        self.chunk_size = min(settings.stream_chunk_bytes, 64 * 1024)
        self._current: Iterator[bytes] | None = None

    def _start(self) -> StreamCursor:
        catalog = get_catalog()
        cursor = catalog.get_cursor(self.key)
        if cursor is None or cursor.queue_version != self.record.version:
            # A new URL, or the queue changed: start from the top of the current round.
            cursor = StreamCursor(
                queue_version=self.record.version, round=cursor.round if cursor else 0
            )
        if cursor.index >= len(self.record.entries):
            cursor = cursor.model_copy(update={"round": cursor.round + 1, "index": 0, "offset": 0})
        return cursor

    def _advance(self, cursor: StreamCursor) -> StreamCursor:
        index = cursor.index + 1
        if index >= len(self.record.entries):
            return cursor.model_copy(update={"round": cursor.round + 1, "index": 0, "offset": 0})
        return cursor.model_copy(update={"index": index, "offset": 0})

    def chunks(self) -> Generator[bytes, None, None]:
        catalog = get_catalog()
        storage = get_storage()
        cursor = self._start()
        sent = 0
        prefix = queues.title_tag(self.record.title)
        yield prefix
        sent += len(prefix)
        while True:
            order = queues.round_order(self.record, self.mode, cursor.round)
            entry = self.record.entries[order[cursor.index]]
            # The file boundary: a reconnect from here on hears the next file, not this one again.
            catalog.put_cursor(self.key, self._advance(cursor))
            stream = storage.open_range(
                entry.filename,
                entry.audio_start + cursor.offset,
                entry.audio_end - 1,
                if_match=entry.etag,
                chunk_size=self.chunk_size,
            )
            offset = cursor.offset
            try:
                for run in _whole_frames(iter(stream)):
                    if time.monotonic() >= self.deadline or sent + len(run) > self.byte_budget:
                        # Stop on this frame boundary; the next request starts right here.
                        catalog.put_cursor(self.key, cursor.model_copy(update={"offset": offset}))
                        return
                    yield run
                    sent += len(run)
                    offset += len(run)
            finally:
                stream.close()
            cursor = self._advance(cursor)


async def queue_stream(request: Request) -> Response:
    name = queues.validate_queue_name(request.path_params["name"])
    headers, credential = await device_request(request)
    record = await run_in_threadpool(queues.device_record, name)
    await run_in_threadpool(
        auth.require_device, headers, credential, queues.QUEUE_KIND, name, record.credential_version
    )
    mode = queues.parse_mode(request.query_params.get("play_mode"), record.play_mode)
    if not record.entries:
        raise QueueEmptyError(f"The queue {name!r} has no files left to play.")
    if mode.finite:
        return await _finite(request, record, mode, headers)
    return await _open(request, record, mode, credential)


async def _finite(
    request: Request, record: QueueRecord, mode: PlayMode, headers: dict[str, str]
) -> Response:
    layout = queues.finite_layout(record, mode)
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
    chunks = _finite_pieces(record.name, layout, start, end, get_settings().stream_chunk_bytes)
    return StreamingResponse(
        _drain(chunks), status_code=status, headers=response_headers, media_type="audio/mpeg"
    )


async def _open(
    request: Request, record: QueueRecord, mode: PlayMode, credential: str | None
) -> Response:
    response_headers = {"Cache-Control": "no-store", "Accept-Ranges": "none"}
    if request.method == "HEAD":
        return Response(status_code=200, headers=response_headers, media_type="audio/mpeg")
    stream = OpenStream(record, mode, queues.cursor_key(record.name, mode, credential))
    return StreamingResponse(
        _drain(stream.chunks()), status_code=200, headers=response_headers, media_type="audio/mpeg"
    )


def create_queue_stream_app() -> Starlette:
    """The queue device function's ASGI app (also mounted by the local server)."""
    return device_app(
        Route("/api/streams/{name}/stream.mp3", queue_stream, methods=["GET", "HEAD"])
    )
