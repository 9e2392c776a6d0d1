"""Who may call what: the management bearer token, and the credentials device URLs carry.

A device URL (a Yoto card) cannot send headers, so it carries its own credential in the
query string: an HMAC-SHA256, keyed by the signing secret, over what the URL names and that
item's credential version. Bumping the version revokes one URL; rotating the secret revokes
them all. Credentials are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import cache
from pathlib import Path

from smart_stream.domain.errors import ForbiddenError, UnauthorizedError
from smart_stream.settings import get_settings

#: Query-string parameter that carries a device credential.
CREDENTIAL_PARAM = "sig"
API_TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret
SIGNING_SECRET_FILE = "signing-secret"  # noqa: S105 - a file name


def local_secret(name: str) -> str:
    """A secret kept in DATA_DIR (never among the audio), made on first use, owner-only."""
    data_dir = Path(get_settings().data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _secret_from_manager(arn: str) -> str:
    # Imported here: Powertools parameters pulls in boto3, which management handlers that
    # never reach this branch (local runs) should not pay for at import.
    from aws_lambda_powertools.utilities import parameters

    from smart_stream.adapters.aws.clients import client

    value = parameters.get_secret(
        arn, max_age=get_settings().secret_cache_seconds, boto3_client=client("secretsmanager")
    )
    return str(value).strip()


def api_token() -> str:
    settings = get_settings()
    if settings.api_token:
        return settings.api_token
    if settings.api_token_secret_arn:
        return _secret_from_manager(settings.api_token_secret_arn)
    return local_secret(API_TOKEN_FILE)


def signing_key() -> bytes:
    settings = get_settings()
    if settings.signing_secret_arn:
        return _secret_from_manager(settings.signing_secret_arn).encode()
    return _local_signing_key()


@cache
def _local_signing_key() -> bytes:
    return local_secret(SIGNING_SECRET_FILE).encode()


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def has_valid_bearer(headers: dict[str, str]) -> bool:
    """Whether ``headers`` (lower-case names) carry the management token."""
    token = _bearer(headers)
    return token is not None and hmac.compare_digest(token.encode(), api_token().encode())


def require_management(headers: dict[str, str]) -> None:
    if not has_valid_bearer(headers):
        raise UnauthorizedError(
            "Send the management token as 'Authorization: Bearer <token>' "
            "(make dev prints it; deployed it is in Secrets Manager)."
        )


def device_credential(kind: str, name: str, version: int) -> str:
    """The credential a device URL for ``kind``/``name`` carries at credential ``version``."""
    message = f"{kind}\n{name}\n{version}".encode()
    digest = hmac.new(signing_key(), message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def require_device(
    headers: dict[str, str], credential: str | None, kind: str, name: str, version: int
) -> None:
    """Device routes take the management token or the URL's own credential; else 403."""
    if credential:
        expected = device_credential(kind, name, version)
        if hmac.compare_digest(credential.encode(), expected.encode()):
            return
    if has_valid_bearer(headers):
        return
    raise ForbiddenError("This URL's credential is missing, wrong or revoked.")
