"""The metadata pipeline on both backends: an object lands in storage (or leaves it), S3's
event (as EventBridge delivers it) reaches extract_metadata, and the catalogue ends up saying
what the file is, once, whatever the order and number of the events, having read only a few
blocks."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from smart_stream.bootstrap import services
from smart_stream.domain.errors import ServiceUnavailableError
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.http import requests
from smart_stream.ports import ObjectInfo
from tests.audio import make_mp3
from tests.conftest import ROOT, TOKEN
from tests.unit.test_audio_analysis import (
    HOUSE_VBR_RATES,
    KIB,
    MIB,
    decoded_samples,
    encode,
    frames,
    header_frame,
    id3v1,
    id3v2,
    true_seconds,
    vbr,
)

EVENTS = ROOT / "events"
ONE_FRAME = 1152 / 44100 + 0.0005


# --- Plumbing ----------------------------------------------------------------------------


@dataclass
class FakeContext:
    function_name: str = "smart-stream-extract-metadata"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:smart-stream-extract-metadata"
    )
    aws_request_id: str = "1f0c8a3e-8d2b-4f0e-9a51-6b1b6c7d9e01"


def load_handler(function_dir: str):
    """The function's lambda_handler, loaded from its file as Lambda does."""
    path = ROOT / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(f"fn_{function_dir}_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


@pytest.fixture(scope="module")
def extract():
    return load_handler("extract_metadata")


@dataclass
class Reads:
    requests: int = 0
    bytes: int = 0


@pytest.fixture
def reads(app_env, monkeypatch) -> Reads:
    """Every read made of storage (requests, and bytes actually delivered)."""
    storage = services().storage
    counted = Reads()
    original = storage.open_range

    def open_range(name, start=0, end=None, **kwargs):
        stream = original(name, start, end, **kwargs)
        counted.requests += 1
        inner = iter(stream)

        def chunks():
            for chunk in inner:
                counted.bytes += len(chunk)
                yield chunk

        stream._chunks = chunks()
        return stream

    monkeypatch.setattr(storage, "open_range", open_range)
    return counted


def store(name: str, data: bytes) -> ObjectInfo:
    return services().storage.put(name, io.BytesIO(data))


_sequence = iter(range(1, 10**9))


def next_sequencer() -> str:
    """S3 sequencers grow per key; hex of varying length, compared left-padded."""
    return f"{0x5A00000000 + next(_sequence) * 16:X}"


def created(info: ObjectInfo, sequencer: str | None) -> AudioRecord | None:
    return services().pipeline.object_created(info, sequencer=sequencer)


def removed(name: str, sequencer: str | None) -> bool:
    return services().pipeline.object_removed(name, sequencer=sequencer)


def catalogued(name: str) -> AudioRecord | None:
    return services().catalog.get_audio(name)


def listed(status: str | None = None) -> list[str]:
    """The first page of the list (as GET /api/audio/list?status= gives it)."""
    page = services().library.page(
        limit=requests.page_size(None), after=None, statuses=requests.statuses(status)
    )
    return [r.filename for r in page.records]


def searched(query: str) -> list[str]:
    return [r.filename for r in services().library.search(query)]


def s3_put_event(info: ObjectInfo, sequencer: str, bucket: str) -> dict[str, Any]:
    """events/s3_put.json ("Object Created", as S3 sends it to EventBridge) with this
    object's bucket, key (as stored: EventBridge's events do not URL-encode it), size, etag
    (without quotes), sequencer and time (whole seconds)."""
    event = copy.deepcopy(json.loads((EVENTS / "s3_put.json").read_text()))
    event["time"] = info.last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(
        key=info.name, size=info.size, etag=info.etag.strip('"'), sequencer=sequencer
    )
    return event


def s3_delete_event(name: str, sequencer: str, bucket: str) -> dict[str, Any]:
    """events/s3_delete.json ("Object Deleted") for this key."""
    event = copy.deepcopy(json.loads((EVENTS / "s3_delete.json").read_text()))
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=name, sequencer=sequencer)
    return event


def bucket_of(env) -> str:
    return env.bucket or "local-audio"


# --- A new object ------------------------------------------------------------------------


def test_a_new_object_is_catalogued_with_what_it_is(app_env, reads):
    """Given a tagged MP3 put into storage, when its ObjectCreated event is handled, then the
    catalogue says it is ready, with the duration a decoder plays, its tags, its exact audio
    span, its size and etag, and it is listed and found."""
    audio = encode(2.0)
    lead = id3v2(4, title="Bedtime Story", artist="Mum", album="Evenings")
    data = lead + audio + id3v1(title="Old")
    info = store("story.mp3", data)

    record = created(info, next_sequencer())

    assert record is not None
    assert record == catalogued("story.mp3")
    assert record.status is AudioStatus.READY and record.status_reason is None
    assert record.duration == pytest.approx(decoded_samples(data) / 44100, abs=ONE_FRAME)
    assert (record.title, record.artist, record.album) == ("Bedtime Story", "Mum", "Evenings")
    assert (record.audio_start, record.audio_end) == (len(lead), len(lead) + len(audio))
    assert (record.size, record.etag) == (len(data), info.etag)
    assert (record.bitrate, record.bitrate_mode, record.sample_rate) == (128000, "CBR", 44100)
    assert (record.channels, record.mpeg_version) == (2, "1")
    assert record.uploaded_at == info.last_modified.replace(microsecond=0)
    assert listed() == ["story.mp3"]
    assert searched("EVENINGS") == ["story.mp3"]
    assert 1 <= reads.requests <= 3


def test_the_same_event_twice_leaves_one_identical_record_and_reads_nothing(app_env, reads):
    info = store("twice.mp3", make_mp3(1.0, title="Twice"))
    sequencer = next_sequencer()
    first = created(info, sequencer)
    cost = (reads.requests, reads.bytes)
    assert reads.requests > 0

    again = created(info, sequencer)

    assert again == first == catalogued("twice.mp3")
    assert (reads.requests, reads.bytes) == cost, "a duplicate reads nothing"
    assert listed() == ["twice.mp3"]


def test_the_event_after_an_upload_through_the_api_changes_nothing(app_env, reads):
    """The upload function catalogues the file itself; its S3 event comes after and finds
    the same version: the record stays as the upload wrote it, and nothing is read."""
    data = make_mp3(1.0, title="Uploaded")
    uploaded = services().library.upload("up.mp3", io.BytesIO(data), len(data), overwrite=False)
    before = catalogued("up.mp3")
    head = services().storage.head("up.mp3")

    after = created(head, next_sequencer())

    assert after == before == catalogued("up.mp3")
    assert uploaded.duration == after.duration
    assert reads.requests == 0


def test_an_older_event_after_a_newer_one_changes_nothing(app_env):
    """Given version 1 then version 2 of a file, when their events arrive newest first, then
    the record is version 2's and stays so."""
    v1 = store("song.mp3", make_mp3(1.0, title="Version One"))
    s1 = next_sequencer()
    v2 = store("song.mp3", make_mp3(2.0, title="Version Two"))
    s2 = next_sequencer()

    assert created(v2, s2).title == "Version Two"
    assert created(v1, s1) is None
    # The same version again, but with an older sequencer than the one applied.
    assert created(v2, s1) == catalogued("song.mp3")

    record = catalogued("song.mp3")
    assert (record.title, record.etag) == ("Version Two", v2.etag)
    assert record.duration == pytest.approx(2.0, abs=0.1)


def test_an_older_event_for_the_current_bytes_cannot_overwrite_a_newer_record(app_env):
    """The sequencer is compared by the catalogue itself: a record written by a newer event
    is not replaced by an older one, even one whose bytes are still there to read."""
    info = store("kept.mp3", make_mp3(1.0, title="Kept"))
    older, newer = next_sequencer(), next_sequencer()
    record = created(info, newer)
    # Whatever an older event would write (here: the record as pending) is refused.
    pending = record.model_copy(update={"status": AudioStatus.PENDING, "duration": None})
    assert not services().catalog.put_audio(pending, sequencer=older)
    assert catalogued("kept.mp3") == record


def test_delete_removes_it_everywhere_and_a_late_create_does_not_bring_it_back(app_env):
    info = store("gone.mp3", make_mp3(1.0, title="Soon Gone"))
    s_create = next_sequencer()
    assert created(info, s_create) is not None
    services().storage.delete("gone.mp3")
    s_delete = next_sequencer()

    assert removed("gone.mp3", s_delete) is True

    assert catalogued("gone.mp3") is None
    assert listed() == [] and listed("all") == [] and searched("soon") == []
    # The create event delivered again, late: its object is gone, and so is its record.
    assert created(info, s_create) is None
    assert catalogued("gone.mp3") is None
    # The delete event delivered again: nothing left to delete.
    assert removed("gone.mp3", s_delete) is False


def test_a_tombstone_outranks_an_older_create_even_if_its_bytes_are_readable(app_env):
    """Events out of order: the delete (newer) is handled, then the create (older) whose
    bytes can still be read (the object was put back since, with its own newer event to
    come). The record must not come back from the older event, only from the newer."""
    info = store("back.mp3", make_mp3(1.0, title="Back"))
    s_old, s_delete = next_sequencer(), next_sequencer()
    removed("back.mp3", s_delete)

    assert created(info, s_old) is None
    assert catalogued("back.mp3") is None
    assert listed("all") == []

    s_new = next_sequencer()
    assert created(info, s_new).title == "Back"
    assert listed() == ["back.mp3"]


def test_an_older_delete_does_not_remove_a_newer_record(app_env):
    info = store("stays.mp3", make_mp3(1.0))
    s_delete, s_create = next_sequencer(), next_sequencer()
    created(info, s_create)
    assert removed("stays.mp3", s_delete) is False
    assert catalogued("stays.mp3") is not None


def test_sequencers_of_different_lengths_compare_as_numbers(app_env):
    """S3's sequencers vary in length: the shorter is left-padded with zeros before they are
    compared, so "0100" is newer than "FF" (plain string order says the opposite)."""
    info = store("padded.mp3", make_mp3(0.5))
    assert created(info, "FF") is not None
    assert removed("padded.mp3", "0100") is True
    assert catalogued("padded.mp3") is None
    assert created(info, "FE") is None
    assert created(info, "00000101") is not None
    assert listed() == ["padded.mp3"]


def test_a_reupload_replaces_the_record(app_env):
    v1 = store("replace.mp3", make_mp3(1.0, title="Old"))
    created(v1, next_sequencer())
    long_audio = encode(3.0, 22050, 1, 64)
    v2 = store("replace.mp3", long_audio)
    assert v2.etag != v1.etag

    record = created(v2, next_sequencer())

    assert record == catalogued("replace.mp3")
    assert (record.etag, record.size) == (v2.etag, len(long_audio))
    assert record.title is None, "the old title went with the old bytes"
    assert (record.sample_rate, record.channels, record.mpeg_version) == (22050, 1, "2")
    assert record.duration == pytest.approx(true_seconds(long_audio), abs=576 / 22050 + 0.0005)
    assert (record.audio_start, record.audio_end) == (0, len(long_audio))
    assert listed() == ["replace.mp3"]


def test_what_belongs_to_the_name_survives_reanalysis(app_env):
    """A revoked device URL stays revoked and a TTS transcript stays searchable when the file
    is replaced, whether the new bytes are good or bad."""
    v1 = store("story.mp3", make_mp3(1.0, title="Story"))
    created(v1, next_sequencer())
    catalog = services().catalog
    owned = catalog.get_audio("story.mp3").model_copy(
        update={
            "credential_version": 4,
            "transcript": "Once upon a time",
            "transcript_status": "ready",
        }
    )
    catalog.put_audio(owned)
    url = services().urls.audio(owned, "http://x")

    v2 = store("story.mp3", make_mp3(2.0, title="Story, longer"))
    record = created(v2, next_sequencer())

    assert (record.credential_version, record.transcript) == (4, "Once upon a time")
    assert record.transcript_status == "ready"
    assert record.title == "Story, longer"
    assert services().urls.audio(record, "http://x") == url, "cards keep working"
    assert searched("upon a time") == ["story.mp3"]

    v3 = store("story.mp3", b"not audio at all" * 100)
    bad = created(v3, next_sequencer())
    assert bad.status is AudioStatus.INVALID
    assert (bad.credential_version, bad.transcript) == (4, "Once upon a time")


# --- The real handler, real-shaped events ------------------------------------------------

NAMES = [
    "Bedtime Story ü.mp3",
    "a+b=c.mp3",
    "Gute Nacht, Bär 🐻.mp3",
    "100% fun & games (live).MP3",
    "  two  spaces  .mp3",
    "おやすみ+なさい.mp3",
]


@pytest.mark.parametrize("name", NAMES)
def test_handler_with_keys_as_stored(app_env, extract, name):
    """Given S3's events through EventBridge for a key with spaces, '+', '%' or non-ASCII
    (as stored: EventBridge's events do not URL-encode keys, so nothing is decoded, and a '+'
    stays a '+'), when the real handler takes them, then the record is under the real name,
    and the delete event removes it."""
    data = make_mp3(1.0, title="Named")
    info = store(name, data)
    put = s3_put_event(info, next_sequencer(), bucket_of(app_env))
    assert put["detail"]["object"]["key"] == name

    assert extract(put, FakeContext()) == {"handled": 1}

    record = catalogued(name)
    assert record is not None and record.status is AudioStatus.READY
    assert record.title == "Named"
    assert record.uploaded_at == info.last_modified.replace(microsecond=0)
    assert listed() == [name]
    # At-least-once: the same event again.
    assert extract(put, FakeContext()) == {"handled": 1}
    assert catalogued(name) == record

    services().storage.delete(name)
    assert extract(s3_delete_event(name, next_sequencer(), bucket_of(app_env)), FakeContext())
    assert catalogued(name) is None
    assert listed("all") == []
    # The put event delivered late, after the delete.
    extract(put, FakeContext())
    assert catalogued(name) is None


def test_the_sample_events_as_generated(app_env, extract):
    """events/s3_put.json's key is the name it was made for, as stored."""
    sample = json.loads((EVENTS / "s3_put.json").read_text())
    name = "Bedtime Story ü.mp3"
    assert sample["detail"]["object"]["key"] == name
    info = store(name, make_mp3(0.5))
    extract(s3_put_event(info, "006955B884A1B2C3D4", bucket_of(app_env)), FakeContext())
    assert listed() == [name]
    # The sample delete event is newer than the sample put event.
    services().storage.delete(name)
    delete = json.loads((EVENTS / "s3_delete.json").read_text())
    extract(delete, FakeContext())
    assert listed("all") == []


def test_the_sample_events_created_twice_replaced_late_and_deleted(app_env, extract):
    """The sample events, as EventBridge may deliver them: one object an event, at least
    once, in any order. Given a file and its "Object Created" event, when the event comes
    twice, then one record; when the file is replaced, its event handled, and the first
    event comes again late (an older sequencer), then the record stays the new version; when
    it is deleted and the "Object Deleted" event handled, then it is gone, and a late
    "Object Created" does not bring it back."""
    bucket = bucket_of(app_env)
    name = "Bedtime Story ü.mp3"
    first = store(name, make_mp3(0.5, title="First"))
    put_first = s3_put_event(first, "006955B884A1B2C3D4", bucket)
    assert extract(put_first, FakeContext()) == {"handled": 1}
    record = catalogued(name)
    assert record is not None and record.title == "First"
    assert extract(put_first, FakeContext()) == {"handled": 1}
    assert catalogued(name) == record, "a duplicate changes nothing"

    second = store(name, make_mp3(0.7, title="Second"))
    put_second = s3_put_event(second, "006955B9000000000A", bucket)
    extract(put_second, FakeContext())
    extract(put_first, FakeContext())  # late, with an older sequencer
    replaced = catalogued(name)
    assert replaced is not None and (replaced.title, replaced.etag) == ("Second", second.etag)

    services().storage.delete(name)
    delete = s3_delete_event(name, "006955B9E8F1E2D3C4", bucket)
    assert extract(delete, FakeContext()) == {"handled": 1}
    assert catalogued(name) is None
    extract(put_second, FakeContext())  # late again, after the delete
    assert catalogued(name) is None
    assert listed("all") == []


def test_events_the_rule_does_not_send_are_ignored(app_env, extract):
    """Only "Object Created" and "Object Deleted" reach the function (its rule): anything
    else, were it invoked with it, is left alone."""
    info = store("restored.mp3", make_mp3(0.5))
    event = s3_put_event(info, next_sequencer(), bucket_of(app_env))
    event["detail-type"] = "Object Restore Completed"
    assert extract(event, FakeContext()) == {"handled": 0}
    assert catalogued("restored.mp3") is None


def test_keys_that_are_not_audio_files_are_ignored(app_env, extract):
    """Uploads waiting to be converted and packs never reach the function (its rule leaves
    them out); nor would they be catalogued if they did."""
    bucket = bucket_of(app_env)
    incoming = "incoming/" + "0" * 32 + "/story.mp3"
    pack = "packs/bedtime/" + "1" * 32 + ".mp3"
    for key in ("notes.txt", ".hidden.mp3", incoming, pack):
        event = s3_put_event(ObjectInfo(key, 10, '"abc"', datetime.now(UTC)), "01", bucket)
        assert extract(event, FakeContext()) == {"handled": 1}
        extract(s3_delete_event(key, "02", bucket), FakeContext())
    assert listed("all") == []


def test_a_failing_catalogue_raises_for_lambda_to_retry(aws_env, extract):
    """Only a service failure escapes the handler (Lambda retries it, then keeps the event
    in the on-failure destination); a bad file never does."""
    info = store("retry.mp3", make_mp3(0.5))
    boto3.client("dynamodb").delete_table(TableName=aws_env.table)
    with pytest.raises(ServiceUnavailableError):
        extract(s3_put_event(info, next_sequencer(), aws_env.bucket), FakeContext())


# --- What it costs on S3 -----------------------------------------------------------------


@pytest.fixture
def s3_gets(aws_env) -> list[int]:
    """Content-Length of every GetObject answered by S3 (moto)."""
    sizes: list[int] = []

    def after_get(parsed, **_):
        sizes.append(int(parsed["ContentLength"]))

    services().storage.client.meta.events.register("after-call.s3.GetObject", after_get)
    return sizes


def test_bytes_fetched_from_s3_for_a_long_cbr_file(aws_env, s3_gets, extract):
    """Given an 8 MB CBR file with ordinary tags in S3, when its event is handled, then S3
    answered at most 3 ranged GETs and 512 KiB, and the duration is still exact."""
    piece = encode(3.0)
    audio = piece * (8 * MIB // len(piece) + 1)
    lead = id3v2(4, title="Long Story", artist="Gran")
    data = lead + audio + id3v1(title="Long Story")
    info = store("long.mp3", data)

    extract(s3_put_event(info, next_sequencer(), aws_env.bucket), FakeContext())

    record = catalogued("long.mp3")
    assert len(s3_gets) <= 3, f"{len(s3_gets)} GETs"
    assert sum(s3_gets) <= 512 * KIB, f"{sum(s3_gets)} bytes"
    expected = len(audio) // len(piece) * len(frames(piece)) * 1152 / 44100
    assert record.duration == pytest.approx(expected, abs=ONE_FRAME)
    assert (record.audio_start, record.audio_end) == (len(lead), len(lead) + len(audio))
    assert record.title == "Long Story"


def test_bytes_fetched_from_s3_for_cover_art_and_for_a_headerless_vbr_file(aws_env, s3_gets):
    """A 5 MB cover picture is skipped, not fetched; a VBR file without a header costs its
    few reads and one GET of its frames."""
    from tests.unit.test_audio_analysis import _cover_art_tag

    tag = _cover_art_tag(5 * MIB)
    art = store("art.mp3", tag + encode(1.0))
    record = created(art, next_sequencer())
    assert record.title == "Big Book"
    assert sum(s3_gets) < MIB, f"{sum(s3_gets)} bytes fetched of a {len(tag)}-byte tag"

    s3_gets.clear()
    audio = vbr(44100, 2, HOUSE_VBR_RATES) * 20
    info = store("vbr.mp3", audio)
    record = created(info, next_sequencer())
    assert record.bitrate_mode == "VBR"
    assert record.duration == pytest.approx(true_seconds(audio), abs=ONE_FRAME)
    assert len(s3_gets) <= 4
    assert sum(s3_gets) <= len(audio) + 512 * KIB


# --- Bad files ---------------------------------------------------------------------------


def _bad_files() -> dict[str, tuple[bytes, str, str | None]]:
    """name -> (bytes, expected status, words the reason must contain / None)."""
    audio = encode(1.0)
    whole = frames(audio)
    lying = header_frame(audio, "Xing", frame_count=len(whole) * 3, byte_count=None) + audio
    return {
        "text.mp3": (b"Dear diary, today I renamed a text file.\n" * 50, "invalid", "not an mp3"),
        "empty.mp3": (b"", "invalid", "empty"),
        "picture.mp3": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, "invalid", "not an mp3"),
        "tags-only.mp3": (id3v2(4, title="Nothing Here"), "invalid", "no audio"),
        "cut.mp3": (audio[:-200], "ready", None),
        "junk-first.mp3": (bytes(range(256)) * 12 + audio, "ready", None),
        "lying-xing.mp3": (lying, "ready", None),
    }


def test_bad_files_end_invalid_with_a_reason_or_ready_with_the_truth(app_env):
    """Given files that are not audio, empty, cut short, preceded by junk, or whose header
    lies, when their events are handled, then none raises: each is invalid with a reason a
    parent can read, or ready with the duration of the frames really there."""
    audio = encode(1.0)
    whole_frames_of_cut = frames(audio[:-200])
    for name, (data, status, reason) in _bad_files().items():
        info = store(name, data)
        record = created(info, next_sequencer())
        assert record is not None, name
        assert record == catalogued(name)
        assert record.status.value == status, (name, record.status_reason)
        if status == "invalid":
            assert reason in record.status_reason.lower(), (name, record.status_reason)
            assert record.duration is None and record.audio_start is None
        else:
            assert record.status_reason is None
    cut = catalogued("cut.mp3")
    last_pos, last = whole_frames_of_cut[-1]
    assert cut.audio_end == last_pos + last.length < len(audio) - 200
    assert cut.duration == pytest.approx(len(whole_frames_of_cut) * 1152 / 44100, abs=0.001)
    assert catalogued("junk-first.mp3").audio_start == 256 * 12
    lying = catalogued("lying-xing.mp3")
    assert lying.duration == pytest.approx(true_seconds(audio), abs=ONE_FRAME)

    invalid = sorted(n for n, (_, s, _) in _bad_files().items() if s == "invalid")
    ready = sorted(n for n, (_, s, _) in _bad_files().items() if s == "ready")
    assert listed() == ready
    assert listed("invalid") == invalid
    assert searched(".mp3") == ready
    assert searched("nothing here") == []


def test_a_huge_id3_tag_is_ready_with_its_title(app_env, reads):
    from tests.unit.test_audio_analysis import _cover_art_tag

    tag = _cover_art_tag(5 * MIB)
    audio = encode(1.0)
    record = created(store("art.mp3", tag + audio), next_sequencer())
    assert record.status is AudioStatus.READY
    assert (record.title, record.artist) == ("Big Book", "Dad")
    assert (record.audio_start, record.audio_end) == (len(tag), len(tag) + len(audio))
    assert reads.bytes < MIB


def test_an_invalid_file_is_seen_through_the_metadata_route_and_status_filter(app_env, extract):
    """An upload that is not audio is kept out of list and search, but the uploader can see
    why: GET .../metadata answers it, and list?status=invalid lists it."""
    info = store("oops.mp3", b"<html>not an mp3</html>" * 40)
    extract(s3_put_event(info, next_sequencer(), bucket_of(app_env)), FakeContext())

    shown = _http("audio_metadata", "http_audio_metadata.json", "oops.mp3")
    assert shown["status"] == "invalid"
    assert "not an mp3" in shown["status_reason"].lower()
    assert shown["duration"] is None and shown["size"] == info.size

    everything = _http("list_audio", "http_list_audio.json", query={"status": "invalid"})
    assert [f["filename"] for f in everything["files"]] == ["oops.mp3"]
    assert _http("list_audio", "http_list_audio.json")["files"] == []
    assert searched("oops") == []

    # Replaced by real audio: ready, listed, and the reason is gone.
    good = store("oops.mp3", make_mp3(0.5))
    extract(s3_put_event(good, next_sequencer(), bucket_of(app_env)), FakeContext())
    shown = _http("audio_metadata", "http_audio_metadata.json", "oops.mp3")
    assert (shown["status"], shown["status_reason"]) == ("ready", None)
    assert listed() == ["oops.mp3"] and listed("invalid") == []


def _http(function_dir: str, event_file: str, filename: str | None = None, query=None) -> Any:
    event = copy.deepcopy(json.loads((EVENTS / event_file).read_text()))
    event["headers"]["authorization"] = f"Bearer {TOKEN}"
    if filename is not None:
        path = f"/api/audio/{filename}/metadata"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"filename": filename}
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    result = load_handler(function_dir)(event, FakeContext())
    assert result["statusCode"] == 200, result
    return json.loads(result["body"])
