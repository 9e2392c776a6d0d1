"""Yoto cards: the MYO content JSON for a queue, Yoto's sign-in (OAuth device code) and
pushing a queue's card to the parent's Yoto account.

The card format follows yoto.dev: a streaming track is ``{"key", "title", "type": "stream",
"format": "mp3", "trackUrl"}`` in a chapter; the streaming-track page
(https://yoto.dev/myo/streaming-tracks) also gives such a chapter ``hasStreams: true`` with
``duration`` and ``fileSize`` of 0, the track ``isNew``, and the content
``editSettings.transcodeAudioUploads``. The playlist schema
(https://yoto.dev/myo/how-playlists-work) wants ``duration``/``fileSize`` on every track;
where the two pages disagree the streaming page is followed, as Yoto's own example for
streams. Yoto's tokens are kept in the Catalog encrypted (Fernet, keyed from the signing
secret), never logged and never returned.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from smart_stream.catalog import Catalog, get_catalog
from smart_stream.domain.errors import (
    BadGatewayError,
    ConflictError,
    NotFoundError,
    UnauthorizedError,
)
from smart_stream.domain.records import Queue, QueueRecord
from smart_stream.services import auth, queues
from smart_stream.services.library import device_url, public_base
from smart_stream.settings import get_settings

TOKEN_KEY = "yoto/token"  # noqa: S105 - the name of a catalogue entry
LOGIN_KEY = "yoto/login"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: Refresh a token this long before it expires.
REFRESH_MARGIN_SECONDS = 120
ATTEMPTS = 3
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class YotoSignInNeededError(UnauthorizedError):
    code = "yoto_sign_in_needed"

    def __init__(self, why: str = "") -> None:
        super().__init__(
            (why + " " if why else "")
            + "Sign in to Yoto: POST /api/yoto/login, open the address it gives and enter the code."
        )


class YotoFailedError(BadGatewayError):
    code = "yoto_failed"


class NoPublicUrlError(ConflictError):
    code = "no_public_url"


class YotoNotConfiguredError(ConflictError):
    code = "yoto_not_configured"


class NoCardError(NotFoundError):
    code = "no_card"


# Card payloads ------------------------------------------------------------------------------


def _https_base(request_base: str, function_url: str | None) -> str:
    base = public_base(request_base, function_url)
    if not base.startswith("https://"):
        raise NoPublicUrlError(
            f"A Yoto player needs a public https address, and this server's is {base}. "
            "Set PUBLIC_BASE_URL to the https address that reaches it (a reverse proxy or a "
            "tunnel; see the README), or use the deployed stack."
        )
    return base


def _stream_track(key: str, title: str, url: str) -> dict[str, Any]:
    return {
        "key": key,
        "title": title,
        "type": "stream",
        "format": "mp3",
        "trackUrl": url,
        "overlayLabel": str(int(key)),
        "isNew": True,
        "display": {"icon16x16": None},
    }


def _chapter(key: str, title: str, tracks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": key,
        "title": title,
        "overlayLabel": str(int(key)),
        "tracks": tracks,
        # What the streaming-track page gives a chapter of streams.
        "hasStreams": True,
        "duration": 0,
        "fileSize": 0,
        "display": {"icon16x16": None},
    }


def _card_title(title: str) -> str:
    """At most 100 characters as Yoto counts them (JavaScript's UTF-16 units, zod's max), so
    a title with emoji is not refused; never half of a surrogate pair."""
    kept, units = [], 0
    for char in title:
        units += 2 if ord(char) > 0xFFFF else 1
        if units > 100:
            break
        kept.append(char)
    return "".join(kept)


def card_content(
    record: QueueRecord,
    *,
    request_base: str,
    chapters: bool = False,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """The MYO content JSON for a queue: one chapter streaming the whole queue, or (with
    ``chapters``) a chapter per file, so the player's skip buttons move between files."""
    settings = get_settings()
    if chapters:
        catalog = catalog or get_catalog()
        base = _https_base(request_base, settings.audio_stream_base_url)
        items = []
        for number, filename in enumerate(record.files, start=1):
            audio = catalog.get_audio(filename)
            if audio is None:
                continue
            key = f"{number:02d}"
            title = audio.title or filename.rsplit(".", 1)[0]
            items.append(
                _chapter(key, title, [_stream_track("01", title, device_url(audio, base))])
            )
    else:
        base = _https_base(request_base, settings.queue_stream_base_url)
        url = queues.stream_url(record, base)
        items = [_chapter("01", record.title, [_stream_track("01", record.title, url)])]
    payload: dict[str, Any] = {
        "title": _card_title(record.title),
        "content": {
            "chapters": items,
            "playbackType": "linear",
            "editSettings": {"transcodeAudioUploads": True},
        },
        "metadata": {"description": record.description},
    }
    if record.yoto_card_id:
        payload["cardId"] = record.yoto_card_id
    return payload


# Talking to Yoto ------------------------------------------------------------------------------


def _client_id() -> str:
    client_id = get_settings().yoto_client_id
    if not client_id:
        raise YotoNotConfiguredError(
            "Set YOTO_CLIENT_ID to the client id of your Yoto developer account first."
        )
    return client_id


def _request(
    method: str, url: str, *, retry: frozenset[int] = _RETRY_STATUSES, **kwargs: Any
) -> Any:
    """One call to Yoto: retried with backoff on time-outs, 429 and 5xx (``retry``); a clear
    502 after."""
    import httpx

    timeout = get_settings().yoto_timeout_seconds
    last = "no answer"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(min(0.25 * 2**attempt, 2.0))
        try:
            response = httpx.request(method, url, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
            continue
        if response.status_code in retry:
            last = f"HTTP {response.status_code}"
            continue
        return response
    raise YotoFailedError(f"Yoto is not answering ({last}); nothing was changed. Try again later.")


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise YotoFailedError("Yoto answered with something that is not JSON.") from None
    if not isinstance(data, dict):
        raise YotoFailedError("Yoto answered in an unexpected shape.")
    return data


def _fernet() -> Any:
    from cryptography.fernet import Fernet

    key = hashlib.sha256(b"smart-stream yoto tokens\n" + auth.signing_key()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _save(catalog: Catalog, key: str, data: dict[str, Any]) -> None:
    catalog.put_value(key, _fernet().encrypt(json.dumps(data).encode()).decode())


def _load(catalog: Catalog, key: str) -> dict[str, Any] | None:
    from cryptography.fernet import InvalidToken

    raw = catalog.get_value(key)
    if raw is None:
        return None
    try:
        data = json.loads(_fernet().decrypt(raw.encode()))
    except (InvalidToken, ValueError):
        return None  # the signing secret was rotated: sign in again
    return data if isinstance(data, dict) else None


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


def start_login(catalog: Catalog | None = None) -> dict[str, Any]:
    """Begin Yoto's device-code sign-in; the parent opens the address and types the code."""
    catalog = catalog or get_catalog()
    settings = get_settings()
    response = _request(
        "POST",
        settings.yoto_auth_base_url.rstrip("/") + "/oauth/device/code",
        data={
            "client_id": _client_id(),
            "scope": "profile offline_access",
            "audience": settings.yoto_api_base_url.rstrip("/"),
        },
    )
    if response.status_code != 200:
        raise YotoFailedError(f"Yoto refused to start a sign-in (HTTP {response.status_code}).")
    try:
        code = _DeviceCode.model_validate(_json(response))
    except ValidationError:
        raise YotoFailedError("Yoto's sign-in answer is not in the expected shape.") from None
    _save(
        catalog,
        LOGIN_KEY,
        {
            "device_code": code.device_code,
            "expires_at": time.time() + code.expires_in,
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


def _store_token(catalog: Catalog, response: Any, previous_refresh: str | None = None) -> None:
    try:
        token = _Token.model_validate(_json(response))
    except ValidationError:
        raise YotoFailedError("Yoto's token answer is not in the expected shape.") from None
    _save(
        catalog,
        TOKEN_KEY,
        {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token or previous_refresh,
            "expires_at": time.time() + token.expires_in,
        },
    )


def poll_login(catalog: Catalog | None = None) -> bool:
    """Ask Yoto once whether the parent has finished signing in; True once signed in."""
    catalog = catalog or get_catalog()
    login = _load(catalog, LOGIN_KEY)
    if login is None:
        return _load(catalog, TOKEN_KEY) is not None
    if login["expires_at"] < time.time():
        catalog.delete_value(LOGIN_KEY)
        return False
    response = _request(
        "POST",
        get_settings().yoto_auth_base_url.rstrip("/") + "/oauth/token",
        # A 429 here is a slow_down (some sign-in servers answer it with 429 rather than RFC
        # 8628's 400): still pending, and asking again at once is the opposite of what it asks.
        retry=_RETRY_STATUSES - {429},
        data={
            "grant_type": DEVICE_GRANT,
            "device_code": login["device_code"],
            "client_id": _client_id(),
        },
    )
    if response.status_code == 200:
        _store_token(catalog, response)
        catalog.delete_value(LOGIN_KEY)
        return True
    error = _json(response).get("error") if response.status_code < 500 else None
    if error in ("authorization_pending", "slow_down"):
        return False
    catalog.delete_value(LOGIN_KEY)  # denied or expired: a new sign-in is needed
    return False


def login_status(catalog: Catalog | None = None) -> dict[str, bool]:
    catalog = catalog or get_catalog()
    signed_in = poll_login(catalog)
    return {"signed_in": signed_in, "pending": _load(catalog, LOGIN_KEY) is not None}


def _refresh(catalog: Catalog, token: dict[str, Any]) -> dict[str, Any]:
    if not token.get("refresh_token"):
        catalog.delete_value(TOKEN_KEY)
        raise YotoSignInNeededError("The Yoto sign-in has expired.")
    response = _request(
        "POST",
        get_settings().yoto_auth_base_url.rstrip("/") + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": _client_id(),
            "refresh_token": token["refresh_token"],
        },
    )
    if response.status_code != 200:
        catalog.delete_value(TOKEN_KEY)
        raise YotoSignInNeededError("Yoto no longer accepts this sign-in.")
    _store_token(catalog, response, token["refresh_token"])
    refreshed = _load(catalog, TOKEN_KEY)
    assert refreshed is not None
    return refreshed


def _token(catalog: Catalog, *, force_refresh: bool = False) -> dict[str, Any]:
    token = _load(catalog, TOKEN_KEY)
    if token is None and poll_login(catalog):
        token = _load(catalog, TOKEN_KEY)
    if token is None:
        raise YotoSignInNeededError()
    if force_refresh or token["expires_at"] - time.time() < REFRESH_MARGIN_SECONDS:
        token = _refresh(catalog, token)
    return token


def _authorised(method: str, path: str, catalog: Catalog, **kwargs: Any) -> Any:
    """A call to Yoto's API as the signed-in parent; a rejected token is refreshed once."""
    _client_id()  # not configured: say so, rather than ask for a sign-in that cannot work
    url = get_settings().yoto_api_base_url.rstrip("/") + path
    token = _token(catalog)
    for attempt in range(2):
        response = _request(
            method, url, headers={"Authorization": f"Bearer {token['access_token']}"}, **kwargs
        )
        if response.status_code != 401:
            return response
        if attempt == 0:
            token = _token(catalog, force_refresh=True)
    catalog.delete_value(TOKEN_KEY)
    raise YotoSignInNeededError("Yoto no longer accepts this sign-in.")


def _card_id(data: dict[str, Any]) -> str | None:
    card = data.get("card")
    found = card.get("cardId") if isinstance(card, dict) else data.get("cardId")
    return found if isinstance(found, str) and found else None


def push_card(
    name: str, *, request_base: str, chapters: bool = False, catalog: Catalog | None = None
) -> tuple[bool, Queue]:
    """Create the queue's card in the parent's Yoto account (True), or update the same card
    (False). The card id is saved with the queue only once Yoto has answered with it."""
    catalog = catalog or get_catalog()
    record = queues.get_record(name, catalog)
    payload = card_content(record, request_base=request_base, chapters=chapters, catalog=catalog)
    response = _authorised("POST", "/content", catalog, json=payload)
    if response.status_code == 404 and "cardId" in payload:
        # The parent deleted the card in the Yoto app: make a new one.
        record = record.model_copy(update={"yoto_card_id": None})
        del payload["cardId"]
        response = _authorised("POST", "/content", catalog, json=payload)
    if response.status_code >= 400:
        raise YotoFailedError(
            f"Yoto refused the card (HTTP {response.status_code}); nothing was changed."
        )
    card_id = _card_id(_json(response))
    if card_id is None:
        raise YotoFailedError("Yoto's answer did not name the card; nothing was saved.")
    created = record.yoto_card_id is None
    saved = queues.update_queue(name, {"yoto_card_id": card_id}, catalog)
    return created, queues.to_queue(saved, request_base)


def remove_card(name: str, *, catalog: Catalog | None = None) -> None:
    catalog = catalog or get_catalog()
    record = queues.get_record(name, catalog)
    if not record.yoto_card_id:
        raise NoCardError(f"The queue {name!r} has no Yoto card.")
    response = _authorised("DELETE", f"/content/{record.yoto_card_id}", catalog)
    if response.status_code >= 400 and response.status_code != 404:
        raise YotoFailedError(
            f"Yoto refused to remove the card (HTTP {response.status_code}); it is still there."
        )
    queues.update_queue(name, {"yoto_card_id": None}, catalog)
