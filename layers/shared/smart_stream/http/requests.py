"""Reading a management request: the request's base and path parameters, and the typed
values the services take from query parameters (flags, page size, statuses, play mode, the
list's next token). Powertools hands the routes their query parameters and validated JSON
bodies (``http.resolver``); bad values keep their contract statuses: 400 for a malformed
request, 422 for a value that is well-formed but not allowed."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smart_stream.domain.errors import InvalidQueryError, UnprocessableError
from smart_stream.domain.records import AudioStatus, PlayMode
from smart_stream.services.library import VISIBLE

if TYPE_CHECKING:
    # Only a type here: the queue device app parses its play mode with this module and
    # must not pay for Powertools' import.
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


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


#: How a yes/no query parameter is written, for its OpenAPI description.
FLAG = "true or false (also 1/0, yes/no); absent or empty: false."


def flag(name: str, value: str | None) -> bool:
    """A yes/no query parameter; 422 for anything else."""
    word = (value or "").lower()
    if word in {"", "false", "0", "no"}:
        return False
    if word in {"true", "1", "yes"}:
        return True
    raise UnprocessableError(f"{name} must be true or false.")


# Typed values ---------------------------------------------------------------------------------


def statuses(raw: str | None) -> tuple[AudioStatus, ...]:
    if raw is None or raw == "":
        return VISIBLE
    if raw == "all":
        return tuple(AudioStatus)
    try:
        return tuple(AudioStatus(part.strip()) for part in raw.split(","))
    except ValueError:
        allowed = ", ".join(s.value for s in AudioStatus)
        raise UnprocessableError(f"status must be one of {allowed} (or all).") from None


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise UnprocessableError("limit must be a whole number.") from None
    if value < 1:
        raise UnprocessableError("limit must be at least 1.")
    return min(value, MAX_PAGE_SIZE)


def encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    # RecursionError: a forged token of deeply nested JSON ("[[[[...").
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise InvalidQueryError("next_token is not one this API handed out.") from None
    if not isinstance(after, str) or not _is_text(after):
        # A lone surrogate ("\udbad") is valid JSON but no text a catalogue can hold.
        raise InvalidQueryError("next_token is not one this API handed out.")
    return after


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class ListQuery:
    limit: int
    after: str | None
    statuses: tuple[AudioStatus, ...]


def list_query(limit: str | None, next_token: str | None, status: str | None) -> ListQuery:
    return ListQuery(
        limit=page_size(limit),
        after=decode_token(next_token) if next_token else None,
        statuses=statuses(status),
    )


def play_mode(raw: str | None, default: PlayMode) -> PlayMode:
    if not raw:
        return default
    try:
        return PlayMode(raw)
    except ValueError:
        modes = ", ".join(m.value for m in PlayMode)
        raise UnprocessableError(f"play_mode must be one of {modes}.") from None
