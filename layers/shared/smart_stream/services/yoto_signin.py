"""Yoto sign-in: the parent's Yoto tokens, kept in the Catalog encrypted (Fernet, keyed from
the signing secret), never logged and never returned; the device-code sign-in; calls to
Yoto's API as the signed-in parent, refreshing the token when it is about to expire or is
refused."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from smart_stream.domain.errors import (
    YotoFailedError,
    YotoNotConfiguredError,
    YotoSignInNeededError,
)
from smart_stream.ports import Catalog, Secrets, YotoApi, YotoResponse

TOKEN_KEY = "yoto/token"  # noqa: S105 - the name of a catalogue entry
LOGIN_KEY = "yoto/login"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: Refresh a token this long before it expires.
REFRESH_MARGIN_SECONDS = 120


@dataclass(frozen=True)
class YotoConfig:
    client_id: str | None
    api_base_url: str
    auth_base_url: str


class _DeviceCode(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int
    interval: int = 5


class _Token(BaseModel):
    access_token: str
    refresh_token: str | None = None
    expires_in: int = 3600


def response_json(response: YotoResponse) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise YotoFailedError("Yoto answered with something that is not JSON.") from None
    if not isinstance(data, dict):
        raise YotoFailedError("Yoto answered in an unexpected shape.")
    return data


class YotoSignIn:
    def __init__(
        self,
        config: YotoConfig,
        api: YotoApi,
        catalog: Catalog,
        secrets: Secrets,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.api = api
        self.catalog = catalog
        self.secrets = secrets
        self.clock = clock

    # Tokens at rest ---------------------------------------------------------------------------

    def _fernet(self) -> Any:
        from cryptography.fernet import Fernet

        key = hashlib.sha256(b"smart-stream yoto tokens\n" + self.secrets.signing_key()).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    def _save(self, key: str, data: dict[str, Any]) -> None:
        self.catalog.put_value(key, self._fernet().encrypt(json.dumps(data).encode()).decode())

    def _load(self, key: str) -> dict[str, Any] | None:
        from cryptography.fernet import InvalidToken

        raw = self.catalog.get_value(key)
        if raw is None:
            return None
        try:
            data = json.loads(self._fernet().decrypt(raw.encode()))
        except (InvalidToken, ValueError):
            return None  # the signing secret was rotated: sign in again
        return data if isinstance(data, dict) else None

    # Sign-in ---------------------------------------------------------------------------------

    def client_id(self) -> str:
        if not self.config.client_id:
            raise YotoNotConfiguredError(
                "Set YOTO_CLIENT_ID to the client id of your Yoto developer account first."
            )
        return self.config.client_id

    def _auth_url(self, path: str) -> str:
        return self.config.auth_base_url.rstrip("/") + path

    def start_login(self) -> dict[str, Any]:
        """Begin Yoto's device-code sign-in; the parent opens the address and types the code."""
        response = self.api.request(
            "POST",
            self._auth_url("/oauth/device/code"),
            data={
                "client_id": self.client_id(),
                "scope": "profile offline_access",
                "audience": self.config.api_base_url.rstrip("/"),
            },
        )
        if response.status_code != 200:
            raise YotoFailedError(f"Yoto refused to start a sign-in (HTTP {response.status_code}).")
        try:
            code = _DeviceCode.model_validate(response_json(response))
        except ValidationError:
            raise YotoFailedError("Yoto's sign-in answer is not in the expected shape.") from None
        self._save(
            LOGIN_KEY,
            {
                "device_code": code.device_code,
                "expires_at": self.clock() + code.expires_in,
                "interval": code.interval,
            },
        )
        answer: dict[str, Any] = {
            "verification_uri": code.verification_uri,
            "user_code": code.user_code,
            "expires_in": code.expires_in,
        }
        if code.verification_uri_complete:
            answer["verification_uri_complete"] = code.verification_uri_complete
        return answer

    def _store_token(self, response: YotoResponse, previous_refresh: str | None = None) -> None:
        try:
            token = _Token.model_validate(response_json(response))
        except ValidationError:
            raise YotoFailedError("Yoto's token answer is not in the expected shape.") from None
        self._save(
            TOKEN_KEY,
            {
                "access_token": token.access_token,
                "refresh_token": token.refresh_token or previous_refresh,
                "expires_at": self.clock() + token.expires_in,
            },
        )

    def poll_login(self) -> bool:
        """Ask Yoto once whether the parent has finished signing in; True once signed in."""
        login = self._load(LOGIN_KEY)
        if login is None:
            return self._load(TOKEN_KEY) is not None
        if login["expires_at"] < self.clock():
            self.catalog.delete_value(LOGIN_KEY)
            return False
        response = self.api.request(
            "POST",
            self._auth_url("/oauth/token"),
            # A 429 here is a slow_down (some sign-in servers answer it with 429 rather than
            # RFC 8628's 400): still pending, and asking again at once is the opposite of
            # what it asks.
            retry_statuses=frozenset({500, 502, 503, 504}),
            data={
                "grant_type": DEVICE_GRANT,
                "device_code": login["device_code"],
                "client_id": self.client_id(),
            },
        )
        if response.status_code == 200:
            self._store_token(response)
            self.catalog.delete_value(LOGIN_KEY)
            return True
        error = response_json(response).get("error") if response.status_code < 500 else None
        if error in ("authorization_pending", "slow_down"):
            return False
        self.catalog.delete_value(LOGIN_KEY)  # denied or expired: a new sign-in is needed
        return False

    def status(self) -> dict[str, bool]:
        signed_in = self.poll_login()
        return {"signed_in": signed_in, "pending": self._load(LOGIN_KEY) is not None}

    # Calls as the parent ---------------------------------------------------------------------

    def _refresh(self, token: dict[str, Any]) -> dict[str, Any]:
        if not token.get("refresh_token"):
            self.catalog.delete_value(TOKEN_KEY)
            raise YotoSignInNeededError("The Yoto sign-in has expired.")
        response = self.api.request(
            "POST",
            self._auth_url("/oauth/token"),
            data={
                "grant_type": "refresh_token",
                "client_id": self.client_id(),
                "refresh_token": token["refresh_token"],
            },
        )
        if response.status_code != 200:
            self.catalog.delete_value(TOKEN_KEY)
            raise YotoSignInNeededError("Yoto no longer accepts this sign-in.")
        self._store_token(response, token["refresh_token"])
        refreshed = self._load(TOKEN_KEY)
        assert refreshed is not None
        return refreshed

    def token(self, *, force_refresh: bool = False) -> dict[str, Any]:
        token = self._load(TOKEN_KEY)
        if token is None and self.poll_login():
            token = self._load(TOKEN_KEY)
        if token is None:
            raise YotoSignInNeededError()
        if force_refresh or token["expires_at"] - self.clock() < REFRESH_MARGIN_SECONDS:
            token = self._refresh(token)
        return token

    def call(self, method: str, path: str, **kwargs: Any) -> YotoResponse:
        """A call to Yoto's API as the signed-in parent; a rejected token is refreshed once."""
        self.client_id()  # not configured: say so, rather than ask for a sign-in that cannot work
        url = self.config.api_base_url.rstrip("/") + path
        token = self.token()
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            response = self.api.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            if attempt == 0:
                token = self.token(force_refresh=True)
        self.catalog.delete_value(TOKEN_KEY)
        raise YotoSignInNeededError("Yoto no longer accepts this sign-in.")
