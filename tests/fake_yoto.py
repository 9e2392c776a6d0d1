"""A local fake of Yoto's API over real HTTP on loopback: sign-in (authorization code with
PKCE and its consent page, OAuth device code, token refresh), the content endpoints a card
needs, bearer and scope checks, and failures on demand.

Every card payload is checked against the documented card-content schema, written here as
pydantic models from yoto.dev:

- https://yoto.dev/reference/card-content-schema (fields, required, limits),
- https://yoto.dev/myo/how-playlists-work (the zod ``trackSchema`` / ``chapterSchema``),
- https://yoto.dev/myo/streaming-tracks (what a streaming track and its chapter carry),
- https://yoto.dev/api/createorupdatecontent (``POST /content``: no ``cardId`` creates, a
  ``cardId`` updates; the answer is ``{"card": {..., "cardId"}}``),
- https://yoto.dev/api/post-oauth-device-code and /api/post-oauth-token (sign-in),
- https://yoto.dev/authentication/auth/ and the ``/authorize`` reference (PKCE, S256; scopes
  requested and ticked: ``offline_access`` for a refresh token, ``user:content:manage`` to
  write cards), and Yoto's answer to an update of a card the parent deleted: 400, "Deleted
  card cannot be restored".

Where the pages disagree, the streaming-track page is followed for stream tracks: the
playlist schema makes a track's ``duration``, ``fileSize`` and ``overlayLabel`` required, and
the reference table makes a chapter's ``defaultTrackDisplay``/``defaultTrackAmbient``
required, but Yoto's own streaming example has none of them (a stream has no length or size
to give), so they are optional on stream tracks and chapters here; an ``audio`` track still
needs ``duration`` and ``fileSize``. From the streaming page too: a chapter of streams says
``hasStreams: true`` and the content has ``editSettings.transcodeAudioUploads: true``.
Unknown fields are dropped, as zod strips them on the real service; each one dropped is
recorded in ``FakeYoto.dropped``, so a test can say that no misspelt field vanished.

Use the ``fake_yoto`` fixture: it points YOTO_API_BASE_URL / YOTO_AUTH_BASE_URL at the fake,
sets YOTO_CLIENT_ID and a short YOTO_TIMEOUT_SECONDS, and yields the :class:`FakeYoto`
controller (state is fresh for every test; the server is started once per session).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "fake-yoto-client-id"
AUDIENCE = "https://api.yotoplay.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: YOTO_TIMEOUT_SECONDS while the fixture is active; a slow answer sleeps past it.
TIMEOUT_SECONDS = 3.0
#: Formats the streaming-track page names for a stream ("for example mp3 or aac").
STREAM_FORMATS = {"mp3", "aac"}
CARD_ID = re.compile(r"^[A-Za-z0-9]{5}$")
#: The scope a token needs to write or delete cards; ``offline_access`` earns a refresh token.
CONTENT_SCOPE = "user:content:manage"
ALL_SCOPES = frozenset({"offline_access", CONTENT_SCOPE, "profile"})


# --- The documented card-content schema -------------------------------------------------------


class _Strict(BaseModel):
    # strict: a number is not a string and "true" is not a boolean, as in zod; unknown keys
    # are stripped, as zod's objects do (see ``dropped_fields``).
    model_config = ConfigDict(extra="ignore", strict=True)


class Display(_Strict):
    # zod: z.object({icon16x16: z.string().nullable()}): the key is required, null allowed.
    icon16x16: str | None


class Ambient(_Strict):
    defaultTrackDisplay: str | None = None


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError(f"a stream's trackUrl must be an absolute https URL, not {value!r}")
    return value


class Track(_Strict):
    key: str = Field(min_length=1)
    title: str
    trackUrl: str = Field(min_length=1)
    format: str
    type: Literal["audio", "stream"]
    uid: str | None = None
    display: Display | None = None
    # Required by the playlist schema; absent from the streaming-track example (see above).
    overlayLabel: str | None = None
    overlayLabelOverride: str | None = None
    ambient: Ambient | None = None
    duration: float | None = None
    fileSize: float | None = None
    channels: Literal["stereo", "mono"] | None = None
    # The streaming-track page: "the isNew property should be added to the track object".
    isNew: bool | None = None
    transitions: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _by_type(self) -> Track:
        if self.type == "stream":
            _https_url(self.trackUrl)
            if self.format not in STREAM_FORMATS:
                raise ValueError(f"a stream's format is one of {sorted(STREAM_FORMATS)}")
        else:
            missing = [
                name
                for name in ("duration", "fileSize", "overlayLabel")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an audio track needs {missing}")
        return self


class Chapter(_Strict):
    key: str = Field(min_length=1)
    title: str
    overlayLabel: str | None = None
    availableFrom: str | None = None
    overlayLabelOverride: str | None = None
    # "Each chapter contains one or more tracks".
    tracks: list[Track] = Field(min_length=1)
    ambient: Ambient | None = None
    # Required by the reference table, optional in the zod schema, absent from the
    # streaming-track example: optional here.
    defaultTrackDisplay: str | None = None
    defaultTrackAmbient: str | None = None
    duration: float | None = None
    fileSize: float | None = None
    display: Display
    hasStreams: bool | None = None
    displayOverlay: str | None = None

    @model_validator(mode="after")
    def _streams(self) -> Chapter:
        if any(t.type == "stream" for t in self.tracks) and self.hasStreams is not True:
            raise ValueError("a chapter of stream tracks says hasStreams: true")
        keys = [t.key for t in self.tracks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"track keys repeat within a chapter: {keys}")
        return self


class EditSettings(_Strict):
    autoOverlayLabels: str | None = None
    editKeys: bool | None = None
    interactiveContent: bool | None = None
    podcastTrackDisplay: Display | None = None
    podcastType: str | None = None
    # "necessary for streaming cards" (reference) / "should be added" (streaming page).
    transcodeAudioUploads: bool | None = None


class Content(_Strict):
    activity: str | None = None
    chapters: list[Chapter] = Field(min_length=1)
    config: dict[str, Any] | None = None
    editSettings: EditSettings | None = None
    playbackType: Literal["linear", "interactive"] | None = None
    version: str | None = None
    restricted: bool | None = None

    @model_validator(mode="after")
    def _streaming(self) -> Content:
        streams = any(t.type == "stream" for c in self.chapters for t in c.tracks)
        if streams and not (self.editSettings and self.editSettings.transcodeAudioUploads):
            raise ValueError("a card with streams sets editSettings.transcodeAudioUploads: true")
        keys = [c.key for c in self.chapters]
        if len(set(keys)) != len(keys):
            raise ValueError(f"chapter keys repeat: {keys}")
        return self


class Metadata(BaseModel):
    # Many documented descriptive fields (author, category, cover, ...); only the one this
    # app sends is typed.
    model_config = ConfigDict(extra="allow", strict=True)
    description: str | None = None


class Card(_Strict):
    cardId: str | None = None
    title: str
    slug: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    metadata: Metadata | None = None
    content: Content
    tags: list[str] | None = None
    availability: str | None = None
    deleted: bool | None = None

    @field_validator("cardId")
    @classmethod
    def _card_id(cls, value: str | None) -> str | None:
        if value is not None and not CARD_ID.match(value):
            raise ValueError("cardId is exactly 5 letters or digits")
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        # "Minimum 1 character, Maximum 100 characters", counted as JavaScript (and zod's
        # .max) counts them: UTF-16 code units.
        units = len(value.encode("utf-16-le")) // 2
        if not 1 <= units <= 100:
            raise ValueError(f"title is 1-100 characters (UTF-16 units), not {units}")
        return value


def validate_card(payload: Any) -> Card:
    """The payload as the documented schema reads it; ValidationError if it is not one."""
    return Card.model_validate(payload)


def dropped_fields(value: Any, model: Any, path: str = "") -> list[str]:
    """The keys of ``value`` that validating it as ``model`` stripped, as dotted paths."""
    if isinstance(model, BaseModel) and isinstance(value, dict):
        fields = type(model).model_fields
        keeps_extra = model.model_config.get("extra") == "allow"
        found: list[str] = []
        for key, item in value.items():
            if key in fields:
                found += dropped_fields(item, getattr(model, key), f"{path}{key}.")
            elif not keeps_extra:
                found.append(f"{path}{key}")
        return found
    if isinstance(model, list) and isinstance(value, list):
        return [
            name
            for index, (item, part) in enumerate(zip(value, model, strict=False))
            for name in dropped_fields(item, part, f"{path}{index}.")
        ]
    return []


@contextlib.contextmanager
def as_the_browser() -> Iterator[None]:
    """Requests made inside are the parent's browser's, not this app's: the HTTP client's
    log lines (which would show the one-time code in a callback address) are kept out of
    the logs that tests search for leaked secrets."""
    # httpcore logs through child loggers (httpcore.http11, ...), which take their level from
    # these two.
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)


def s256(verifier: str) -> str:
    """RFC 7636's S256 code challenge of a verifier (written here apart from the app's)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


# --- The controller ------------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] | None = None
    json: Any = None
    status: int | None = None

    @property
    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclass
class Fault:
    """How to answer a request instead of the normal way."""

    kind: Literal["status", "slow", "bad_json", "body"]
    status: int = 500
    seconds: float = 0.0
    body: Any = None
    path: str | None = None  # only requests whose path starts with this

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


@dataclass
class _Token:
    value: str
    expires_at: float
    revoked: bool = False
    scopes: frozenset[str] = ALL_SCOPES


@dataclass
class _Grant:
    """What the parent allowed on the consent page, waiting for its code's exchange."""

    client_id: str
    redirect_uri: str
    challenge: str
    scopes: frozenset[str]
    used: bool = False


@dataclass
class FakeYoto:
    """What a test steers and inspects. Thread-safe: the fake answers on its own thread."""

    base_url: str = ""
    client_id: str = CLIENT_ID
    #: ``expires_in`` of every access token issued.
    token_lifetime: int = 3600
    #: Each refresh issues a new refresh token and retires the old one (Auth0's rotation).
    rotate_refresh_tokens: bool = True
    #: Status of an ``authorization_pending`` / ``slow_down`` answer (RFC 8628: 400).
    pending_status: int = 400
    #: The next device-token polls answer ``slow_down`` (then pending again).
    slow_downs: int = 0
    slow_down_status: int = 400
    requests: list[Recorded] = field(default_factory=list)
    #: Card payloads that failed the schema, with pydantic's errors.
    rejected: list[tuple[Any, str]] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_cards: list[str] = field(default_factory=list)
    #: Card fields the fake stripped as unknown (dotted paths), as the real service would.
    dropped: list[str] = field(default_factory=list)
    #: The callback URLs registered in the developer dashboard; None: any (a redirect_uri
    #: must match one exactly, port included).
    callback_urls: list[str] | None = None
    #: Consent pages shown, by their id: the /authorize query they were asked with.
    consents: dict[str, dict[str, str]] = field(default_factory=dict)
    codes: dict[str, _Grant] = field(default_factory=dict)
    device_codes: dict[str, str] = field(default_factory=dict)  # code -> pending|approved|denied
    device_scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    user_codes: list[str] = field(default_factory=list)
    access_tokens: dict[str, _Token] = field(default_factory=dict)
    refresh_tokens: dict[str, _Token] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # Sign-in -------------------------------------------------------------------------------

    def approve(self) -> None:
        """The parent entered the code: every pending device code is approved."""
        with self.lock:
            for code, state in self.device_codes.items():
                if state == "pending":
                    self.device_codes[code] = "approved"

    def deny(self) -> None:
        with self.lock:
            for code, state in self.device_codes.items():
                if state == "pending":
                    self.device_codes[code] = "denied"

    def sign_in(self) -> tuple[str, str]:
        """Issue a token pair directly (as if a sign-in had completed); (access, refresh)."""
        with self.lock:
            return self._issue()

    def consent(self, authorize_url: str, *, allow: bool = True) -> str:
        """What a parent's browser does with ``authorize_url``: open Yoto's consent page,
        press Allow (or Deny), and be sent back. The address it is sent back to (the
        app's callback, with ``code``/``error`` and ``state``)."""
        import httpx

        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}" == self.base_url, authorize_url
        with as_the_browser(), httpx.Client(base_url=self.base_url) as client:
            page = client.get(f"{parts.path}?{parts.query}")
            assert page.status_code == 200, page.text
            consent = re.search(r'name="consent" value="([^"]+)"', page.text)
            assert consent is not None, page.text
            decision = "allow" if allow else "deny"
            sent = client.post(
                "/authorize/decision", data={"consent": consent.group(1), "decision": decision}
            )
        assert sent.status_code == 302, sent.text
        return sent.headers["location"]

    def delete_in_app(self, card_id: str) -> None:
        """The parent deleted the card in the Yoto app."""
        with self.lock:
            del self.cards[card_id]
            self.deleted_cards.append(card_id)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (refresh tokens still work)."""
        with self.lock:
            for token in self.access_tokens.values():
                token.expires_at = 0.0

    def revoke_tokens(self) -> None:
        """The parent signed this app out: no access or refresh token works any more."""
        with self.lock:
            for token in [*self.access_tokens.values(), *self.refresh_tokens.values()]:
                token.revoked = True

    def secrets_issued(self) -> list[str]:
        """Every token and code the fake handed out: none may leak."""
        with self.lock:
            return [*self.access_tokens, *self.refresh_tokens, *self.device_codes, *self.codes]

    # Failures ------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, path: str | None = None) -> None:
        self._add(count, Fault("status", status=status, path=path))

    def slow_next(self, count: int, seconds: float | None = None, path: str | None = None) -> None:
        """Answer only after ``seconds`` (by default well past the client's time-out), and then
        without doing anything: the caller has given up by then."""
        wait = TIMEOUT_SECONDS + 0.5 if seconds is None else seconds
        self._add(count, Fault("slow", seconds=wait, path=path))

    def bad_json_next(self, count: int, path: str | None = None) -> None:
        self._add(count, Fault("bad_json", status=200, path=path))

    def answer_next(
        self, count: int, body: Any, status: int = 200, path: str | None = None
    ) -> None:
        """Answer with ``body`` (JSON) instead, doing nothing (an unexpected shape)."""
        self._add(count, Fault("body", status=status, body=body, path=path))

    def _add(self, count: int, fault: Fault) -> None:
        with self.lock:
            self.faults.extend([fault] * count)

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(path):
                    return self.faults.pop(index)
        return None

    # Inspection ----------------------------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Requests received, optionally only one method and a path prefix."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or r.path.startswith(path))
            ]

    def grants(self) -> list[str]:
        return [r.form.get("grant_type", "") for r in self.calls("POST", "/oauth/token") if r.form]

    def last_card_payload(self) -> dict[str, Any]:
        posts = [
            r for r in self.calls("POST", "/content") if r.status is not None and r.status < 300
        ]
        assert posts, "no card reached the fake"
        return posts[-1].json

    # Internals -----------------------------------------------------------------------------

    def _issue(self, scopes: frozenset[str] = ALL_SCOPES) -> tuple[str, str]:
        access = "yoto-at-" + secrets.token_urlsafe(24)
        refresh = "yoto-rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = _Token(
            access, time.time() + self.token_lifetime, False, scopes
        )
        self.refresh_tokens[refresh] = _Token(refresh, float("inf"), False, scopes)
        return access, refresh

    def _token_answer(self, access: str, refresh: str | None) -> dict[str, Any]:
        scopes = self.access_tokens[access].scopes
        if "offline_access" not in scopes:
            refresh = None  # no refresh token unless offline_access was asked for
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(scopes)),
        }
        if refresh is not None:
            answer["refresh_token"] = refresh
        return answer

    def _valid_bearer(self, recorded: Recorded) -> bool:
        token = self.access_tokens.get(recorded.bearer or "")
        return token is not None and not token.revoked and token.expires_at > time.time()

    def _may_write_cards(self, recorded: Recorded) -> bool:
        token = self.access_tokens.get(recorded.bearer or "")
        return token is not None and CONTENT_SCOPE in token.scopes

    def _reset(self) -> None:
        fresh = FakeYoto(base_url=self.base_url)
        with self.lock:
            for name in self.__dataclass_fields__:
                if name != "lock":
                    setattr(self, name, getattr(fresh, name))


# --- The app --------------------------------------------------------------------------------------


def _oauth_error(status: int, error: str, description: str = "") -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description or error}, status)


def _api_error(status: int, code: str, message: str) -> JSONResponse:
    # Yoto's content API: {"error": {"code", "message"}} (see /api/getContent).
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def _form(recorded: Recorded, *required: str) -> JSONResponse | None:
    if recorded.form is None:
        return _oauth_error(400, "invalid_request", "send application/x-www-form-urlencoded")
    missing = [name for name in required if not recorded.form.get(name)]
    if missing:
        return _oauth_error(400, "invalid_request", f"missing {missing}")
    return None


def create_app(fake: FakeYoto) -> Starlette:
    async def record(request: Request) -> Recorded:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = Recorded(request.method, request.url.path, headers)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/x-www-form-urlencoded":
            recorded.form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()}
        elif body:
            try:
                recorded.json = json.loads(body)
            except ValueError:
                recorded.json = body
        with fake.lock:
            fake.requests.append(recorded)
        return recorded

    def endpoint(handler):
        async def wrapped(request: Request) -> Response:
            recorded = await record(request)
            fault = fake._take_fault(recorded.path)
            response: Response
            if fault is None:
                response = handler(recorded, request)
            elif fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
                response = JSONResponse({})
            elif fault.kind == "bad_json":
                response = Response("<html>upstream error", 200, media_type="application/json")
            elif fault.kind == "body":
                response = JSONResponse(fault.body, fault.status)
            else:
                response = _api_error(fault.status, "injected", f"injected {fault.status}")
            recorded.status = response.status_code
            return response

        return wrapped

    def device_code(recorded: Recorded, _: Request) -> Response:
        if (bad := _form(recorded, "client_id", "scope", "audience")) is not None:
            return bad
        assert recorded.form is not None
        if recorded.form["client_id"] != fake.client_id:
            return _oauth_error(401, "unauthorized_client", "unknown client")
        if "offline_access" not in recorded.form["scope"].split():
            return _oauth_error(400, "invalid_scope", "offline_access is needed for refreshes")
        code = secrets.token_urlsafe(24)
        user_code = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        with fake.lock:
            fake.device_codes[code] = "pending"
            fake.device_scopes[code] = frozenset(recorded.form["scope"].split())
            fake.user_codes.append(user_code)
        return JSONResponse(
            {
                "device_code": code,
                "user_code": user_code,
                "verification_uri": f"{fake.base_url}/activate",
                "verification_uri_complete": f"{fake.base_url}/activate?user_code={user_code}",
                "expires_in": 900,
                "interval": 5,
            }
        )

    def token(recorded: Recorded, _: Request) -> Response:
        if (bad := _form(recorded, "grant_type", "client_id")) is not None:
            return bad
        assert recorded.form is not None
        form = recorded.form
        if form["client_id"] != fake.client_id:
            return _oauth_error(401, "invalid_client", "unknown client")
        with fake.lock:
            if form["grant_type"] == DEVICE_GRANT:
                state = fake.device_codes.get(form.get("device_code", ""))
                if state is None:
                    return _oauth_error(400, "invalid_grant", "unknown device code")
                if state == "denied":
                    return _oauth_error(403, "access_denied", "the user said no")
                if state == "pending":
                    if fake.slow_downs:
                        fake.slow_downs -= 1
                        return _oauth_error(fake.slow_down_status, "slow_down", "poll less")
                    return _oauth_error(fake.pending_status, "authorization_pending", "waiting")
                if state == "used":
                    return _oauth_error(400, "invalid_grant", "device code already used")
                fake.device_codes[form["device_code"]] = "used"
                scopes = fake.device_scopes[form["device_code"]]
                return JSONResponse(fake._token_answer(*fake._issue(scopes)))
            if form["grant_type"] == "authorization_code":
                return exchange_code(form)
            if form["grant_type"] == "refresh_token":
                old = fake.refresh_tokens.get(form.get("refresh_token", ""))
                if old is None or old.revoked:
                    return _oauth_error(403, "invalid_grant", "unknown or revoked refresh token")
                access, refresh = fake._issue(old.scopes)
                if fake.rotate_refresh_tokens:
                    old.revoked = True
                    return JSONResponse(fake._token_answer(access, refresh))
                del fake.refresh_tokens[refresh]
                return JSONResponse(fake._token_answer(access, None))
        return _oauth_error(400, "unsupported_grant_type", form["grant_type"])

    def exchange_code(form: dict[str, str]) -> Response:
        # Called with the lock held. RFC 6749 4.1.3 and RFC 7636 4.6.
        missing = [n for n in ("code", "code_verifier", "redirect_uri") if not form.get(n)]
        if missing:
            return _oauth_error(400, "invalid_request", f"missing {missing}")
        grant = fake.codes.get(form["code"])
        if grant is None or grant.used:
            return _oauth_error(400, "invalid_grant", "unknown or already used code")
        grant.used = True  # single-use, even when the exchange fails below
        if grant.client_id != form["client_id"]:
            return _oauth_error(400, "invalid_grant", "the code was issued to another client")
        if grant.redirect_uri != form["redirect_uri"]:
            return _oauth_error(400, "invalid_grant", "redirect_uri differs from /authorize's")
        if s256(form["code_verifier"]) != grant.challenge:
            return _oauth_error(400, "invalid_grant", "code_verifier does not match")
        return JSONResponse(fake._token_answer(*fake._issue(grant.scopes)))

    def authorize_page(recorded: Recorded, request: Request) -> Response:
        query = dict(request.query_params)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != fake.client_id:
            return HTMLResponse("<h1>Unknown client</h1>", 400)
        if not redirect_uri or (
            fake.callback_urls is not None and redirect_uri not in fake.callback_urls
        ):
            # Never redirect to an address that is not registered: show an error instead.
            return HTMLResponse("<h1>Callback URL mismatch</h1>", 400)
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problems.append("a code_challenge with code_challenge_method=S256 is required")
        if query.get("audience") != AUDIENCE:
            problems.append(f"audience must be {AUDIENCE}")
        scopes = set(query.get("scope", "").split())
        if not scopes <= ALL_SCOPES:
            problems.append(f"unknown scopes {sorted(scopes - ALL_SCOPES)}")
        if problems:
            back = {"error": "invalid_request", "error_description": "; ".join(problems)}
            if "state" in query:
                back["state"] = query["state"]
            return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", 302)
        consent = secrets.token_urlsafe(16)
        with fake.lock:
            fake.consents[consent] = query
        asked = ", ".join(sorted(scopes)) or "nothing"
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Yoto</title>"
            # No favicon request: the browser tests count a failed load as the page's fault.
            '<link rel="icon" href="data:,"></head>'
            "<body><h1>Allow this app to use your Yoto account?</h1>"
            f"<p>It asks for: {html.escape(asked)}</p>"
            '<form method="post" action="/authorize/decision">'
            f'<input type="hidden" name="consent" value="{consent}">'
            '<button name="decision" value="allow">Allow</button> '
            '<button name="decision" value="deny">Deny</button>'
            "</form></body></html>"
        )
        return HTMLResponse(page)

    def decision(recorded: Recorded, _: Request) -> Response:
        form = recorded.form or {}
        with fake.lock:
            query = fake.consents.pop(form.get("consent", ""), None)
            if query is None:
                return HTMLResponse("<h1>This sign-in has expired</h1>", 400)
            back: dict[str, str] = {}
            if form.get("decision") == "allow":
                code = secrets.token_urlsafe(24)
                fake.codes[code] = _Grant(
                    client_id=query["client_id"],
                    redirect_uri=query["redirect_uri"],
                    challenge=query["code_challenge"],
                    scopes=frozenset(query.get("scope", "").split()),
                )
                back["code"] = code
            else:
                back.update(error="access_denied", error_description="The user said no")
        if "state" in query:
            back["state"] = query["state"]
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", 302)

    def post_content(recorded: Recorded, request: Request) -> Response:
        if not fake._valid_bearer(recorded):
            return _api_error(401, "unauthorized", "missing, unknown or expired token")
        if not fake._may_write_cards(recorded):
            return _api_error(403, "forbidden", f"the token lacks the {CONTENT_SCOPE} scope")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _api_error(415, "unsupported-media-type", "send JSON")
        try:
            card = validate_card(recorded.json)
        except ValidationError as exc:
            with fake.lock:
                fake.rejected.append((recorded.json, str(exc)))
            return _api_error(400, "bad-request", str(exc))
        with fake.lock:
            fake.dropped.extend(dropped_fields(recorded.json, card))
            if card.cardId is not None:
                if card.cardId in fake.deleted_cards:
                    return _api_error(400, "bad-request", "Deleted card cannot be restored")
                if card.cardId not in fake.cards:
                    return _api_error(404, "not-found", f"Card {card.cardId} does not exist.")
                card_id = card.cardId
                created_at = fake.cards[card_id]["createdAt"]
            else:
                alphabet = string.ascii_letters + string.digits
                card_id = "".join(secrets.choice(alphabet) for _ in range(5))
                created_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            stored = {
                **card.model_dump(mode="json", exclude_unset=True),
                "cardId": card_id,
                "_id": secrets.token_hex(12),
                "userId": "auth0|fake-parent",
                "createdAt": created_at,
                "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            }
            fake.cards[card_id] = stored
        return JSONResponse({"card": stored})

    def delete_content(recorded: Recorded, request: Request) -> Response:
        if not fake._valid_bearer(recorded):
            return _api_error(401, "unauthorized", "missing, unknown or expired token")
        if not fake._may_write_cards(recorded):
            return _api_error(403, "forbidden", f"the token lacks the {CONTENT_SCOPE} scope")
        card_id = request.path_params["card_id"]
        with fake.lock:
            if fake.cards.pop(card_id, None) is None:
                return _api_error(404, "not-found", f"Card {card_id} does not exist.")
            fake.deleted_cards.append(card_id)
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/authorize", endpoint(authorize_page), methods=["GET"]),
            Route("/authorize/decision", endpoint(decision), methods=["POST"]),
            Route("/oauth/device/code", endpoint(device_code), methods=["POST"]),
            Route("/oauth/token", endpoint(token), methods=["POST"]),
            Route("/content", endpoint(post_content), methods=["POST"]),
            Route("/content/{card_id}", endpoint(delete_content), methods=["DELETE"]),
        ]
    )


# --- Serving it ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _fake_yoto_server() -> Iterator[FakeYoto]:
    from tests.conftest import _free_port, serve

    fake = FakeYoto()
    port = _free_port()
    fake.base_url = f"http://127.0.0.1:{port}"
    server, thread = serve(
        create_app(fake), port, lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake_yoto(_fake_yoto_server: FakeYoto, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeYoto]:
    """The fake Yoto, fresh for this test, with the app's settings pointing at it."""
    from smart_stream.bootstrap import install

    fake = _fake_yoto_server
    fake._reset()
    monkeypatch.setenv("YOTO_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("YOTO_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("YOTO_AUTH_BASE_URL", fake.base_url)
    monkeypatch.setenv("YOTO_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    install(None)  # services built from here on see the fake's addresses
    yield fake
    fake._reset()
