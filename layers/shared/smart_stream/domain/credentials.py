"""Device credentials: what a device URL carries in its query string, since a Yoto player
cannot send headers. An HMAC-SHA256, keyed by the signing secret, over what the URL names
and that item's credential version: bumping the version revokes one URL, rotating the secret
revokes them all. Compared in constant time, never logged."""

from __future__ import annotations

import base64
import hashlib
import hmac

#: Query-string parameter that carries a device credential.
CREDENTIAL_PARAM = "sig"
#: The kinds of item a device URL names.
AUDIO_KIND = "audio"
QUEUE_KIND = "queue"


def device_credential(key: bytes, kind: str, name: str, version: int) -> str:
    """The credential of a device URL for ``kind``/``name`` at credential ``version``."""
    message = f"{kind}\n{name}\n{version}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def credential_matches(key: bytes, credential: str, kind: str, name: str, version: int) -> bool:
    expected = device_credential(key, kind, name, version)
    return hmac.compare_digest(credential.encode(), expected.encode())


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
