"""Text to speech (generate_tts and its engines): the local engine (eSpeak NG) makes a real
MP3 in the house format that the metadata pipeline catalogues with its duration; Polly's
path through moto (the request it gets, long texts in parts, errors and retries); names,
every refusal, and failures that leave nothing behind, on both storage backends."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto.core.botocore_stubber import MockRawResponse
from mutagen.mp3 import MP3

from smart_stream.adapters.aws.polly import PollySpeech
from smart_stream.adapters.local.espeak import EspeakSpeech
from smart_stream.audio.analysis import analyse_file
from smart_stream.audio.frames import parse_frame_header
from smart_stream.bootstrap import install, services
from smart_stream.domain.asks import QueueChange, Story
from smart_stream.domain.errors import (
    AudioExistsError,
    BadGatewayError,
    InvalidFilenameError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnprocessableError,
)
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.http.views import AudioFile, Views
from smart_stream.ports import ObjectInfo, Pcm, SpeechEngine, Voice
from smart_stream.services.pipeline import Pipeline
from smart_stream.services.tts import MAX_TEXT_CHARS, Stories
from tests.audio import decode_pcm, make_mp3
from tests.contract import AUDIO_FILE_FIELDS
from tests.lambda_functions import FakeContext, event, handler, with_path

BASE = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
ONE_FRAME = 1152 / 44100
STORY = (
    "Once upon a time there was a little fox who lived at the edge of the wood. "
    "Every night she counted the stars, and every night the owl sang her to sleep."
)


@pytest.fixture
def local_speech(app_env, monkeypatch):
    """Either storage backend, speaking with the local engine (real audio)."""
    monkeypatch.setenv("TTS_ENGINE", "local")
    install(None)  # the services of the changed environment
    return app_env


# Helpers -------------------------------------------------------------------------------------


def say(text: str, **fields: Any) -> AudioRecord:
    """Speak ``text`` with the engine the settings choose."""
    return services().stories.generate(Story(text=text, **fields))


def told(engine: SpeechEngine, text: str, **fields: Any) -> AudioRecord:
    """Speak ``text`` with ``engine`` (a fake), into the test's storage and catalogue."""
    root = services()
    stories = Stories(engine, root.storage, root.catalog, root.versions)
    return stories.generate(Story(text=text, **fields))


def view(record: AudioRecord) -> AudioFile:
    """The record as the contract's AudioFile JSON, for a request made to BASE."""
    return Views(services().urls, BASE).audio_file(record)


def found_by(query: str) -> list[str]:
    return [r.filename for r in services().library.search(query)]


def object_created(name: str, size: int, etag: str, uploaded_at, sequencer: str, **ports):
    """The metadata pipeline's ObjectCreated event (over other ports when given)."""
    root = services()
    pipeline = root.pipeline
    if ports:
        pipeline = Pipeline(
            ports.get("storage", root.storage),
            ports.get("catalog", root.catalog),
            root.versions,
            root.queues,
        )
    return pipeline.object_created(ObjectInfo(name, size, etag, uploaded_at), sequencer=sequencer)


def everything_stored(env) -> dict[str, bytes]:
    """Every object in storage, whatever its name (temporary files too), with its bytes."""
    if env.backend == "local":
        if not env.audio_dir.exists():
            return {}
        return {p.name: p.read_bytes() for p in env.audio_dir.rglob("*") if p.is_file()}
    import boto3

    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=env.bucket).get("Contents", [])
    return {
        o["Key"]: s3.get_object(Bucket=env.bucket, Key=o["Key"])["Body"].read() for o in listing
    }


def catalogued() -> dict[str, AudioRecord]:
    page = services().catalog.list_audio(limit=1000, after=None, statuses=tuple(AudioStatus))
    return {r.filename: r for r in page.records}


def assert_house_format(data: bytes) -> float:
    """MPEG-1 Layer III, 44.1 kHz, stereo, 128 kbps CBR in every frame, as our analysis,
    mutagen and a real decoder each see it. Returns the decoded duration (seconds)."""
    analysis = analyse_file(io.BytesIO(data), len(data))
    info = analysis.info
    assert (info.mpeg_version, analysis.frame.layer) == ("1", 3)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert (info.bitrate, info.bitrate_mode) == (128000, "CBR")
    pos, count = analysis.audio_start, 0
    while pos < analysis.audio_end:
        header = parse_frame_header(data, pos)
        assert header is not None, f"no frame at {pos}"
        assert (header.version, header.layer, header.bitrate) == ("1", 3, 128000)
        assert (header.sample_rate, header.channels) == (44100, 2)
        pos += header.length
        count += 1
    assert pos == analysis.audio_end and count > 0
    tagged = MP3(io.BytesIO(data)).info
    assert (tagged.version, tagged.layer, tagged.sample_rate, tagged.channels) == (1, 3, 44100, 2)
    assert tagged.bitrate == 128000
    decoded = decode_pcm(data)
    assert (decoded.sample_rate, decoded.nchannels) == (44100, 2)
    seconds = decoded.num_frames / 44100
    assert abs(seconds - info.duration) <= ONE_FRAME + 0.0005, (seconds, info.duration)
    return seconds


def tone(seconds: float, rate: int, freq: float = 330.0) -> bytes:
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    )


@pytest.fixture(autouse=True)
def _spoken_within_the_request(monkeypatch):
    """These tests speak within the request, whatever the text's length (long stories in
    the background are tests/unit/test_long_stories.py's)."""
    monkeypatch.setenv("TTS_INLINE_MAX_CHARS", str(MAX_TEXT_CHARS))


class ToneEngine:
    """A SpeechEngine that answers every part with a tone (fast, exact lengths), and can
    fail at a given part the way a real engine does."""

    def __init__(
        self,
        *,
        max_request_chars: int = 40,
        seconds: float = 0.25,
        rate: int = 16000,
        fail_at: int | None = None,
        error: Exception | None = None,
    ) -> None:
        self.max_request_chars = max_request_chars
        self.pcm = tone(seconds, rate) if seconds else b""
        self.rate = rate
        self.fail_at = fail_at
        self.error = error
        self.calls: list[str] = []

    def resolve_voice(self, voice: str | None, engine: str | None) -> Voice:
        if voice == "Nobody":
            raise UnprocessableError("Unknown voice 'Nobody'.")
        return Voice(voice or "tone", engine)

    def synthesize(self, text: str, voice: Voice, *, ssml: bool) -> Pcm:
        self.calls.append(text)
        if self.fail_at is not None and len(self.calls) > self.fail_at:
            raise self.error or ServiceUnavailableError("busy")
        return Pcm(self.pcm, self.rate)


def sentences(n_chars: int) -> str:
    """A story of exactly ``n_chars`` characters, ending with a full stop."""
    lines = [
        "The little fox ran home through the dark wood.",
        "Above her the stars came out one by one!",
        "Was the owl awake?",
        '"Goodnight," said the moon, and the river sang.',
    ]
    text, i = "", 0
    while len(text) < n_chars:
        text += lines[i % len(lines)] + " "
        i += 1
    text = text[: n_chars - 1]
    return (text[:-1] + "z" if text.endswith(" ") else text) + "."


def put_story(name: str, data: bytes | None = None) -> None:
    data = data or make_mp3(0.5, title="Old story")
    services().library.upload(name, io.BytesIO(data), len(data), overwrite=False)


# Engine choice -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "tts_engine", "expected"),
    [
        ("local", None, EspeakSpeech),
        ("aws", None, PollySpeech),
        ("aws", "local", EspeakSpeech),
        ("local", "polly", PollySpeech),
    ],
)
def test_the_engine_follows_the_settings(request, monkeypatch, backend, tts_engine, expected):
    request.getfixturevalue(f"{backend}_env")
    if tts_engine:
        monkeypatch.setenv("TTS_ENGINE", tts_engine)
    install(None)  # the services of the changed environment
    assert isinstance(services().speech, expected)


# The local engine: real speech ---------------------------------------------------------------


def test_the_local_engine_makes_a_house_format_mp3_the_pipeline_catalogues(local_speech):
    made = say(STORY)
    assert made.filename == "Once upon a time there was.mp3"
    assert set(view(made).model_dump()) == AUDIO_FILE_FIELDS
    assert made.status is AudioStatus.READY and made.status_reason is None
    assert made.transcript_status == "completed"
    assert (made.mpeg_version, made.sample_rate, made.channels) == ("1", 44100, 2)
    assert (made.bitrate, made.bitrate_mode) == (128000, "CBR")
    assert view(made).url.startswith(BASE + "/api/audio/Once%20upon%20a%20time%20there%20was.mp3?")
    words = len(STORY.split())
    # eSpeak reads about 3 words a second: this is the story spoken, not a blip of sound.
    assert 0.2 * words < made.duration < 1.0 * words, made.duration

    stored = everything_stored(local_speech)
    assert set(stored) == {made.filename}
    data = stored[made.filename]
    assert len(data) == made.size
    decoded = assert_house_format(data)
    assert abs(decoded - made.duration) <= ONE_FRAME + 0.0005

    # The metadata pipeline's event for the object: the record stands (and keeps the text).
    info = services().storage.head(made.filename)
    again = object_created(
        made.filename, size=info.size, etag=info.etag, uploaded_at=made.uploaded_at, sequencer="1"
    )
    assert again is not None
    record = catalogued()[made.filename]
    assert record.status is AudioStatus.READY and record.duration == made.duration
    assert record.transcript_status == "completed" and "counted the stars" in record.transcript
    # ...and what the pipeline makes of the object alone, with no record yet, is the same.
    services().catalog.delete_audio(made.filename)
    fresh = object_created(
        made.filename, size=info.size, etag=info.etag, uploaded_at=made.uploaded_at, sequencer="2"
    )
    assert fresh is not None and fresh.status is AudioStatus.READY
    assert fresh.duration == made.duration and fresh.size == made.size
    assert (fresh.bitrate, fresh.bitrate_mode, fresh.sample_rate, fresh.channels) == (
        128000,
        "CBR",
        44100,
        2,
    )


def test_search_finds_the_words_of_the_story_and_not_its_markup(local_speech):
    made = say('<speak>The dragon yawned. <break time="700ms"/> Then he slept.</speak>')
    assert made.filename == "The dragon yawned Then he slept.mp3"

    def found(query: str) -> list[str]:
        return found_by(query)

    assert found("yawned") == [made.filename]
    assert found("HE SLEPT") == [made.filename]
    assert found("break") == [] and found("speak") == [] and found("700ms") == []
    assert catalogued()[made.filename].transcript == "The dragon yawned. Then he slept."


@pytest.mark.parametrize(
    ("voice", "text"),
    [
        ("en", "Good night, little fox. Sleep well."),
        ("en-us", "Good night, little fox. Sleep well."),
        ("de", "Gute Nacht, kleiner Fuchs. Schlaf gut."),
        ("fr", "Bonne nuit, petit renard. Dors bien."),
    ],
)
def test_local_voices(local_env, voice, text):
    made = say(text, voice=voice, filename=f"{voice}.mp3")
    assert made.status is AudioStatus.READY
    assert 0.2 * len(text.split()) < made.duration < 1.0 * len(text.split())
    assert_house_format(everything_stored(local_env)[f"{voice}.mp3"])


def test_a_voice_is_really_used():
    engine = EspeakSpeech()
    text = "Good night, little fox, sleep well."

    def samples(voice: str) -> int:
        pcm = engine.synthesize(text, engine.resolve_voice(voice, None), ssml=False)
        assert pcm.sample_rate == 22050
        return len(pcm.samples) // 2

    english, german, french, again = samples("en"), samples("de"), samples("fr"), samples("en")
    # eSpeak varies by a few samples from one reading to the next; another voice reads the
    # same words at another length altogether.
    assert abs(english - again) < 200
    assert abs(english - german) > 1000 and abs(english - french) > 1000


def test_the_local_engine_ignores_pollys_engine_names(local_env):
    assert say("Good night.", engine="neural").status is AudioStatus.READY


@pytest.mark.parametrize("voice", ["Joanna", "xx-nowhere", "nope-nope", "en/../../../etc"])
def test_an_unknown_local_voice_is_422_with_nothing_stored(local_speech, voice):
    with pytest.raises(UnprocessableError):
        say(STORY, voice=voice, filename="x.mp3")
    assert everything_stored(local_speech) == {}
    assert catalogued() == {}


def test_a_long_text_is_spoken_in_parts_and_joined_into_one_mp3(local_env, monkeypatch):
    """Real speech, several parts: one encoder, so the MP3 is as long as the speech itself
    (a fresh encoder per part would add its delay and padding at every join)."""
    spoken: list[Pcm] = []
    real = EspeakSpeech.synthesize

    def recording(self, text, voice, *, ssml):
        pcm = real(self, text, voice, ssml=ssml)
        spoken.append(pcm)
        return pcm

    monkeypatch.setattr(EspeakSpeech, "max_request_chars", 70)
    monkeypatch.setattr(EspeakSpeech, "synthesize", recording)
    text = sentences(300)
    made = say(text, filename="long.mp3")
    assert len(spoken) >= 5
    speech = sum(len(p.samples) / 2 / p.sample_rate for p in spoken)
    decoded = assert_house_format(everything_stored(local_env)["long.mp3"])
    assert speech <= decoded <= speech + 2 * ONE_FRAME, (speech, decoded)
    assert abs(made.duration - decoded) <= ONE_FRAME + 0.0005


# One continuous MP3, whatever the engine's rate ----------------------------------------------


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100])
def test_parts_join_without_gaps_at_any_rate(local_env, rate):
    engine = ToneEngine(rate=rate, seconds=0.25, max_request_chars=30)
    made = told(engine, text=sentences(150), filename="tone.mp3")
    parts = len(engine.calls)
    assert parts >= 5
    data = everything_stored(local_env)["tone.mp3"]
    decoded_seconds = assert_house_format(data)
    assert parts * 0.25 <= decoded_seconds <= parts * 0.25 + 2 * ONE_FRAME
    assert abs(made.duration - decoded_seconds) <= ONE_FRAME + 0.0005
    # No silence at a join: every 10 ms of the middle is loud, on both channels alike.
    decoded = decode_pcm(data)
    samples = decoded.samples
    window = 441
    for start in range(44100 // 10, len(samples) // 2 - 44100 // 10, window):
        left = samples[2 * start : 2 * (start + window) : 2]
        right = samples[2 * start + 1 : 2 * (start + window) : 2]
        rms = math.sqrt(sum(s * s for s in left) / len(left))
        assert rms > 2000, f"silence at {start / 44100:.3f} s (rms {rms:.0f})"
        assert max(abs(a - b) for a, b in zip(left, right, strict=True)) <= 2


def test_an_engine_that_makes_no_sound_is_not_a_server_error(local_env):
    """Text an engine turns into no samples at all (Polly can answer a bare "..." so) gets
    a clear answer: a playable file, or a 422 with nothing stored; never a crash."""
    engine = ToneEngine(seconds=0)
    try:
        made = told(engine, text="...", filename="quiet.mp3")
    except UnprocessableError:
        assert everything_stored(local_env) == {} and catalogued() == {}
    else:
        assert made.status is AudioStatus.READY
        assert_house_format(everything_stored(local_env)["quiet.mp3"])


# Refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", " ", "\n\t  \r\n", "\u00a0\u3000", "<speak></speak>", "<speak>  </speak>"]
)
def test_no_text_to_speak_is_422_with_nothing_stored(local_env, text):
    engine = ToneEngine()
    with pytest.raises(UnprocessableError):
        told(engine, text=text)
    assert engine.calls == []
    assert everything_stored(local_env) == {} and catalogued() == {}


def test_the_text_limit(app_env):
    assert MAX_TEXT_CHARS >= 20_000
    engine = ToneEngine(seconds=0.01, max_request_chars=3000)
    with pytest.raises(PayloadTooLargeError):
        told(engine, text=sentences(MAX_TEXT_CHARS + 1))
    assert engine.calls == []
    assert everything_stored(app_env) == {} and catalogued() == {}
    text = sentences(MAX_TEXT_CHARS)
    assert len(text) == MAX_TEXT_CHARS
    made = told(engine, text=text, filename="max.mp3")
    assert made.status is AudioStatus.READY
    assert 7 <= len(engine.calls) <= 8 and all(len(c) <= 3000 for c in engine.calls)
    assert " ".join(engine.calls).split() == text.split()


@pytest.mark.parametrize(
    "filename", ["story.wav", "story", ".hidden.mp3", "a/b.mp3", "a\\b.mp3", "x\nmp3.mp3"]
)
def test_a_bad_filename_is_400_with_nothing_stored(local_env, filename):
    engine = ToneEngine()
    with pytest.raises(InvalidFilenameError):
        told(engine, text=STORY, filename=filename)
    assert engine.calls == []
    assert everything_stored(local_env) == {} and catalogued() == {}


def test_an_existing_file_is_409_then_replaced_with_overwrite(app_env):
    put_story("Bedtime.mp3")
    before = everything_stored(app_env)
    old = catalogued()["Bedtime.mp3"]
    engine = ToneEngine()
    with pytest.raises(AudioExistsError):
        told(engine, text=STORY, filename="Bedtime.mp3")
    assert engine.calls == []
    assert everything_stored(app_env) == before and catalogued()["Bedtime.mp3"] == old

    made = told(engine, text=STORY, filename="Bedtime.mp3", overwrite=True)
    assert made.etag != old.etag and made.transcript_status == "completed"
    assert made.duration == pytest.approx(len(engine.calls) * 0.25, abs=2 * ONE_FRAME)
    record = catalogued()["Bedtime.mp3"]
    assert record.transcript == STORY and record.etag == made.etag
    # The device URL handed out before (on a Yoto card) still plays the new story.
    assert record.credential_version == old.credential_version
    assert set(everything_stored(app_env)) == {"Bedtime.mp3"}


def test_a_file_copied_into_storage_only_also_counts_as_existing(local_env):
    """Not catalogued yet (copied in by hand a moment ago): still not to be overwritten."""
    local_env.audio_dir.mkdir(parents=True, exist_ok=True)
    copied = make_mp3(0.3)
    (local_env.audio_dir / "Once upon a time there was.mp3").write_bytes(copied)
    with pytest.raises(AudioExistsError):
        told(ToneEngine(), text=STORY, filename="Once upon a time there was.mp3")
    made = told(ToneEngine(), text=STORY)
    assert made.filename == "Once upon a time there was 2.mp3"
    assert (local_env.audio_dir / "Once upon a time there was.mp3").read_bytes() == copied


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Once upon a time...", "Once upon a time.mp3"),
        (STORY, "Once upon a time there was.mp3"),
        ("Es war einmal ein Mädchen namens Lea.", "Es war einmal ein Mädchen namens.mp3"),
        ("<speak><emphasis>Good night</emphasis>, moon.</speak>", "Good night moon.mp3"),
        ("  \n  Can't sleep? Count sheep!", "Can't sleep Count sheep.mp3"),
        ("... !!! ???", "Story.mp3"),
        ("a/b\\c: d*e?", "a b c d e.mp3"),
    ],
)
def test_a_missing_filename_is_made_from_the_first_words(local_env, text, name):
    made = told(ToneEngine(), text=text)
    assert made.filename == name
    assert set(everything_stored(local_env)) == {name}


def test_a_made_up_name_stays_short_and_valid(local_env):
    text = "Supercalifragilisticexpialidocious " * 8
    made = told(ToneEngine(), text=text)
    stem = made.filename.removesuffix(".mp3")
    assert 0 < len(stem) <= 60 and stem == stem.strip()


def test_the_same_text_again_gets_a_name_of_its_own(app_env):
    names = [told(ToneEngine(), text=STORY) for _ in range(3)]
    assert [m.filename for m in names] == [
        "Once upon a time there was.mp3",
        "Once upon a time there was 2.mp3",
        "Once upon a time there was 3.mp3",
    ]
    assert set(everything_stored(app_env)) == {m.filename for m in names}
    assert set(catalogued()) == {m.filename for m in names}


# Failures leave nothing behind -----------------------------------------------------------


@pytest.mark.parametrize("error", [ServiceUnavailableError("busy"), BadGatewayError("broken")])
def test_an_engine_failing_midway_leaves_nothing(app_env, error):
    engine = ToneEngine(fail_at=2, error=error)
    with pytest.raises(type(error)):
        told(engine, text=sentences(200), filename="half.mp3")
    assert len(engine.calls) == 3
    assert everything_stored(app_env) == {} and catalogued() == {}


def test_a_failure_while_replacing_keeps_the_old_story(app_env):
    say_with = ToneEngine()
    told(say_with, text=STORY, filename="Keep.mp3")
    before, record = everything_stored(app_env), catalogued()["Keep.mp3"]
    with pytest.raises(ServiceUnavailableError):
        told(ToneEngine(fail_at=3), text=sentences(300), filename="Keep.mp3", overwrite=True)
    assert everything_stored(app_env) == before
    assert catalogued()["Keep.mp3"] == record


def test_a_catalogue_failure_leaves_no_object_behind(app_env, monkeypatch):
    """The story is stored the one way a version is (Versions.store), and so takes its
    rollback: the catalogue refusing the record, the object is removed again."""
    root = services()
    stores: list[str] = []
    store = root.versions.store

    def spying_store(name, source, analysis, **kwargs):
        stores.append(name)
        return store(name, source, analysis, **kwargs)

    def unavailable(record, **kwargs):
        raise ServiceUnavailableError("The catalogue is busy.")

    monkeypatch.setattr(root.versions, "store", spying_store)
    monkeypatch.setattr(root.catalog, "put_audio", unavailable)
    with pytest.raises(ServiceUnavailableError):
        told(ToneEngine(), text=STORY)
    assert stores == ["Once upon a time there was.mp3"]
    assert everything_stored(app_env) == {}


def test_a_story_replaced_under_a_queue_plays_whole_in_it(local_env):
    """A queue keeps each file's audio span; a story spoken again over the same name must
    leave the queue playing the new story, not a span of the old one."""
    song = make_mp3(1.0)
    services().library.upload("Song.mp3", io.BytesIO(song), len(song), overwrite=False)
    told(ToneEngine(seconds=0.3), text="Short.", filename="Tale.mp3")
    services().queues.put("bedtime", QueueChange(files=["Tale.mp3", "Song.mp3"]))
    made = told(ToneEngine(seconds=0.3), text=sentences(200), filename="Tale.mp3", overwrite=True)
    record = catalogued()["Tale.mp3"]
    queue = services().catalog.get_queue("bedtime")
    entry = next(e for e in queue.entries if e.filename == "Tale.mp3")
    assert (entry.audio_start, entry.audio_end) == (record.audio_start, record.audio_end)
    assert entry.duration == pytest.approx(made.duration) and entry.etag == made.etag


class CatalogueReadEarlier:
    """The catalogue as the metadata pipeline saw it when its read came before the story's
    record was written: no record for ``name`` yet. Writes go to the real catalogue."""

    def __init__(self, catalog, name: str) -> None:
        self._catalog, self._name = catalog, name

    def get_audio(self, name: str):
        return None if name == self._name else self._catalog.get_audio(name)

    def __getattr__(self, attribute: str):
        return getattr(self._catalog, attribute)


def test_the_pipeline_racing_the_request_leaves_the_story_its_words(app_env):
    """The object's ObjectCreated event is handled at once on its own thread locally (and
    an S3 event may come late): its catalogue read can precede generate_tts's record, its
    write follow it. Seen over HTTP on both backends (tests/integration/test_tts_flow.py):
    the story then loses its transcript and search no longer finds it."""
    made = told(ToneEngine(), text=STORY)
    info = services().storage.head(made.filename)
    object_created(
        made.filename,
        size=info.size,
        etag=info.etag,
        uploaded_at=made.uploaded_at,
        sequencer="0000000001",
        catalog=CatalogueReadEarlier(services().catalog, made.filename),
    )
    record = catalogued()[made.filename]
    assert record.transcript_status == "completed" and record.transcript == STORY
    assert found_by("owl") == [made.filename]


# Polly, through moto -------------------------------------------------------------------------


@pytest.fixture
def polly(aws_env):
    """S3, DynamoDB and Polly in moto; the app's own Polly client (standard retries), with
    every SynthesizeSpeech request it sends recorded."""
    root = services()
    engine = root.speech
    assert isinstance(engine, PollySpeech)
    client = root.client("polly")
    assert engine.client is client
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-parameter-build.polly.SynthesizeSpeech",
        lambda params, **kwargs: sent.append(dict(params)),
    )
    aws_env.sent = sent
    aws_env.client = client
    retries = client.meta.config.retries
    # Every attempt botocore's retry mode makes (its max_attempts counts retries only).
    aws_env.attempts = retries.get("total_max_attempts") or retries["max_attempts"] + 1
    assert retries["mode"] == "standard" and aws_env.attempts > 2
    return aws_env


@pytest.mark.parametrize(
    ("voice", "engine", "expected"),
    [
        (None, None, ("Joanna", "neural")),
        ("Matthew", None, ("Matthew", "generative")),
        ("Danielle", None, ("Danielle", "neural")),
        ("Hans", None, ("Hans", "standard")),
        ("Joanna", "standard", ("Joanna", "standard")),
        ("Danielle", "long-form", ("Danielle", "long-form")),
    ],
)
def test_polly_request_shape(polly, voice, engine, expected):
    made = say("Good night, little fox.", voice=voice, engine=engine)
    assert polly.sent == [
        {
            "Text": "Good night, little fox.",
            "TextType": "text",
            "VoiceId": expected[0],
            "Engine": expected[1],
            "OutputFormat": "pcm",
            "SampleRate": "16000",
        }
    ]
    assert made.status is AudioStatus.READY


def test_polly_audio_becomes_a_house_format_mp3(polly):
    """moto's Polly answers a few silent samples: still a real MP3 in the house format."""
    made = say(STORY)
    data = everything_stored(polly)[made.filename]
    assert_house_format(data)
    assert (made.bitrate, made.sample_rate, made.channels, made.mpeg_version) == (
        128000,
        44100,
        2,
        "1",
    )
    record = catalogued()[made.filename]
    assert record.status is AudioStatus.READY and record.transcript == STORY
    assert found_by("owl") == [made.filename]


def test_polly_ssml(polly):
    text = '<speak>Good night. <break time="1s"/> <emphasis>Sleep</emphasis> tight.</speak>'
    made = say(text)
    assert len(polly.sent) == 1
    call = polly.sent[0]
    assert call["TextType"] == "ssml"
    assert call["Text"] == text
    ET.fromstring(call["Text"])
    assert catalogued()[made.filename].transcript == "Good night. Sleep tight."


def test_a_long_text_goes_to_polly_in_parts_in_order(polly):
    text = sentences(7500)
    made = say(text, voice="Matthew")
    assert len(polly.sent) == 3
    assert all(len(c["Text"]) <= 3000 for c in polly.sent)
    assert " ".join(c["Text"] for c in polly.sent).split() == text.split()
    for call in polly.sent[:-1]:
        assert call["Text"].endswith((".", "!", "?", '."')), call["Text"][-30:]
    assert {(c["VoiceId"], c["Engine"], c["TextType"]) for c in polly.sent} == {
        ("Matthew", "generative", "text")
    }
    assert made.status is AudioStatus.READY
    assert_house_format(everything_stored(polly)[made.filename])


def test_the_longest_text_goes_to_polly_in_parts(polly):
    text = sentences(MAX_TEXT_CHARS)
    say(text)
    assert 7 <= len(polly.sent) <= 8
    assert all(len(c["Text"]) <= 3000 for c in polly.sent)
    assert " ".join(c["Text"] for c in polly.sent).split() == text.split()


def test_long_ssml_goes_to_polly_as_parts_that_are_each_valid_ssml(polly):
    """Each part is a request of its own: Polly refuses SSML that is not well-formed XML
    (InvalidSsmlException), so an element around the whole story (a slow, soft bedtime
    voice) must be closed at the end of each part and opened again in the next."""
    body = sentences(6500).replace("wood.", 'wood. <break time="300ms"/>')
    text = f'<speak><prosody rate="slow" volume="soft">{body}</prosody></speak>'
    say(text)
    assert len(polly.sent) >= 3
    for call in polly.sent:
        assert call["TextType"] == "ssml" and len(call["Text"]) <= 3000
        root = ET.fromstring(call["Text"])  # well-formed, or Polly says InvalidSsml
        assert root.tag == "speak"
        prosody = root.find("prosody")
        assert prosody is not None and prosody.get("rate") == "slow", call["Text"][:80]
    spoken = " ".join("".join(ET.fromstring(c["Text"]).itertext()) for c in polly.sent)
    assert spoken.split() == body.replace('<break time="300ms"/>', "").split()


@pytest.mark.parametrize(
    ("voice", "engine"),
    [("Nobody", None), ("joanna", None), ("Hans", "neural"), ("Joanna", "generative")],
)
def test_polly_refuses_a_voice_or_engine_it_does_not_have(polly, voice, engine):
    with pytest.raises(UnprocessableError) as caught:
        say(STORY, voice=voice, engine=engine)
    assert voice in caught.value.message
    assert polly.sent == []
    assert everything_stored(polly) == {} and catalogued() == {}


# Polly failures, answered by botocore's own retries --------------------------------------


def polly_error(code: str, status: int) -> AWSResponse:
    body = json.dumps({"message": "no"}).encode()
    headers = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/", "Content-Type": "a/j"}
    return AWSResponse("https://polly", status, headers, MockRawResponse(body))


@pytest.fixture
def no_backoff(monkeypatch):
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)


def fail_polly(client, operation: str, answers: list[Any]) -> list[int]:
    """Answer ``operation``'s next requests from ``answers`` (an AWSResponse, or an exception
    to raise on the wire), then let moto answer. Returns the list of attempts seen."""
    attempts: list[int] = []

    def answer(request, **kwargs):
        attempts.append(1)
        if not answers:
            return None
        item = answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    client.meta.events.register_first(f"before-send.polly.{operation}", answer)
    return attempts


@pytest.mark.parametrize(
    ("code", "status", "expected", "tries"),
    [
        ("ThrottlingException", 400, ServiceUnavailableError, "all"),
        ("ServiceFailureException", 500, ServiceUnavailableError, "all"),
        ("ServiceUnavailableException", 503, ServiceUnavailableError, "all"),
        ("AccessDeniedException", 403, BadGatewayError, 1),
        ("UnrecognizedClientException", 403, BadGatewayError, 1),
        ("InvalidSsmlException", 400, UnprocessableError, 1),
        ("TextLengthExceededException", 400, UnprocessableError, 1),
    ],
)
def test_polly_errors(polly, no_backoff, code, status, expected, tries):
    attempts = fail_polly(polly.client, "SynthesizeSpeech", [polly_error(code, status)] * 10)
    with pytest.raises(expected) as caught:
        say(STORY, filename="fail.mp3")
    assert len(attempts) == (polly.attempts if tries == "all" else tries)
    assert "An error occurred" not in caught.value.message
    assert everything_stored(polly) == {} and catalogued() == {}


def test_a_polly_timeout_is_503_after_retries(polly, no_backoff):
    timeout = ReadTimeoutError(endpoint_url="https://polly.us-east-1.amazonaws.com")
    attempts = fail_polly(polly.client, "SynthesizeSpeech", [timeout] * 10)
    with pytest.raises(ServiceUnavailableError):
        say(STORY)
    assert len(attempts) == polly.attempts
    assert everything_stored(polly) == {} and catalogued() == {}


def test_polly_throttled_once_is_retried_and_succeeds(polly, no_backoff):
    attempts = fail_polly(
        polly.client, "SynthesizeSpeech", [polly_error("ThrottlingException", 400)]
    )
    made = say(STORY)
    assert len(attempts) == 2 and made.status is AudioStatus.READY


def test_polly_failing_on_a_later_part_leaves_nothing(polly, no_backoff):
    ok = None  # moto answers the first part
    attempts = fail_polly(
        polly.client,
        "SynthesizeSpeech",
        [ok] + [polly_error("ServiceFailureException", 500)] * 10,
    )
    with pytest.raises(ServiceUnavailableError):
        say(sentences(7000))
    assert len(attempts) == 1 + polly.attempts  # one part, then one tried to the end
    assert everything_stored(polly) == {} and catalogued() == {}


def test_listing_polly_voices_throttled_is_503(polly, no_backoff):
    attempts = fail_polly(
        polly.client, "DescribeVoices", [polly_error("ThrottlingException", 400)] * 10
    )
    with pytest.raises(ServiceUnavailableError):
        say(STORY)
    assert len(attempts) == polly.attempts and polly.sent == []


# Through the Lambda handler --------------------------------------------------------------


def tts_event(body: Any, *, raw: str | None = None, token: str | None = "default") -> dict:
    kwargs = {} if token == "default" else {"token": token}
    data = event("http_upload_url.json", **kwargs)
    data = with_path(data, "/api/audio/generate-tts")
    data["routeKey"] = data["requestContext"]["routeKey"] = "POST /api/audio/generate-tts"
    data["body"] = raw if raw is not None else json.dumps(body)
    data["isBase64Encoded"] = False
    data["headers"]["content-length"] = str(len(data["body"].encode()))
    return data


def call(data: dict) -> tuple[int, dict[str, str], Any]:
    result = handler("generate_tts")(data, FakeContext())
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for leak in ("Traceback", "botocore", "An error occurred (", 'File "'):
        assert leak not in body
    payload = json.loads(body) if body else None
    if result["statusCode"] >= 400:
        assert headers.get("content-type", "").startswith("application/json")
        assert set(payload) == {"code", "message"} and payload["code"] and payload["message"]
    return result["statusCode"], headers, payload


def test_the_handler_answers_201_with_the_audio_file(local_speech):
    status, headers, body = call(tts_event({"text": "Once upon a time..."}))
    assert status == 201, body
    assert headers["content-type"].startswith("application/json")
    assert set(body) == AUDIO_FILE_FIELDS
    assert body["filename"] == "Once upon a time.mp3"
    assert body["status"] == "ready" and body["duration"] > 0.5
    assert body["transcript_status"] == "completed"
    assert body["url"].startswith("https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api/")


@pytest.mark.parametrize(
    ("body", "raw", "status"),
    [
        (None, "{not json", 400),
        (None, "", 400),
        (None, '"just a string"', 422),
        ({"text": "Hi.", "colour": "blue"}, None, 422),
        ({"text": "Hi.", "engine": "turbo"}, None, 422),
        ({"text": "Hi.", "overwrite": "perhaps"}, None, 422),
        ({"text": 42}, None, 422),
        ({"filename": "x.mp3"}, None, 422),
        ({"text": "   "}, None, 422),
        ({"text": "Hi.", "voice": "Nobody"}, None, 422),
        ({"text": "x" * 20_001}, None, 413),
        ({"text": "Hi.", "filename": "../x.mp3"}, None, 400),
        ({"text": "Hi.", "filename": "x.txt"}, None, 400),
    ],
)
def test_the_handler_refuses_bad_input_with_nothing_stored(
    local_env, monkeypatch, body, raw, status
):
    engine = ToneEngine()
    monkeypatch.setattr(services().stories, "engine", engine)
    answer, _, payload = call(tts_event(body, raw=raw))
    assert answer == status, payload
    assert engine.calls == []
    assert everything_stored(local_env) == {} and catalogued() == {}


def test_the_handler_needs_the_token(local_env):
    for token in (None, "wrong"):
        status, _, _ = call(tts_event({"text": "Hi."}, token=token))
        assert status == 401
    assert everything_stored(local_env) == {}


@pytest.mark.parametrize(
    ("error", "status"),
    [(ServiceUnavailableError("busy"), 503), (BadGatewayError("broken"), 502)],
)
def test_the_handler_answers_an_engine_failure_with_nothing_stored(
    app_env, monkeypatch, error, status
):
    engine = ToneEngine(fail_at=1, error=error)
    monkeypatch.setattr(services().stories, "engine", engine)
    answer, headers, payload = call(tts_event({"text": sentences(200)}))
    assert answer == status
    assert payload["code"] == error.code
    if status == 503:
        assert headers.get("retry-after")
    assert len(engine.calls) == 2
    assert everything_stored(app_env) == {} and catalogued() == {}


def test_the_handler_answers_polly_throttling_with_503(polly, no_backoff):
    fail_polly(polly.client, "SynthesizeSpeech", [polly_error("ThrottlingException", 400)] * 10)
    status, _, payload = call(tts_event({"text": STORY}))
    assert status == 503 and payload["code"] == "service_unavailable"
    assert "Throttling" not in payload["message"]
    assert everything_stored(polly) == {} and catalogued() == {}


# GET /api/tts/voices ----------------------------------------------------------------------


def voices_event(token: str | None = "default") -> dict:
    data = tts_event({}, token=token)
    data = with_path(data, "/api/tts/voices")
    data["routeKey"] = data["requestContext"]["routeKey"] = "GET /api/tts/voices"
    data["requestContext"]["http"]["method"] = "GET"
    data["body"] = None
    return data


def test_the_local_engine_lists_voices_it_can_speak_with(local_speech):
    status, _, body = call(voices_event())
    assert status == 200, body
    assert body["engine"] == "local"
    voices = body["voices"]
    assert all(set(v) == {"id", "name", "language"} for v in voices)
    ids = [v["id"] for v in voices]
    assert len(ids) == len(set(ids)) > 50
    # The default voice ("en") is among them.
    assert {"en", "en-US", "de", "fr", "es"} <= set(ids)
    american = next(v for v in voices if v["id"] == "en-US")
    assert american == {"id": "en-US", "name": "English (America)", "language": "en-us"}
    # Every voice listed is one a story can ask for.
    engine = services().speech
    for voice in voices:
        assert engine.resolve_voice(voice["id"], None).voice_id == voice["id"]
    made = say("Hallo, kleiner Fuchs.", voice="de")
    assert made.status.value == "ready"


def test_polly_voices_come_from_describe_voices_asked_once(polly):
    asked: list[dict] = []
    polly.client.meta.events.register(
        "before-parameter-build.polly.DescribeVoices", lambda params, **_: asked.append(params)
    )
    status, _, body = call(voices_event())
    assert status == 200, body
    assert body["engine"] == "polly"
    joanna = next(v for v in body["voices"] if v["id"] == "Joanna")
    assert joanna == {"id": "Joanna", "name": "Joanna", "language": "en-US"}
    languages = [v["language"] for v in body["voices"]]
    assert languages == sorted(languages)
    # Cached: the list again, and a story, ask Polly nothing more.
    assert call(voices_event())[2] == body
    say("Good night.", voice="Joanna")
    assert len(asked) == 1


def test_the_voices_need_the_token(local_speech):
    status, _, body = call(voices_event(token=None))
    assert status == 401 and body["code"]
