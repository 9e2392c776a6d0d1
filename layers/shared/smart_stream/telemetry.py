"""What operators see: the structured logger every function writes through, and the app's
metrics, written as CloudWatch embedded metric format (EMF) lines by Powertools.

Metrics are counted into the ``Meter`` of the invocation (a Lambda handler's, or one device
request's, which may stream for minutes) and written when it ends, however it ends. Code
anywhere below counts with ``count``/``measure``, which go to the current meter, or nowhere
when there is none (the local server, tests that do not ask, a process with no namespace).

Like Powertools itself, this module is configured by the environment Powertools reads:
``POWERTOOLS_METRICS_NAMESPACE`` (no namespace: no metrics), ``POWERTOOLS_SERVICE_NAME``
(the ``service`` dimension), ``POWERTOOLS_METRICS_DISABLED`` and ``POWERTOOLS_LOG_LEVEL``;
and ``STAGE`` (the ``stage`` dimension, so that a dev and a prod stack in one account are
told apart).

Dimensions are few and bounded, so that every combination is a metric worth its price: the
``service``, the ``stage``, and per metric at most a route (``file``/``queue``), an HTTP
status, or a reason. Never a filename, a queue name or anything a caller chooses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

#: Every function's logger: JSON lines with the Lambda context, at POWERTOOLS_LOG_LEVEL.
logger = Logger()

#: The standard-library loggers that join it in a Lambda environment (see ``configure_logging``).
APP_LOGGERS: Final = frozenset({"smart_stream", "uvicorn"})

# Metric names, one per thing counted (CloudWatch units: Count, Bytes, Seconds).
#: Device requests; dimensions ``route`` and ``outcome`` (the HTTP status).
DEVICE_REQUESTS: Final = "DeviceRequests"
#: Response bytes sent to devices; dimension ``route``.
BYTES_STREAMED: Final = "BytesStreamed"
#: Open-ended streams ended by their session limit; dimension ``reason``: deadline or size.
STREAMS_ENDED: Final = "OpenStreamsEnded"
CONVERSIONS_DONE: Final = "ConversionsDone"
#: Uploads given up on: not decodable, too long, or a conversion that stopped answering.
CONVERSIONS_FAILED: Final = "ConversionsFailed"
CONVERSION_SECONDS: Final = "ConversionSeconds"
STORIES_DONE: Final = "StoriesDone"
STORIES_FAILED: Final = "StoriesFailed"
STORY_SECONDS: Final = "StorySeconds"
#: Library files catalogued: stored (playable), invalid (not audio), stale (an event for a
#: version that was already replaced or removed, or that a newer event overtook).
METADATA_STORED: Final = "MetadataStored"
METADATA_INVALID: Final = "MetadataInvalid"
METADATA_STALE: Final = "MetadataStale"
#: Calls to Yoto: answered, attempts retried (a time-out, 429 or 5xx), given up on.
YOTO_CALLS_OK: Final = "YotoCallsOk"
YOTO_CALLS_RETRIED: Final = "YotoCallsRetried"
YOTO_CALLS_FAILED: Final = "YotoCallsFailed"

COUNT: Final = "Count"
BYTES: Final = "Bytes"
SECONDS: Final = "Seconds"

#: The stage dimension where STAGE is not set (the local server, tests).
LOCAL_STAGE: Final = "local"

_TRUE = {"1", "true", "yes", "on"}


class Meter:
    """The metrics of one invocation, grouped by their dimensions (an EMF record carries one
    set of dimensions for all its metrics), written once by ``flush``."""

    def __init__(self, namespace: str, *, stage: str) -> None:
        self.namespace = namespace
        self.stage = stage
        self._lock = threading.Lock()  # a device response is produced on worker threads
        self._groups: dict[tuple[tuple[str, str], ...], AmazonCloudWatchEMFProvider] = {}

    @classmethod
    def from_env(cls) -> Meter | None:
        """The meter the environment asks for; None when metrics are off (no namespace, or
        POWERTOOLS_METRICS_DISABLED)."""
        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
        if not namespace or os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in _TRUE:
            return None
        return cls(namespace, stage=os.environ.get("STAGE") or LOCAL_STAGE)

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        key = tuple(sorted(dimensions.items()))
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
                    AmazonCloudWatchEMFProvider,
                )

                # Powertools adds the ``service`` dimension (POWERTOOLS_SERVICE_NAME) itself.
                group = AmazonCloudWatchEMFProvider(
                    namespace=self.namespace,
                    default_dimensions={"stage": self.stage, **dimensions},
                )
                self._groups[key] = group
            group.add_metric(name=name, unit=unit, value=value)

    def flush(self) -> None:
        """Print every group's EMF record (stdout: Lambda sends it to the function's log
        group, where CloudWatch makes the metrics) and start afresh."""
        with self._lock:
            groups, self._groups = self._groups, {}
        for group in groups.values():
            group.flush_metrics()
        if groups:
            # Powertools prints, and a device function's stdout is a pipe that uvicorn never
            # flushes: Lambda may freeze or end the process with the lines still buffered.
            sys.stdout.flush()


_meter: ContextVar[Meter | None] = ContextVar("smart_stream_meter", default=None)


def count(name: str, value: float = 1, *, unit: str = COUNT, **dimensions: str) -> None:
    """Count ``value`` of ``name`` in the current invocation's metrics (nothing without one)."""
    meter = _meter.get()
    if meter is not None:
        meter.add(name, value, unit, dimensions)


def measure(name: str, seconds: float, **dimensions: str) -> None:
    """Record a duration in seconds."""
    count(name, seconds, unit=SECONDS, **dimensions)


@contextlib.contextmanager
def metered() -> Iterator[Meter | None]:
    """Collect the metrics counted inside, and write them when it ends, however it ends."""
    meter = Meter.from_env()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)
        if meter is not None:
            meter.flush()


_configured = False


def configure_logging() -> None:
    """In a Lambda environment, send the app's standard-library loggers (``smart_stream.*``
    and, in the device functions, uvicorn's) through ``logger``'s JSON handler at its level.
    Lambda's root logger stays at WARNING, which would drop their INFO lines. Elsewhere (the
    local server, tests) they are left to whoever runs the process. Once per process."""
    global _configured
    if _configured or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    for name in APP_LOGGERS:
        logging.getLogger(name)  # a logger, not the placeholder its children leave
    copy_config_to_registered_loggers(source_logger=logger, include=set(APP_LOGGERS))
    _configured = True


Handler = TypeVar("Handler", bound=Callable[..., Any])


def entry_point(handler: Handler) -> Handler:
    """A Lambda function's entry point: JSON logs with the Lambda context (the event itself
    is never logged: it may carry a credential), and the invocation's metrics written when
    it returns or raises."""
    configure_logging()
    logged = logger.inject_lambda_context(clear_state=True)(handler)

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        with metered():
            return logged(event, context)

    return invoke  # type: ignore[return-value]
