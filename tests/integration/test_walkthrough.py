"""The walk-through of API.md over real HTTP, on both backends: health, upload, list,
search, metadata, streaming with every kind of Range and condition, and delete."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.audio import make_mp3
from tests.contract import AUDIO_FILE_FIELDS
from tests.integration.helpers import (
    assert_json_error,
    catalogued_names,
    stored_bytes,
    stored_names,
    upload,
)

pytestmark = pytest.mark.integration

SINGLE_FILE_HEADERS = (
    "content-type",
    "accept-ranges",
    "content-length",
    "etag",
    "last-modified",
    "cache-control",
)


@pytest.fixture(scope="module")
def other_mp3() -> bytes:
    """A different recording (other tone length, tags): for overwrite and search."""
    return make_mp3(1.0, title="Dragon Song", artist="Grandad", album="Lullabies")


def assert_audio_file(body: dict, live_server, filename: str, data: bytes) -> None:
    assert set(body) >= AUDIO_FILE_FIELDS, AUDIO_FILE_FIELDS - set(body)
    assert body["filename"] == filename
    assert body["size"] == len(data) and isinstance(body["size"], int)
    assert isinstance(body["duration"], float)
    assert body["bitrate"] in (128, 128_000)
    assert body["bitrate_mode"] == "CBR"
    assert body["sample_rate"] == 44100
    assert body["channels"] == 2
    assert str(body["mpeg_version"]) == "1"
    assert isinstance(body["etag"], str) and body["etag"]
    uploaded = datetime.fromisoformat(body["uploaded_at"])
    assert uploaded.tzinfo is not None
    assert abs((datetime.now(UTC) - uploaded).total_seconds()) < 120
    assert body["status"] == "ready"
    assert body["status_reason"] is None or isinstance(body["status_reason"], str)
    assert body["transcript_status"] is None or isinstance(body["transcript_status"], str)
    url = urlsplit(body["url"])
    assert f"{url.scheme}://{url.netloc}" == live_server.base_url
    assert url.path == f"/api/audio/{quote(filename, safe='')}"


def test_health_is_open(live_server):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{live_server.base_url}/api/health", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_upload_answers_an_audio_file(live_server, client, mp3_bytes):
    created = upload(client, "story.mp3", mp3_bytes)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/json")
    body = created.json()
    assert_audio_file(body, live_server, "story.mp3", mp3_bytes)
    assert abs(body["duration"] - 2.0) < 0.1
    assert (body["title"], body["artist"], body["album"]) == ("Bedtime Story", "Mum", "Evenings")
    # What is stored is exactly what was sent, under its own name.
    assert stored_names(live_server.env) == {"story.mp3"}
    assert stored_bytes(live_server.env, "story.mp3") == mp3_bytes
    # The URL handed out plays without any header.
    played = httpx.get(body["url"])
    assert played.status_code == 200
    assert played.content == mp3_bytes


def test_upload_filename_field_overrides_the_part_name(live_server, client, mp3_bytes):
    created = client.post(
        "/api/audio/upload",
        data={"filename": "Chosen Name.mp3"},
        files={"file": ("from-disk.mp3", mp3_bytes, "audio/mpeg")},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert_audio_file(body, live_server, "Chosen Name.mp3", mp3_bytes)
    assert stored_names(live_server.env) == {"Chosen Name.mp3"}
    assert catalogued_names(client) == {"Chosen Name.mp3"}
    assert httpx.get(body["url"]).content == mp3_bytes


def test_upload_of_an_existing_name_is_a_conflict(live_server, client, story, other_mp3):
    again = upload(client, "story.mp3", other_mp3)
    assert_json_error(again, 409)
    assert "overwrite" in again.json()["message"]
    meta = client.get("/api/audio/story.mp3/metadata").json()
    assert meta["etag"] == story["etag"] and meta["size"] == story["size"]
    assert stored_bytes(live_server.env, "story.mp3") != other_mp3


def test_overwrite_replaces_and_the_old_url_plays_the_new_bytes(
    live_server, client, story, mp3_bytes, other_mp3
):
    old_url = story["url"]
    assert httpx.get(old_url).content == mp3_bytes  # a player has played it once
    replaced = upload(client, "story.mp3", other_mp3, overwrite=True)
    assert replaced.status_code == 201, replaced.text
    new = replaced.json()
    assert new["size"] == len(other_mp3)
    assert new["etag"] != story["etag"]
    assert new["title"] == "Dragon Song"
    assert stored_bytes(live_server.env, "story.mp3") == other_mp3
    assert client.get("/api/audio/story.mp3/metadata").json()["etag"] == new["etag"]
    # The card's URL goes on working, with the new recording.
    played = httpx.get(old_url)
    assert played.status_code == 200, played.text
    assert played.content == other_mp3
    assert played.headers["etag"] == new["etag"]
    assert stored_names(live_server.env) == {"story.mp3"}


def test_list_pages_with_limit_and_next_token(live_server, client):
    names = [f"track-{i}.mp3" for i in range(5)]
    data = make_mp3(0.3)
    for name in names:
        assert upload(client, name, data).status_code == 201
    seen: list[str] = []
    sizes = []
    token = None
    for _ in range(10):
        params = {"limit": "2"}
        if token:
            params["next_token"] = token
        page = client.get("/api/audio/list", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) >= {"files", "next_token"}
        sizes.append(len(body["files"]))
        for item in body["files"]:
            assert set(item) >= AUDIO_FILE_FIELDS
            seen.append(item["filename"])
        token = body["next_token"]
        if token is None:
            break
    assert sizes == [2, 2, 1]
    assert sorted(seen) == sorted(names)  # each exactly once
    everything = client.get("/api/audio/list").json()
    assert sorted(f["filename"] for f in everything["files"]) == sorted(names)
    assert everything["next_token"] is None


def test_list_status_filter(live_server, client, story):
    ready = client.get("/api/audio/list", params={"status": "ready"}).json()["files"]
    assert [f["filename"] for f in ready] == ["story.mp3"]
    for status in ("pending", "invalid"):
        listed = client.get("/api/audio/list", params={"status": status})
        assert listed.status_code == 200, listed.text
        assert listed.json()["files"] == []
    assert_json_error(client.get("/api/audio/list", params={"status": "bogus"}), 422)
    assert_json_error(client.get("/api/audio/list", params={"limit": "many"}), 422)
    assert_json_error(client.get("/api/audio/list", params={"next_token": "not-ours"}), 400)


def test_list_hides_invalid_files_by_default(live_server, client, story):
    from smart_stream.domain.records import AudioRecord, AudioStatus

    # A file found broken after upload (the metadata step marks it so), in the server's
    # catalogue: it runs in this process.
    live_server.app.state.services.catalog.put_audio(
        AudioRecord(
            filename="broken.mp3",
            size=10,
            etag='"x"',
            status=AudioStatus.INVALID,
            status_reason="not an MP3",
        )
    )
    default = client.get("/api/audio/list").json()["files"]
    assert [f["filename"] for f in default] == ["story.mp3"]
    invalid = client.get("/api/audio/list", params={"status": "invalid"}).json()["files"]
    assert [f["filename"] for f in invalid] == ["broken.mp3"]
    assert invalid[0]["status_reason"] == "not an MP3"
    meta = client.get("/api/audio/broken.mp3/metadata")
    assert meta.status_code == 200
    assert meta.json()["status"] == "invalid"


def test_search_by_filename_and_tags(live_server, client, story, other_mp3):
    assert upload(client, "Dragon.mp3", other_mp3).status_code == 201
    plain = make_mp3(0.3)
    assert upload(client, "Untagged Noise.mp3", plain).status_code == 201

    def found(**params: str) -> list[str]:
        response = client.get("/api/audio/search", params=params)
        assert response.status_code == 200, response.text
        files = response.json()["files"]
        for item in files:
            assert set(item) >= AUDIO_FILE_FIELDS
        return sorted(f["filename"] for f in files)

    assert found(q="bedtime") == ["story.mp3"]  # title
    assert found(q="GRANDAD") == ["Dragon.mp3"]  # artist
    assert found(q="lullab") == ["Dragon.mp3"]  # album
    assert found(q="EvEnInGs") == ["story.mp3"]  # album, any case
    assert found(q="untagged") == ["Untagged Noise.mp3"]  # filename
    assert found(q="STORY.MP3") == ["story.mp3"]
    assert found(q=".mp3") == ["Dragon.mp3", "Untagged Noise.mp3", "story.mp3"]
    assert found(query="dragon") == ["Dragon.mp3"]  # the alias
    assert found(q="nothing like this") == []
    assert_json_error(client.get("/api/audio/search"), 400)


def test_metadata(live_server, client, story, mp3_bytes):
    meta = client.get("/api/audio/story.mp3/metadata")
    assert meta.status_code == 200
    body = meta.json()
    assert_audio_file(body, live_server, "story.mp3", mp3_bytes)
    assert body == story


def test_stream_full_body_and_headers(live_server, story, mp3_bytes):
    full = httpx.get(story["url"])
    assert full.status_code == 200
    assert full.content == mp3_bytes
    headers = full.headers
    for name in SINGLE_FILE_HEADERS:
        assert name in headers, name
    assert headers["content-type"] == "audio/mpeg"
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(len(mp3_bytes))
    etag = headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert etag == story["etag"]
    modified = parsedate_to_datetime(headers["last-modified"])
    assert modified.tzinfo is not None
    assert abs((datetime.now(UTC) - modified).total_seconds()) < 120
    assert headers["cache-control"]
    assert "content-range" not in headers


SINGLE_RANGES = [
    # (Range header, first byte, last byte; negative: from the end, None: the last byte)
    ("bytes=0-99", 0, 99),
    ("bytes=0-0", 0, 0),
    ("bytes=0-", 0, None),
    ("bytes=1000-", 1000, None),
    ("bytes=-500", -500, None),
    ("bytes=-1", -1, None),
    ("bytes=1000-2999", 1000, 2999),
    ("bytes=30000-99999999", 30000, None),  # an end past the file is clamped
    ("BYTES=7-8", 7, 8),  # the unit is case-insensitive
]


def test_stream_single_ranges(live_server, story, mp3_bytes):
    size = len(mp3_bytes)
    assert size > 30000
    for header, start, end in SINGLE_RANGES:
        response = httpx.get(story["url"], headers={"Range": header})
        first = start if start >= 0 else size + start
        last = size - 1 if end is None else end
        assert response.status_code == 206, (header, response.text)
        assert response.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert response.headers["content-length"] == str(last - first + 1), header
        assert response.headers["content-type"] == "audio/mpeg", header
        assert response.headers["etag"] == story["etag"], header
        assert response.content == mp3_bytes[first : last + 1], header


def test_stream_suffix_longer_than_the_file_is_all_of_it(live_server, story, mp3_bytes):
    size = len(mp3_bytes)
    response = httpx.get(story["url"], headers={"Range": f"bytes=-{size + 100}"})
    assert response.status_code in (200, 206)
    assert response.content == mp3_bytes
    if response.status_code == 206:
        assert response.headers["content-range"] == f"bytes 0-{size - 1}/{size}"


def test_stream_range_past_the_end_is_416(live_server, story, mp3_bytes):
    size = len(mp3_bytes)
    for header in (f"bytes={size}-", f"bytes={size}-{size + 10}", f"bytes={size + 1000}-"):
        response = httpx.get(story["url"], headers={"Range": header})
        assert_json_error(response, 416)
        assert response.headers["content-range"] == f"bytes */{size}", header
        head = httpx.head(story["url"], headers={"Range": header})
        assert head.status_code == 416, header
        assert head.headers["content-range"] == f"bytes */{size}", header


MALFORMED_RANGES = [
    "bytes=abc",
    "bytes=9-2",
    "items=0-5",
    "bytes=",
    "bytes=--5",
    "bytes 0-5",
    "bytes=1-2-3",
    "bytes=0x10-0x20",
    "bytes=\u0661-\u0663".encode(),  # Arabic-Indic digits are not DIGIT
]


def test_stream_malformed_range_is_ignored(live_server, story, mp3_bytes):
    for header in MALFORMED_RANGES:
        response = httpx.get(story["url"], headers={"Range": header})
        assert response.status_code == 200, (header, response.text)
        assert response.content == mp3_bytes, header
        assert "content-range" not in response.headers, header


def test_stream_several_ranges(live_server, story, mp3_bytes):
    response = httpx.get(story["url"], headers={"Range": "bytes=0-1,5-6"})
    if response.status_code == 200:
        assert response.content == mp3_bytes
    else:
        assert response.status_code == 206
        assert response.headers["content-type"].startswith("multipart/byteranges")


def test_head_has_the_same_headers_and_no_body(live_server, story, mp3_bytes):
    got = httpx.get(story["url"])
    head = httpx.head(story["url"])
    assert head.status_code == 200
    for name in SINGLE_FILE_HEADERS:
        assert head.headers.get(name) == got.headers.get(name), name
    assert head.headers["content-length"] == str(len(mp3_bytes))
    ranged = httpx.head(story["url"], headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.headers["content-length"] == "10"
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(mp3_bytes)}"
    # On the wire: the headers, then nothing at all.
    url = urlsplit(story["url"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            f"HEAD {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 200")
    assert rest == b""


def test_if_range(live_server, story, mp3_bytes):
    etag = story["etag"]
    matching = httpx.get(story["url"], headers={"Range": "bytes=0-9", "If-Range": etag})
    assert matching.status_code == 206
    assert matching.content == mp3_bytes[:10]
    for other in ('"not-the-etag"', f"W/{etag}"):
        stale = httpx.get(story["url"], headers={"Range": "bytes=0-9", "If-Range": other})
        assert stale.status_code == 200, other
        assert stale.content == mp3_bytes


def test_if_none_match(live_server, story, mp3_bytes):
    for value in (story["etag"], f'"other", {story["etag"]}', "*", f"W/{story['etag']}"):
        cached = httpx.get(story["url"], headers={"If-None-Match": value})
        assert cached.status_code == 304, value
        assert cached.content == b""
        assert cached.headers["etag"] == story["etag"]
    changed = httpx.get(story["url"], headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    assert changed.content == mp3_bytes


def test_bearer_header_works_on_the_device_route(live_server, story, mp3_bytes):
    bare = f"{live_server.base_url}/api/audio/story.mp3"
    played = httpx.get(bare, headers=live_server.auth())
    assert played.status_code == 200
    assert played.content == mp3_bytes
    ranged = httpx.get(bare, headers={**live_server.auth(), "Range": "bytes=-10"})
    assert ranged.status_code == 206 and ranged.content == mp3_bytes[-10:]
    assert httpx.head(bare, headers=live_server.auth()).status_code == 200
    assert_json_error(httpx.get(bare), 403)
    assert_json_error(httpx.get(bare, headers={"Authorization": "Bearer wrong"}), 403)


def test_delete_removes_the_file_everywhere(live_server, client, story, mp3_bytes):
    keep = make_mp3(0.3, title="Keeper")
    assert upload(client, "keep.mp3", keep).status_code == 201
    deleted = client.delete("/api/audio/story.mp3")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_json_error(client.get("/api/audio/story.mp3/metadata"), 404)
    assert_json_error(httpx.get(story["url"]), 404)
    assert_json_error(client.get("/api/audio/story.mp3"), 404)
    assert_json_error(client.delete("/api/audio/story.mp3"), 404)
    assert catalogued_names(client) == {"keep.mp3"}
    assert client.get("/api/audio/search", params={"q": "bedtime"}).json()["files"] == []
    assert client.get("/api/audio/search", params={"q": "story"}).json()["files"] == []
    assert stored_names(live_server.env) == {"keep.mp3"}
    # The other file is untouched.
    assert httpx.get(client.get("/api/audio/keep.mp3/metadata").json()["url"]).content == keep
