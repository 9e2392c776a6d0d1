"""The AWS resources the app expects, made in moto (tests) or a moto server (integration,
bench), shaped as template.yaml declares them."""

from __future__ import annotations

from typing import Any


def create_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name)


def create_catalog_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
