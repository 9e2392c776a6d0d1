"""Secrets kept in AWS Secrets Manager, read through Powertools parameters (cached for
``max_age`` seconds, so a rotation reaches every warm function within that time)."""

from __future__ import annotations

from typing import Any

from smart_stream.ports import Secrets


class ManagedSecrets:
    """The management token and the signing key from Secrets Manager, each where its ARN is
    given; ``fallback`` gives the other (the token in ``API_TOKEN``, say)."""

    def __init__(
        self,
        client: Any,
        *,
        api_token_arn: str | None,
        signing_secret_arn: str | None,
        max_age: int,
        fallback: Secrets,
    ) -> None:
        self._client = client
        self._api_token_arn = api_token_arn
        self._signing_secret_arn = signing_secret_arn
        self._max_age = max_age
        self._fallback = fallback

    def _read(self, arn: str) -> str:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(arn, max_age=self._max_age, boto3_client=self._client)
        return str(value).strip()

    def api_token(self) -> str:
        if self._api_token_arn:
            return self._read(self._api_token_arn)
        return self._fallback.api_token()

    def signing_key(self) -> bytes:
        if self._signing_secret_arn:
            return self._read(self._signing_secret_arn).encode()
        return self._fallback.signing_key()
