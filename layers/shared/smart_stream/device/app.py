"""The device functions' ASGI (Starlette) apps, behind the Lambda Web Adapter deployed and
mounted by the local server: the error map (the same JSON as the management API's), the
health route, the credential check every device request starts with, and each request's
logs and metrics."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_stream.domain.credentials import CREDENTIAL_PARAM
from smart_stream.domain.errors import ForbiddenError, SmartStreamError
from smart_stream.http.errors import INTERNAL_ERROR, error_response
from smart_stream.services.access import Access
from smart_stream.telemetry import (
    BYTES,
    BYTES_STREAMED,
    DEVICE_REQUESTS,
    configure_logging,
    count,
    logger,
    metered,
)

#: The readiness route the Lambda Web Adapter waits for (not a device request).
HEALTH_PATH = "/api/health"
#: The Lambda context of the invocation (its ``request_id``...), as JSON, in a header the Web
#: Adapter adds to each request (https://github.com/aws/aws-lambda-web-adapter, "Lambda Context").
LAMBDA_CONTEXT_HEADER = b"x-amzn-lambda-context"


class NameConvertor(Convertor[str]):
    """A path parameter that takes anything, slashes and line breaks included, so that every
    bad name reaches validation and gets its clear 400 (Starlette's ``path`` stops at a line
    break, which would make a 404)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def register_name_convertor() -> None:
    """Let route parameters written ``{filename:name}`` use ``NameConvertor`` (Starlette
    keeps convertors in one registry of its own; registering twice is harmless)."""
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
    # The path only: the query string carries the URL's credential.
    logger.error(
        "unhandled error", extra={"method": request.method, "path": request.url.path}, exc_info=exc
    )
    return JSONResponse(INTERNAL_ERROR, status_code=500)


EXCEPTION_HANDLERS = {
    SmartStreamError: _domain_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}


def install_error_handlers(app: Starlette) -> None:
    for exc_type, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)


async def health(request: Request) -> Response:
    """The readiness route the Lambda Web Adapter waits for: cheap, open."""
    return JSONResponse({"status": "ok"})


class Observed:
    """ASGI middleware: each device request's metrics (its outcome, the bytes sent), written
    when its response ends, however it ends (a player hanging up mid-stream included), and
    its log lines tagged with the Lambda request id the Web Adapter passes on. A response
    streams for minutes, long after a handler would have returned: this is where it ends."""

    def __init__(self, app: ASGIApp, route: str) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an error no handler answered
        sent = 0
        counted = False

        def count_request() -> None:
            nonlocal counted
            if not counted:
                counted = True
                count(DEVICE_REQUESTS, route=self.route, outcome=str(status))
                count(BYTES_STREAMED, sent, unit=BYTES, route=self.route)

        # Until the next request replaces it: an error is logged after this middleware has
        # finished (by Starlette's outermost one), and Lambda runs one request at a time.
        request_id = _lambda_request_id(scope)
        if request_id:
            logger.append_keys(function_request_id=request_id)
        else:
            logger.remove_keys(["function_request_id"])
        with metered() as meter:

            async def observed_send(message: Message) -> None:
                nonlocal status, sent
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif message["type"] == "http.response.body":
                    if not message.get("more_body", False):
                        # Written before the response's end is passed on: once it is, the
                        # invocation is over and Lambda may freeze the process.
                        sent += len(message.get("body", b""))
                        count_request()
                        if meter is not None:
                            meter.flush()
                    else:
                        await send(message)  # raises when the player has hung up
                        sent += len(message.get("body", b""))
                        return
                await send(message)

            try:
                await self.app(scope, receive, observed_send)
            except ClientDisconnect:
                pass  # the player hung up (a card taken out): the response ends here
            finally:
                count_request()  # a response cut short: a hang-up, an error


def _lambda_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == LAMBDA_CONTEXT_HEADER:
            try:
                context = json.loads(value)
            except ValueError:
                return None
            request_id = context.get("request_id") if isinstance(context, dict) else None
            return request_id if isinstance(request_id, str) else None
    return None


def device_app(route: Route, *, name: str) -> Starlette:
    """A device function's ASGI app: its one route (``name``, the metrics' ``route``
    dimension: ``file`` or ``queue``), the health route, the error map, logs and metrics."""
    configure_logging()
    register_name_convertor()
    app = Starlette(
        routes=[Route(HEALTH_PATH, health, methods=["GET"]), route],
        middleware=[Middleware(Observed, route=name)],
    )
    install_error_handlers(app)
    return app


async def device_request(request: Request, access: Access) -> tuple[dict[str, str], str | None]:
    """The request's headers (lower-case names) and the URL's credential; 403 at once when
    there is neither a credential nor the management token."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    credential = request.query_params.get(CREDENTIAL_PARAM)
    if not credential and not await run_in_threadpool(access.has_valid_bearer, headers):
        raise ForbiddenError("This URL needs its credential (?sig=...) or the management token.")
    return headers, credential
