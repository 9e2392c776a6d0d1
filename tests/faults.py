"""A fault layer for the app's own AWS clients: S3, DynamoDB and Polly calls fail at a given
rate, the way the services and the network fail, and always the same way for one seed.

Installed on a botocore client (``Faults.install(services().client("s3"))``), it hooks the
client's events, so the app's code, its botocore "standard" retries (``max_attempts`` 4:
five attempts) and its error translation all run as they do deployed:

- ``before-send``: each attempt, with probability ``rate``, fails with one of the ``kinds``
  that apply to the call: an HTTP error answered instead of the service (``"500"``,
  ``"503"``, ``"throttle"``: each service's own error codes), or a transport failure raised
  where the HTTP client would raise it (``"timeout"``: the request reached the service,
  which did what it asked, and the answer never came; ``"reset"``: the connection was
  closed before the answer; ``"unreachable"``: no connection at all);
- ``after-call``: ``"body-reset"`` lets a call with a streamed body (S3's GetObject, Polly's
  SynthesizeSpeech) succeed, then breaks its body part-way, as a connection reset in the
  middle of a ranged GET does (urllib3's ``ProtocolError``, which botocore's
  ``StreamingBody`` raises as ``ResponseStreamingError``). botocore cannot retry that one:
  the app's code sees it.

Deterministic: whether an attempt fails, and how, is drawn from a generator seeded with the
seed, the operation, what it names (a key, an item) and how many attempts that call has
made before, so the same seed and the same calls give the same faults whatever order the
app's threads make them in, and a failing run can be replayed.

The layer needs a client of a real endpoint (moto's server, ``moto_server_env``): moto's
in-process mock (``mock_aws``) answers every request from a ``before-send`` hook of its own,
and would carry a request out even when this layer answers it with an error.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from urllib3.exceptions import ProtocolError

#: Every kind of fault, in the order reports list them.
KINDS = ("500", "503", "throttle", "timeout", "reset", "unreachable", "body-reset")
#: The kinds that answer an HTTP error instead of the service.
HTTP_KINDS = ("500", "503", "throttle")
#: (status, error code) each service answers for each HTTP kind.
ERRORS: dict[str, dict[str, tuple[int, str]]] = {
    "s3": {
        "500": (500, "InternalError"),
        "503": (503, "ServiceUnavailable"),
        "throttle": (503, "SlowDown"),
    },
    "dynamodb": {
        "500": (500, "InternalServerError"),
        "503": (503, "ServiceUnavailable"),
        "throttle": (400, "ProvisionedThroughputExceededException"),
    },
    "polly": {
        "500": (500, "ServiceFailureException"),
        "503": (503, "ServiceUnavailableException"),
        "throttle": (400, "ThrottlingException"),
    },
}
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
#: S3 calls that change an object, and the event S3 sends for each that it carries out.
S3_WRITES = {
    "PutObject": "ObjectCreated",
    "CopyObject": "ObjectCreated",
    "CompleteMultipartUpload": "ObjectCreated",
    "DeleteObject": "ObjectRemoved",
}


#: DynamoDB calls that write an item: what the table's stream carries a record of.
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


@dataclass(frozen=True)
class Write:
    """A write the service carried out, whatever its caller heard of it: what S3 sends
    EventBridge an event for, or the table's stream a record of. ``key`` is the object's
    key, or the item's ``pk/sk``."""

    service: str
    operation: str
    key: str


class _Raw(io.BytesIO):
    """An HTTP body botocore can read as it reads urllib3's (``stream`` included)."""

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        while chunk := self.read(64 * 1024):
            yield chunk


def error_response(
    protocol: str, request: AWSPreparedRequest, status: int, code: str
) -> AWSResponse:
    """What the service answers with ``code``, in its protocol's shape (S3 answers a HEAD
    with no body: botocore then takes the status for the code, as it does deployed)."""
    message = f"{code} (injected by the tests' fault layer)"
    headers = {"x-amzn-requestid": "fault-layer", "x-amz-request-id": "fault-layer"}
    if protocol == "rest-xml":
        headers["Content-Type"] = "application/xml"
        body = (
            b""
            if request.method == "HEAD"
            else (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                "<RequestId>fault-layer</RequestId></Error>"
            ).encode()
        )
    elif protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = json.dumps({"__type": f"com.amazonaws.fault#{code}", "message": message}).encode()
    else:  # rest-json
        headers["Content-Type"] = "application/json"
        headers["x-amzn-ErrorType"] = f"{code}:http://internal.amazon.com/"
        body = json.dumps({"message": message}).encode()
    return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Raw(body))


class CutBody:
    """A response body that breaks after ``cut`` bytes, as a reset connection does: reads
    before the cut answer what the service sent, the next one raises urllib3's
    ``ProtocolError`` (which ``StreamingBody`` turns into ``ResponseStreamingError``)."""

    def __init__(self, raw: Any, cut: int) -> None:
        self._raw = raw
        self._left = cut

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0 or amt is None:
            raise ProtocolError(
                "Connection broken: connection reset by peer (injected)", ConnectionResetError()
            )
        data: bytes = self._raw.read(min(amt, self._left))
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()


class Faults:
    """Fail the calls of the clients it is installed on: each attempt with probability
    ``rate``, by one of ``kinds`` (those that apply to the call), drawn from ``seed``.
    ``operations`` limits it to those operations (None: every one); ``per_call`` to that
    many faults a call (1: only a call's first attempt may fail, and botocore's retry gets
    through, which is how a lost answer is met).

    What it did is counted: ``injected`` (service, kind) per fault; ``calls`` (service,
    outcome) per API call, where the outcome is "clean" (no fault), "recovered" (faults,
    then botocore's retries succeeded), "failed" (faults, and the call failed after its
    retries), "refused after a fault" (the service's own error answered a retry: a 404, a
    412 or a failed condition, say after a time-out whose request was carried out) or "body
    cut" (the call succeeded and its body breaks part-way); ``attempts`` per service.

    Each write the service carried out (a ``"timeout"``'s included) is told to every
    ``on_write`` listener, on the caller's thread: what S3 sends EventBridge an event for,
    and the table's stream a record of."""

    def __init__(
        self,
        rate: float,
        kinds: tuple[str, ...] = KINDS,
        seed: int = 0,
        *,
        operations: frozenset[str] | None = None,
        per_call: int | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.rate = rate
        self.kinds = kinds
        self.seed = seed
        self.operations = operations
        self.per_call = per_call
        self.active = True
        self.injected: Counter[tuple[str, str]] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[str] = Counter()
        self.on_write: list[Callable[[Write], None]] = []
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()

    # Installing ------------------------------------------------------------------------------

    def install(self, client: Any) -> Any:
        """Hook ``client``'s events (once: installing again changes nothing); the client."""
        from moto.core.models import botocore_stubber

        if botocore_stubber.enabled:
            raise RuntimeError("the fault layer needs a real endpoint: use moto's server")
        service = client.meta.service_model.service_name
        if service not in ERRORS:
            raise ValueError(f"no faults for {service!r}")
        protocol = client.meta.service_model.protocol
        sender = client._endpoint.http_session  # a "timeout" reaches the service first
        events = client.meta.events
        tag = f"faults-{id(self)}"

        def before_parameters(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            key = params.get("Key")
            context["faults"] = {
                "identity": _identity(params),
                "key": key if isinstance(key, str) else _item_key(params),
                "injected": [],
            }

        def before_send(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
            return self._attempt(service, protocol, sender, request, kwargs["event_name"])

        def after_call(
            http_response: AWSResponse, parsed: dict[str, Any], context: dict[str, Any], **_: Any
        ) -> None:
            self._finish(service, context, http_response, parsed)

        def after_error(context: dict[str, Any], **_: Any) -> None:
            self._count_call(service, context, ok=False)

        def received(
            response_dict: dict[str, Any] | None,
            context: dict[str, Any],
            exception: Exception | None,
            **kwargs: Any,
        ) -> None:
            state = context.get("faults") or {}
            if state.pop("answered_here", False) or exception is not None or not response_dict:
                return
            operation = kwargs["event_name"].rsplit(".", 1)[-1]
            self._wrote(service, operation, state, response_dict["status_code"])

        events.register_first("before-parameter-build", before_parameters, f"{tag}-params")
        events.register_first("before-send", before_send, f"{tag}-send")
        events.register_first("after-call", after_call, f"{tag}-after")
        events.register_first("after-call-error", after_error, f"{tag}-error")
        events.register_first("response-received", received, f"{tag}-received")
        return client

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No faults within: what a test reads to check the outcome is read as it is."""
        self.active = False
        try:
            yield
        finally:
            self.active = True

    # One attempt -----------------------------------------------------------------------------

    def _draw(self, service: str, operation: str, request: AWSPreparedRequest) -> random.Random:
        state = _context(request).get("faults") or {}
        call = f"{service}.{operation}:{state.get('identity', '')}"
        with self._lock:
            self._seen[call] += 1
            count = self._seen[call]
        return random.Random(f"{self.seed}|{call}|{count}")

    def _kinds_for(self, request: AWSPreparedRequest) -> tuple[str, ...]:
        """The kinds that apply: a body can break only where one is streamed."""
        streamed = bool(getattr(request, "stream_output", False))
        return tuple(k for k in self.kinds if k != "body-reset" or streamed)

    def _attempt(
        self,
        service: str,
        protocol: str,
        sender: Any,
        request: AWSPreparedRequest,
        event_name: str,
    ) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.attempts[service] += 1
        state = _context(request).setdefault("faults", {"identity": "", "injected": []})
        state["last"] = None
        if not self.active or (self.operations is not None and operation not in self.operations):
            return None
        if self.per_call is not None and len(state["injected"]) >= self.per_call:
            return None
        draw = self._draw(service, operation, request)
        kinds = self._kinds_for(request)
        if draw.random() >= self.rate or not kinds:
            return None
        kind = draw.choice(kinds)
        if kind == "body-reset":
            state["cut"] = draw.random()  # where the body breaks, as a share of its length
            return None
        state["injected"].append(kind)
        state["answered_here"] = True
        state["last"] = kind
        self._count(service, kind)
        if kind in HTTP_KINDS:
            status, code = ERRORS[service][kind]
            return error_response(protocol, request, status, code)
        if kind == "timeout":
            answer = sender.send(request)  # the service does it; its answer is lost
            _ = answer.content
            self._wrote(service, operation, state, answer.status_code)
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        raise EndpointConnectionError(endpoint_url=request.url)

    def _finish(
        self,
        service: str,
        context: dict[str, Any],
        http_response: AWSResponse,
        parsed: dict[str, Any],
    ) -> None:
        state = context.get("faults") or {}
        ok = http_response.status_code < 300
        share = state.pop("cut", None)
        if share is not None and ok:
            field, body = next(
                ((k, v) for k, v in parsed.items() if isinstance(v, StreamingBody)), (None, None)
            )
            length = int(http_response.headers.get("content-length") or 0)
            if field is not None and body is not None and length > 0:
                cut = min(length - 1, int(share * length))
                broken = CutBody(getattr(body, "_raw_stream"), cut)  # noqa: B009
                parsed[field] = StreamingBody(cast(IO[bytes], broken), length)
                self._count(service, "body-reset")
                self._count_outcome(service, "body cut")
                return
        self._count_call(service, context, ok=ok)

    def _wrote(self, service: str, operation: str, state: dict[str, Any], status: int) -> None:
        writes = S3_WRITES if service == "s3" else DYNAMODB_WRITES
        key = state.get("key")
        if operation not in writes or key is None or not 200 <= status < 300:
            return
        for listener in list(self.on_write):
            listener(Write(service, operation, key))

    # Counting --------------------------------------------------------------------------------

    def _count(self, service: str, kind: str) -> None:
        with self._lock:
            self.injected[(service, kind)] += 1

    def _count_outcome(self, service: str, outcome: str) -> None:
        with self._lock:
            self.calls[(service, outcome)] += 1

    def _count_call(self, service: str, context: dict[str, Any], *, ok: bool) -> None:
        state = context.get("faults") or {}
        if not state.get("injected"):
            outcome = "clean"
        elif ok:
            outcome = "recovered"
        elif state.get("last") is not None:
            outcome = "failed"  # the last attempt failed too: retries exhausted
        else:
            outcome = "refused after a fault"  # the service's own error, after a retry
        self._count_outcome(service, outcome)

    def figures(self) -> dict[str, Any]:
        """What was injected and what the calls finally did, for a report."""
        with self._lock:
            return {
                "rate": self.rate,
                "seed": self.seed,
                "attempts": dict(self.attempts),
                "injected": {f"{s} {k}": n for (s, k), n in sorted(self.injected.items())},
                "calls": {f"{s} {o}": n for (s, o), n in sorted(self.calls.items())},
            }

    def total(self, kind: str | None = None) -> int:
        """Faults injected (of ``kind``, or of every kind)."""
        with self._lock:
            return sum(n for (_, k), n in self.injected.items() if kind in (None, k))


def _context(request: AWSPreparedRequest) -> dict[str, Any]:
    """The call's context (botocore's ``request_context``), which every hook of one call
    shares."""
    context = getattr(request, "context", None)
    return context if isinstance(context, dict) else {}


def _item_key(params: dict[str, Any]) -> str | None:
    """A DynamoDB item's ``pk/sk``, from the call's ``Key`` or ``Item``."""
    item = params.get("Key") if isinstance(params.get("Key"), dict) else params.get("Item")
    if not isinstance(item, dict):
        return None
    return "/".join(str(next(iter(item.get(a, {}).values()), "")) for a in ("pk", "sk"))


def _identity(params: dict[str, Any]) -> str:
    """What a call names, as stable across runs as the call itself: an S3 key (an upload's
    random id left out), a DynamoDB item's key, a query's partition, Polly's text."""
    key = params.get("Key")
    if isinstance(key, str):
        return _UPLOAD_ID.sub("*", key)
    item = _item_key(params)
    if item is not None:
        return item
    values = params.get("ExpressionAttributeValues") or {}
    if ":pk" in values:
        return f"query/{values[':pk'].get('S', '')}"
    for name in ("Prefix", "Text"):
        if name in params:
            return f"{name}/{str(params[name])[:64]}"
    return ""


def instant_backoff(monkeypatch: Any) -> list[float]:
    """botocore's pauses between attempts, asked for and recorded, never slept (the
    standard retry mode's backoff is computed by ``ExponentialBackoff``); the pauses."""
    from botocore.retries import standard

    asked: list[float] = []
    original = standard.ExponentialBackoff.delay_amount

    def delay(self: Any, context: Any) -> float:
        asked.append(original(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay)
    return asked


def add_figures(total: dict[str, Any], faults: Faults) -> dict[str, Any]:
    """``faults``' figures added into ``total`` (counts summed), for a report of a test."""
    for section in ("attempts", "injected", "calls"):
        into = total.setdefault(section, {})
        for name, count in faults.figures()[section].items():
            into[name] = into.get(name, 0) + count
    return total


def summarise(reports: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Lines for the terminal: per test, what was injected and what the calls did."""
    lines = []
    grand: dict[str, Any] = {}
    for test, figures in reports:
        injected = ", ".join(f"{k} {n}" for k, n in figures.get("injected", {}).items()) or "none"
        calls = ", ".join(f"{k} {n}" for k, n in figures.get("calls", {}).items())
        extra = ", ".join(f"{k} {v}" for k, v in figures.get("outcomes", {}).items())
        lines.append(f"{test}")
        lines.append(f"    injected: {injected}")
        lines.append(f"    calls:    {calls}")
        if extra:
            lines.append(f"    outcomes: {extra}")
        for section in ("injected", "calls"):
            into = grand.setdefault(section, Counter())
            into.update(figures.get(section, {}))
    if reports:
        kinds: Counter[str] = Counter()
        for name, count in grand.get("injected", {}).items():
            kinds[name.split(" ", 1)[1]] += count
        by_kind = ", ".join(f"{k} {kinds[k]}" for k in KINDS if kinds[k])
        lines.append(f"all: injected {sum(kinds.values())} ({by_kind})")
        outcomes: Counter[str] = Counter()
        for name, count in grand.get("calls", {}).items():
            outcomes[name.split(" ", 1)[1]] += count
        lines.append("all: calls " + ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())))
    return lines
