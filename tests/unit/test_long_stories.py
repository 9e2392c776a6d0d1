"""Long stories are spoken in the background: over TTS_INLINE_MAX_CHARS the request answers
at once with a `converting` file (202 through the handler), the story waits under incoming/
as a job, and ConvertAudioFunction's worker speaks it into the library; shorter stories are
still spoken within their request. A delete while it is spoken wins."""

from __future__ import annotations

import json

import pytest

from smart_stream.bootstrap import Services, install
from smart_stream.domain.asks import Story
from smart_stream.domain.records import AudioStatus
from smart_stream.services.tts import Stories
from smart_stream.services.versions import Versions
from smart_stream.settings import Settings
from tests.lambda_functions import FakeContext, event, handler, with_path
from tests.unit.test_tts import ToneEngine

SENTENCE = "The little fox ran home through the snow. "


@pytest.fixture
def root(app_env, monkeypatch) -> Services:
    monkeypatch.setenv("TTS_INLINE_MAX_CHARS", "200")
    built = Services(Settings.from_env())
    built.migrate()
    install(built)
    return built


@pytest.fixture
def engine() -> ToneEngine:
    return ToneEngine(max_request_chars=120)


@pytest.fixture
def stories(root, engine) -> Stories:
    return Stories(
        engine,
        root.storage,
        root.catalog,
        root.versions,
        root.conversions,
        inline_max_chars=root.settings.tts_inline_max_chars,
    )


def job_of(root: Services, filename: str):
    return root.storage.head(root.catalog.get_audio(filename).source_key)


def test_a_short_story_is_still_spoken_within_its_request(stories, engine):
    record = stories.generate(Story(text=SENTENCE * 3, filename="short.mp3"))
    assert record.status is AudioStatus.READY
    assert engine.calls, "spoken at once"


def test_a_long_story_waits_as_a_job_then_is_spoken_in_the_background(root, stories, engine):
    text = SENTENCE * 20  # 840 characters, over the 200 the test allows inline
    record = stories.generate(Story(text=text, filename="long.mp3", voice="Amy"))
    assert record.status is AudioStatus.CONVERTING
    assert record.progress == 0.0 and record.duration is None
    assert engine.calls == [], "nothing spoken within the request"
    job = job_of(root, "long.mp3")
    assert job.name.startswith("incoming/") and job.name.endswith("/long.story")
    assert json.loads(b"".join(root.storage.open_range(job.name)))["text"] == text
    assert list(root.storage.iter_objects()) == [], "nothing listed before it is made"

    done = stories.speak_job(job)
    assert done is not None and done.status is AudioStatus.READY
    stored = root.catalog.get_audio("long.mp3")
    assert stored.status is AudioStatus.READY
    assert stored.credential_version == record.credential_version, "its URL stays the same"
    assert stored.transcript_status == "completed" and "little fox" in stored.transcript
    assert stored.progress is None and stored.source_key is None
    assert len(engine.calls) >= 7, "spoken part by part"
    assert not root.storage.exists(job.name), "the job is removed"
    assert [info.name for info in root.storage.iter_objects()] == ["long.mp3"]
    # Its event, delivered again, finds nothing to do.
    assert stories.speak_job(job) is None


class EventFirst:
    """Storage whose writes of library files have their event handled before ``put``
    returns: the metadata pipeline catalogues the spoken file before the story's own
    catalogue write (as it may deployed, where the event runs in another function)."""

    def __init__(self, root: Services) -> None:
        self.root = root

    def __getattr__(self, name: str):
        return getattr(self.root.storage, name)

    def put(self, name, source, **kwargs):
        stored = self.root.storage.put(name, source, **kwargs)
        if not name.startswith("incoming/"):
            assert self.root.pipeline.object_created(stored, sequencer=None) is not None
        return stored


def test_a_long_story_keeps_its_transcript_when_its_event_wins_the_race(root, engine):
    stories = Stories(
        engine,
        root.storage,
        root.catalog,
        Versions(EventFirst(root), root.catalog, root.queues),
        root.conversions,
        inline_max_chars=root.settings.tts_inline_max_chars,
    )
    record = stories.generate(Story(text=SENTENCE * 20, filename="long.mp3"))
    assert record.status is AudioStatus.CONVERTING
    assert "little fox" in (record.transcript or ""), "searchable while it is spoken"
    stories.speak_job(job_of(root, "long.mp3"))
    stored = root.catalog.get_audio("long.mp3")
    assert stored.status is AudioStatus.READY and stored.source_key is None
    assert stored.transcript_status == "completed" and "little fox" in stored.transcript


def test_a_delete_while_a_long_story_is_spoken_wins(root, stories):
    stories.generate(Story(text=SENTENCE * 20, filename="gone.mp3"))
    job = job_of(root, "gone.mp3")
    root.library.delete("gone.mp3")
    assert stories.speak_job(job) is None
    assert root.catalog.get_audio("gone.mp3") is None
    assert list(root.storage.iter_objects()) == []


def test_a_long_story_deleted_part_way_stops_and_never_comes_back(root, stories, engine):
    stories.generate(Story(text=SENTENCE * 20, filename="midway.mp3"))
    job = job_of(root, "midway.mp3")
    speak = engine.synthesize

    def delete_after_two_parts(text, voice, *, ssml):
        if len(engine.calls) == 2:
            root.library.delete("midway.mp3")
        return speak(text, voice, ssml=ssml)

    engine.synthesize = delete_after_two_parts
    assert stories.speak_job(job) is None
    assert len(engine.calls) <= 4, "it stops at its next heartbeat"
    assert root.catalog.get_audio("midway.mp3") is None
    assert list(root.storage.iter_objects()) == []


def test_through_the_handler_a_long_story_is_202_and_a_short_one_201(root):
    def post(text: str) -> dict:
        data = event("http_upload_url.json")
        data = with_path(data, "/api/audio/generate-tts")
        data["routeKey"] = data["requestContext"]["routeKey"] = "POST /api/audio/generate-tts"
        data["body"] = json.dumps({"text": text})
        data["isBase64Encoded"] = False
        return handler("generate_tts")(data, FakeContext())

    short = post("Once upon a time.")
    assert short["statusCode"] == 201, short["body"]
    long = post("Once upon a time. " + SENTENCE * 20)
    assert long["statusCode"] == 202, long["body"]
    body = json.loads(long["body"])
    assert body["status"] == "converting" and body["progress"] == 0.0
    assert body["filename"].endswith(".mp3") and body["url"]
