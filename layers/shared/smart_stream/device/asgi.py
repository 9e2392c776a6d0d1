"""Shared pieces of the ASGI (Starlette) apps: the device functions behind the Lambda Web
Adapter, and the local server. Errors come out as the same JSON as the management API's."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smart_stream.domain.errors import ForbiddenError, SmartStreamError
from smart_stream.http.errors import INTERNAL_ERROR, error_response
from smart_stream.services import auth
from smart_stream.storage.base import Chunk

logger = logging.getLogger("smart_stream")


class NameConvertor(Convertor[str]):
    """A path parameter that takes anything, slashes and line breaks included, so that every
    bad name reaches validation and gets its clear 400 (Starlette's ``path`` stops at a line
    break, which would make a 404)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


#: Route parameters written ``{filename:name}`` use it.
register_url_convertor("name", NameConvertor())

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SmartStreamError)
    status, body, headers = error_response(exc)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/json")
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = {
        404: "There is nothing at this path.",
        405: f"{request.method} is not allowed here.",
    }.get(exc.status_code, str(exc.detail))
    return JSONResponse(
        {"code": code, "message": message}, status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(INTERNAL_ERROR, status_code=500)


EXCEPTION_HANDLERS = {
    SmartStreamError: _domain_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}


def install_error_handlers(app: Starlette) -> None:
    for exc_type, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)


#: Chunks read ahead of the socket. Enough to keep both busy; small, because what is read
#: ahead is read for nothing when the player hangs up.
READ_AHEAD_CHUNKS = 2


async def read_ahead(
    chunks: Iterator[Chunk], close: Callable[[], None], depth: int = READ_AHEAD_CHUNKS
) -> AsyncIterator[Chunk]:
    """Chunks from a blocking source, read on a thread of their own while the event loop
    writes the previous ones to the socket (one hop through the thread pool a chunk left the
    socket idle half the time). When the consumer stops, early or not, reading stops: at
    most the read under way completes, then ``close`` runs on the reading thread.

    The first chunk is sent before the second is read: reading is Python work that holds the
    GIL, and the event loop would wait for it to send the response's start."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(1)  # depth once the first chunk is on its way
    stop = threading.Event()
    done = object()

    def hand_over(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            while True:
                room.acquire()
                if stop.is_set():
                    return
                chunk = next(chunks, None)
                if chunk is None:
                    return
                hand_over(chunk)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(exc)
        finally:
            try:
                close()
            finally:
                hand_over(done)

    threading.Thread(target=produce, name="read-ahead", daemon=True).start()
    first = True
    try:
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes | memoryview)
            yield item
            # A send to a client that has gone does not wait, so give the server a moment
            # to notice the hang-up (and cancel us) before asking for another read.
            await asyncio.sleep(0)
            room.release(depth if first else 1)
            first = False
    finally:
        stop.set()
        room.release()  # wake the reader if it waits for room


async def health(request: Request) -> Response:
    """The readiness route the Lambda Web Adapter waits for: cheap, open."""
    return JSONResponse({"status": "ok"})


def device_app(route: Route) -> Starlette:
    """A device function's ASGI app: its one route, the health route, the error map."""
    app = Starlette(routes=[Route("/api/health", health, methods=["GET"]), route])
    install_error_handlers(app)
    return app


async def device_request(request: Request) -> tuple[dict[str, str], str | None]:
    """The request's headers (lower-case names) and the URL's credential; 403 at once when
    there is neither a credential nor the management token."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    credential = request.query_params.get(auth.CREDENTIAL_PARAM)
    if not credential and not await run_in_threadpool(auth.has_valid_bearer, headers):
        raise ForbiddenError("This URL needs its credential (?sig=...) or the management token.")
    return headers, credential
