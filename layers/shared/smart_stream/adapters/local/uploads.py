"""The local twin of an S3 presigned POST: a signed, expiring form policy that the local
server checks before it stores the file (same fields a client sends to S3)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from smart_stream.domain.errors import ForbiddenError
from smart_stream.domain.names import is_pack_key, validate_storage_key
from smart_stream.ports import PresignedPost, Secrets

LOCAL_UPLOAD_PATH = "/api/audio/local-upload"
#: What the form sends as the file's type: the upload is judged by its content, as on S3.
UPLOAD_CONTENT_TYPE = "application/octet-stream"


class LocalUploadForms:
    def __init__(self, secrets: Secrets, clock: Callable[[], float] = time.time) -> None:
        self._secrets = secrets
        self._clock = clock

    def _sign(self, policy: str) -> str:
        key = self._secrets.signing_key()
        return hmac.new(key, b"upload\n" + policy.encode(), hashlib.sha256).hexdigest()

    def sign(self, name: str, *, max_size: int, expires_in: int, base_url: str) -> PresignedPost:
        expires = int(self._clock()) + expires_in
        document = {"key": name, "max_size": max_size, "expires": expires}
        policy = base64.b64encode(json.dumps(document, sort_keys=True).encode()).decode()
        return PresignedPost(
            url=base_url.rstrip("/") + LOCAL_UPLOAD_PATH,
            fields={
                "key": name,
                "Content-Type": UPLOAD_CONTENT_TYPE,
                "policy": policy,
                "signature": self._sign(policy),
            },
        )

    def verify(self, fields: dict[str, str]) -> tuple[str, int]:
        """The (filename, max size) a signed form allows; ``ForbiddenError`` if it is not one."""
        policy = fields.get("policy", "")
        signature = fields.get("signature", "")
        if not policy or not hmac.compare_digest(signature.encode(), self._sign(policy).encode()):
            raise ForbiddenError("The upload form's signature does not match.")
        try:
            document = json.loads(base64.b64decode(policy))
        except (binascii.Error, ValueError):  # signed by us, so never expected
            raise ForbiddenError("The upload form's policy cannot be read.") from None
        if document["expires"] < self._clock():
            raise ForbiddenError("The upload form has expired; ask for a new upload URL.")
        if fields.get("key") != document["key"]:
            raise ForbiddenError("The upload form's key does not match its policy.")
        if fields.get("Content-Type", UPLOAD_CONTENT_TYPE) != UPLOAD_CONTENT_TYPE:
            raise ForbiddenError(f"The upload form allows only Content-Type {UPLOAD_CONTENT_TYPE}.")
        key = document["key"]
        if is_pack_key(key):
            raise ForbiddenError("The upload form's key is not an upload's.")
        return validate_storage_key(key), int(document["max_size"])
