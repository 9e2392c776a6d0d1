"""Any audio in, through the services on both backends: an upload that is not a house MP3
waits under incoming/ as a `converting` file, is converted to the house format, and ends
`ready` (or `invalid` with its reason); a delete or a newer upload during a conversion wins;
a conversion that died is found by the sweep."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime

import pytest

from smart_stream.audio.analysis import analyse_upload
from smart_stream.bootstrap import Services, install
from smart_stream.domain.errors import AudioExistsError, UnsupportedMediaTypeError
from smart_stream.domain.records import AudioStatus
from smart_stream.settings import Settings
from tests.audio import SOURCE_TAGS, SOURCES, make_audio, make_mp3, make_mp3_with_pyav


class WallClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock()


@pytest.fixture
def root(app_env, wall_clock) -> Services:
    built = Services(Settings.from_env(), wall_clock=wall_clock)
    built.migrate()
    install(built)
    return built


def m4a(seconds: float = 2.0) -> bytes:
    """A tagged AAC M4A of a tone, as a phone's voice memo (tests/audio.py's source)."""
    return make_audio(dataclasses.replace(SOURCES["m4a"], seconds=seconds))


def flac(seconds: float = 2.0) -> bytes:
    return make_audio(dataclasses.replace(SOURCES["flac"], seconds=seconds, cover=False))


def upload(root: Services, name: str, data: bytes, *, overwrite: bool = False):
    return root.library.upload(name, io.BytesIO(data), len(data), overwrite=overwrite)


def convert_pending(root: Services) -> list:
    """What ConvertAudioFunction does for each upload under incoming/ (its event)."""
    results = []
    for record in list_converting(root):
        info = root.storage.head(record.source_key)
        results.append(root.conversions.convert_incoming(info))
    return results


def list_converting(root: Services) -> list:
    page = root.catalog.list_audio(limit=100, after=None, statuses=(AudioStatus.CONVERTING,))
    return page.records


def library_names(root: Services) -> list[str]:
    return sorted(info.name for info in root.storage.iter_objects())


def test_a_house_mp3_is_stored_byte_for_byte_and_ready_at_once(root):
    data = make_mp3(1.0, title="Song")
    record = upload(root, "song.mp3", data)
    assert record.status is AudioStatus.READY and record.source_format is None
    assert b"".join(root.storage.open_range("song.mp3")) == data
    assert list_converting(root) == []


def test_an_m4a_waits_as_converting_then_is_a_house_mp3_with_its_tags(root):
    source = m4a(2.0)
    record = upload(root, "Grandma's story.m4a", source)
    assert record.filename == "Grandma's story.mp3"
    assert record.status is AudioStatus.CONVERTING
    assert record.source_format == "m4a/aac"
    assert record.source_key is not None and record.source_key.startswith("incoming/")
    assert library_names(root) == [], "nothing half-converted is ever listed or streamed"
    credential = record.credential_version

    [done] = convert_pending(root)
    assert done is not None and done.status is AudioStatus.READY
    stored = root.catalog.get_audio("Grandma's story.mp3")
    assert stored.status is AudioStatus.READY
    assert stored.source_format == "m4a/aac"
    assert stored.credential_version == credential, "its device URL stays the same"
    assert stored.progress is None and stored.source_key is None
    assert (stored.title, stored.artist, stored.album) == (
        SOURCE_TAGS["title"],
        SOURCE_TAGS["artist"],
        SOURCE_TAGS["album"],
    )
    assert stored.duration == pytest.approx(2.0, abs=0.05)
    data = b"".join(root.storage.open_range("Grandma's story.mp3"))
    analysis = analyse_upload(io.BytesIO(data))
    assert analysis.frame.is_house and analysis.info.bitrate == 128000
    assert not root.storage.exists(record.source_key), "the upload is removed"
    assert library_names(root) == ["Grandma's story.mp3"]


def test_a_22khz_mono_mp3_is_converted_too(root):
    record = upload(root, "old.mp3", make_mp3_with_pyav(1.5, sample_rate=22050, channels=1))
    assert record.status is AudioStatus.CONVERTING and record.source_format == "mp3/mp3"
    convert_pending(root)
    stored = root.catalog.get_audio("old.mp3")
    assert stored.status is AudioStatus.READY
    assert (stored.sample_rate, stored.channels, stored.mpeg_version) == (44100, 2, "1")


def test_the_name_is_taken_while_it_is_being_converted(root):
    upload(root, "story.m4a", m4a())
    with pytest.raises(AudioExistsError):
        upload(root, "story.flac", flac())
    with pytest.raises(AudioExistsError):
        upload(root, "story.mp3", make_mp3(0.5))


def test_a_newer_upload_during_a_conversion_wins(root):
    older = upload(root, "story.m4a", m4a(2.0))
    older_event = root.storage.head(older.source_key)
    newer = upload(root, "story.flac", flac(1.0), overwrite=True)
    assert not root.storage.exists(older.source_key), "the older upload is dropped at once"
    assert root.conversions.convert_incoming(older_event) is None
    assert root.catalog.get_audio("story.mp3").source_key == newer.source_key
    root.conversions.convert_incoming(root.storage.head(newer.source_key))
    stored = root.catalog.get_audio("story.mp3")
    assert stored.status is AudioStatus.READY and stored.source_format == "flac/flac"
    assert stored.duration == pytest.approx(1.0, abs=0.05)


def test_a_delete_during_a_conversion_wins_and_the_file_never_comes_back(root):
    record = upload(root, "story.m4a", m4a())
    info = root.storage.head(record.source_key)
    root.library.delete("story.mp3")
    assert root.catalog.get_audio("story.mp3") is None
    assert not root.storage.exists(record.source_key), "the upload goes with it"
    assert root.conversions.convert_incoming(info) is None
    assert root.catalog.get_audio("story.mp3") is None
    assert library_names(root) == []


def test_an_event_delivered_twice_converts_once(root):
    record = upload(root, "story.m4a", m4a())
    info = root.storage.head(record.source_key)
    first = root.conversions.convert_incoming(info)
    assert first is not None
    etag = root.catalog.get_audio("story.mp3").etag
    assert root.conversions.convert_incoming(info) is None
    assert root.catalog.get_audio("story.mp3").etag == etag


def test_a_file_corrupt_past_its_header_ends_invalid_with_its_reason(root):
    source = flac(3.0)
    broken = source[:8192] + bytes(len(source) - 16384) + source[-8192:]
    record = upload(root, "broken.flac", broken)
    assert record.status is AudioStatus.CONVERTING
    convert_pending(root)
    stored = root.catalog.get_audio("broken.mp3")
    assert stored.status is AudioStatus.INVALID
    assert "corrupt" in stored.status_reason
    assert not root.storage.exists(record.source_key)
    assert library_names(root) == []


def test_a_file_whose_header_is_cut_short_is_refused_at_once(root):
    source = m4a(2.0)
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        upload(root, "cut.m4a", source[: len(source) // 2])
    assert "corrupt" in caught.value.message
    assert root.catalog.get_audio("cut.mp3") is None and library_names(root) == []


def test_an_input_over_the_limit_ends_invalid_too_long(root, monkeypatch, wall_clock):
    monkeypatch.setenv("CONVERT_MAX_SECONDS", "1")
    built = Services(Settings.from_env(), wall_clock=wall_clock)
    install(built)
    upload(built, "long.m4a", m4a(3.0))
    convert_pending(built)
    stored = built.catalog.get_audio("long.mp3")
    assert stored.status is AudioStatus.INVALID
    assert "too long" in stored.status_reason


def test_text_named_m4a_is_refused_and_nothing_is_stored(root):
    data = b"Once upon a time there was a text file. " * 100
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        upload(root, "notes.m4a", data)
    assert "FLAC" in caught.value.message and "WebM" in caught.value.message
    assert root.catalog.get_audio("notes.mp3") is None
    assert list_converting(root) == [] and library_names(root) == []


def test_the_sweep_marks_a_silent_conversion_invalid(root, wall_clock):
    record = upload(root, "story.m4a", m4a())
    info = root.storage.head(record.source_key)
    assert root.upkeep.sweep() == [], "a fresh conversion is left alone"
    wall_clock.now += 301
    assert root.upkeep.sweep() == ["story.mp3"]
    stored = root.catalog.get_audio("story.mp3")
    assert stored.status is AudioStatus.INVALID
    assert "conversion failed" in stored.status_reason
    assert not root.storage.exists(record.source_key)
    # Its late event finds nobody waiting: nothing comes back.
    assert root.conversions.convert_incoming(info) is None
    assert root.catalog.get_audio("story.mp3").status is AudioStatus.INVALID
    assert library_names(root) == []


def test_a_silent_replacement_leaves_the_name_invalid_though_a_file_was_there(root, wall_clock):
    """A replacement whose conversion stopped answering with its upload stored: the name
    says the conversion failed (the parent asked for the replacement, and it did not come)."""
    upload(root, "story.mp3", make_mp3(1.0))
    upload(root, "story.m4a", m4a(), overwrite=True)
    wall_clock.now += 301
    assert root.upkeep.sweep() == ["story.mp3"]
    stored = root.catalog.get_audio("story.mp3")
    assert stored.status is AudioStatus.INVALID and "conversion failed" in stored.status_reason


@pytest.mark.parametrize("how", ["sweep", "interrupted"])
def test_a_replacement_whose_upload_never_arrived_puts_the_earlier_file_back(root, wall_clock, how):
    """A replacement whose upload is not stored (storing it failed, and so did putting the
    record back: the request answered 503): given up on, the name is as it was, playing the
    file that never stopped being stored, at the same device URL."""
    upload(root, "story.mp3", make_mp3(1.0, title="Fox"))
    before = root.catalog.get_audio("story.mp3")
    waiting = upload(root, "story.m4a", m4a(), overwrite=True)
    root.storage.delete(waiting.source_key)  # as if it had never been stored
    if how == "sweep":
        wall_clock.now += 301
        assert root.upkeep.sweep() == ["story.mp3"]
    else:
        assert root.upkeep.interrupted() == []
    after = root.catalog.get_audio("story.mp3")
    assert after.status is AudioStatus.READY and after.status_reason is None
    assert (after.etag, after.audio_start, after.audio_end, after.title) == (
        before.etag,
        before.audio_start,
        before.audio_end,
        "Fox",
    )
    assert after.credential_version == before.credential_version
    assert after.source_key is None and after.source_format is None
    assert library_names(root) == ["story.mp3"]


# Through an upload URL: the form puts the file under incoming/ itself ---------------------------

INCOMING_ID = "0123456789abcdef" * 2


def posted(root: Services, upload_name: str, data: bytes):
    """What the upload URL's form does: the file lands under its incoming/ key."""
    post = root.library.upload_url(upload_name, len(data), base_url="http://testserver")
    key = post.fields["key"]
    assert key.startswith("incoming/") and key.endswith("/" + upload_name)
    return root.storage.put(key, io.BytesIO(data), overwrite=False)


def test_a_house_mp3_through_the_upload_url_is_copied_as_it_is(root):
    data = make_mp3(1.0, title="Song")
    upload_info = posted(root, "song.mp3", data)
    assert root.conversions.convert_incoming(upload_info) is None
    assert b"".join(root.storage.open_range("song.mp3")) == data
    assert not root.storage.exists(upload_info.name)


def test_an_m4a_through_the_upload_url_is_converted(root):
    upload_info = posted(root, "voice memo.m4a", m4a(1.5))
    done = root.conversions.convert_incoming(upload_info)
    assert done is not None and done.filename == "voice memo.mp3"
    stored = root.catalog.get_audio("voice memo.mp3")
    assert stored.status is AudioStatus.READY and stored.source_format == "m4a/aac"
    assert stored.title == SOURCE_TAGS["title"]
    assert not root.storage.exists(upload_info.name)


def test_not_audio_through_the_upload_url_shows_invalid_with_why(root):
    upload_info = posted(root, "notes.m4a", b"Once upon a time. " * 200)
    assert root.conversions.convert_incoming(upload_info) is None
    stored = root.catalog.get_audio("notes.mp3")
    assert stored.status is AudioStatus.INVALID and "FLAC" in stored.status_reason
    assert library_names(root) == [] and not root.storage.exists(upload_info.name)


def test_not_audio_through_the_upload_url_never_hides_a_file_it_meant_to_replace(root):
    upload(root, "story.mp3", make_mp3(1.0))
    before = root.catalog.get_audio("story.mp3")
    post = root.library.upload_url("story.m4a", 100, overwrite=True, base_url="http://x")
    junk = root.storage.put(post.fields["key"], io.BytesIO(b"x" * 100), overwrite=False)
    assert root.conversions.convert_incoming(junk) is None
    assert root.catalog.get_audio("story.mp3") == before
    assert library_names(root) == ["story.mp3"]


def test_the_upload_url_is_409_for_a_taken_name_unless_overwrite(root):
    upload(root, "story.mp3", make_mp3(1.0))
    with pytest.raises(AudioExistsError):
        root.library.upload_url("story.flac", 1000, base_url="http://x")
    post = root.library.upload_url("story.flac", 1000, overwrite=True, base_url="http://x")
    assert post.fields["key"].endswith("/story.flac")


# A conversion the server stopped in the middle of ---------------------------------------------


def test_interrupted_gives_the_waiting_uploads_and_gives_up_on_the_lost(root):
    kept = upload(root, "kept.m4a", m4a(1.0))
    lost = upload(root, "lost.m4a", m4a(1.0))
    root.storage.delete(lost.source_key)
    waiting = root.upkeep.interrupted()
    assert [info.name for info in waiting] == [kept.source_key]
    gone = root.catalog.get_audio("lost.mp3")
    assert gone.status is AudioStatus.INVALID and "conversion failed" in gone.status_reason
    # Its event again: the conversion starts from the start and ends ready.
    assert root.conversions.convert_incoming(waiting[0]) is not None
    assert root.catalog.get_audio("kept.mp3").status is AudioStatus.READY


def test_the_local_server_resumes_conversions_it_stopped_in_the_middle_of(app_env, wall_clock):
    from starlette.testclient import TestClient

    from local_server.app import create_app
    from tests.conftest import ROOT

    before = Services(Settings.from_env(), wall_clock=wall_clock)
    before.migrate()
    record = upload(before, "story.m4a", m4a(1.0))  # accepted, then the server stopped
    assert before.catalog.get_audio("story.mp3").status is AudioStatus.CONVERTING

    restarted = Services(Settings.from_env(), wall_clock=wall_clock)
    app = create_app(ROOT / "template.yaml", restarted, access_log=False)
    with TestClient(app):
        app.state.dispatcher.drain()
        stored = restarted.catalog.get_audio("story.mp3")
    assert stored.status is AudioStatus.READY, stored
    assert not restarted.storage.exists(record.source_key)


def test_the_local_schedule_runs_its_task_again_and_again_until_stopped():
    import threading

    from local_server.app import Every

    runs: list[int] = []
    third = threading.Event()

    def task() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("one failed run must not end the schedule")
        if len(runs) == 3:
            third.set()

    schedule = Every(0.001, task)
    schedule.start()
    assert third.wait(10), "the task ran fewer than three times"
    schedule.stop()
    count = len(runs)
    assert not schedule._thread.is_alive()
    assert len(runs) == count, "nothing runs once stopped"


# Library MP3s from before any audio came in, or copied in by hand --------------------------------


def copied_in(root: Services, name: str, data: bytes):
    info = root.storage.put(name, io.BytesIO(data))
    return root.pipeline.object_created(info, sequencer=None)


def test_a_library_mp3_not_in_the_house_format_is_converted_in_place(root):
    before = copied_in(root, "radio.mp3", make_mp3_with_pyav(1.5, sample_rate=22050, channels=1))
    assert before.status is AudioStatus.READY and before.sample_rate == 22050
    house = copied_in(root, "song.mp3", make_mp3(1.0))
    assert root.upkeep.sweep() == []
    marked = root.catalog.get_audio("radio.mp3")
    assert marked.status is AudioStatus.READY, "it plays as it is meanwhile"
    assert marked.source_key and marked.source_key.startswith("incoming/")
    assert root.catalog.get_audio("song.mp3") == house, "a house MP3 is left alone"

    done = root.conversions.convert_incoming(root.storage.head(marked.source_key))
    assert done is not None
    after = root.catalog.get_audio("radio.mp3")
    assert (after.sample_rate, after.channels, after.mpeg_version) == (44100, 2, "1")
    assert after.credential_version == before.credential_version, "same device URL"
    assert after.source_format == "mp3/mp3" and after.source_key is None
    assert after.duration == pytest.approx(1.5, abs=0.06)
    assert library_names(root) == ["radio.mp3", "song.mp3"]
    assert root.upkeep.sweep() == [] and root.catalog.get_audio("radio.mp3") == after


def test_an_in_place_conversion_that_fails_leaves_the_file_as_it_was(root):
    before = copied_in(root, "odd.mp3", make_mp3_with_pyav(1.0, sample_rate=48000))
    original = b"".join(root.storage.open_range("odd.mp3"))
    root.upkeep.sweep()
    marked = root.catalog.get_audio("odd.mp3")
    root.storage.delete(marked.source_key)
    root.storage.put(marked.source_key, io.BytesIO(b"not audio at all " * 50))
    assert root.conversions.convert_incoming(root.storage.head(marked.source_key)) is None
    kept = root.catalog.get_audio("odd.mp3")
    assert kept.status is AudioStatus.READY and kept.source_key is None
    assert kept.etag == before.etag
    assert b"".join(root.storage.open_range("odd.mp3")) == original
