"""Who may call what: the management bearer token, and the credentials device URLs carry
(see ``domain.credentials``)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from smart_stream.domain.credentials import bearer_token, credential_matches, device_credential
from smart_stream.domain.errors import ForbiddenError, UnauthorizedError
from smart_stream.ports import Secrets


class Access:
    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    def has_valid_bearer(self, headers: Mapping[str, str]) -> bool:
        """Whether ``headers`` (lower-case names) carry the management token."""
        token = bearer_token(headers.get("authorization", ""))
        return token is not None and hmac.compare_digest(
            token.encode(), self.secrets.api_token().encode()
        )

    def require_management(self, headers: Mapping[str, str]) -> None:
        if not self.has_valid_bearer(headers):
            raise UnauthorizedError(
                "Send the management token as 'Authorization: Bearer <token>' "
                "(make dev prints it; deployed it is in Secrets Manager)."
            )

    def device_credential(self, kind: str, name: str, version: int) -> str:
        return device_credential(self.secrets.signing_key(), kind, name, version)

    def require_device(
        self,
        headers: Mapping[str, str],
        credential: str | None,
        kind: str,
        name: str,
        version: int,
    ) -> None:
        """Device routes take the management token or the URL's own credential; else 403."""
        key = self.secrets.signing_key()
        if credential and credential_matches(key, credential, kind, name, version):
            return
        if self.has_valid_bearer(headers):
            return
        raise ForbiddenError("This URL's credential is missing, wrong or revoked.")
