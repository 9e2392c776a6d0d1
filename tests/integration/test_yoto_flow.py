"""Yoto cards over real HTTP on both backends: the local server (real uvicorn; S3 and DynamoDB
in a moto server) talking to the local fake of Yoto's API (tests/fake_yoto.py), which checks
every card against the documented schema. A parent signs in, pushes a queue's card, changes
the queue and re-pushes the same card, revokes leaked URLs, and deletes; Yoto down, slow,
rate-limiting, odd or refusing the sign-in gives a clear error with nothing lost; Yoto's
tokens never leave the server."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cache

import httpx
import pytest

from smart_stream.adapters.yoto_http import ATTEMPTS
from smart_stream.bootstrap import Services, install, services
from smart_stream.settings import Settings
from tests import fake_yoto as fakes
from tests.audio import make_mp3
from tests.contract import QUEUE_FIELDS
from tests.fake_yoto import FakeYoto, as_the_browser, validate_card
from tests.integration.helpers import assert_json_error, upload

pytestmark = pytest.mark.integration

#: For tests of what does not depend on the storage backend.
local_only = pytest.mark.parametrize("live_server", ["local"], indirect=True)

# The fake's fixtures, for this module.
_fake_yoto_server = fakes._fake_yoto_server
fake_yoto = fakes.fake_yoto

#: What PUBLIC_BASE_URL says: a tunnel or reverse proxy in front of the server. Not real, so a
#: device URL is fetched with this base swapped for the live server's.
PUBLIC = "https://cards.example.test"


@cache
def song(name: str) -> bytes:
    lengths = {"moon.mp3": 0.6, "owl.mp3": 0.4, "stars.mp3": 0.3}
    return make_mp3(lengths[name], title=name.removesuffix(".mp3").title())


@pytest.fixture
def yoto_env(fake_yoto: FakeYoto, monkeypatch: pytest.MonkeyPatch) -> FakeYoto:
    """Set before the server starts: the public https base and Yoto's addresses (the fake)."""
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.delenv("QUEUE_STREAM_BASE_URL", raising=False)
    install(None)  # the live server builds its services from this environment
    return fake_yoto


@pytest.fixture
def server(yoto_env, live_server):
    return live_server


@pytest.fixture
def pauses() -> list[float]:
    """The pauses between attempts at Yoto, recorded instead of slept."""
    return []


@pytest.fixture
def restart(server, pauses) -> Callable[[], Services]:
    """The server's services built again from the environment as it is now (what a restart
    with it does), their pauses between attempts recorded in ``pauses`` instead of slept;
    installed, so the server's handlers use them from the next request."""

    def build() -> Services:
        built = Services(Settings.from_env(), sleep=pauses.append)
        install(built)
        return built

    return build


@pytest.fixture
def fake(server, yoto_env) -> FakeYoto:
    return yoto_env


@pytest.fixture
def answers() -> list[httpx.Response]:
    """Every response the server gave the management client, for the leak checks."""
    return []


@pytest.fixture
def client(server, answers):
    def keep(response: httpx.Response) -> None:
        response.read()
        answers.append(response)

    with httpx.Client(
        base_url=server.base_url,
        headers=server.auth(),
        timeout=30,
        event_hooks={"response": [keep]},
    ) as c:
        yield c


@pytest.fixture
def bedtime(client) -> dict:
    for name in ("moon.mp3", "owl.mp3", "stars.mp3"):
        assert upload(client, name, song(name)).status_code == 201
    made = client.post(
        "/api/streams/bedtime/queue",
        json={"files": ["moon.mp3", "owl.mp3"], "title": "Bedtime", "description": "Sleep well"},
    )
    assert made.status_code == 201, made.text
    return made.json()


def on_server(url: str, server) -> str:
    """A public device URL, fetched from the live server instead."""
    assert url.startswith(PUBLIC + "/"), url
    return server.base_url + url.removeprefix(PUBLIC)


def device_get(url: str, server) -> httpx.Response:
    # No management header: only the URL's own credential.
    return httpx.get(on_server(url, server), timeout=30)


def browser_get(url: str) -> httpx.Response:
    """What the parent's browser does with the address Yoto sends it to (no Authorization
    header; see ``as_the_browser``)."""
    with as_the_browser():
        return httpx.get(url, follow_redirects=False, timeout=30)


def consent(client, fake: FakeYoto, server, *, allow: bool = True) -> httpx.Response:
    """The browser's round trip: the page asks where to go, Yoto's consent page answers
    Allow (or Deny) and sends the browser to the callback; the callback's answer."""
    started = client.post("/api/yoto/authorize")
    assert started.status_code == 200, started.text
    back = fake.consent(started.json()["authorize_url"], allow=allow)
    assert back.startswith(server.base_url + "/api/yoto/callback?"), back
    return browser_get(back)


def sign_in(client, fake: FakeYoto, server) -> None:
    done = consent(client, fake, server)
    assert (done.status_code, done.headers["location"]) == (302, "/#yoto=signed-in")
    assert client.get("/api/yoto/login").json()["signed_in"] is True


def push(client, name: str = "bedtime") -> httpx.Response:
    return client.post(f"/api/streams/{name}/yoto-card")


def queue_of(client, name: str = "bedtime") -> dict:
    got = client.get(f"/api/streams/{name}/queue")
    assert got.status_code == 200, got.text
    return got.json()


def track_urls(card: dict) -> list[str]:
    return [t["trackUrl"] for c in card["content"]["chapters"] for t in c["tracks"]]


def assert_no_secrets(fake: FakeYoto, texts: list[str]) -> None:
    secrets = fake.secrets_issued()
    assert secrets
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a Yoto token or device code leaked"


# --- The whole flow ----------------------------------------------------------------------------


def test_sign_in_push_change_revoke_and_delete(
    server, client, fake, bedtime, answers, capfd, caplog
):
    caplog.set_level(logging.INFO)

    # The card's content, before any sign-in.
    card = client.get("/api/streams/bedtime/yoto-card")
    assert card.status_code == 200, card.text
    validate_card(card.json())
    assert track_urls(card.json()) == [bedtime["stream_url"]]
    assert bedtime["stream_url"].startswith(PUBLIC + "/api/streams/bedtime/stream.mp3?sig=")
    assert card.json()["metadata"] == {"description": "Sleep well"}
    per_file = client.get("/api/streams/bedtime/yoto-card", params={"mode": "chapters"})
    assert per_file.status_code == 200
    validate_card(per_file.json())
    file_urls = [client.get(f"/api/audio/{n}/metadata").json()["url"] for n in bedtime["files"]]
    assert track_urls(per_file.json()) == file_urls
    assert_json_error(client.get("/api/streams/bedtime/yoto-card", params={"mode": "x"}), 422)

    # Not signed in yet: a push says how to sign in.
    refused = assert_json_error(push(client), 401, "yoto_sign_in_needed")
    assert "/api/yoto/authorize" in refused["message"]

    # Sign in: authorization code with PKCE, the browser sent to Yoto and back.
    callback = server.base_url + "/api/yoto/callback"
    status = {"signed_in": False, "pending": False, "redirect_uri": callback}
    assert client.get("/api/yoto/login").json() == status
    fake.callback_urls = [callback]  # registered in the dashboard, exactly
    started = client.post("/api/yoto/authorize")
    assert started.status_code == 200, started.text
    assert client.get("/api/yoto/login").json() == {**status, "pending": True}
    back = fake.consent(started.json()["authorize_url"])
    done = browser_get(back)
    assert (done.status_code, done.headers["location"]) == (302, "/#yoto=signed-in")
    assert done.headers["cache-control"] == "no-store"
    assert client.get("/api/yoto/login").json() == {**status, "signed_in": True}
    # The code was exchanged once; the same callback again changes nothing.
    again = browser_get(back)
    assert again.headers["location"] == "/#yoto=error&reason=invalid_state"
    assert fake.grants() == ["authorization_code"]

    # Push: a new card in the parent's account, its id kept with the queue.
    created = push(client)
    assert created.status_code == 201, created.text
    queue = created.json()
    assert set(queue) == QUEUE_FIELDS
    card_id = queue["yoto_card_id"]
    assert list(fake.cards) == [card_id]
    payload = fake.last_card_payload()
    validate_card(payload)
    assert "cardId" not in payload
    assert track_urls(payload) == [bedtime["stream_url"]] == [queue["stream_url"]]
    assert payload["title"] == "Bedtime"
    assert queue_of(client)["yoto_card_id"] == card_id

    # Change the queue: it keeps its card; a re-push updates the same card.
    replaced = client.post(
        "/api/streams/bedtime/queue",
        json={"files": ["stars.mp3", "owl.mp3", "moon.mp3"], "title": "Bedtime, longer"},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["yoto_card_id"] == card_id
    updated = push(client)
    assert updated.status_code == 200, updated.text
    assert updated.json()["yoto_card_id"] == card_id
    assert fake.last_card_payload()["cardId"] == card_id
    assert list(fake.cards) == [card_id]
    assert fake.cards[card_id]["title"] == "Bedtime, longer"

    # A leaked queue URL: revoked, the old one is 403, the new one streams.
    old_url = updated.json()["stream_url"]
    assert device_get(old_url, server).status_code == 200
    revoked = client.post("/api/streams/bedtime/revoke-url")
    assert revoked.status_code == 200, revoked.text
    new_url = revoked.json()["stream_url"]
    assert set(revoked.json()) == QUEUE_FIELDS
    assert new_url != old_url and new_url.startswith(PUBLIC + "/")
    assert revoked.json()["yoto_card_id"] == card_id
    assert_json_error(device_get(old_url, server), 403)
    streamed = device_get(new_url, server)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"] == "audio/mpeg"
    assert len(streamed.content) > 10_000
    assert queue_of(client)["stream_url"] == new_url
    # The card carries the new URL once re-pushed.
    assert push(client).status_code == 200
    assert track_urls(fake.last_card_payload()) == [new_url]
    assert list(fake.cards) == [card_id]

    # A leaked file URL likewise.
    old_file = client.get("/api/audio/owl.mp3/metadata").json()["url"]
    assert device_get(old_file, server).content == song("owl.mp3")
    file_revoked = client.post("/api/audio/owl.mp3/revoke-url")
    assert file_revoked.status_code == 200, file_revoked.text
    new_file = file_revoked.json()["url"]
    assert file_revoked.json()["filename"] == "owl.mp3"
    assert new_file != old_file and new_file.startswith(PUBLIC + "/api/audio/owl.mp3?")
    assert_json_error(device_get(old_file, server), 403)
    assert device_get(new_file, server).content == song("owl.mp3")
    chapters = client.get("/api/streams/bedtime/yoto-card", params={"mode": "chapters"}).json()
    assert new_file in track_urls(chapters) and old_file not in track_urls(chapters)
    assert device_get(new_url, server).status_code == 200  # the queue's URL is its own

    # A queue on a card is not deleted by accident.
    kept = assert_json_error(client.delete("/api/streams/bedtime"), 409)
    assert card_id in kept["message"]
    assert queue_of(client)["yoto_card_id"] == card_id

    # Remove the card, then the queue.
    removed = client.delete("/api/streams/bedtime/yoto-card")
    assert removed.status_code == 204, removed.text
    (deleted,) = fake.calls("DELETE")
    assert deleted.path == f"/content/{card_id}"
    assert fake.cards == {} and fake.deleted_cards == [card_id]
    assert queue_of(client)["yoto_card_id"] is None
    assert_json_error(client.delete("/api/streams/bedtime/yoto-card"), 404)
    assert client.delete("/api/streams/bedtime").status_code == 204
    assert_json_error(device_get(new_url, server), 404)

    # Forced, a queue goes with its card still on Yoto; the card's stream answers 404.
    again = client.post("/api/streams/lullabies/queue", json={"files": ["moon.mp3"]})
    assert again.status_code == 201
    assert push(client, "lullabies").status_code == 201
    carded = queue_of(client, "lullabies")
    assert carded["yoto_card_id"] in fake.cards
    assert device_get(carded["stream_url"], server).status_code == 200
    assert_json_error(client.delete("/api/streams/lullabies"), 409)
    forced = client.delete("/api/streams/lullabies", params={"force": "true"})
    assert forced.status_code == 204
    assert_json_error(device_get(carded["stream_url"], server), 404)
    assert_json_error(client.get("/api/streams/lullabies/queue"), 404)

    assert fake.rejected == []
    # Yoto's tokens and device codes never reach a client or the logs.
    out, err = capfd.readouterr()
    seen = [r.text + repr(dict(r.headers)) for r in answers]
    assert "/content" in caplog.text  # the logs were captured: httpx logs each call
    assert_no_secrets(fake, [*seen, out, err, caplog.text])


@pytest.fixture
def no_device_cache(monkeypatch) -> None:
    """Set before the server starts: what a device sees once the device caches expire."""
    monkeypatch.setenv("DEVICE_CACHE_SECONDS", "0")


@local_only
def test_a_revoked_url_stays_revoked_when_its_name_is_used_again(
    no_device_cache, server, client, fake, bedtime
):
    """A leaked URL, revoked, must not come back to life because the queue (or file) it
    named was deleted and a new one made under the same name (a force-deleted queue's card
    would then play the new queue, too)."""
    assert services().settings.device_cache_seconds == 0
    leaked_queue = bedtime["stream_url"]
    leaked_file = client.get("/api/audio/owl.mp3/metadata").json()["url"]
    assert client.post("/api/streams/bedtime/revoke-url").status_code == 200
    assert client.post("/api/audio/owl.mp3/revoke-url").status_code == 200
    assert device_get(leaked_queue, server).status_code == 403
    assert device_get(leaked_file, server).status_code == 403

    assert client.delete("/api/streams/bedtime").status_code == 204
    remade = client.post("/api/streams/bedtime/queue", json={"files": ["stars.mp3"]})
    assert remade.status_code == 201
    assert client.delete("/api/audio/owl.mp3", params={"force": "true"}).status_code == 204
    assert upload(client, "owl.mp3", song("owl.mp3")).status_code == 201

    leaked = {
        "revoked queue URL": device_get(leaked_queue, server).status_code,
        "revoked file URL": device_get(leaked_file, server).status_code,
    }
    assert leaked == {"revoked queue URL": 403, "revoked file URL": 403}


# --- When Yoto is down, slow, busy or odd ------------------------------------------------------


@pytest.fixture
def backoff(restart, pauses) -> list[float]:
    """The pauses between attempts, recorded at their length and not slept (the lengths
    themselves are checked in tests/unit/test_yoto.py): the server runs on services built
    with a recording sleep from here on."""
    restart()
    return pauses


def test_yoto_down_slow_busy_or_odd_is_a_clear_error_and_nothing_changes(
    server, client, fake, bedtime, backoff, restart, monkeypatch
):
    sign_in(client, fake, server)
    before = queue_of(client)

    # Down: every attempt fails; a 502 saying nothing changed, and nothing did.
    fake.fail_next(10, 503, path="/content")
    failed = assert_json_error(push(client), 502, "yoto_failed")
    assert "nothing was changed" in failed["message"]
    assert len(fake.calls("POST", "/content")) == ATTEMPTS == 3 and len(backoff) == 2
    assert queue_of(client) == before
    assert fake.cards == {}
    fake.faults.clear()

    # Busy once (429), then fine: retried, one card.
    fake.fail_next(1, 429, path="/content")
    pushed = push(client)
    assert pushed.status_code == 201, pushed.text
    card_id = pushed.json()["yoto_card_id"]
    assert [r.status for r in fake.calls("POST", "/content")][-2:] == [429, 200]
    assert list(fake.cards) == [card_id]

    # With a card: down, odd answers, bad JSON; the queue keeps its card, Yoto its card.
    before = queue_of(client)
    fake.fail_next(10, 500)
    assert_json_error(push(client), 502, "yoto_failed")
    assert_json_error(client.delete("/api/streams/bedtime/yoto-card"), 502, "yoto_failed")
    fake.faults.clear()
    fake.answer_next(1, {"card": {"title": "Bedtime"}}, path="/content")
    assert_json_error(push(client), 502, "yoto_failed")
    fake.bad_json_next(1, path="/content")
    assert_json_error(push(client), 502, "yoto_failed")
    assert queue_of(client) == before
    assert list(fake.cards) == [card_id]

    # Slow: each attempt times out, then a 502.
    monkeypatch.setenv("YOTO_TIMEOUT_SECONDS", "0.25")
    restart()
    assert services().settings.yoto_timeout_seconds == 0.25
    posts = len(fake.calls("POST", "/content"))
    fake.slow_next(3, seconds=5.0, path="/content")  # far past the 0.25 s time-out
    started = time.monotonic()
    assert_json_error(push(client), 502, "yoto_failed")
    assert time.monotonic() - started >= 3 * 0.25
    assert len(fake.calls("POST", "/content")) - posts == 3
    assert queue_of(client) == before
    assert fake.rejected == []


def test_sign_in_refused_expired_and_revoked(server, client, fake, bedtime, answers, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    denied = consent(client, fake, server, allow=False)
    assert denied.headers["location"] == "/#yoto=error&reason=access_denied"
    assert client.get("/api/yoto/login").json()["signed_in"] is False
    assert client.get("/api/yoto/login").json()["pending"] is False
    assert_json_error(push(client), 401, "yoto_sign_in_needed")

    sign_in(client, fake, server)
    fake.expire_access_tokens()
    assert push(client).status_code == 201
    assert [r.status for r in fake.calls("POST", "/content")] == [401, 200]
    assert fake.grants()[-1] == "refresh_token"

    fake.revoke_tokens()
    before = queue_of(client)
    refused = assert_json_error(push(client), 401, "yoto_sign_in_needed")
    assert "sign in" in refused["message"].lower() and "/api/yoto/authorize" in refused["message"]
    assert queue_of(client) == before
    assert client.get("/api/yoto/login").json()["signed_in"] is False

    sign_in(client, fake, server)
    assert push(client).status_code == 200

    out, err = capfd.readouterr()
    seen = [r.text + repr(dict(r.headers)) for r in answers]
    assert "/content" in caplog.text  # the logs were captured: httpx logs each call
    assert_no_secrets(fake, [*seen, out, err, caplog.text])


@local_only
def test_without_a_client_id_or_a_public_base_the_errors_say_what_to_set(
    server, client, fake, bedtime, restart, monkeypatch
):
    monkeypatch.delenv("YOTO_CLIENT_ID")
    restart()
    for start in ("/api/yoto/authorize", "/api/yoto/login"):
        missing = assert_json_error(client.post(start), 409, "yoto_not_configured")
        assert "YOTO_CLIENT_ID" in missing["message"]
    assert_json_error(push(client), 409, "yoto_not_configured")

    monkeypatch.setenv("YOTO_CLIENT_ID", fake.client_id)
    monkeypatch.delenv("PUBLIC_BASE_URL")
    restart()
    sign_in(client, fake, server)
    for answer in (client.get("/api/streams/bedtime/yoto-card"), push(client)):
        body = assert_json_error(answer, 409, "no_public_url")
        assert "PUBLIC_BASE_URL" in body["message"] and "127.0.0.1" in body["message"]
    assert fake.calls("POST", "/content") == []
