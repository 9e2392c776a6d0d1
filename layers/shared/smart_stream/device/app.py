"""The device functions' ASGI (Starlette) apps, behind the Lambda Web Adapter deployed and
mounted by the local server: the error map (the same JSON as the management API's), the
health route, and the credential check every device request starts with."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smart_stream.domain.credentials import CREDENTIAL_PARAM
from smart_stream.domain.errors import ForbiddenError, SmartStreamError
from smart_stream.http.errors import INTERNAL_ERROR, error_response
from smart_stream.services.access import Access

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


async def health(request: Request) -> Response:
    """The readiness route the Lambda Web Adapter waits for: cheap, open."""
    return JSONResponse({"status": "ok"})


def device_app(route: Route) -> Starlette:
    """A device function's ASGI app: its one route, the health route, the error map."""
    register_name_convertor()
    app = Starlette(routes=[Route("/api/health", health, methods=["GET"]), route])
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
