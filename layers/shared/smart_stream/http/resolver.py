"""The management functions' shared glue: a Powertools HTTP API resolver with the token
check, request validation and the error map, so each handler is a route plus one call into
the services.

Each function declares its routes on a ``Router`` (typed query parameters and bodies, the
answers it gives) and makes its resolver with ``create_api``; ``http.openapi`` assembles the
API's OpenAPI document from every function's router, so the spec is the code's."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from smart_stream.domain.errors import (
    BadRequestError,
    SmartStreamError,
    UnauthorizedError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from smart_stream.http.errors import INTERNAL_ERROR, error_response
from smart_stream.telemetry import entry_point, logger

if TYPE_CHECKING:
    from smart_stream.services.access import Access

JSON = "application/json"


def json_response(status: int, body: BaseModel | dict[str, Any] | None) -> Response:
    if body is None:
        return Response(status_code=status, body="")
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)
    return Response(status_code=status, content_type=JSON, body=text)


class Root(Protocol):
    """What a resolver needs of the composition root (``bootstrap.Services``)."""

    @property
    def access(self) -> Access: ...

    def migrate(self) -> None: ...


def _json(text: str) -> Any:
    """JSON for Powertools' body validation: nesting deeper than the parser's stack
    ("[[[[...") is bad JSON too, not a server error."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:20], 0) from None


class Router(APIGatewayHttpRouter):
    """One function's routes. ``public`` ones need no token: the page, health, the spec
    and Yoto's callback (which its OAuth state protects)."""

    def __init__(self, *, public: bool = False) -> None:
        super().__init__()
        self.public = public


def validation_error(errors: Sequence[Any], *, body_sent: bool) -> SmartStreamError:
    """What Powertools' request validation found, as the contract says it: a body that is
    not JSON (or none at all) is a malformed request (400); anything else is a well-formed
    request with values that are not allowed (422), each named. (Powertools reports the
    JSON ``null`` as a missing body too: that one was sent, and is a wrong value.)"""
    for error in errors:
        where = tuple(error.get("loc", ()))
        no_body = error.get("type") == "missing" and where == ("body",) and not body_sent
        if error.get("type") == "json_invalid" or no_body:
            return BadRequestError("The request body is not valid JSON.")
        if error.get("type") == "unsupported_content_type":
            return UnsupportedMediaTypeError("Send the body as JSON (application/json).")
    problems = []
    for error in errors:
        field = [str(part) for part in error.get("loc", ()) if part not in ("query", "body")]
        problems.append(f"{'.'.join(field) or 'body'}: {error.get('msg', 'invalid')}")
    return UnprocessableError(f"The request has invalid values: {'; '.join(problems)}.")


def create_api(
    root: Callable[[], Root], router: Router, *, writes: bool = False
) -> APIGatewayHttpResolver:
    """A resolver for ``router``'s routes, which need the management token (unless the
    router is ``public``), whose requests Powertools validates against the routes'
    declarations, and whose errors all come out as the contract's JSON. A function that
    ``writes`` the catalogue brings its schema forward before its first request; no other
    does."""
    public = router.public
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=_json)

    def prepare(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
        if not public:
            root().access.require_management(dict(app.current_event.headers or {}))
        if writes:
            root().migrate()
        return next_middleware(app)

    if writes or not public:
        app.use(middlewares=[prepare])

    @app.exception_handler(SmartStreamError)
    def _domain_error(exc: SmartStreamError) -> Response:
        status, body, headers = error_response(exc)
        if status >= 500:
            logger.warning("service error", extra={"code": exc.code})
        return Response(
            status_code=status, content_type=JSON, body=json.dumps(body), headers=headers
        )

    @app.exception_handler(UnicodeDecodeError)
    def _not_text(exc: UnicodeDecodeError) -> Response:
        # Only a request body can fail so: a base64 body that is not UTF-8.
        return _domain_error(BadRequestError("The request body is not valid JSON (not UTF-8)."))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        # Powertools validates before any middleware runs: a request without the token
        # learns that first, and nothing about what it sent.
        if not public:
            try:
                root().access.require_management(dict(app.current_event.headers or {}))
            except UnauthorizedError as refused:
                return _domain_error(refused)
        body_sent = bool((app.current_event.body or "").strip())
        return _domain_error(validation_error(exc.errors(), body_sent=body_sent))

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        body = {"code": "not_found", "message": "There is nothing at this path."}
        return Response(status_code=404, content_type=JSON, body=json.dumps(body))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return Response(status_code=500, content_type=JSON, body=json.dumps(INTERNAL_ERROR))

    app.include_router(router)
    return app


def lambda_handler_for(
    app: APIGatewayHttpResolver,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The function's entry point (``telemetry.entry_point``: logs and metrics), then the
    route."""

    @entry_point
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler
