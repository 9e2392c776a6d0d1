"""Yoto sign-in: the parent's Yoto tokens, kept in the Catalog encrypted (Fernet, keyed from
the signing secret), never logged and never returned; calls to Yoto's API as the signed-in
parent, refreshing the token when it is about to expire or is refused.

Signing in is OAuth's authorization code grant with PKCE (RFC 7636, S256), as yoto.dev
recommends (https://yoto.dev/authentication/auth/): the page sends the browser to Yoto's
``/authorize``, and Yoto sends it back to ``/api/yoto/callback`` with a code that only this
server, holding the verifier, can exchange. The device-code grant (deprecated by Yoto for
new apps) stays as a fallback for a server with no browser at hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from smart_stream.domain.errors import (
    YotoFailedError,
    YotoNotConfiguredError,
    YotoSignInNeededError,
)
from smart_stream.ports import Catalog, Secrets, YotoApi, YotoResponse

TOKEN_KEY = "yoto/token"  # noqa: S105 - the name of a catalogue entry
LOGIN_KEY = "yoto/login"
AUTHORIZE_KEY = "yoto/authorize"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CALLBACK_PATH = "/api/yoto/callback"
#: Refresh a token this long before it expires.
REFRESH_MARGIN_SECONDS = 120
#: How long a sign-in started with ``authorize`` may take to come back.
AUTHORIZE_SECONDS = 600
#: Where the callback sends the browser: the page, which reads the fragment.
SIGNED_IN = "/#yoto=signed-in"
_REASON = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class YotoConfig:
    client_id: str | None
    api_base_url: str
    auth_base_url: str
    audience: str = "https://api.yotoplay.com"
    scopes: str = "offline_access user:content:manage"
    #: The callback URL registered in Yoto's dashboard; None: the request's base + callback.
    redirect_uri: str | None = None


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


def code_challenge(verifier: str) -> str:
    """PKCE's S256 challenge of a verifier: BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def error_redirect(reason: str) -> str:
    """Where a failed sign-in sends the browser; ``reason`` is one machine word."""
    word = reason.lower() if _REASON.fullmatch(reason.lower()) else "failed"
    return f"/#yoto=error&reason={word}"


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

    # Sign-in: authorization code with PKCE ----------------------------------------------------

    def client_id(self) -> str:
        if not self.config.client_id:
            raise YotoNotConfiguredError(
                "Set YOTO_CLIENT_ID to the client id of your Yoto developer account first."
            )
        return self.config.client_id

    def _auth_url(self, path: str) -> str:
        return self.config.auth_base_url.rstrip("/") + path

    def redirect_uri(self, request_base: str) -> str:
        """The callback Yoto sends the browser to, exactly as registered in Yoto's dashboard:
        ``YOTO_REDIRECT_URI``, else the management API's own base (where the page is) plus
        the callback's path. Never the devices' public base: that may be another host."""
        return self.config.redirect_uri or request_base.rstrip("/") + CALLBACK_PATH

    def authorize(self, request_base: str) -> str:
        """Start a sign-in: the address of Yoto's consent page for the browser to open. Its
        state is random and single-use, and is kept (with the PKCE verifier it is bound to)
        for ten minutes; starting again replaces it."""
        client_id = self.client_id()
        verifier = secrets.token_urlsafe(64)  # 86 characters of RFC 7636's alphabet
        state = secrets.token_urlsafe(32)
        redirect_uri = self.redirect_uri(request_base)
        self._save(
            AUTHORIZE_KEY,
            {
                "state": state,
                "verifier": verifier,
                "redirect_uri": redirect_uri,
                "expires_at": self.clock() + AUTHORIZE_SECONDS,
            },
        )
        query = urlencode(
            {
                "audience": self.config.audience,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": self.config.scopes,
                "state": state,
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self._auth_url('/authorize')}?{query}"

    def _take_authorization(self, state: str) -> dict[str, Any] | None:
        """The pending sign-in that ``state`` names, now used up; None (and nothing
        changed) for a state this server did not hand out, already used or expired."""
        pending = self._load(AUTHORIZE_KEY)
        if pending is None or not state:
            return None
        if not hmac.compare_digest(str(pending.get("state", "")).encode(), state.encode()):
            return None
        self.catalog.delete_value(AUTHORIZE_KEY)
        if pending["expires_at"] < self.clock():
            return None
        return pending

    def callback(self, *, code: str | None, state: str | None, error: str | None) -> str:
        """Finish a sign-in where Yoto sent the browser back: where to send it next (the
        page, saying how it went). Tokens are stored only for a code that Yoto exchanged
        under a state this server handed out."""
        if error:
            # Yoto said no (access_denied, ...): the sign-in in flight is over either way.
            self._take_authorization(state or "")
            return error_redirect(error)
        pending = self._take_authorization(state or "")
        if pending is None:
            return error_redirect("invalid_state")
        if not code:
            return error_redirect("invalid_request")
        try:
            response = self.api.request(
                "POST",
                self._auth_url("/oauth/token"),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "code_verifier": pending["verifier"],
                    "redirect_uri": pending["redirect_uri"],
                    "client_id": self.client_id(),
                },
            )
            if response.status_code != 200:
                said = response_json(response).get("error") if response.status_code < 500 else None
                return error_redirect(said if isinstance(said, str) else "token_refused")
            self._store_token(response)
        except YotoFailedError:
            return error_redirect("yoto_unavailable")
        self.catalog.delete_value(LOGIN_KEY)
        return SIGNED_IN

    def sign_out(self) -> None:
        """Forget the parent's Yoto tokens and any sign-in in flight."""
        for key in (TOKEN_KEY, LOGIN_KEY, AUTHORIZE_KEY):
            self.catalog.delete_value(key)

    # Sign-in: device code (the headless fallback) ---------------------------------------------

    def start_login(self) -> dict[str, Any]:
        """Begin Yoto's device-code sign-in; the parent opens the address and types the code.
        Yoto deprecates this grant for new apps: it is here for a server with no browser."""
        response = self.api.request(
            "POST",
            self._auth_url("/oauth/device/code"),
            data={
                "client_id": self.client_id(),
                "scope": self.config.scopes,
                "audience": self.config.audience,
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
                # Yoto rotates refresh tokens: keep the new one when it sends one.
                "refresh_token": token.refresh_token or previous_refresh,
                "expires_at": self.clock() + token.expires_in,
            },
        )

    def poll_login(self) -> bool:
        """Ask Yoto once whether the parent has finished a device-code sign-in; True once
        signed in (by either way)."""
        login = self._load(LOGIN_KEY)
        if login is None:
            return self._load(TOKEN_KEY) is not None
        if login["expires_at"] < self.clock():
            self.catalog.delete_value(LOGIN_KEY)
            return self._load(TOKEN_KEY) is not None
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
            return self._load(TOKEN_KEY) is not None
        self.catalog.delete_value(LOGIN_KEY)  # denied or expired: a new sign-in is needed
        return self._load(TOKEN_KEY) is not None

    def status(self, request_base: str) -> dict[str, Any]:
        """Signed in or not; whether a sign-in is under way; the callback to register."""
        signed_in = self.poll_login()
        authorizing = self._load(AUTHORIZE_KEY)
        pending = self._load(LOGIN_KEY) is not None or (
            authorizing is not None and authorizing["expires_at"] >= self.clock()
        )
        return {
            "signed_in": signed_in,
            "pending": pending,
            "redirect_uri": self.redirect_uri(request_base),
        }

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
