"""The API's OpenAPI 3.1 document, made from the code.

Every management function declares its routes on a ``Router`` with Powertools: typed query
parameters and bodies (which Powertools also validates), a summary, and the answers the
route gives (``answers``). ``document`` assembles one document from every function's router,
and adds what Powertools cannot see: the two device routes (Starlette apps behind function
URLs), the bearer token, and the contract's error body for every error status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from smart_stream.domain.credentials import CREDENTIAL_PARAM
from smart_stream.http.resolver import Router
from smart_stream.http.views import ErrorBody

TITLE = "Smart Stream"
DESCRIPTION = (
    "Your own audio on a Yoto player: the library, uploads in any common format, stories, "
    "queues played as one continuous MP3, and Yoto cards. Management routes take "
    "`Authorization: Bearer <token>`; device routes take the credential in the query of the "
    "URL the API hands out (`url`, `stream_url`). Every error is `{code, message}` JSON."
)
ERROR_REF = "#/components/schemas/ErrorBody"

#: What each error status means, wherever a route can answer it.
ERROR_MEANINGS = {
    400: "Malformed request: not JSON, a bad name, a bad multipart body.",
    401: "The management token is missing or wrong (or, for Yoto, a sign-in is needed).",
    403: "The device URL's credential is missing, tampered with or revoked.",
    404: "Nothing of that name.",
    409: "A conflict: the name is taken, the file is in queues, the queue is on a card, ...",
    413: "Too large.",
    415: "Not audio this API accepts (the message names the formats).",
    416: "The range starts past the end of the file.",
    422: "Well-formed, but a value is not allowed.",
    502: "A service behind the API (Yoto, the speech service) failed; nothing was changed.",
    503: "A service behind the API is busy or unavailable; try again shortly.",
}


def answers(
    success: Mapping[int, tuple[str, type[BaseModel] | str | None]], *errors: int
) -> dict[int, OpenAPIResponse]:
    """A route's answers for Powertools' ``responses=``: each success status with its
    description and body (a JSON model, another media type as a string such as
    ``"text/html"``, or None for no body), and each error status with the contract's error
    body. Every route may also answer 503 (a service behind it unavailable)."""
    responses: dict[int, OpenAPIResponse] = {}
    for status, (description, body) in success.items():
        answer: OpenAPIResponse = {"description": description}
        if isinstance(body, str):
            answer["content"] = {body: {"schema": {"type": "string"}}}
        elif body is not None:
            answer["content"] = {"application/json": {"model": body}}
        responses[status] = answer
    for status in sorted({*errors, 503}):
        responses[status] = {
            "description": ERROR_MEANINGS[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return responses


def multipart_upload() -> dict[str, Any]:
    """The upload's request body, which the function parses itself (python-multipart)."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "filename": {
                            "type": "string",
                            "description": "The name to store it under (else the file's).",
                        },
                    },
                }
            }
        },
    }


def _error(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def _device_operation(
    summary: str, name_param: dict[str, Any], *, head: bool, open_ended: bool = False
) -> dict[str, Any]:
    audio = {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}}
    ranges: dict[str, Any] = (
        {
            "schema": {"enum": ["bytes", "none"]},
            "description": "none for an open-ended stream (loop, endless-shuffle).",
        }
        if open_ended
        else {"schema": {"type": "string", "const": "bytes"}}
    )
    headers = {
        "Accept-Ranges": ranges,
        "Content-Length": {"schema": {"type": "integer"}},
        "ETag": {"schema": {"type": "string"}, "description": "Strong."},
        "Last-Modified": {"schema": {"type": "string"}},
        "Cache-Control": {"schema": {"type": "string"}},
    }
    body = {} if head else {"content": audio}
    return {
        "summary": summary,
        "security": [{}, {"bearer": []}],
        "parameters": [
            name_param,
            {
                "name": CREDENTIAL_PARAM,
                "in": "query",
                "required": False,
                "description": "The device credential of the URL the API handed out "
                "(or send the management token instead).",
                "schema": {"type": "string"},
            },
            {
                "name": "Range",
                "in": "header",
                "required": False,
                "description": "`bytes=a-b`, `bytes=a-` or `bytes=-n` (RFC 9110); an invalid "
                "one is ignored.",
                "schema": {"type": "string"},
            },
            {
                "name": "If-Range",
                "in": "header",
                "required": False,
                "description": "An ETag: the range is answered only if it still matches.",
                "schema": {"type": "string"},
            },
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "ETags: 304 when one matches.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {"description": "The whole MP3.", "headers": headers, **body},
            "206": {
                "description": "The range asked for.",
                "headers": {
                    **headers,
                    "Content-Range": {"schema": {"type": "string"}, "description": "bytes a-b/N"},
                },
                **body,
            },
            "304": {"description": "Not modified (If-None-Match matched)."},
            "400": _error(400),
            "403": _error(403),
            "404": _error(404),
            "416": {
                **_error(416),
                "headers": {"Content-Range": {"schema": {"type": "string"}}},
            },
            "503": _error(503),
        },
    }


def device_paths() -> dict[str, Any]:
    """The two device routes, as players (and the page's previews) use them."""
    filename = {
        "name": "filename",
        "in": "path",
        "required": True,
        "description": "A library filename (URL-encoded).",
        "schema": {"type": "string"},
    }
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "A queue name.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }
    play_mode = {
        "name": "play_mode",
        "in": "query",
        "required": False,
        "description": "Overrides the queue's own play mode.",
        "schema": {"enum": ["sequential", "loop", "shuffle", "endless-shuffle"]},
    }
    file_get = _device_operation("One file, with ranges.", filename, head=False)
    file_head = _device_operation("One file's headers.", filename, head=True)
    stream_get = _device_operation(
        "A queue as one continuous MP3.", name, head=False, open_ended=True
    )
    stream_head = _device_operation("A queue stream's headers.", name, head=True, open_ended=True)
    for operation in (stream_get, stream_head):
        operation["parameters"].append(play_mode)
        operation["responses"]["422"] = _error(422)
    return {
        "/api/audio/{filename}": {
            "get": {**file_get, "operationId": "stream_audio"},
            "head": {**file_head, "operationId": "stream_audio_head"},
        },
        "/api/streams/{name}/stream.mp3": {
            "get": {**stream_get, "operationId": "queue_stream"},
            "head": {**stream_head, "operationId": "queue_stream_head"},
        },
    }


#: OpenAPI links: what a client (and a stateful test) can do next with what it made. Each
#: is (method, path of the answer; its statuses) -> [(link name, method, path, parameters)].
_QUEUE = {"name": "$request.path.name"}
_FILE = {"filename": "$response.body#/filename"}
LINKS: dict[tuple[str, str, tuple[str, ...]], list[tuple[str, str, str, dict[str, str]]]] = {
    ("post", "/api/streams/{name}/queue", ("200", "201")): [
        ("GetQueue", "get", "/api/streams/{name}/queue", _QUEUE),
        ("StreamQueue", "get", "/api/streams/{name}/stream.mp3", _QUEUE),
        ("CardContent", "get", "/api/streams/{name}/yoto-card", _QUEUE),
        ("RevokeQueueUrl", "post", "/api/streams/{name}/revoke-url", _QUEUE),
        ("DeleteQueue", "delete", "/api/streams/{name}", _QUEUE),
    ],
    ("post", "/api/audio/upload", ("201", "202")): [
        ("GetMetadata", "get", "/api/audio/{filename}/metadata", _FILE),
        ("GetFile", "get", "/api/audio/{filename}", _FILE),
        ("RevokeFileUrl", "post", "/api/audio/{filename}/revoke-url", _FILE),
        ("DeleteFile", "delete", "/api/audio/{filename}", _FILE),
    ],
}


def _link(paths: dict[str, Any]) -> None:
    for (method, path, statuses), links in LINKS.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            responses[status]["links"] = {
                name: {"operationId": paths[target][verb]["operationId"], "parameters": params}
                for name, verb, target, params in links
            }


def _part(router: Router) -> dict[str, Any]:
    app = APIGatewayHttpResolver(enable_validation=True)
    app.include_router(router)
    schema = app.get_openapi_schema(title=TITLE)
    part: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    return part


#: What Powertools calls the 422 it adds to every operation by itself.
_POWERTOOLS_422 = "Validation Error"


def _tidy(operation: dict[str, Any]) -> None:
    """Say only what the route says: Powertools adds a 422 of its own (a list of pydantic
    errors) to every operation, which a route that declared none never answers, and gives
    a body-less answer an empty JSON body."""
    responses = operation.setdefault("responses", {})
    if responses.get("422", {}).get("description") == _POWERTOOLS_422:
        del responses["422"]
    for answer in responses.values():
        content = answer.get("content", {})
        for media_type in [t for t, c in content.items() if not c.get("schema")]:
            del content[media_type]
        if not content:
            answer.pop("content", None)
    operation["responses"] = dict(sorted(responses.items()))


def document(routers: Iterable[Router], *, version: str) -> dict[str, Any]:
    """One OpenAPI 3.1 document for every route of ``routers`` and the device routes."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for router in routers:
        part = _part(router)
        schemas.update(part.get("components", {}).get("schemas", {}))
        for path, item in part.get("paths", {}).items():
            for operation in item.values():
                _tidy(operation)
                if "x-request-body" in operation:  # a body Powertools cannot describe
                    operation["requestBody"] = operation.pop("x-request-body")
                if router.public:
                    operation["security"] = []
            paths.setdefault(path, {}).update(item)
    for path, item in device_paths().items():  # GET/HEAD beside a management DELETE
        paths.setdefault(path, {}).update(item)
    _link(paths)
    # Powertools' own error shapes: this API answers ErrorBody instead.
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": version, "description": DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": json.loads(
                    HTTPBearer(description="The management token.").model_dump_json(
                        by_alias=True, exclude_none=True
                    )
                )
            },
        },
        "security": [{"bearer": []}],
    }


def as_json(spec: Mapping[str, Any]) -> str:
    """The document as it is stored and served: stable, readable, ending in a newline."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
