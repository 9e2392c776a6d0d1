"""boto3 clients and resources, made once per process (cold start) and reused."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retries smooth over throttling; the endpoint comes from AWS_ENDPOINT_URL when
    # set (tests point it at a moto server).
    config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=32)
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
