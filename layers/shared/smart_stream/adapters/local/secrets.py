"""Secrets kept as files in DATA_DIR (never among the audio), made on first use, readable
by their owner only."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

API_TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret
SIGNING_SECRET_FILE = "signing-secret"  # noqa: S105 - a file name


def local_secret(data_dir: Path, name: str) -> str:
    """The secret in ``data_dir/name``, made (random, owner-only) if there is none yet."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


class LocalSecrets:
    """The management token is ``api_token`` when given, else the file ``api-token``, read
    on every check (deleting it signs every client out). The signing key is read once."""

    def __init__(self, data_dir: Path, api_token: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._api_token = api_token
        self._lock = threading.Lock()
        self._signing_key: bytes | None = None

    def api_token(self) -> str:
        return self._api_token or local_secret(self.data_dir, API_TOKEN_FILE)

    def signing_key(self) -> bytes:
        with self._lock:
            if self._signing_key is None:
                self._signing_key = local_secret(self.data_dir, SIGNING_SECRET_FILE).encode()
            return self._signing_key
