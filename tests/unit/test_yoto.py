"""Yoto cards on every backend, against the local fake of Yoto's API (real HTTP on loopback):
the MYO payload in both modes and what the documented schema says of it, public https URLs,
sign-in and tokens kept encrypted and refreshed, retries and the errors a parent sees, and
nothing half-saved when Yoto answers oddly."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import time
from collections.abc import Callable
from functools import cache
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from smart_stream.adapters.yoto_http import ATTEMPTS
from smart_stream.bootstrap import Services, install, services
from smart_stream.device.queue_route import create_queue_stream_app
from smart_stream.domain.asks import QueueChange
from smart_stream.domain.errors import (
    NoCardError,
    NoPublicUrlError,
    YotoFailedError,
    YotoNotConfiguredError,
    YotoSignInNeededError,
)
from smart_stream.domain.records import PlayMode, QueueRecord
from smart_stream.http.errors import status_for
from smart_stream.http.views import Queue, Views
from smart_stream.services.yoto_signin import (
    DEVICE_GRANT,
    REFRESH_MARGIN_SECONDS,
    TOKEN_KEY,
    code_challenge,
)
from smart_stream.settings import Settings
from tests import fake_yoto as fakes
from tests.audio import make_mp3
from tests.fake_yoto import FakeYoto, validate_card

# The fake's fixtures, for this module.
_fake_yoto_server = fakes._fake_yoto_server
fake_yoto = fakes.fake_yoto

BASE = "http://127.0.0.1:8080"
PUBLIC = "https://stream.example.org"


class WallClock:
    """The sign-in's wall clock: it starts at the real time (the fake Yoto's own clock is
    the real one) and moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff pauses between attempts, recorded instead of slept."""
    return []


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock()


@pytest.fixture
def rebuild(sleeps, wall_clock) -> Callable[[], Services]:
    """Build the services from the environment as it is now, with the recording sleep and
    the test's wall clock, and install them (what a restart with that environment does)."""

    def build() -> Services:
        built = Services(Settings.from_env(), wall_clock=wall_clock, sleep=sleeps.append)
        install(built)
        return built

    return build


@pytest.fixture(params=["local"])
def env(request, fake_yoto, monkeypatch, rebuild):
    """The local backend; tests of what the catalogue keeps run on both (``on_both``)."""
    app_env = request.getfixturevalue(f"{request.param}_env")
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.delenv("QUEUE_STREAM_BASE_URL", raising=False)
    rebuild()
    return app_env


on_both = pytest.mark.parametrize("env", ["local", "aws"], indirect=True)


@pytest.fixture
def fake(env, fake_yoto) -> FakeYoto:
    return fake_yoto


@cache
def song(seconds: float, title: str | None) -> bytes:
    return make_mp3(seconds, title=title)


def upload(name: str, data: bytes) -> None:
    services().library.upload(name, io.BytesIO(data), len(data), overwrite=False)


@pytest.fixture
def songs(env) -> list[str]:
    upload("moon.mp3", song(0.5, "Goodnight Moon"))
    upload("owl and cat.mp3", song(0.4, None))
    upload("stars.mp3", song(0.3, "Twinkle"))
    return ["moon.mp3", "owl and cat.mp3", "stars.mp3"]


def make_queue(name: str = "bedtime", files: list[str] | None = None, **kw) -> QueueRecord:
    files = files or ["moon.mp3", "owl and cat.mp3", "stars.mp3"]
    services().queues.put(name, QueueChange(files=files, play_mode=PlayMode.SEQUENTIAL, **kw))
    return get_queue(name)


def get_queue(name: str) -> QueueRecord:
    return services().queues.get(name)


def as_queue(record: QueueRecord) -> Queue:
    """The queue as the API answers it (with its stream_url)."""
    return Views(services().urls, BASE).queue(record)


def push_card(name: str, *, chapters: bool = False) -> tuple[bool, QueueRecord]:
    root = services()
    return root.yoto_cards.push(name, root.urls.for_request(BASE), chapters=chapters)


def card_content(record: QueueRecord, *, request_base: str = BASE, chapters: bool = False):
    root = services()
    return root.yoto_cards.content(record, root.urls.for_request(request_base), chapters=chapters)


def login_status() -> dict[str, bool]:
    """Signed in, pending (the callback to register, always the same here, left out)."""
    status = services().yoto_signin.status(BASE)
    assert status.pop("redirect_uri") == BASE + "/api/yoto/callback"
    return status


def signed_in(fake: FakeYoto) -> None:
    services().yoto_signin.start_login()
    fake.approve()
    assert services().yoto_signin.poll_login() is True


def stream_length(url: str) -> int:
    """The Content-Length the queue's device route answers for ``url`` (a HEAD)."""
    parts = urlsplit(url)
    app = create_queue_stream_app(lambda: services().device)
    with TestClient(app, base_url=BASE) as client:
        answer = client.head(f"{parts.path}?{parts.query}")
    assert answer.status_code == 200, answer.text
    return int(answer.headers["content-length"])


def assert_error(exc_info, status: int, code: str) -> str:
    exc = exc_info.value
    assert (status_for(exc), exc.code) == (status, code), exc.message
    return exc.message


# --- The card payload -----------------------------------------------------------------------


def test_a_stream_card_is_one_chapter_streaming_the_queue(songs):
    record = make_queue(title="Bedtime stories", description="Three for the night")
    stream_url = as_queue(record).stream_url
    card = card_content(record)
    # A finite stream's length: what its device route answers as Content-Length.
    stream_size = stream_length(stream_url)

    assert card == {
        "title": "Bedtime stories",
        "content": {
            "chapters": [
                {
                    "key": "01",
                    "title": "Bedtime stories",
                    "overlayLabel": "1",
                    "tracks": [
                        {
                            "key": "01",
                            "title": "Bedtime stories",
                            "type": "stream",
                            "format": "mp3",
                            "trackUrl": stream_url,
                            "overlayLabel": "1",
                            "isNew": True,
                            "display": {"icon16x16": None},
                            "duration": record.total_duration,
                            "fileSize": stream_size,
                        }
                    ],
                    "hasStreams": True,
                    "duration": record.total_duration,
                    "fileSize": stream_size,
                    "display": {"icon16x16": None},
                }
            ],
            "playbackType": "linear",
            "editSettings": {"transcodeAudioUploads": True},
        },
        "metadata": {"description": "Three for the night"},
    }
    url = urlsplit(stream_url)
    assert (url.scheme, url.netloc) == ("https", "stream.example.org")
    assert url.path == "/api/streams/bedtime/stream.mp3"
    assert url.query.startswith("sig=") and len(url.query) > 10
    validate_card(card)


def test_chapters_mode_gives_each_file_its_own_chapter_on_its_device_url(songs):
    record = make_queue(files=["stars.mp3", "moon.mp3", "owl and cat.mp3"], title="Mix")
    card = card_content(record, chapters=True)
    validate_card(card)

    assert card["title"] == "Mix"
    chapters = card["content"]["chapters"]
    assert [c["key"] for c in chapters] == ["01", "02", "03"]
    assert [c["overlayLabel"] for c in chapters] == ["1", "2", "3"]
    # The file's own title, else its name without ".mp3".
    assert [c["title"] for c in chapters] == ["Twinkle", "Goodnight Moon", "owl and cat"]
    for chapter, filename in zip(chapters, record.files, strict=True):
        (track,) = chapter["tracks"]
        audio = services().library.get(filename)
        expected = Views(services().urls, BASE).audio_file(audio).url
        assert track["trackUrl"] == expected
        assert expected.startswith(PUBLIC + "/api/audio/") and "sig=" in expected
        assert (track["type"], track["format"], track["key"]) == ("stream", "mp3", "01")
        assert track["title"] == chapter["title"]
        assert chapter["hasStreams"] is True
    assert "/api/audio/owl%20and%20cat.mp3?" in chapters[2]["tracks"][0]["trackUrl"]


def test_a_queue_with_a_card_sends_its_card_id(songs):
    record = make_queue()
    assert "cardId" not in card_content(record)
    with_card = services().queues.set_card("bedtime", "Ab3dE")
    for chapters in (False, True):
        card = card_content(with_card, chapters=chapters)
        assert card["cardId"] == "Ab3dE"
        validate_card(card)


@pytest.mark.parametrize("public", [None, "http://home.example.org"])
@pytest.mark.parametrize("chapters", [False, True])
def test_no_public_https_base_is_409_saying_what_to_set(
    songs, monkeypatch, rebuild, public, chapters
):
    record = make_queue()
    if public is None:
        monkeypatch.delenv("PUBLIC_BASE_URL")
    else:
        monkeypatch.setenv("PUBLIC_BASE_URL", public)
    rebuild()
    with pytest.raises(NoPublicUrlError) as caught:
        card_content(record, chapters=chapters)
    message = assert_error(caught, 409, "no_public_url")
    assert "PUBLIC_BASE_URL" in message


def test_deployed_the_function_urls_are_the_public_bases(songs, monkeypatch, rebuild):
    record = make_queue()
    monkeypatch.delenv("PUBLIC_BASE_URL")
    monkeypatch.setenv("QUEUE_STREAM_BASE_URL", "https://q123.lambda-url.eu-west-2.on.aws/")
    monkeypatch.setenv("AUDIO_STREAM_BASE_URL", "https://a456.lambda-url.eu-west-2.on.aws")
    rebuild()
    stream = card_content(record, request_base="https://api.example.org")
    url = stream["content"]["chapters"][0]["tracks"][0]["trackUrl"]
    assert url.startswith(
        "https://q123.lambda-url.eu-west-2.on.aws/api/streams/bedtime/stream.mp3?"
    )
    per_file = card_content(record, request_base="https://api.example.org", chapters=True)
    for chapter in per_file["content"]["chapters"]:
        assert chapter["tracks"][0]["trackUrl"].startswith(
            "https://a456.lambda-url.eu-west-2.on.aws/api/audio/"
        )


def test_a_chapter_keeps_its_files_place_when_a_file_has_no_record(songs):
    """A queue may still name a file whose record is gone (its removal event not handled
    yet): that file has no chapter, and the others keep their keys and labels, so the
    player's chapter numbers stay those of the queue."""
    record = make_queue()
    services().catalog.delete_audio("owl and cat.mp3")
    card = card_content(record, chapters=True)
    chapters = card["content"]["chapters"]
    assert [c["key"] for c in chapters] == ["01", "03"]
    assert [c["overlayLabel"] for c in chapters] == ["1", "3"]
    assert [c["title"] for c in chapters] == ["Goodnight Moon", "Twinkle"]
    validate_card(card)


@pytest.mark.parametrize(
    "title",
    [
        "x" * 200,  # a queue title may be 200 characters; a card's is 100 at most
        "🦉" * 60,  # 60 characters, 120 UTF-16 units: what JavaScript (and zod's max) counts
        "Gute Nacht 🌙" * 10,
    ],
    ids=["long", "astral", "mixed"],
)
def test_every_queue_title_makes_a_card_title_yoto_accepts(songs, title):
    record = make_queue(title=title)
    card = card_content(record)
    validate_card(card)
    assert title.startswith(card["title"])


# --- The fake's schema is not a rubber stamp --------------------------------------------------


def _good() -> dict:
    return {
        "title": "T",
        "content": {
            "chapters": [
                {
                    "key": "01",
                    "title": "T",
                    "tracks": [
                        {
                            "key": "01",
                            "title": "T",
                            "type": "stream",
                            "format": "mp3",
                            "trackUrl": "https://a.example/s.mp3?sig=x",
                        }
                    ],
                    "hasStreams": True,
                    "display": {"icon16x16": None},
                }
            ],
            "editSettings": {"transcodeAudioUploads": True},
        },
    }


def _edit(path: str, value) -> dict:
    card = _good()
    *parents, last = path.split(".")
    node = card
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return card


TRACK = "content.chapters.0.tracks.0"
REFUSED = [
    ("title", KeyError),
    ("title", ""),
    ("title", "x" * 101),
    ("title", "🦉" * 51),
    ("cardId", "abc"),
    ("cardId", "ab-de"),
    ("content", KeyError),
    ("content.chapters", []),
    ("content.chapters.0.tracks", []),
    ("content.chapters.0.display", KeyError),
    ("content.chapters.0.hasStreams", KeyError),
    ("content.editSettings", KeyError),
    ("content.playbackType", "random"),
    (f"{TRACK}.trackUrl", "http://a.example/s.mp3"),
    (f"{TRACK}.trackUrl", "/api/streams/x/stream.mp3"),
    (f"{TRACK}.trackUrl", "https:///nohost.mp3"),
    (f"{TRACK}.type", "radio"),
    (f"{TRACK}.format", "wav"),
    (f"{TRACK}.key", KeyError),
    (f"{TRACK}.key", 1),
    (f"{TRACK}.isNew", "true"),
]


def test_the_fake_refuses_what_the_schema_refuses():
    validate_card(_good())
    for path, value in REFUSED:
        with pytest.raises(ValidationError):
            validate_card(_edit(path, value))
            pytest.fail(f"accepted {path} = {value!r}")


def test_the_fake_strips_unknown_fields_as_yoto_does_and_says_which():
    card = _edit(f"{TRACK}.trackURL", "https://a.example/s.mp3")
    parsed = validate_card(card)
    assert fakes.dropped_fields(card, parsed) == ["content.chapters.0.tracks.0.trackURL"]
    assert fakes.dropped_fields(_good(), validate_card(_good())) == []


def test_the_fake_wants_length_and_size_on_audio_tracks_only():
    audio = _edit(f"{TRACK}.type", "audio")
    with pytest.raises(ValidationError):
        validate_card(audio)
    audio["content"]["chapters"][0]["tracks"][0].update(
        {"duration": 420, "fileSize": 1536000, "overlayLabel": "1", "trackUrl": "yoto:#abc"}
    )
    validate_card(audio)


# --- Signing in, and the tokens at rest -----------------------------------------------------


def _everything_stored(env) -> str:
    """All the catalogue holds, as text: the SQLite files, or a scan of the table."""
    if env.backend == "local":
        return "".join(
            p.read_bytes().decode("latin-1") for p in env.data_dir.rglob("*") if p.is_file()
        )
    import boto3

    items = boto3.client("dynamodb").scan(TableName=env.table)["Items"]
    return json.dumps(items)


def test_signing_in_with_a_device_code(env, fake):
    answer = services().yoto_signin.start_login()
    assert set(answer) >= {"verification_uri", "user_code", "expires_in"}
    assert answer["user_code"] == fake.user_codes[-1]
    assert answer["verification_uri"] == fake.base_url + "/activate"
    assert answer["expires_in"] == 900
    (device_code,) = fake.device_codes
    assert device_code not in json.dumps(answer)

    (started,) = fake.calls("POST", "/oauth/device/code")
    assert started.form == {
        "client_id": fake.client_id,
        # The same scopes as the browser's sign-in; the audience is Yoto's API whatever
        # YOTO_API_BASE_URL says (here, the fake).
        "scope": "offline_access user:content:manage",
        "audience": "https://api.yotoplay.com",
    }
    assert login_status() == {"signed_in": False, "pending": True}
    assert login_status() == {"signed_in": False, "pending": True}
    fake.approve()
    assert login_status() == {"signed_in": True, "pending": False}
    assert login_status() == {"signed_in": True, "pending": False}
    polls = fake.calls("POST", "/oauth/token")
    assert len(polls) == 3  # two pending, one granted; nothing asked once signed in
    assert polls[0].form == {
        "grant_type": DEVICE_GRANT,
        "device_code": device_code,
        "client_id": fake.client_id,
    }
    assert device_code not in _everything_stored(env)


@on_both
def test_the_tokens_are_stored_encrypted(env, fake):
    signed_in(fake)
    access = list(fake.access_tokens)
    refresh = list(fake.refresh_tokens)
    stored = services().catalog.get_value(TOKEN_KEY)
    assert stored is not None
    everything = _everything_stored(env)
    for secret in access + refresh:
        assert secret not in stored
        assert secret not in everything
    assert services().yoto_signin._load(TOKEN_KEY)["access_token"] == access[0]


@pytest.mark.parametrize(
    ("pending_status", "slow_down_status"), [(400, 400), (403, 429)], ids=["rfc", "auth0"]
)
def test_waiting_for_the_parent_is_pending_not_an_error(
    env, fake, sleeps, pending_status, slow_down_status
):
    """RFC 8628 answers authorization_pending and slow_down with 400; Auth0 (Yoto's sign-in)
    is known to use 403 and 429. Either way the sign-in is still pending, and a slow_down is
    not a reason to ask again at once."""
    fake.pending_status, fake.slow_down_status = pending_status, slow_down_status
    services().yoto_signin.start_login()
    assert login_status() == {"signed_in": False, "pending": True}
    fake.slow_downs = 1
    assert login_status() == {"signed_in": False, "pending": True}
    assert len(fake.calls("POST", "/oauth/token")) == 2
    assert sleeps == []  # not asked again after a pause either: no retry at all
    fake.approve()
    assert login_status() == {"signed_in": True, "pending": False}


def test_a_denied_sign_in_ends_it(env, fake):
    services().yoto_signin.start_login()
    fake.deny()
    assert login_status() == {"signed_in": False, "pending": False}
    with pytest.raises(YotoSignInNeededError):
        services().yoto_signin.token()


@on_both
def test_rotating_the_signing_secret_forces_a_new_sign_in(env, fake, songs, rebuild):
    make_queue()
    signed_in(fake)
    push_card("bedtime")
    posts = len(fake.calls("POST", "/content"))

    (env.data_dir / "signing-secret").write_text("a-brand-new-secret-after-a-leak\n")
    rebuild()
    with pytest.raises(YotoSignInNeededError) as caught:
        push_card("bedtime")
    assert "/api/yoto/authorize" in assert_error(caught, 401, "yoto_sign_in_needed")
    assert len(fake.calls("POST", "/content")) == posts

    signed_in(fake)
    created, _ = push_card("bedtime")
    assert created is False


def test_a_token_is_refreshed_before_it_expires(env, fake, songs):
    make_queue()
    fake.token_lifetime = REFRESH_MARGIN_SECONDS - 30
    signed_in(fake)
    first_access = next(iter(fake.access_tokens))
    push_card("bedtime")

    assert fake.grants() == [DEVICE_GRANT, "refresh_token"]
    (post,) = fake.calls("POST", "/content")
    assert post.bearer != first_access
    assert fake.access_tokens[post.bearer].expires_at > time.time()
    refresh = fake.calls("POST", "/oauth/token")[-1].form
    assert refresh["client_id"] == fake.client_id and refresh["refresh_token"]


def test_a_fresh_token_is_not_refreshed(env, fake, songs):
    make_queue()
    signed_in(fake)
    push_card("bedtime")
    push_card("bedtime")
    assert fake.grants() == [DEVICE_GRANT]


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(env, fake, songs):
    make_queue()
    fake.rotate_refresh_tokens = False
    fake.token_lifetime = 10
    signed_in(fake)
    for _ in range(3):
        push_card("bedtime")
    assert fake.grants() == [DEVICE_GRANT] + ["refresh_token"] * 3
    refreshes = {r.form["refresh_token"] for r in fake.calls("POST", "/oauth/token")[1:]}
    assert len(refreshes) == 1


# --- Pushing and removing a card ------------------------------------------------------------


@on_both
def test_push_creates_then_updates_the_same_card(env, fake, songs):
    make_queue(title="Bedtime", description="Night night")
    signed_in(fake)
    created, queue = push_card("bedtime")
    assert created is True
    (card_id,) = fake.cards
    assert queue.yoto_card_id == card_id == get_queue("bedtime").yoto_card_id
    payload = fake.last_card_payload()
    assert "cardId" not in payload
    assert payload["content"]["chapters"][0]["tracks"][0]["trackUrl"] == as_queue(queue).stream_url
    assert payload["metadata"] == {"description": "Night night"}
    assert fake.calls("POST", "/content")[0].headers["content-type"] == "application/json"

    make_queue(files=["stars.mp3"], title="Just one")
    created, queue = push_card("bedtime")
    assert created is False
    assert queue.yoto_card_id == card_id
    assert list(fake.cards) == [card_id]
    assert fake.last_card_payload()["cardId"] == card_id
    assert fake.cards[card_id]["title"] == "Just one"
    assert fake.rejected == []


def test_the_card_id_may_come_at_the_top_level(env, fake, songs):
    make_queue()
    signed_in(fake)
    fake.answer_next(1, {"cardId": "Top12", "title": "Bedtime"}, path="/content")
    created, queue = push_card("bedtime")
    assert (created, queue.yoto_card_id) == (True, "Top12")


def test_remove_card(env, fake, songs):
    make_queue()
    signed_in(fake)
    _, queue = push_card("bedtime")
    services().yoto_cards.remove("bedtime")
    (deleted,) = fake.calls("DELETE", "/content/")
    assert deleted.path == f"/content/{queue.yoto_card_id}"
    assert deleted.bearer in fake.access_tokens
    assert fake.cards == {} and fake.deleted_cards == [queue.yoto_card_id]
    assert get_queue("bedtime").yoto_card_id is None
    with pytest.raises(NoCardError) as caught:
        services().yoto_cards.remove("bedtime")
    assert_error(caught, 404, "no_card")


def test_removing_a_card_yoto_no_longer_has_clears_it(env, fake, songs):
    make_queue()
    signed_in(fake)
    push_card("bedtime")
    fake.cards.clear()  # the parent deleted it in the Yoto app
    services().yoto_cards.remove("bedtime")
    assert get_queue("bedtime").yoto_card_id is None


def test_yoto_failing_is_retried_with_backoff_then_502_and_nothing_changes(
    env, fake, songs, sleeps
):
    before = make_queue()
    signed_in(fake)
    for status in (500, 502, 503, 504, 429):
        sleeps.clear()
        posts = len(fake.calls("POST", "/content"))
        fake.fail_next(ATTEMPTS, status, path="/content")
        with pytest.raises(YotoFailedError) as caught:
            push_card("bedtime")
        assert "nothing was changed" in assert_error(caught, 502, "yoto_failed")
        assert len(fake.calls("POST", "/content")) - posts == ATTEMPTS, status
        # Backoff: a pause before each new attempt, each longer than the last.
        assert len(sleeps) == ATTEMPTS - 1 and sleeps[0] > 0, sleeps
        assert sleeps == sorted(set(sleeps)), sleeps
        assert get_queue("bedtime") == before
        assert fake.cards == {}

    created, _ = push_card("bedtime")
    assert created is True


def test_one_429_then_success_is_retried(env, fake, songs, sleeps):
    make_queue()
    signed_in(fake)
    fake.fail_next(1, 429, path="/content")
    created, queue = push_card("bedtime")
    assert created is True and queue.yoto_card_id in fake.cards
    assert len(fake.calls("POST", "/content")) == 2
    assert len(fake.cards) == 1
    assert len(sleeps) == 1


def test_a_slow_yoto_times_out_each_attempt_then_502(
    env, fake, songs, monkeypatch, rebuild, sleeps
):
    make_queue()
    signed_in(fake)
    monkeypatch.setenv("YOTO_TIMEOUT_SECONDS", "0.2")
    rebuild()
    # Each answer would come 5 s late: an attempt that waited for it would make the three take
    # 15 s or more, however loaded the machine; giving up at 0.2 s, they take a fraction.
    fake.slow_next(ATTEMPTS, seconds=5.0, path="/content")
    started = time.monotonic()
    with pytest.raises(YotoFailedError) as caught:
        push_card("bedtime")
    elapsed = time.monotonic() - started
    assert_error(caught, 502, "yoto_failed")
    assert 0.2 * ATTEMPTS <= elapsed < 5.0 * ATTEMPTS
    assert len(fake.calls("POST", "/content")) == ATTEMPTS
    assert len(sleeps) == ATTEMPTS - 1  # backed off between attempts, without waiting here
    assert get_queue("bedtime").yoto_card_id is None


def test_yoto_unreachable_is_502(env, fake, songs, monkeypatch, rebuild, sleeps):
    make_queue()
    signed_in(fake)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("YOTO_API_BASE_URL", closed)
    rebuild()
    with pytest.raises(YotoFailedError) as caught:
        push_card("bedtime")
    assert_error(caught, 502, "yoto_failed")
    assert len(sleeps) == ATTEMPTS - 1


def test_a_rejected_token_is_refreshed_once_and_the_call_retried(env, fake, songs):
    make_queue()
    signed_in(fake)
    fake.expire_access_tokens()
    created, queue = push_card("bedtime")
    assert created is True
    posts = fake.calls("POST", "/content")
    assert [p.status for p in posts] == [401, 200]
    assert posts[0].bearer != posts[1].bearer
    assert fake.grants() == [DEVICE_GRANT, "refresh_token"]
    assert list(fake.cards) == [queue.yoto_card_id]


def test_a_revoked_sign_in_is_401_saying_to_sign_in_again(env, fake, songs):
    before = make_queue()
    signed_in(fake)
    fake.revoke_tokens()
    with pytest.raises(YotoSignInNeededError) as caught:
        push_card("bedtime")
    assert "/api/yoto/authorize" in assert_error(caught, 401, "yoto_sign_in_needed")
    assert fake.grants() == [DEVICE_GRANT, "refresh_token"]
    assert get_queue("bedtime") == before
    assert services().catalog.get_value(TOKEN_KEY) is None
    assert login_status() == {"signed_in": False, "pending": False}


def test_a_token_rejected_even_after_a_refresh_is_401(env, fake, songs):
    make_queue()
    signed_in(fake)
    fake.answer_next(2, {"error": "nope"}, status=401, path="/content")
    with pytest.raises(YotoSignInNeededError) as caught:
        push_card("bedtime")
    assert_error(caught, 401, "yoto_sign_in_needed")
    assert len(fake.calls("POST", "/content")) == 2


def test_without_a_client_id_yoto_is_409_not_configured(env, fake, songs, monkeypatch, rebuild):
    make_queue()
    monkeypatch.delenv("YOTO_CLIENT_ID")
    rebuild()
    with pytest.raises(YotoNotConfiguredError) as caught:
        services().yoto_signin.start_login()
    assert "YOTO_CLIENT_ID" in assert_error(caught, 409, "yoto_not_configured")
    with pytest.raises(YotoNotConfiguredError) as caught:
        push_card("bedtime")
    assert_error(caught, 409, "yoto_not_configured")
    assert fake.requests == []


ODD_ANSWERS = [
    {"card": {}},
    {"card": {"cardId": ""}},
    {"card": {"cardId": 12345}},
    {"card": "Ab3dE"},
    {"status": "ok"},
    [{"cardId": "Ab3dE"}],
    "bad json",
]


@on_both
@pytest.mark.parametrize("update", [False, True], ids=["create", "update"])
def test_an_unexpected_answer_is_502_and_nothing_is_half_saved(env, fake, songs, update):
    make_queue()
    signed_in(fake)
    if update:
        push_card("bedtime")
    before = get_queue("bedtime")
    cards = dict(fake.cards)
    for answer in ODD_ANSWERS:
        if answer == "bad json":
            fake.bad_json_next(1, path="/content")
        else:
            fake.answer_next(1, answer, path="/content")
        with pytest.raises(YotoFailedError) as caught:
            push_card("bedtime")
        assert_error(caught, 502, "yoto_failed")
        assert get_queue("bedtime") == before, answer
    assert fake.cards == cards


@pytest.mark.parametrize("answer", [400, 404], ids=["deleted-400", "unknown-404"])
def test_a_card_deleted_in_the_yoto_app_is_made_again(env, fake, songs, answer):
    """Given a card the parent removed in the Yoto app (Yoto answers its update with 400,
    "Deleted card cannot be restored"; 404 for an id it never had), when the queue is pushed
    again, then a new card is made and its id kept."""
    make_queue()
    signed_in(fake)
    _, queue = push_card("bedtime")
    assert queue.yoto_card_id
    if answer == 400:
        fake.delete_in_app(queue.yoto_card_id)
    else:
        fake.cards.clear()
    created, again = push_card("bedtime")
    assert created is True
    refused = [r.status for r in fake.calls("POST", "/content")]
    assert refused == [200, answer, 200]
    assert again.yoto_card_id and again.yoto_card_id != queue.yoto_card_id
    assert get_queue("bedtime").yoto_card_id == again.yoto_card_id
    assert again.yoto_card_id in fake.cards
    assert fake.dropped == []


def test_a_chapters_card_can_be_pushed(env, fake, songs):
    make_queue()
    signed_in(fake)
    created, queue = push_card("bedtime", chapters=True)
    assert created is True
    card = fake.cards[queue.yoto_card_id]
    chapters = card["content"]["chapters"]
    assert len(chapters) == len(queue.files) > 1
    assert all("/api/audio/" in c["tracks"][0]["trackUrl"] for c in chapters)
    # Each file's track says how long it is and how many bytes its URL answers with.
    for chapter, name in zip(chapters, queue.files, strict=True):
        audio = services().catalog.get_audio(name)
        assert audio is not None and audio.duration
        (track,) = chapter["tracks"]
        assert (track["duration"], track["fileSize"]) == (round(audio.duration, 3), audio.size)
    assert fake.dropped == []


def test_an_open_ended_stream_track_gives_no_length(env, fake, songs):
    """Loop and endless shuffle have no end: like Yoto's streaming example, the track has no
    duration or fileSize, and its chapter keeps the example's zeros."""
    services().queues.put(
        "forever", QueueChange(files=["moon.mp3", "stars.mp3"], play_mode=PlayMode.LOOP)
    )
    card = card_content(get_queue("forever"))
    (chapter,) = card["content"]["chapters"]
    (track,) = chapter["tracks"]
    assert "duration" not in track and "fileSize" not in track
    assert (chapter["duration"], chapter["fileSize"]) == (0, 0)
    validate_card(card)


# --- Signing in with PKCE ------------------------------------------------------------------------


def authorize(request_base: str = BASE) -> dict[str, str]:
    """Start a sign-in; the query of the address the browser is sent to."""
    url = services().yoto_signin.authorize(request_base)
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def callback(back: str) -> str:
    """Yoto sent the browser to ``back``: where the callback sends it on."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(back).query).items()}
    return services().yoto_signin.callback(
        code=query.get("code"), state=query.get("state"), error=query.get("error")
    )


def test_pkce_s256_is_rfc_7636s_example():
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_authorize_address_asks_for_what_yoto_documents(env, fake):
    url = services().yoto_signin.authorize(BASE)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == fake.base_url + "/authorize"
    query = authorize()
    assert set(query) == {
        "audience",
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
    assert query["audience"] == "https://api.yotoplay.com"  # not YOTO_API_BASE_URL (the fake)
    assert query["client_id"] == fake.client_id
    assert query["redirect_uri"] == BASE + "/api/yoto/callback"
    assert query["response_type"] == "code"
    assert query["scope"].split() == ["offline_access", "user:content:manage"]
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    # A new sign-in, a new state and challenge.
    again = authorize()
    assert again["state"] != query["state"]
    assert again["code_challenge"] != query["code_challenge"]


def test_signing_in_through_the_consent_page(env, fake):
    assert login_status() == {"signed_in": False, "pending": False}
    back = fake.consent(services().yoto_signin.authorize(BASE))
    assert login_status() == {"signed_in": False, "pending": True}
    assert callback(back) == "/#yoto=signed-in"
    assert login_status() == {"signed_in": True, "pending": False}
    (exchange,) = fake.calls("POST", "/oauth/token")
    assert exchange.form is not None
    assert set(exchange.form) == {
        "grant_type",
        "code",
        "code_verifier",
        "redirect_uri",
        "client_id",
    }
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["redirect_uri"] == BASE + "/api/yoto/callback"
    # The verifier never left the server before the exchange.
    (consented,) = fake.calls("GET", "/authorize")
    assert exchange.form["code_verifier"] not in json.dumps(consented.headers)
    assert exchange.form["code_verifier"] not in _everything_stored(env)


def test_a_signed_in_parent_can_write_cards(env, fake, songs):
    make_queue()
    assert callback(fake.consent(services().yoto_signin.authorize(BASE))) == "/#yoto=signed-in"
    created, queue = push_card("bedtime")
    assert created is True and queue.yoto_card_id in fake.cards


@pytest.mark.parametrize("scopes", ["offline_access profile", "offline_access"])
def test_without_the_content_scope_yoto_refuses_the_card(env, fake, songs, monkeypatch, scopes):
    """Asking for less than user:content:manage signs in, but Yoto will not let the token
    write a card: that is why it is the default."""
    monkeypatch.setenv("YOTO_SCOPES", scopes)
    install(None)
    make_queue()
    assert callback(fake.consent(services().yoto_signin.authorize(BASE))) == "/#yoto=signed-in"
    with pytest.raises(YotoFailedError):
        push_card("bedtime")
    assert [r.status for r in fake.calls("POST", "/content")] == [403]
    assert get_queue("bedtime").yoto_card_id is None


def test_a_foreign_reused_or_expired_state_changes_nothing(env, fake, wall_clock):
    signin = services().yoto_signin
    back = fake.consent(signin.authorize(BASE))
    code = parse_qs(urlsplit(back).query)["code"][0]

    # A state this server never handed out: refused, and the real one still works after.
    forged = signin.callback(code=code, state="forged-state", error=None)
    assert forged == "/#yoto=error&reason=invalid_state"
    assert signin.callback(code=code, state=None, error=None) == forged
    assert fake.calls("POST", "/oauth/token") == []
    assert login_status() == {"signed_in": False, "pending": True}

    assert callback(back) == "/#yoto=signed-in"
    tokens_before = services().catalog.get_value(TOKEN_KEY)
    # The same state again (a replayed callback): refused, nothing exchanged or changed.
    assert callback(back) == "/#yoto=error&reason=invalid_state"
    assert len(fake.calls("POST", "/oauth/token")) == 1
    assert services().catalog.get_value(TOKEN_KEY) == tokens_before

    # A state older than ten minutes: refused, nothing exchanged.
    late = fake.consent(signin.authorize(BASE))
    wall_clock.now += 601
    assert callback(late) == "/#yoto=error&reason=invalid_state"
    assert len(fake.calls("POST", "/oauth/token")) == 1
    assert services().catalog.get_value(TOKEN_KEY) == tokens_before


def test_yoto_saying_no_changes_nothing(env, fake):
    signed_in(fake)
    tokens_before = services().catalog.get_value(TOKEN_KEY)
    back = fake.consent(services().yoto_signin.authorize(BASE), allow=False)
    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]
    assert callback(back) == "/#yoto=error&reason=access_denied"
    assert services().catalog.get_value(TOKEN_KEY) == tokens_before
    assert login_status() == {"signed_in": True, "pending": False}
    # An odd error word is not echoed into the page's address as it came.
    odd = services().yoto_signin.callback(code=None, state=None, error="<script>")
    assert odd == "/#yoto=error&reason=failed"


def test_the_redirect_uri_must_match_exactly(env, fake, monkeypatch):
    """Yoto compares the callback with the registered one exactly, port included: a sign-in
    started from another address is refused at the consent page, and an exchange whose
    redirect_uri differs from /authorize's is refused at the token endpoint."""
    fake.callback_urls = ["http://127.0.0.1:8080/api/yoto/callback"]
    with pytest.raises(AssertionError, match="Callback URL mismatch"):
        fake.consent(services().yoto_signin.authorize("http://127.0.0.1:9090"))

    monkeypatch.setenv("YOTO_REDIRECT_URI", "https://home.example.org/api/yoto/callback")
    install(None)
    status = services().yoto_signin.status(BASE)
    assert status["redirect_uri"] == "https://home.example.org/api/yoto/callback"
    query = authorize()
    assert query["redirect_uri"] == "https://home.example.org/api/yoto/callback"

    # The token endpoint checks the exchange's redirect_uri against /authorize's.
    fake.callback_urls = None
    back = fake.consent(services().yoto_signin.authorize(BASE))
    code = parse_qs(urlsplit(back).query)["code"][0]
    with fake.lock:
        grant = fake.codes[code]
        grant.redirect_uri = "https://elsewhere.example.org/api/yoto/callback"
    assert callback(back) == "/#yoto=error&reason=invalid_grant"
    assert services().catalog.get_value(TOKEN_KEY) is None


def test_the_token_endpoint_checks_the_verifier_and_uses_a_code_once(fake):
    """The fake's own checks, which the app's exchange relies on being real."""
    import httpx

    verifier = "v" * 50
    query = urlencode(
        {
            "audience": "https://api.yotoplay.com",
            "client_id": fake.client_id,
            "redirect_uri": "http://127.0.0.1:8080/api/yoto/callback",
            "response_type": "code",
            "scope": "offline_access user:content:manage",
            "state": "s",
            "code_challenge": fakes.s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    back = fake.consent(f"{fake.base_url}/authorize?{query}")
    code = parse_qs(urlsplit(back).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:8080/api/yoto/callback",
        "client_id": fake.client_id,
    }
    wrong = httpx.post(f"{fake.base_url}/oauth/token", data={**form, "code_verifier": "w" * 50})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    # Used up by the failed try: single use, whatever the outcome.
    right = httpx.post(f"{fake.base_url}/oauth/token", data={**form, "code_verifier": verifier})
    assert (right.status_code, right.json()["error"]) == (400, "invalid_grant")


def test_signing_out_of_yoto_forgets_the_tokens(env, fake, songs):
    make_queue()
    signed_in(fake)
    services().yoto_signin.authorize(BASE)
    services().yoto_signin.sign_out()
    assert login_status() == {"signed_in": False, "pending": False}
    with pytest.raises(YotoSignInNeededError):
        push_card("bedtime")


def test_tokens_never_reach_the_logs(env, fake, songs, caplog):
    caplog.set_level(logging.DEBUG)
    make_queue()
    fake.token_lifetime = 10
    signed_in(fake)
    push_card("bedtime")
    fake.expire_access_tokens()
    push_card("bedtime")
    services().yoto_cards.remove("bedtime")
    fake.revoke_tokens()
    with pytest.raises(YotoSignInNeededError):
        push_card("bedtime")
    secrets = fake.secrets_issued()
    assert len(secrets) >= 4
    for secret in secrets:
        assert secret not in caplog.text
