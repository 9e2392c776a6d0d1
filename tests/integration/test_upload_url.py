"""POST /api/audio/upload-url and the form upload it leads to: S3's presigned POST (moto's
S3 on the aws backend) or the local server's twin of it (local backend). The form puts the
file under incoming/, where its conversion checks it: a house MP3 is copied into the library
as it is, other audio converted, anything else shown invalid."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import httpx
import pytest

from smart_stream.changes import ObjectChanged
from tests.audio import audio_source
from tests.conftest import TOKEN
from tests.integration.helpers import (
    assert_json_error,
    catalogued_names,
    events_handled,
    post_form,
    stored_bytes,
    stored_names,
    upload,
)


def library_names(env) -> set[str]:
    """The library's files: what is stored, uploads waiting for conversion aside."""
    return {name for name in stored_names(env) if not name.startswith("incoming/")}


pytestmark = pytest.mark.integration

local_only = pytest.mark.parametrize("live_server", ["local"], indirect=True)


def ask(client: httpx.Client, filename: str, size: int) -> dict:
    response = client.post("/api/audio/upload-url", json={"filename": filename, "size": size})
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_url_then_form_post_stores_the_file(live_server, client, mp3_bytes):
    response = client.post(
        "/api/audio/upload-url", json={"filename": "Long Story.mp3", "size": len(mp3_bytes)}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"url", "fields", "method", "expires_in"}
    assert body["method"] == "POST"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert isinstance(body["fields"], dict) and body["fields"]
    assert all(isinstance(v, str) for v in body["fields"].values())
    url = urlsplit(body["url"])
    assert url.scheme in ("http", "https") and url.netloc
    # The management token is never handed out in a URL or a form.
    assert TOKEN not in json.dumps(body)

    posted = post_form(body["url"], body["fields"], "Long Story.mp3", mp3_bytes)
    assert posted.status_code == 204, posted.text
    assert body["fields"]["key"].startswith("incoming/")
    events_handled(live_server, body["fields"]["key"])
    assert library_names(live_server.env) == {"Long Story.mp3"}
    assert stored_bytes(live_server.env, "Long Story.mp3") == mp3_bytes, "kept byte for byte"
    assert not live_server.app.state.services.storage.exists(body["fields"]["key"])


def test_an_m4a_through_the_form_is_converted_and_catalogued(live_server, client):
    source = audio_source("m4a")
    grant = ask(client, "Voice Memo.m4a", len(source))
    assert post_form(grant["url"], grant["fields"], "Voice Memo.m4a", source).status_code == 204
    events_handled(live_server, grant["fields"]["key"])
    meta = client.get("/api/audio/Voice Memo.mp3/metadata")
    assert meta.status_code == 200, meta.text
    body = meta.json()
    assert body["status"] == "ready", body
    assert body["source_format"] == "m4a/aac"
    assert (body["sample_rate"], body["channels"], body["mpeg_version"]) == (44100, 2, "1")
    assert httpx.get(body["url"]).status_code == 200
    assert library_names(live_server.env) == {"Voice Memo.mp3"}


def test_upload_url_for_an_existing_file_is_a_conflict(live_server, client, mp3_bytes):
    assert upload(client, "story.mp3", mp3_bytes).status_code == 201
    response = client.post("/api/audio/upload-url", json={"filename": "story.mp3", "size": 10})
    assert_json_error(response, 409)
    assert stored_bytes(live_server.env, "story.mp3") == mp3_bytes


BAD_UPLOAD_URL_REQUESTS = [
    (b"{not json", 400),
    (b"", 400),
    (b'{"filename": "a.mp3", "size": 10', 400),
    (b'{"filename": "a.mp3"}', 422),
    (b'{"size": 10}', 422),
    (b'{"filename": "a.mp3", "size": 0}', 422),
    (b'{"filename": "a.mp3", "size": -5}', 422),
    (b'{"filename": "a.mp3", "size": "big"}', 422),
    (b'{"filename": 12, "size": 10}', 422),
    (b'{"filename": "a.mp3", "size": 10, "acl": "public-read"}', 422),
    (b"[]", 422),
    (b'"a.mp3"', 422),
    (b'{"filename": "../a.mp3", "size": 10}', 400),
    (b'{"filename": "a.txt", "size": 10}', 400),
    (b'{"filename": "a.mp3", "size": 6000000000}', 413),
]


def test_upload_url_rejects_bad_requests(live_server, client):
    for body, status in BAD_UPLOAD_URL_REQUESTS:
        response = client.post(
            "/api/audio/upload-url", content=body, headers={"Content-Type": "application/json"}
        )
        assert_json_error(response, status, context=body)
    assert stored_names(live_server.env) == set()


@local_only
def test_local_twin_rejects_a_tampered_form(live_server, client, mp3_bytes):
    grant = ask(client, "story.mp3", len(mp3_bytes))
    fields = grant["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    bigger = dict(policy, max_size=10 * len(mp3_bytes), key="other.mp3")
    flipped = fields["signature"][:-1] + ("0" if fields["signature"][-1] != "0" else "1")
    tampered = [
        dict(fields, signature=flipped),
        dict(fields, signature=""),
        {k: v for k, v in fields.items() if k != "signature"},
        dict(fields, policy=base64.b64encode(json.dumps(bigger).encode()).decode()),
        dict(fields, key="other.mp3"),
        dict(fields, key="../escape.mp3"),
        dict(fields, **{"Content-Type": "text/html"}),
    ]
    for form in tampered:
        response = post_form(grant["url"], form, "story.mp3", mp3_bytes)
        assert_json_error(response, 403)
    assert stored_names(live_server.env) == set()
    assert not (live_server.env.audio_dir.parent / "escape.mp3").exists()
    # The untouched form still works.
    assert post_form(grant["url"], fields, "story.mp3", mp3_bytes).status_code == 204
    events_handled(live_server, fields["key"])
    assert stored_names(live_server.env) == {"story.mp3"}


@local_only
def test_local_twin_rejects_an_expired_form(live_server, mp3_bytes):
    forms = live_server.app.state.services.upload_forms
    expired = forms.sign(
        "late.mp3", max_size=len(mp3_bytes), expires_in=-60, base_url=live_server.base_url
    )
    response = post_form(expired.url, expired.fields, "late.mp3", mp3_bytes)
    assert_json_error(response, 403)
    assert stored_names(live_server.env) == set()


@local_only
def test_local_twin_rejects_a_file_over_the_size_asked_for(live_server, client, mp3_bytes):
    grant = ask(client, "story.mp3", 1000)
    # Just over, and far over (the twin stops reading part-way).
    for data in (mp3_bytes[:1001], mp3_bytes * 250):
        response = post_form(grant["url"], grant["fields"], "story.mp3", data)
        assert_json_error(response, 413)
        assert stored_names(live_server.env) == set()
    # Exactly the size asked for is fine: it arrives whole, for its conversion to judge.
    storage = live_server.app.state.services.storage
    changes = live_server.app.state.services.changes
    arrived: list = []
    changes.subscribe(ObjectChanged, arrived.append)
    exact = post_form(grant["url"], grant["fields"], "story.mp3", mp3_bytes[:1000])
    assert exact.status_code == 204, exact.text
    changes.unsubscribe(ObjectChanged, arrived.append)
    assert [(c.info.name, c.info.size) for c in arrived][:1] == [(grant["fields"]["key"], 1000)]
    events_handled(live_server)
    assert not storage.exists(grant["fields"]["key"]), "and then it is dealt with"


@local_only
def test_local_twin_needs_a_file(live_server, client):
    grant = ask(client, "story.mp3", 1000)
    no_file = httpx.post(grant["url"], data=grant["fields"], files={"other": ("x", b"abc")})
    assert_json_error(no_file, 400)
    empty = post_form(grant["url"], grant["fields"], "story.mp3", b"")
    assert_json_error(empty, 400)
    for headers in ({"Content-Type": "audio/mpeg"}, {}):
        not_a_form = httpx.post(grant["url"], content=b"just the bytes", headers=headers)
        assert_json_error(not_a_form, 400, context=headers)
    broken = httpx.post(
        grant["url"],
        content=b"no parts in here",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code in (400, 403), broken.text
    assert_json_error(broken, broken.status_code)
    assert stored_names(live_server.env) == set()
    assert catalogued_names(client) == set()


@local_only
def test_a_form_upload_is_catalogued(live_server, client, mp3_bytes):
    """What comes in through the upload URL is analysed and listed like any upload (the
    local server delivers the S3 event to the metadata function)."""
    grant = ask(client, "Through The Form.mp3", len(mp3_bytes))
    posted = post_form(grant["url"], grant["fields"], "Through The Form.mp3", mp3_bytes)
    assert posted.status_code == 204, posted.text
    events_handled(live_server)
    meta = client.get("/api/audio/Through The Form.mp3/metadata")
    assert meta.status_code == 200, meta.text
    body = meta.json()
    assert body["status"] == "ready", body
    assert body["size"] == len(mp3_bytes)
    assert (body["title"], body["artist"]) == ("Bedtime Story", "Mum")
    assert abs(body["duration"] - 2.0) < 0.1
    listed = client.get("/api/audio/list").json()["files"]
    assert [f["filename"] for f in listed] == ["Through The Form.mp3"]
    assert httpx.get(body["url"]).content == mp3_bytes
