"""boto3 clients, as every AWS adapter wants them. ``bootstrap`` makes each once per
process (a cold start pays for it once) and hands it to the adapters."""

from __future__ import annotations

from typing import Any


def make_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retries smooth over throttling; the endpoint comes from AWS_ENDPOINT_URL when
    # set (tests point it at a moto server).
    config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=32)
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
