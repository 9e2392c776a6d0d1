"""The one map from domain errors to HTTP: status code, JSON body, extra headers.

Every error is ``{"code", "message"}`` JSON; an unexpected exception is logged and answered
with a plain 500 body: never a stack trace, never an AWS error text.
"""

from __future__ import annotations

from smart_stream.domain.errors import (
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ObjectChangedError,
    PayloadTooLargeError,
    PreconditionFailedError,
    RangeNotSatisfiableError,
    ServiceUnavailableError,
    SmartStreamError,
    UnauthorizedError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)

STATUS_BY_ERROR: dict[type[SmartStreamError], int] = {
    BadRequestError: 400,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailedError: 412,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    RangeNotSatisfiableError: 416,
    UnprocessableError: 422,
    BadGatewayError: 502,
    ServiceUnavailableError: 503,
    # The object moved between catalogue read and storage read: the client may retry.
    ObjectChangedError: 503,
}

INTERNAL_ERROR = {
    "code": "internal_error",
    "message": "Something went wrong on our side. It has been logged; try again shortly.",
}


def status_for(exc: SmartStreamError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_response(exc: SmartStreamError) -> tuple[int, dict[str, str], dict[str, str]]:
    """(status, JSON body, extra headers) for a domain error."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="smart-stream"'
    if isinstance(exc, RangeNotSatisfiableError):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if status == 503:
        headers["Retry-After"] = "5"
    body = {"code": exc.code, "message": exc.message} if status != 500 else INTERNAL_ERROR
    return status, body, headers
