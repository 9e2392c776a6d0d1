"""The audio library's rules (upload, list, search, delete, upload URL) on every backend:
what a parent gets back, and what is and is not stored; and the one path that stores a
version (``Versions.store``), with its rollback rule, which upload, story and the metadata
event all take."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from smart_stream.audio.analysis import analyse_upload
from smart_stream.bootstrap import Services, install, services
from smart_stream.domain.asks import Story
from smart_stream.domain.credentials import AUDIO_KIND, CREDENTIAL_PARAM
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    InvalidFilenameError,
    InvalidQueryError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.http import requests
from smart_stream.http.errors import status_for
from smart_stream.http.views import AudioFile, Views, upload_url_response
from smart_stream.ports import Pcm, Voice
from smart_stream.services.library import MAX_PRESIGNED_UPLOAD_BYTES, MAX_UPLOAD_BYTES
from smart_stream.services.tts import Stories
from tests.audio import make_mp3, pcm_tone
from tests.conftest import ROOT, TOKEN
from tests.lambda_functions import FakeContext, handler

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
    return services().library.upload(
        name, io.BytesIO(data), len(data) if size is None else size, overwrite=overwrite
    )


def view(record: AudioRecord) -> AudioFile:
    """The record as the contract's AudioFile JSON, for a request made to BASE."""
    return Views(services().urls, BASE).audio_file(record)


def stored_bytes(name: str) -> bytes:
    stream = services().storage.open_range(name)
    try:
        return b"".join(stream)
    finally:
        stream.close()


def all_records() -> list[AudioRecord]:
    return (
        services().catalog.list_audio(limit=1000, after=None, statuses=tuple(AudioStatus)).records
    )


def assert_nothing_stored(env) -> None:
    assert list(services().storage.iter_objects()) == []
    assert all_records() == []
    if env.backend == "local" and env.audio_dir.exists():
        assert os.listdir(env.audio_dir) == [], "not even a temporary file"


# --- The management handlers, as Lambda calls them ----------------------------------------


def get(function_dir: str, route: str, query: dict[str, str]) -> tuple[int, Any]:
    """GET ``route`` through the function's handler with ``query``, made to BASE: (status,
    JSON body)."""
    event = copy.deepcopy(json.loads((ROOT / "events" / "http_list_audio.json").read_text()))
    event["headers"]["authorization"] = f"Bearer {TOKEN}"
    event["headers"]["x-forwarded-proto"] = "http"
    event["requestContext"]["domainName"] = urlsplit(BASE).netloc
    event["routeKey"] = event["requestContext"]["routeKey"] = f"GET {route}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = route
    event["queryStringParameters"] = query or None
    event["rawQueryString"] = urlencode(query)
    result = handler(function_dir)(event, FakeContext())
    return result["statusCode"], json.loads(result["body"])


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
    info = services().storage.head("Bedtime Story.mp3")
    assert audio.etag == info.etag
    assert stored_bytes("Bedtime Story.mp3") == mp3_bytes
    record = services().catalog.get_audio("Bedtime Story.mp3")
    assert record == audio
    assert record.etag == info.etag and record.size == len(mp3_bytes)
    assert record.credential_version == 1

    shown = view(audio)
    url = urlsplit(shown.url)
    assert f"{url.scheme}://{url.netloc}" == BASE
    assert url.path == "/api/audio/" + quote("Bedtime Story.mp3", safe="")
    credential = parse_qs(url.query)[CREDENTIAL_PARAM][0]
    services().access.require_device({}, credential, AUDIO_KIND, "Bedtime Story.mp3", 1)

    json_body = json.loads(shown.model_dump_json())
    assert "transcript" not in json_body and "credential_version" not in json_body


def test_device_urls_use_the_public_base_url(env, mp3_bytes, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://audio.example.org/")
    install(None)  # the services of the changed environment
    audio = upload("story.mp3", mp3_bytes)
    assert view(audio).url.startswith("https://audio.example.org/api/audio/story.mp3?sig=")


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
def test_not_audio_is_415_naming_the_formats_and_nothing_is_stored(env, data):
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        upload("story.mp3", data)
    assert status_for(caught.value) == 415
    for accepted in ("MP3", "M4A", "FLAC", "WAV", "Ogg", "WebM", "AIFF"):
        assert accepted in caught.value.message
    assert_nothing_stored(env)


def test_an_existing_file_is_409_without_overwrite_and_stays_as_it_was(env, mp3_bytes):
    first = upload("story.mp3", mp3_bytes)
    other = make_mp3(1.0, title="Impostor")
    with pytest.raises(AudioExistsError) as caught:
        upload("story.mp3", other)
    assert status_for(caught.value) == 409
    assert "overwrite=true" in caught.value.message
    assert stored_bytes("story.mp3") == mp3_bytes
    assert services().catalog.get_audio("story.mp3").etag == first.etag
    assert services().catalog.get_audio("story.mp3").title == "Bedtime Story"


def test_a_file_copied_in_by_hand_also_counts_as_existing(env, mp3_bytes):
    """An object with no catalogue record yet (dropped into the folder or bucket) is not
    silently replaced."""
    services().storage.put("by-hand.mp3", io.BytesIO(b"parent's own bytes"))
    with pytest.raises(AudioExistsError):
        upload("by-hand.mp3", mp3_bytes)
    assert stored_bytes("by-hand.mp3") == b"parent's own bytes"


def test_overwrite_replaces_the_file_and_keeps_its_device_url(env, mp3_bytes):
    """A replaced file keeps its credential version, so the card that plays it still works."""
    first = upload("story.mp3", mp3_bytes)
    catalog = services().catalog
    revoked_twice = catalog.get_audio("story.mp3").model_copy(update={"credential_version": 3})
    catalog.put_audio(revoked_twice)
    url_before = view(revoked_twice).url

    replacement = make_mp3(1.0, bitrate=192, title="New")
    second = upload("story.mp3", replacement, overwrite=True)

    assert view(second).url == url_before
    assert view(second).url != view(first).url
    assert catalog.get_audio("story.mp3").credential_version == 3
    assert stored_bytes("story.mp3") == replacement
    assert (second.title, second.bitrate, second.channels) == ("New", 192000, 2)
    assert second.size == len(replacement)
    assert second.etag == services().storage.head("story.mp3").etag != first.etag


@pytest.mark.parametrize("name", ["../story.mp3", "story.txt", ".story.mp3", "a/b.mp3"])
def test_a_bad_filename_is_refused_before_anything_is_stored(env, mp3_bytes, name):
    with pytest.raises(InvalidFilenameError) as caught:
        upload(name, mp3_bytes)
    assert status_for(caught.value) == 400
    assert_nothing_stored(env)


# --- list -----------------------------------------------------------------------------------


def add_records(*specs: tuple[str, AudioStatus]) -> None:
    catalog = services().catalog
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


def list_audio(**params: str | None) -> tuple[int, Any]:
    """GET /api/audio/list through ListAudioFunction, with these raw query parameters."""
    return get("list_audio", "/api/audio/list", {k: v for k, v in params.items() if v is not None})


def list_names(**params: str | None) -> tuple[list[str], str | None]:
    status, body = list_audio(**params)
    assert status == 200, body
    return [f["filename"] for f in body["files"]], body["next_token"]


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


def test_the_library_pages_by_filename(env):
    """What the handler's pages come from: library.page with typed values, and the token
    that carries ``after`` across requests."""
    add_records(*SPECS)
    library = services().library
    page = library.page(limit=2, after=None)
    assert [r.filename for r in page.records] == ["a.mp3", "c.mp3"] and page.after == "c.mp3"
    assert requests.decode_token(requests.encode_token(page.after)) == "c.mp3"
    page = library.page(limit=2, after="c.mp3", statuses=(INVALID, READY))
    assert [r.filename for r in page.records] == ["d.mp3", "f.mp3"]
    last = library.page(limit=10, after="f.mp3")
    assert [r.filename for r in last.records] == ["g.mp3", "é.mp3"] and last.after is None


def test_list_files_carry_device_urls(env):
    add_records(("a.mp3", READY))
    status, body = list_audio()
    assert status == 200
    assert body["next_token"] is None
    assert body["files"][0]["url"].startswith(f"{BASE}/api/audio/a.mp3?{CREDENTIAL_PARAM}=")
    page = services().library.page(limit=10, after=None)
    listed = Views(services().urls, BASE).audio_list(page, None)
    assert listed.files[0].url == body["files"][0]["url"]


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
        requests.statuses(status)
    assert status_for(caught.value) == 422
    assert "status" in caught.value.message
    answer, body = list_audio(status=status)
    assert answer == 422 and body["message"] == caught.value.message


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "10 items"])
def test_a_bad_limit_is_422(local, limit):
    with pytest.raises(UnprocessableError) as caught:
        requests.page_size(limit)
    assert status_for(caught.value) == 422
    assert "limit" in caught.value.message
    answer, body = list_audio(limit=limit)
    assert answer == 422 and body["message"] == caught.value.message


def test_a_huge_limit_is_capped_not_refused(env):
    add_records(*SPECS)
    assert requests.page_size("1000000") == requests.MAX_PAGE_SIZE
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
        requests.decode_token(token)
    assert status_for(caught.value) == 400
    answer, body = list_audio(next_token=token)
    assert answer == 400 and body["message"] == caught.value.message


# --- search ---------------------------------------------------------------------------------


def search(query: str) -> list[AudioFile]:
    return Views(services().urls, BASE).search_result(services().library.search(query)).files


def test_search_is_case_insensitive_and_hides_invalid_files(env, mp3_bytes):
    upload("Bedtime Story.mp3", mp3_bytes)  # tagged artist "Mum"
    add_records(("mum invalid.mp3", INVALID), ("MUMBLES.mp3", PENDING))
    for query in ("mum", "MUM", "  Mum  "):
        found = search(query)
        assert sorted(f.filename for f in found) == ["Bedtime Story.mp3", "MUMBLES.mp3"]
    found = search("bedtime STORY")
    assert [f.filename for f in found] == ["Bedtime Story.mp3"]
    assert found[0].url.startswith(f"{BASE}/api/audio/")
    assert search("nowhere") == []


@pytest.mark.parametrize("query", [None, "", "   ", "\t"])
def test_an_empty_search_is_400(local, query):
    if query is not None:
        with pytest.raises(InvalidQueryError) as caught:
            services().library.search(query)
        assert status_for(caught.value) == 400
        assert "q=" in caught.value.message
    # Through SearchAudioFunction: no q at all is the same 400.
    answer, body = get("search_audio", "/api/audio/search", {} if query is None else {"q": query})
    assert answer == 400 and "q=" in body["message"]


# --- metadata and delete --------------------------------------------------------------------


def test_metadata_of_any_status_and_404(env):
    add_records(("broken.mp3", INVALID))
    assert services().library.get("broken.mp3").status == INVALID
    with pytest.raises(AudioNotFoundError) as caught:
        services().library.get("missing.mp3")
    assert status_for(caught.value) == 404


def test_delete_removes_the_object_and_the_record(env, mp3_bytes):
    upload("story.mp3", mp3_bytes)
    upload("other.mp3", mp3_bytes)
    services().library.delete("story.mp3")
    assert not services().storage.exists("story.mp3")
    assert services().catalog.get_audio("story.mp3") is None
    assert list_names() == (["other.mp3"], None)
    assert stored_bytes("other.mp3") == mp3_bytes


def test_delete_of_a_missing_file_is_404(env, mp3_bytes):
    upload("other.mp3", mp3_bytes)
    with pytest.raises(AudioNotFoundError) as caught:
        services().library.delete("missing.mp3")
    assert status_for(caught.value) == 404
    assert services().storage.exists("other.mp3")


def test_delete_cleans_up_half_present_files(env):
    """A record whose object is already gone, or an object with no record, is still deleted
    (not a 404): the parent asked for it to be gone, and now it is."""
    add_records(("record-only.mp3", READY))
    services().library.delete("record-only.mp3")
    assert services().catalog.get_audio("record-only.mp3") is None

    services().storage.put("object-only.mp3", io.BytesIO(b"bytes"))
    services().library.delete("object-only.mp3")
    assert not services().storage.exists("object-only.mp3")


def test_delete_of_a_bad_name_is_400(local):
    with pytest.raises(InvalidFilenameError):
        services().library.delete("../../etc/passwd.mp3")


# --- upload URL -----------------------------------------------------------------------------


def upload_url(filename: str, size: int):
    post = services().library.upload_url(filename, size, base_url=BASE)
    return upload_url_response(post)


@pytest.mark.parametrize("name", ["big story.mp3", "big story.M4B", "cd.flac"])
def test_upload_url_for_a_new_file_lands_under_incoming(env, name):
    response = upload_url(name, 50_000_000)
    assert response.method == "POST"
    assert response.expires_in > 0
    assert response.url.startswith(("http://", "https://"))
    key = response.fields["key"]
    assert key.startswith("incoming/") and key.endswith("/" + name)
    assert response.fields["Content-Type"] == "application/octet-stream"
    assert not services().storage.exists(key)
    assert list(services().storage.iter_objects()) == []


def test_upload_url_for_an_existing_file_is_409(env, mp3_bytes):
    upload("story.mp3", mp3_bytes)
    with pytest.raises(AudioExistsError):
        upload_url("story.mp3", 1000)


def test_upload_url_over_5_gb_is_413(env):
    upload_url("max.mp3", MAX_PRESIGNED_UPLOAD_BYTES)
    with pytest.raises(PayloadTooLargeError) as caught:
        upload_url("huge.mp3", MAX_PRESIGNED_UPLOAD_BYTES + 1)
    assert status_for(caught.value) == 413


def test_upload_url_with_a_bad_name_is_400(local):
    with pytest.raises(InvalidFilenameError):
        upload_url("../x.mp3", 1000)


# --- Store a version: Versions.store and its rollback rule -----------------------------------
#
# Versions.store's docstring: when something fails part-way the error is raised, and
# - the storage write fails: nothing changed;
# - the catalogue write fails after the object is stored on a name that had no object and
#   no record (overwrite or not): the object is removed again;
# - the catalogue write fails on an existing name (overwrite): the new object stays, the
#   old record stays.


class StorageDown(ServiceUnavailableError):
    def __init__(self) -> None:
        super().__init__("The storage is busy.")


class CatalogueDown(ServiceUnavailableError):
    def __init__(self) -> None:
        super().__init__("The catalogue is busy.")


def fail_with(error: type[Exception]):
    def failing(*args, **kwargs):
        raise error()

    return failing


def store_version(root: Services, name: str, data: bytes, *, overwrite: bool) -> AudioRecord:
    return root.versions.store(
        name, io.BytesIO(data), analyse_upload(io.BytesIO(data)), overwrite=overwrite
    )


def stored(root: Services) -> dict[str, bytes]:
    """Every stored audio object and its bytes."""
    out = {}
    for info in root.storage.iter_objects():
        stream = root.storage.open_range(info.name)
        try:
            out[info.name] = b"".join(stream)
        finally:
            stream.close()
    return out


def records(root: Services) -> dict[str, AudioRecord]:
    page = root.catalog.list_audio(limit=1000, after=None, statuses=tuple(AudioStatus))
    return {r.filename: r for r in page.records}


class BreaksMidway(io.RawIOBase):
    """A source that gives some bytes, then fails (a disk or socket error mid-copy)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._given = data, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        if self._given >= len(self._data) // 2:
            raise OSError("the source broke off")
        n = min(len(buffer), len(self._data) // 2 - self._given, 4096)
        buffer[:n] = self._data[self._given : self._given + n]
        self._given += n
        return n


NEW = make_mp3(1.0, title="New version")


@pytest.fixture
def existing(env, root, mp3_bytes) -> tuple[dict[str, bytes], dict[str, AudioRecord]]:
    """One file already in the library (object and record): what was there before."""
    store_version(root, "story.mp3", mp3_bytes, overwrite=False)
    return stored(root), records(root)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "new-overwrite"])
def test_store_a_storage_write_that_fails_stores_nothing(env, root, monkeypatch, overwrite):
    """Rule 1, a new name: the storage refuses the write; nothing is stored, no record."""
    monkeypatch.setattr(root.storage, "put", fail_with(StorageDown))
    with pytest.raises(StorageDown):
        store_version(root, "story.mp3", NEW, overwrite=overwrite)
    assert stored(root) == {} and records(root) == {}
    assert_nothing_stored(env)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "new-overwrite"])
def test_store_a_source_that_breaks_midway_stores_nothing(env, root, monkeypatch, overwrite):
    """Rule 1 with the adapter's own write failing part-way (its write is atomic): no
    object, not even part of one or a temporary file, and no record."""
    put = root.storage.put

    def breaking_put(name, source, **kwargs):
        return put(name, io.BufferedReader(BreaksMidway(source.read())), **kwargs)

    monkeypatch.setattr(root.storage, "put", breaking_put)
    with pytest.raises(OSError, match="broke off"):
        store_version(root, "story.mp3", NEW, overwrite=overwrite)
    assert stored(root) == {} and records(root) == {}
    assert_nothing_stored(env)


def test_store_a_storage_write_that_fails_over_an_existing_name_changes_nothing(
    existing, root, monkeypatch
):
    """Rule 1 when overwriting: the old bytes and the old record are untouched."""
    before_objects, before_records = existing
    monkeypatch.setattr(root.storage, "put", fail_with(StorageDown))
    with pytest.raises(StorageDown):
        store_version(root, "story.mp3", NEW, overwrite=True)
    assert stored(root) == before_objects
    assert records(root) == before_records


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "new-overwrite"])
def test_store_a_catalogue_write_that_fails_on_a_new_name_removes_the_object(
    env, root, monkeypatch, overwrite
):
    """Rule 2: the object was stored, the catalogue refused its record: the object is
    removed again, and the catalogue's error is what the caller gets."""
    puts: list[str] = []
    put = root.storage.put

    def recording_put(name, source, **kwargs):
        puts.append(name)
        return put(name, source, **kwargs)

    monkeypatch.setattr(root.storage, "put", recording_put)
    monkeypatch.setattr(root.catalog, "put_audio", fail_with(CatalogueDown))
    with pytest.raises(CatalogueDown):
        store_version(root, "story.mp3", NEW, overwrite=overwrite)
    assert puts == ["story.mp3"], "the object was stored before the record failed"
    assert not root.storage.exists("story.mp3")
    assert stored(root) == {} and records(root) == {}
    assert_nothing_stored(env)


def test_store_the_removal_failing_too_does_not_hide_the_catalogue_error(env, root, monkeypatch):
    """Rule 2, when removing the object fails as well: the error raised is still the
    catalogue's, the reason the store failed."""
    monkeypatch.setattr(root.catalog, "put_audio", fail_with(CatalogueDown))
    monkeypatch.setattr(root.storage, "delete", fail_with(StorageDown))
    with pytest.raises(CatalogueDown):
        store_version(root, "story.mp3", NEW, overwrite=False)
    assert records(root) == {}


@pytest.mark.parametrize("what", ["object-and-record", "object-only", "record-only"])
def test_store_a_catalogue_write_that_fails_over_an_existing_name_keeps_the_new_object(
    env, root, monkeypatch, mp3_bytes, what
):
    """Rule 3: overwriting a name that exists (its object, its record or both), the
    catalogue refuses the new record: the new object stays (the old bytes are gone already;
    the new version's event will catalogue it), the old record stays, the error is raised."""
    if what != "record-only":
        root.storage.put("story.mp3", io.BytesIO(mp3_bytes))
    if what != "object-only":
        root.catalog.put_audio(
            AudioRecord(filename="story.mp3", size=len(mp3_bytes), etag='"old"', duration=2.0)
        )
    before_records = records(root)

    monkeypatch.setattr(root.catalog, "put_audio", fail_with(CatalogueDown))
    with pytest.raises(CatalogueDown):
        store_version(root, "story.mp3", NEW, overwrite=True)
    assert stored(root) == {"story.mp3": NEW}
    assert records(root) == before_records


def test_store_a_catalogue_write_that_fails_after_an_upload_keeps_the_new_object(
    existing, root, monkeypatch
):
    """Rule 3 as a parent meets it: a file uploaded before, replaced; the old record (the
    old version's, as the library answered it) is what the catalogue still holds."""
    _, before_records = existing
    monkeypatch.setattr(root.catalog, "put_audio", fail_with(CatalogueDown))
    with pytest.raises(CatalogueDown):
        upload("story.mp3", NEW, overwrite=True)
    assert stored_bytes("story.mp3") == NEW
    assert records(root) == before_records


def test_store_a_catalogue_read_that_fails_after_the_object_is_stored_removes_it(
    env, root, monkeypatch
):
    """Nothing is left half-stored whatever fails after the storage write on a new name:
    here the read of the name's retired credential versions."""
    monkeypatch.setattr(root.catalog, "get_value", fail_with(CatalogueDown))
    with pytest.raises(CatalogueDown):
        store_version(root, "story.mp3", NEW, overwrite=False)
    assert stored(root) == {} and records(root) == {}


# --- Upload, story and the metadata event all store through Versions ------------------------


class Hum:
    """A speech engine that hums a short tone for any text."""

    max_request_chars = 3000

    def resolve_voice(self, voice: str | None, engine: str | None) -> Voice:
        return Voice(voice or "hum", engine)

    def synthesize(self, text: str, voice: Voice, *, ssml: bool) -> Pcm:
        return Pcm(pcm_tone(0.3, 16000, 1), 16000)


def make_by(kind: str, root: Services, name: str) -> AudioRecord:
    if kind == "upload":
        return root.library.upload(name, io.BytesIO(NEW), len(NEW), overwrite=False)
    stories = Stories(Hum(), root.storage, root.catalog, root.versions)
    return stories.generate(Story(text="Good night, little fox.", filename=name))


@pytest.mark.parametrize("kind", ["upload", "story"])
def test_upload_and_story_store_through_versions(env, root, monkeypatch, kind):
    """Each goes through Versions.store, and so takes its rollback: the catalogue failing,
    the object it stored is removed and nothing is catalogued."""
    calls: list[tuple[str, bool]] = []
    store = root.versions.store

    def spying_store(name, source, analysis, *, overwrite, **more):
        calls.append((name, overwrite))
        return store(name, source, analysis, overwrite=overwrite, **more)

    monkeypatch.setattr(root.versions, "store", spying_store)
    made = make_by(kind, root, "made.mp3")
    assert calls == [("made.mp3", False)]
    assert records(root) == {"made.mp3": made}

    monkeypatch.setattr(root.catalog, "put_audio", fail_with(CatalogueDown))
    with pytest.raises(CatalogueDown):
        make_by(kind, root, "failed.mp3")
    assert calls[-1] == ("failed.mp3", False)
    assert set(stored(root)) == {"made.mp3"}
    assert set(records(root)) == {"made.mp3"}


def test_the_metadata_event_catalogues_through_versions(env, root, monkeypatch):
    """The pipeline's event makes its record with Versions.record_for and writes it with
    Versions.catalogue; a failing catalogue write is raised (for the event to be retried)
    and the object, which the pipeline never stored, stays."""
    info = root.storage.put("dropped.mp3", io.BytesIO(NEW))
    made: list[AudioRecord] = []
    written: list[AudioRecord] = []
    record_for, catalogue = root.versions.record_for, root.versions.catalogue

    def spying_record_for(*args, **kwargs):
        made.append(record_for(*args, **kwargs))
        return made[-1]

    def spying_catalogue(record, **kwargs):
        written.append(record)
        return catalogue(record, **kwargs)

    monkeypatch.setattr(root.versions, "record_for", spying_record_for)
    monkeypatch.setattr(root.versions, "catalogue", spying_catalogue)
    record = root.pipeline.object_created(info, sequencer="0A")
    assert record is not None and written == [record] and made[-1] == record
    assert records(root) == {"dropped.mp3": record}

    root.catalog.delete_audio("dropped.mp3")
    again = root.storage.put("dropped.mp3", io.BytesIO(make_mp3(0.5)))
    monkeypatch.setattr(root.catalog, "put_audio", fail_with(CatalogueDown))
    with pytest.raises(CatalogueDown):
        root.pipeline.object_created(again, sequencer="0B")
    assert len(written) == 2 and written[-1].etag == again.etag
    assert root.storage.exists("dropped.mp3") and records(root) == {}
