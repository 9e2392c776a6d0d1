"""Yoto over HTTP (httpx): each call retried with backoff on time-outs, 429 and 5xx, then a
clear 502. The sleep between attempts is a parameter, so tests neither patch ``time`` nor
wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from smart_stream import telemetry
from smart_stream.domain.errors import YotoFailedError
from smart_stream.ports import YotoResponse

ATTEMPTS = 3
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt number ``attempt`` (1, 2, ...)."""
    return min(0.25 * 2**attempt, 2.0)


class YotoHttp:
    def __init__(
        self,
        *,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.timeout = timeout
        self.sleep = sleep
        self.attempts = attempts

    def request(
        self, method: str, url: str, *, retry_statuses: frozenset[int] | None = None, **kwargs: Any
    ) -> YotoResponse:
        import httpx

        retry = RETRY_STATUSES if retry_statuses is None else retry_statuses
        last = "no answer"
        for attempt in range(self.attempts):
            if attempt:
                telemetry.count(telemetry.YOTO_CALLS_RETRIED)
                self.sleep(backoff(attempt))
            try:
                response = httpx.request(method, url, timeout=self.timeout, **kwargs)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                continue
            if response.status_code in retry:
                last = f"HTTP {response.status_code}"
                continue
            telemetry.count(telemetry.YOTO_CALLS_OK)
            return response
        telemetry.count(telemetry.YOTO_CALLS_FAILED)
        raise YotoFailedError(
            f"Yoto is not answering ({last}); nothing was changed. Try again later."
        )
