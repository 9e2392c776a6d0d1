"""The metadata pipeline end to end over real HTTP: whatever route a file takes into storage
(an upload URL, a copy into the audio directory, `aws s3 cp`), it shows up in list and search
with its true duration within seconds, and leaves them when it is deleted."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote_plus

import boto3
import httpx
import pytest

from smart_stream.bootstrap import install
from smart_stream.domain.records import AudioRecord
from tests.audio import make_mp3
from tests.conftest import ROOT, fresh_services
from tests.unit.test_audio_analysis import decoded_samples, encode, frames, id3v2

pytestmark = pytest.mark.integration

T = TypeVar("T")
ONE_FRAME = 1152 / 44100 + 0.0005
LOCAL_ONLY = pytest.mark.parametrize("live_server", ["local"], indirect=True)
AWS_ONLY = pytest.mark.parametrize("live_server", ["aws"], indirect=True)


def eventually(check: Callable[[], T | None], *, within: float = 30.0) -> tuple[T, float]:
    """Ask again until ``check`` answers (a bounded loop, generous for a loaded machine: it
    waits for something that must happen, and measures nothing): the answer and how long it
    took."""
    started = time.monotonic()
    while True:
        answer = check()
        if answer:
            return answer, time.monotonic() - started
        assert time.monotonic() - started < within, f"nothing after {within} s"
        time.sleep(0.05)


def listed(client: httpx.Client, name: str, status: str | None = None) -> dict[str, Any] | None:
    params = {"limit": "1000", **({"status": status} if status else {})}
    response = client.get("/api/audio/list", params=params)
    assert response.status_code == 200, response.text
    return next((f for f in response.json()["files"] if f["filename"] == name), None)


def found(client: httpx.Client, query: str) -> list[str]:
    response = client.get("/api/audio/search", params={"q": query})
    assert response.status_code == 200, response.text
    return [f["filename"] for f in response.json()["files"]]


@pytest.fixture
def fast_watch(monkeypatch):
    """Poll the audio directory every 0.1 s (instead of 1 s), so a copy settles quickly.
    Listed before live_server, so the server starts with it."""
    monkeypatch.setenv("LOCAL_WATCH_SECONDS", "0.1")
    install(None)  # the server's services are built from the environment as it is now


def long_mp3(size: int) -> tuple[bytes, float]:
    """A CBR MP3 of about ``size`` bytes and the seconds its frames play."""
    piece = encode(3.0)
    audio = piece * (size // len(piece) + 1)
    return audio, len(audio) // len(piece) * len(frames(piece)) * 1152 / 44100


@LOCAL_ONLY
def test_an_upload_url_post_appears_in_the_list_with_its_duration(live_server):
    """Given a 5 MB MP3 (too big for the upload route), when it is sent with the form the
    upload-url route hands out, then within seconds it is listed, ready, with its true
    duration and title, and it plays from its device URL."""
    audio, seconds = long_mp3(5 * 1024 * 1024)
    data = id3v2(4, title="The Long Walk", artist="Gran") + audio
    name = "The Long Walk ü.mp3"
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        answer = client.post("/api/audio/upload-url", json={"filename": name, "size": len(data)})
        assert answer.status_code == 201, answer.text
        form = answer.json()
        posted = httpx.post(
            form["url"], data=form["fields"], files={"file": (name, data, "audio/mpeg")}
        )
        assert posted.status_code in (200, 201, 204), posted.text

        entry, _ = eventually(lambda: (e := listed(client, name)) and e["status"] == "ready" and e)

        assert entry["duration"] == pytest.approx(seconds, abs=ONE_FRAME)
        assert (entry["title"], entry["artist"], entry["size"]) == (
            "The Long Walk",
            "Gran",
            len(data),
        )
        assert found(client, "long walk") == [name]
    played = httpx.get(entry["url"], headers={"Range": "bytes=0-99"})
    assert (played.status_code, played.content) == (206, data[:100])


@LOCAL_ONLY
def test_an_invalid_upload_url_post_is_explained_not_listed(live_server):
    data = b"%PDF-1.7 this is a school newsletter, not a song\n" * 100
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        form = client.post(
            "/api/audio/upload-url", json={"filename": "newsletter.mp3", "size": len(data)}
        ).json()
        httpx.post(form["url"], data=form["fields"], files={"file": ("n.mp3", data, "audio/mpeg")})

        entry, _ = eventually(lambda: listed(client, "newsletter.mp3", status="invalid"))

        reason = entry["status_reason"]
        assert "not audio" in reason.lower(), reason
        assert "FLAC" in reason and "M4A" in reason, "it says what would have been taken"
        assert listed(client, "newsletter.mp3") is None
        assert found(client, "newsletter") == []
        shown = client.get(f"/api/audio/{quote_plus('newsletter.mp3')}/metadata").json()
        assert (shown["status"], shown["status_reason"]) == ("invalid", entry["status_reason"])


@LOCAL_ONLY
def test_files_copied_into_and_deleted_from_the_directory_while_running(fast_watch, live_server):
    """Given the server running, when a parent copies an MP3 into the audio directory, then
    within seconds it is listed and found with its true duration; when they delete it from
    the directory, it leaves the list."""
    audio_dir = live_server.env.audio_dir
    data = id3v2(4, title="Copied Song", artist="Uncle") + encode(3.0)
    name = "copied by hand.mp3"
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        partial = audio_dir / name
        partial.write_bytes(data[: len(data) // 2])  # a copy in progress ...
        time.sleep(0.05)
        with open(partial, "ab") as out:  # ... finishing
            out.write(data[len(data) // 2 :])

        entry, _ = eventually(lambda: listed(client, name))

        assert entry["status"] == "ready", entry["status_reason"]
        assert entry["size"] == len(data), "catalogued whole, not half-copied"
        assert entry["duration"] == pytest.approx(decoded_samples(data) / 44100, abs=ONE_FRAME)
        assert found(client, "uncle") == [name]
        assert listed(client, name, status="invalid") is None

        (audio_dir / name).unlink()
        eventually(lambda: listed(client, name) is None)
        assert found(client, "uncle") == []
        assert client.get(f"/api/audio/{quote_plus(name)}/metadata").status_code == 404


@pytest.fixture
def changed_while_stopped(local_env):
    """Before the server starts: a catalogued file deleted by hand, and a file copied in."""
    before = fresh_services()
    info = before.storage.put("old.mp3", io.BytesIO(make_mp3(0.5, title="Old")))
    before.catalog.put_audio(
        AudioRecord(filename="old.mp3", size=info.size, etag=info.etag, title="Old")
    )
    (local_env.audio_dir / "old.mp3").unlink()
    (local_env.audio_dir / "new.mp3").write_bytes(make_mp3(1.0, title="New Arrival"))
    install(None)  # the server starts on services of its own, as after a restart


@LOCAL_ONLY
def test_start_up_catches_up_with_the_directory(fast_watch, changed_while_stopped, live_server):
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        entry, _ = eventually(lambda: listed(client, "new.mp3"))
        assert entry["title"] == "New Arrival"
        # The catch-up handles the two in no set order: wait for the deleted one to go too.
        eventually(lambda: listed(client, "old.mp3", status="all") is None)
        assert [f["filename"] for f in client.get("/api/audio/list").json()["files"]] == ["new.mp3"]


def test_an_upload_through_the_api_and_its_event_agree(live_server):
    """The upload route catalogues the file itself, and then its storage event arrives (on
    both backends): the record does not change."""
    data = make_mp3(1.0, title="Twice Told")
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        created = client.post("/api/audio/upload", files={"file": ("told.mp3", data)})
        assert created.status_code == 201, created.text
        live_server.app.state.dispatcher.drain()
        after = client.get("/api/audio/told.mp3/metadata").json()
    assert after == created.json()


# --- S3: no notifications from moto, so the real handler is called with a real event -------


@dataclass
class FakeContext:
    function_name: str = "smart-stream-extract-metadata"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:smart-stream-extract-metadata"
    )
    aws_request_id: str = "5b0f6f7e-0c1d-4b43-8f7a-2a9e8d6c1b11"


def extract_metadata(event: dict[str, Any]) -> Any:
    path = ROOT / "functions" / "extract_metadata" / "app.py"
    spec = importlib.util.spec_from_file_location(f"fn_extract_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler(event, FakeContext())


def s3_event(sample: str, bucket: str, key: str, sequencer: str, **obj: Any) -> dict[str, Any]:
    """A sample event (as S3 sends it to EventBridge: the key as stored) for this object."""
    event = copy.deepcopy(json.loads((ROOT / "events" / sample).read_text()))
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, sequencer=sequencer, **obj)
    return event


@AWS_ONLY
def test_an_object_put_straight_into_s3_appears_through_the_api(live_server, moto_endpoint):
    """Given an MP3 put into the bucket by another tool (`aws s3 cp`), when S3's event for it
    reaches the handler, then the API lists it with its true duration; and after the object
    is deleted and its event handled, it is gone."""
    env = live_server.env
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    name = "Oma's Gute+Nacht ü.mp3"
    data = id3v2(4, title="Gute Nacht") + encode(2.0) + b"TAG" + bytes(125)
    put = s3.put_object(Bucket=env.bucket, Key=name, Body=data, ContentType="audio/mpeg")
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        assert listed(client, name) is None

        handled = extract_metadata(
            s3_event(
                "s3_put.json", env.bucket, name, "0069A0000000000001",
                size=len(data), etag=put["ETag"].strip('"'),
            )
        )  # fmt: skip

        assert handled == {"handled": 1}
        entry = listed(client, name)
        assert entry is not None and entry["status"] == "ready"
        assert entry["title"] == "Gute Nacht"
        assert entry["duration"] == pytest.approx(decoded_samples(data) / 44100, abs=ONE_FRAME)
        assert entry["etag"] == put["ETag"]
        assert found(client, "gute nacht") == [name]
        played = httpx.get(entry["url"])
        assert played.status_code == 200 and played.content == data

        s3.delete_object(Bucket=env.bucket, Key=name)
        extract_metadata(s3_event("s3_delete.json", env.bucket, name, "0069A0000000000002"))
        assert listed(client, name, status="all") is None
        assert found(client, "gute") == []
