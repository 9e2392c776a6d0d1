"""The management functions' shared glue: a Powertools HTTP API resolver with the token
check and the error map, so each handler is a route plus one call into the services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import BaseModel

from smart_stream.domain.errors import SmartStreamError
from smart_stream.http.errors import INTERNAL_ERROR, error_response

if TYPE_CHECKING:
    from smart_stream.services.access import Access

logger = Logger()

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


def create_api(
    root: Callable[[], Root], *, public: bool = False, writes: bool = False
) -> APIGatewayHttpResolver:
    """A resolver whose routes need the management token (unless ``public``) and whose
    errors all come out as the contract's JSON. A function that ``writes`` the catalogue
    brings its schema forward before its first request; no other does."""
    app = APIGatewayHttpResolver()

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

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        body = {"code": "not_found", "message": "There is nothing at this path."}
        return Response(status_code=404, content_type=JSON, body=json.dumps(body))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return Response(status_code=500, content_type=JSON, body=json.dumps(INTERNAL_ERROR))

    return app


def lambda_handler_for(
    app: APIGatewayHttpResolver,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The function's entry point: structured logs with the Lambda context, then the route."""

    @logger.inject_lambda_context(clear_state=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler
