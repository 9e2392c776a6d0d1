"""Any audio in, over real HTTP against the local server on both backends: an upload that is
not a house MP3 answers 202 `converting` and becomes a playable house MP3 through the
server's own conversion worker (the event S3 sends EventBridge for incoming/, delivered by
the template's rule); a long story answers 202 and is spoken by the same worker."""

from __future__ import annotations

import httpx
import pytest

from smart_stream.adapters.local.espeak import EspeakSpeech
from tests.audio import audio_source, decode_pcm
from tests.integration.helpers import events_handled, upload

pytestmark = pytest.mark.integration

#: Slow requests here (see the client fixture in conftest).
CLIENT_TIMEOUT = 30


@pytest.mark.parametrize("source", ["m4a", "flac", "ogg_opus", "webm_opus_live", "mp3_22k_mono"])
def test_an_upload_is_converting_then_a_house_mp3_that_plays(live_server, client, source):
    data = audio_source(source)
    sent = upload(client, f"Recording.{source.split('_')[0]}", data)
    assert sent.status_code == 202, sent.text
    body = sent.json()
    assert body["filename"] == "Recording.mp3" and body["status"] == "converting"
    assert body["source_format"] and body["url"]

    events_handled(live_server)
    meta = client.get("/api/audio/Recording.mp3/metadata").json()
    assert meta["status"] == "ready", meta
    assert (meta["mpeg_version"], meta["sample_rate"], meta["channels"]) == ("1", 44100, 2)
    assert meta["source_format"] == body["source_format"] and meta["progress"] is None
    played = httpx.get(meta["url"], timeout=30)
    assert played.status_code == 200
    decoded = decode_pcm(played.content)
    assert (decoded.sample_rate, decoded.nchannels) == (44100, 2)
    assert abs(decoded.num_frames / 44100 - meta["duration"]) < 0.06
    assert meta["url"] == body["url"], "the device URL handed out at upload plays it"


def test_a_long_story_is_202_then_spoken_in_the_background(live_server, client, monkeypatch):
    services = live_server.app.state.services
    monkeypatch.setattr(services.stories, "inline_max_chars", 100)
    # eSpeak NG on both backends (moto's Polly answers eight zero bytes, not speech).
    monkeypatch.setattr(services.stories, "engine", EspeakSpeech())
    text = "The owl flew over the sleeping town, and every window was dark. " * 4
    answered = client.post("/api/audio/generate-tts", json={"text": text, "filename": "Owl.mp3"})
    assert answered.status_code == 202, answered.text
    assert answered.json()["status"] == "converting"
    events_handled(live_server)
    meta = client.get("/api/audio/Owl.mp3/metadata").json()
    assert meta["status"] == "ready", meta
    assert meta["transcript_status"] == "completed"
    assert meta["duration"] > 3
    assert [f["filename"] for f in client.get("/api/audio/search?q=sleeping").json()["files"]] == [
        "Owl.mp3"
    ]
