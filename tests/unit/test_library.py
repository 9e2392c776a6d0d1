"""The audio library's rules (upload, list, search, delete, upload URL) on every backend:
what a parent gets back, and what is and is not stored."""

from __future__ import annotations

import base64
import io
import json
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from smart_stream.catalog import get_catalog
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    InvalidFilenameError,
    InvalidQueryError,
    NotMp3Error,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from smart_stream.domain.records import AudioRecord, AudioStatus, UploadUrlRequest
from smart_stream.http.errors import status_for
from smart_stream.services import auth, library
from smart_stream.settings import MAX_PRESIGNED_UPLOAD_BYTES, MAX_UPLOAD_BYTES, get_settings
from smart_stream.storage import get_storage
from tests.audio import make_mp3

BASE = "http://127.0.0.1:8080"


@pytest.fixture
def env(app_env):
    """Every backend: for rules whose outcome depends on what is stored."""
    return app_env


@pytest.fixture
def local(local_env):
    """One backend suffices for checks made before storage or catalogue is asked anything."""
    return local_env


def upload(name: str, data: bytes, *, overwrite: bool = False, size: int | None = None):
    return library.upload_audio(
        name,
        io.BytesIO(data),
        len(data) if size is None else size,
        overwrite=overwrite,
        request_base=BASE,
    )


def stored_bytes(name: str) -> bytes:
    stream = get_storage().open_range(name)
    try:
        return b"".join(stream)
    finally:
        stream.close()


def assert_nothing_stored(env) -> None:
    assert list(get_storage().iter_objects()) == []
    assert get_catalog().list_audio(limit=10, after=None, statuses=tuple(AudioStatus)).records == []
    if env.backend == "local" and env.audio_dir.exists():
        assert os.listdir(env.audio_dir) == [], "not even a temporary file"


# --- upload ---------------------------------------------------------------------------------


def test_upload_stores_the_file_and_answers_its_record(env, mp3_bytes):
    """Given a tagged MP3, when it is uploaded, then the answer describes it as the contract
    says, the bytes are stored unchanged, and the catalogue has the same record."""
    before = datetime.now(UTC)
    audio = upload("Bedtime Story.mp3", mp3_bytes)

    assert audio.filename == "Bedtime Story.mp3"
    assert audio.size == len(mp3_bytes)
    assert audio.duration == pytest.approx(2.0, abs=0.1)
    assert (audio.bitrate, audio.bitrate_mode) == (128000, "CBR")
    assert (audio.sample_rate, audio.channels, audio.mpeg_version) == (44100, 2, "1")
    assert (audio.title, audio.artist, audio.album) == ("Bedtime Story", "Mum", "Evenings")
    assert audio.status == AudioStatus.READY
    assert before - timedelta(seconds=1) <= audio.uploaded_at <= datetime.now(UTC)
    info = get_storage().head("Bedtime Story.mp3")
    assert audio.etag == info.etag
    assert stored_bytes("Bedtime Story.mp3") == mp3_bytes
    record = get_catalog().get_audio("Bedtime Story.mp3")
    assert record.etag == info.etag and record.size == len(mp3_bytes)
    assert record.credential_version == 1

    url = urlsplit(audio.url)
    assert f"{url.scheme}://{url.netloc}" == BASE
    assert url.path == "/api/audio/" + quote("Bedtime Story.mp3", safe="")
    credential = parse_qs(url.query)[auth.CREDENTIAL_PARAM][0]
    auth.require_device({}, credential, library.AUDIO_KIND, "Bedtime Story.mp3", 1)

    json_body = json.loads(audio.model_dump_json())
    assert "transcript" not in json_body and "credential_version" not in json_body


def test_device_urls_use_the_public_base_url(env, mp3_bytes, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://audio.example.org/")
    get_settings.cache_clear()
    audio = upload("story.mp3", mp3_bytes)
    assert audio.url.startswith("https://audio.example.org/api/audio/story.mp3?sig=")


def test_over_4_mib_is_413_and_points_to_the_upload_url(env):
    data = b"\xff" * (MAX_UPLOAD_BYTES + 1)
    with pytest.raises(PayloadTooLargeError) as caught:
        upload("big.mp3", data)
    assert status_for(caught.value) == 413
    assert "upload-url" in caught.value.message
    assert_nothing_stored(env)


def test_the_size_limit_is_4_mib_exactly(env, mp3_bytes):
    """At exactly 4,194,304 bytes the file is judged on its content, not refused for size."""
    audio = upload("story.mp3", mp3_bytes, size=MAX_UPLOAD_BYTES)
    assert audio.filename == "story.mp3"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"Once upon a time.\n" * 100, id="text"),
        pytest.param(os.urandom(20_000), id="random"),
        pytest.param(make_mp3(1.0)[:100], id="truncated-mp3"),
    ],
)
def test_not_an_mp3_is_415_and_nothing_is_stored(env, data):
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        upload("story.mp3", data)
    assert isinstance(caught.value, NotMp3Error)
    assert status_for(caught.value) == 415
    assert_nothing_stored(env)


def test_an_existing_file_is_409_without_overwrite_and_stays_as_it_was(env, mp3_bytes):
    first = upload("story.mp3", mp3_bytes)
    other = make_mp3(1.0, title="Impostor")
    with pytest.raises(AudioExistsError) as caught:
        upload("story.mp3", other)
    assert status_for(caught.value) == 409
    assert "overwrite=true" in caught.value.message
    assert stored_bytes("story.mp3") == mp3_bytes
    assert get_catalog().get_audio("story.mp3").etag == first.etag
    assert get_catalog().get_audio("story.mp3").title == "Bedtime Story"


def test_a_file_copied_in_by_hand_also_counts_as_existing(env, mp3_bytes):
    """An object with no catalogue record yet (dropped into the folder or bucket) is not
    silently replaced."""
    get_storage().put("by-hand.mp3", io.BytesIO(b"parent's own bytes"))
    with pytest.raises(AudioExistsError):
        upload("by-hand.mp3", mp3_bytes)
    assert stored_bytes("by-hand.mp3") == b"parent's own bytes"


def test_overwrite_replaces_the_file_and_keeps_its_device_url(env, mp3_bytes):
    """A replaced file keeps its credential version, so the card that plays it still works."""
    first = upload("story.mp3", mp3_bytes)
    catalog = get_catalog()
    revoked_twice = catalog.get_audio("story.mp3").model_copy(update={"credential_version": 3})
    catalog.put_audio(revoked_twice)
    url_before = library.to_audio_file(revoked_twice, BASE).url

    replacement = make_mp3(1.0, sample_rate=22050, channels=1, bitrate=64, title="New")
    second = upload("story.mp3", replacement, overwrite=True)

    assert second.url == url_before
    assert second.url != first.url
    assert catalog.get_audio("story.mp3").credential_version == 3
    assert stored_bytes("story.mp3") == replacement
    assert (second.title, second.sample_rate, second.channels) == ("New", 22050, 1)
    assert second.size == len(replacement)
    assert second.etag == get_storage().head("story.mp3").etag != first.etag


@pytest.mark.parametrize("name", ["../story.mp3", "story.wav", ".story.mp3", "a/b.mp3"])
def test_a_bad_filename_is_refused_before_anything_is_stored(env, mp3_bytes, name):
    with pytest.raises(InvalidFilenameError) as caught:
        upload(name, mp3_bytes)
    assert status_for(caught.value) == 400
    assert_nothing_stored(env)


# --- list -----------------------------------------------------------------------------------


def add_records(*specs: tuple[str, AudioStatus]) -> None:
    catalog = get_catalog()
    for name, status in specs:
        catalog.put_audio(
            AudioRecord(filename=name, size=10, etag=f'"{name}"', status=status, duration=1.0)
        )


READY, PENDING, INVALID = AudioStatus.READY, AudioStatus.PENDING, AudioStatus.INVALID
SPECS = [
    ("a.mp3", READY),
    ("b.mp3", INVALID),
    ("c.mp3", PENDING),
    ("d.mp3", READY),
    ("é.mp3", READY),
    ("f.mp3", INVALID),
    ("g.mp3", READY),
]


def list_names(**params) -> tuple[list[str], str | None]:
    params = {"limit": None, "next_token": None, "status": None, **params}
    result = library.list_audio(request_base=BASE, **params)
    return [f.filename for f in result.files], result.next_token


def test_list_pages_round_trip_with_next_token(env):
    """Following next_token from page to page gives every visible file once, in order."""
    add_records(*SPECS)
    visible = sorted(n for n, s in SPECS if s != INVALID)
    for limit in range(1, len(SPECS) + 1):
        names, token = list_names(limit=str(limit))
        seen = list(names)
        while token is not None:
            assert len(names) == limit
            names, token = list_names(limit=str(limit), next_token=token)
            seen += names
        assert seen == visible, f"limit={limit}"


def test_list_files_carry_device_urls(env):
    add_records(("a.mp3", READY))
    result = library.list_audio(limit=None, next_token=None, status=None, request_base=BASE)
    assert result.next_token is None
    assert result.files[0].url.startswith(f"{BASE}/api/audio/a.mp3?{auth.CREDENTIAL_PARAM}=")


def test_list_with_nothing_stored(env):
    assert list_names() == ([], None)


STATUS_CASES = [
    (None, ["a.mp3", "c.mp3", "d.mp3", "g.mp3", "é.mp3"]),
    ("", ["a.mp3", "c.mp3", "d.mp3", "g.mp3", "é.mp3"]),
    ("ready", ["a.mp3", "d.mp3", "g.mp3", "é.mp3"]),
    ("pending", ["c.mp3"]),
    ("invalid", ["b.mp3", "f.mp3"]),
    ("ready,invalid", ["a.mp3", "b.mp3", "d.mp3", "f.mp3", "g.mp3", "é.mp3"]),
    ("ready, pending", ["a.mp3", "c.mp3", "d.mp3", "g.mp3", "é.mp3"]),
    ("all", sorted(n for n, _ in SPECS)),
]


def test_list_status_filter(env):
    add_records(*SPECS)
    for status, expected in STATUS_CASES:
        assert list_names(status=status) == (expected, None), status


@pytest.mark.parametrize("status", ["bogus", "READY!", "ready,,", "ready,nope", "everything"])
def test_an_unknown_status_is_422(local, status):
    with pytest.raises(UnprocessableError) as caught:
        list_names(status=status)
    assert status_for(caught.value) == 422
    assert "status" in caught.value.message


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "10 items"])
def test_a_bad_limit_is_422(local, limit):
    with pytest.raises(UnprocessableError) as caught:
        list_names(limit=limit)
    assert "limit" in caught.value.message


def test_a_huge_limit_is_capped_not_refused(env):
    add_records(*SPECS)
    names, token = list_names(limit="1000000")
    assert len(names) == 5 and token is None


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "%%%%",
        "x",
        base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
        _token({"not_after": "a.mp3"}),
        _token({"after": 5}),
        _token({"after": None}),
        _token(["after"]),
        _token("a.mp3"),
        # 3 KB of "[": deeper than the JSON parser's stack, must still be a 400, not a 500.
        base64.urlsafe_b64encode(b"[" * 3000).decode(),
    ],
)
def test_a_next_token_that_was_not_handed_out_is_400(local, token):
    add_records(*SPECS)
    with pytest.raises(InvalidQueryError) as caught:
        list_names(next_token=token)
    assert status_for(caught.value) == 400


# --- search ---------------------------------------------------------------------------------


def test_search_is_case_insensitive_and_hides_invalid_files(env, mp3_bytes):
    upload("Bedtime Story.mp3", mp3_bytes)  # tagged artist "Mum"
    add_records(("mum invalid.mp3", INVALID), ("MUMBLES.mp3", PENDING))
    for query in ("mum", "MUM", "  Mum  "):
        found = library.search_audio(query, request_base=BASE)
        assert sorted(f.filename for f in found.files) == ["Bedtime Story.mp3", "MUMBLES.mp3"]
    found = library.search_audio("bedtime STORY", request_base=BASE)
    assert [f.filename for f in found.files] == ["Bedtime Story.mp3"]
    assert found.files[0].url.startswith(f"{BASE}/api/audio/")
    assert library.search_audio("nowhere", request_base=BASE).files == []


@pytest.mark.parametrize("query", [None, "", "   ", "\t"])
def test_an_empty_search_is_400(local, query):
    with pytest.raises(InvalidQueryError) as caught:
        library.search_audio(query, request_base=BASE)
    assert status_for(caught.value) == 400
    assert "q=" in caught.value.message


# --- metadata and delete --------------------------------------------------------------------


def test_metadata_of_any_status_and_404(env):
    add_records(("broken.mp3", INVALID))
    assert library.get_audio("broken.mp3", request_base=BASE).status == INVALID
    with pytest.raises(AudioNotFoundError) as caught:
        library.get_audio("missing.mp3", request_base=BASE)
    assert status_for(caught.value) == 404


def test_delete_removes_the_object_and_the_record(env, mp3_bytes):
    upload("story.mp3", mp3_bytes)
    upload("other.mp3", mp3_bytes)
    library.delete_audio("story.mp3")
    assert not get_storage().exists("story.mp3")
    assert get_catalog().get_audio("story.mp3") is None
    assert list_names() == (["other.mp3"], None)
    assert stored_bytes("other.mp3") == mp3_bytes


def test_delete_of_a_missing_file_is_404(env, mp3_bytes):
    upload("other.mp3", mp3_bytes)
    with pytest.raises(AudioNotFoundError) as caught:
        library.delete_audio("missing.mp3")
    assert status_for(caught.value) == 404
    assert get_storage().exists("other.mp3")


def test_delete_cleans_up_half_present_files(env):
    """A record whose object is already gone, or an object with no record, is still deleted
    (not a 404): the parent asked for it to be gone, and now it is."""
    add_records(("record-only.mp3", READY))
    library.delete_audio("record-only.mp3")
    assert get_catalog().get_audio("record-only.mp3") is None

    get_storage().put("object-only.mp3", io.BytesIO(b"bytes"))
    library.delete_audio("object-only.mp3")
    assert not get_storage().exists("object-only.mp3")


def test_delete_of_a_bad_name_is_400(local):
    with pytest.raises(InvalidFilenameError):
        library.delete_audio("../../etc/passwd.mp3")


# --- upload URL -----------------------------------------------------------------------------


def test_upload_url_for_a_new_file(env):
    response = library.create_upload_url(
        UploadUrlRequest(filename="big story.mp3", size=50_000_000), request_base=BASE
    )
    assert response.method == "POST"
    assert response.expires_in > 0
    assert response.url.startswith(("http://", "https://"))
    assert response.fields["key"] == "big story.mp3"
    assert response.fields["Content-Type"] == "audio/mpeg"
    assert not get_storage().exists("big story.mp3")


def test_upload_url_for_an_existing_file_is_409(env, mp3_bytes):
    upload("story.mp3", mp3_bytes)
    with pytest.raises(AudioExistsError):
        library.create_upload_url(
            UploadUrlRequest(filename="story.mp3", size=1000), request_base=BASE
        )


def test_upload_url_over_5_gb_is_413(env):
    library.create_upload_url(
        UploadUrlRequest(filename="max.mp3", size=MAX_PRESIGNED_UPLOAD_BYTES), request_base=BASE
    )
    with pytest.raises(PayloadTooLargeError) as caught:
        library.create_upload_url(
            UploadUrlRequest(filename="huge.mp3", size=MAX_PRESIGNED_UPLOAD_BYTES + 1),
            request_base=BASE,
        )
    assert status_for(caught.value) == 413


def test_upload_url_with_a_bad_name_is_400(local):
    with pytest.raises(InvalidFilenameError):
        library.create_upload_url(
            UploadUrlRequest(filename="../x.mp3", size=1000), request_base=BASE
        )
