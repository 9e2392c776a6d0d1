"""Turn an HTTP request into the event API Gateway (HTTP API, payload 2.0) would send, call
the real Lambda handler with it, and turn its answer back into an HTTP response."""

from __future__ import annotations

import base64
import importlib.util
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local_server.template import FunctionSpec

#: Lambda's request payload limit: a larger request never reaches a function.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
_modules: dict[str, ModuleType] = {}


class LocalLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_seconds: float = 29.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


#: One import of a handler at a time: the server's event workers and its first requests load
#: handlers at once at start-up, and two threads importing the same library's modules in a
#: cycle (Powertools' do) can each find the other's half-initialised module.
_loading = threading.RLock()


def load_module(function: FunctionSpec, module_name: str) -> ModuleType:
    """Import ``<CodeUri>/<module_name>.py`` as Lambda would, under a name of its own."""
    path = function.code_uri / f"{module_name}.py"
    key = str(path.resolve())
    with _loading:
        if key not in _modules:
            _modules[key] = _import(function, module_name)
        return _modules[key]


def _import(function: FunctionSpec, module_name: str, suffix: str = "") -> ModuleType:
    path = function.code_uri / f"{module_name}.py"
    with _loading:
        spec = importlib.util.spec_from_file_location(
            f"functions_{function.logical_id}{suffix}", path
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


#: One management invocation at a time in this process. Powertools' resolver keeps the
#: request it is answering in class attributes (``BaseRouter.current_event``), shared by
#: every resolver in a process, which Lambda never runs twice at once: two requests at once
#: here would answer with each other's. Event functions (no resolver) and the device apps run
#: beside them; a Lambda deployment runs management requests in parallel instances.
RESOLVER_LOCK = threading.Lock()


def load_handler(function: FunctionSpec) -> LambdaHandler:
    module_name, _, attribute = function.handler.rpartition(".")
    handler: LambdaHandler = getattr(load_module(function, module_name), attribute)
    return handler


def invoke_management(handler: LambdaHandler, event: dict[str, Any], context: Any) -> Any:
    """Call a management function's handler (a Powertools resolver) as the only one."""
    with RESOLVER_LOCK:
        return handler(event, context)


def _joined(items: list[tuple[str, str]]) -> dict[str, str]:
    # API Gateway joins repeated headers and query parameters with commas.
    joined: dict[str, str] = {}
    for key, value in items:
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


async def read_body(request: Request) -> bytes | None:
    """The body, or None once it passes the payload limit (the rest is not read)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_event(request: Request, route_key: str, body: bytes) -> dict[str, Any]:
    now = datetime.now(UTC)
    headers = _joined([(k.lower(), v) for k, v in request.headers.items()])
    headers.setdefault("x-forwarded-proto", request.url.scheme)
    client = request.client.host if request.client else "127.0.0.1"
    headers.setdefault("x-forwarded-for", client)
    content_type = headers.get("content-type", "")
    is_text = content_type.startswith(_TEXT_TYPES)
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": request.url.query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": request.method,
                "path": request.url.path,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "sourceIp": client,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": text is None and bool(body),
    }
    if request.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
    if request.query_params:
        event["queryStringParameters"] = _joined(list(request.query_params.multi_items()))
    if request.path_params:
        event["pathParameters"] = dict(request.path_params)
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def to_response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(content=content, status_code=int(result.get("statusCode", 200)))
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.append(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", cookie)
    return response


def too_large() -> Response:
    return JSONResponse(
        {
            "code": "too_large",
            "message": (
                f"The request is over {MAX_REQUEST_BYTES} bytes. Upload large files through "
                "the URL that POST /api/audio/upload-url gives."
            ),
        },
        status_code=413,
    )
