"""The management functions' shared glue: a Powertools HTTP API resolver with the token
check and the error map, so each handler is a route plus one call into the logic."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import BaseModel, ValidationError

from smart_stream.domain.errors import BadRequestError, SmartStreamError, UnprocessableError
from smart_stream.http.errors import INTERNAL_ERROR, error_response
from smart_stream.services import auth

logger = Logger()

JSON = "application/json"
M = TypeVar("M", bound=BaseModel)


def json_response(status: int, body: BaseModel | dict[str, Any] | None) -> Response:
    if body is None:
        return Response(status_code=status, body="")
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)
    return Response(status_code=status, content_type=JSON, body=text)


def _require_token(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    auth.require_management(dict(app.current_event.headers or {}))
    return next_middleware(app)


def create_api(*, public: bool = False) -> APIGatewayHttpResolver:
    """A resolver whose routes need the management token (unless ``public``) and whose
    errors all come out as the contract's JSON."""
    app = APIGatewayHttpResolver()
    if not public:
        app.use(middlewares=[_require_token])

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


def request_base(app: APIGatewayHttpResolver) -> str:
    """The scheme and host the client used, as API Gateway reports them."""
    event = app.current_event
    headers = event.headers or {}
    scheme = headers.get("x-forwarded-proto", "https")
    host = event.request_context.domain_name or headers.get("host", "localhost")
    return f"{scheme}://{host}"


def path_param(app: APIGatewayHttpResolver, name: str) -> str:
    # API Gateway hands path parameters over decoded; the raw path stays encoded.
    return (app.current_event.path_parameters or {}).get(name, "")


def query_param(app: APIGatewayHttpResolver, *names: str) -> str | None:
    params = app.current_event.query_string_parameters or {}
    for name in names:
        if name in params:
            return params[name]
    return None


def flag(app: APIGatewayHttpResolver, name: str) -> bool:
    value = (query_param(app, name) or "").lower()
    if value in {"", "false", "0", "no"}:
        return False
    if value in {"true", "1", "yes"}:
        return True
    raise UnprocessableError(f"{name} must be true or false.")


def json_body(app: APIGatewayHttpResolver, model: type[M]) -> M:
    """The request's JSON body as ``model``: 400 if it is not JSON, 422 if values are wrong."""
    try:
        # A base64 body that is not UTF-8 fails already in decoded_body: bad JSON too.
        data = json.loads(app.current_event.decoded_body or "")
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack ("[[[[..."), still bad JSON.
        raise BadRequestError("The request body is not valid JSON.") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise UnprocessableError(f"The request body has invalid values: {problems}.") from None
