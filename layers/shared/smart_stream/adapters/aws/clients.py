"""boto3 clients, as every AWS adapter wants them. ``bootstrap`` makes each once per
process (a cold start pays for it once) and hands it to the adapters."""

from __future__ import annotations

from typing import Any


def make_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retries smooth over throttling; the endpoint comes from AWS_ENDPOINT_URL when
    # set (tests point it at a moto server).
    # S3: virtual-hosted, regional addresses (bucket.s3.<region>.amazonaws.com), so that a
    # browser's presigned POST goes straight to the bucket's region: the global name answers
    # a new bucket with a redirect, which a cross-origin form post does not follow. With an
    # endpoint such as moto's on an IP address, botocore keeps path-style addresses.
    config = Config(
        retries={"max_attempts": 4, "mode": "standard"},
        max_pool_connections=32,
        s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    )
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
