"""The real Lambda handlers (functions/*/app.py) fed real-shaped HTTP API events (events/):
status codes, JSON bodies and headers as API.md promises, and never a 5xx or a stack trace
for anything a client sent."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smart_stream.adapters.aws.dynamo_items import SCHEMA_KEY
from smart_stream.adapters.catalog_rows import SCHEMA_VERSION
from smart_stream.bootstrap import Services, services
from smart_stream.domain.asks import QueueChange
from smart_stream.services.library import MAX_UPLOAD_BYTES
from smart_stream.settings import Settings
from tests.audio import make_mp3
from tests.conftest import TOKEN, fresh_services
from tests.lambda_functions import (
    EVENTS,
    FakeContext,
    event,
    function_module,
    handler,
    with_path,
)

HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def invoke(function_dir: str, data: dict[str, Any]) -> Reply:
    """Call the handler, and check what every answer must be, whatever the route."""
    result = handler(function_dir)(data, FakeContext())
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    reply = Reply(result["statusCode"], headers, body)
    assert reply.status < 500, f"{function_dir}: {reply.status} {body}"
    assert "Traceback" not in body and 'File "' not in body
    assert "botocore" not in body and "An error occurred (" not in body
    if reply.status >= 400:
        assert headers.get("content-type", "").startswith("application/json")
        payload = reply.json()
        assert set(payload) == {"code", "message"}
        assert payload["code"] and payload["message"]
    return reply


def get_storage():
    return services().storage


def get_catalog():
    return services().catalog


def put_story(name: str = "story.mp3", data: bytes | None = None) -> None:
    services().library.upload(
        name,
        io.BytesIO(data or make_mp3(0.5, title="Story")),
        len(data or make_mp3(0.5, title="Story")),
        overwrite=False,
    )


def multipart(
    parts: list[tuple[str, str | None, bytes]], boundary: str = "smartstreamboundary"
) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data request, as a browser or curl sends."""
    out = io.BytesIO()
    for field, filename, content in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if filename is not None:
            out.write(b"Content-Type: audio/mpeg\r\n")
        out.write(b"\r\n" + content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def upload_event(
    content_type: str, body: bytes, *, query: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    data = event(
        "http_upload_url.json",
        routeKey="POST /api/audio/upload",
        body=base64.b64encode(body).decode(),
        isBase64Encoded=True,
        **kwargs,
    )
    data["requestContext"]["routeKey"] = "POST /api/audio/upload"
    with_path(data, "/api/audio/upload")
    data.pop("pathParameters")
    data["headers"]["content-type"] = content_type
    data["headers"]["content-length"] = str(len(body))
    if query:
        data["queryStringParameters"] = query
        data["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return data


# --- auth -----------------------------------------------------------------------------------

MANAGEMENT = [
    ("list_audio", "http_list_audio.json"),
    ("audio_metadata", "http_audio_metadata.json"),
    ("delete_audio", "http_delete_audio.json"),
    ("upload_url", "http_upload_url.json"),
]


@pytest.mark.parametrize(("function_dir", "sample"), MANAGEMENT)
@pytest.mark.parametrize("token", [None, "wrong-token", "", TOKEN + "x", TOKEN[:-1]])
def test_management_routes_need_the_token(local_env, function_dir, sample, token):
    put_story()
    data = event(sample, token=token)
    reply = invoke(function_dir, data)
    assert reply.status == 401
    assert reply.json()["code"] == "unauthorized"
    assert reply.headers["www-authenticate"].lower().startswith("bearer")
    # Nothing happened: the file a DELETE named is still there.
    assert get_storage().exists("story.mp3")


def test_a_basic_auth_header_is_not_a_bearer_token(local_env):
    data = event("http_list_audio.json", token=None)
    data["headers"]["authorization"] = "Basic " + base64.b64encode(b"u:" + TOKEN.encode()).decode()
    assert invoke("list_audio", data).status == 401


def test_health_is_open():
    data = event("http_list_audio.json", token=None, rawQueryString="")
    with_path(data, "/api/health")
    data.pop("pathParameters")
    data.pop("queryStringParameters")
    reply = invoke("health", data)
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}


# --- list and metadata ----------------------------------------------------------------------


def test_list(app_env):
    put_story("story.mp3")
    put_story("another.mp3")
    reply = invoke("list_audio", event("http_list_audio.json"))
    assert reply.status == 200
    body = reply.json()
    assert [f["filename"] for f in body["files"]] == ["another.mp3", "story.mp3"]
    assert body["next_token"] is None
    story = body["files"][1]
    assert story["url"].startswith(f"https://{HOST}/api/audio/story.mp3?sig=")
    assert story["status"] == "ready"
    assert story["title"] == "Story"
    assert set(story) >= {
        "filename", "size", "duration", "bitrate", "bitrate_mode", "sample_rate", "channels",
        "mpeg_version", "title", "artist", "album", "etag", "uploaded_at", "status",
        "status_reason", "transcript_status", "url",
    }  # fmt: skip


def test_list_paging_over_http(local_env):
    for name in ("a.mp3", "b.mp3", "c.mp3"):
        put_story(name)
    data = event("http_list_audio.json", queryStringParameters={"limit": "2"})
    first = invoke("list_audio", data).json()
    assert [f["filename"] for f in first["files"]] == ["a.mp3", "b.mp3"]
    data = event(
        "http_list_audio.json",
        queryStringParameters={"limit": "2", "next_token": first["next_token"]},
    )
    second = invoke("list_audio", data).json()
    assert [f["filename"] for f in second["files"]] == ["c.mp3"]
    assert second["next_token"] is None


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": "0"}, 422),
        ({"limit": "many"}, 422),
        ({"status": "bogus"}, 422),
        ({"next_token": "not-a-token"}, 400),
        ({"next_token": base64.urlsafe_b64encode(b"[" * 3000).decode()}, 400),
    ],
)
def test_list_bad_query_values(local_env, params, status):
    reply = invoke("list_audio", event("http_list_audio.json", queryStringParameters=params))
    assert reply.status == status


def test_search(local_env):
    put_story("Bedtime.mp3")
    data = event("http_list_audio.json", queryStringParameters={"q": "BEDTIME"})
    with_path(data, "/api/audio/search")
    data.pop("pathParameters")
    reply = invoke("search_audio", data)
    assert reply.status == 200
    assert [f["filename"] for f in reply.json()["files"]] == ["Bedtime.mp3"]
    data["queryStringParameters"] = {"q": " "}
    assert invoke("search_audio", data).status == 400


def test_metadata(app_env):
    put_story("story.mp3")
    reply = invoke("audio_metadata", event("http_audio_metadata.json"))
    assert reply.status == 200
    body = reply.json()
    assert body["filename"] == "story.mp3"
    assert body["size"] == get_storage().head("story.mp3").size
    assert body["etag"] == get_storage().head("story.mp3").etag


def test_metadata_for_a_missing_file_is_404(app_env):
    reply = invoke("audio_metadata", event("http_audio_metadata.json"))
    assert reply.status == 404
    assert reply.json()["code"] == "audio_not_found"
    assert "story.mp3" in reply.json()["message"]


def test_metadata_of_an_encoded_name(local_env):
    name = "my story + más.mp3"
    put_story(name)
    data = with_path(
        event("http_audio_metadata.json"),
        "/api/audio/my%20story%20%2B%20m%C3%A1s.mp3/metadata",
        filename=name,
    )
    reply = invoke("audio_metadata", data)
    assert reply.status == 200
    assert reply.json()["filename"] == name


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("..%2Fsecret.mp3", "../secret.mp3"),
        ("..%5Cx.mp3", "..\\x.mp3"),
        ("notes.txt", "notes.txt"),
        (".hidden.mp3", ".hidden.mp3"),
        ("a%00.mp3", "a\x00.mp3"),
    ],
)
@pytest.mark.parametrize(
    ("function_dir", "sample", "suffix"),
    [
        ("audio_metadata", "http_audio_metadata.json", "/metadata"),
        ("delete_audio", "http_delete_audio.json", ""),
    ],
)
def test_a_bad_filename_in_the_path_is_400(local_env, raw, decoded, function_dir, sample, suffix):
    data = with_path(event(sample), f"/api/audio/{raw}{suffix}", filename=decoded)
    reply = invoke(function_dir, data)
    assert reply.status == 400
    assert reply.json()["code"] == "invalid_filename"


# --- delete ---------------------------------------------------------------------------------


def test_delete(app_env):
    put_story("story.mp3")
    put_story("other.mp3")
    reply = invoke("delete_audio", event("http_delete_audio.json"))
    assert reply.status == 204
    assert reply.body == ""
    assert not get_storage().exists("story.mp3")
    assert get_catalog().get_audio("story.mp3") is None
    assert get_storage().exists("other.mp3")
    again = invoke("delete_audio", event("http_delete_audio.json"))
    assert again.status == 404


# --- upload URL -----------------------------------------------------------------------------


def test_upload_url(app_env):
    reply = invoke("upload_url", event("http_upload_url.json"))
    assert reply.status == 201
    body = reply.json()
    assert body["method"] == "POST"
    assert body["expires_in"] > 0
    assert body["url"].startswith(("http://", "https://"))
    assert body["fields"]["key"].startswith("incoming/")
    assert body["fields"]["key"].endswith("/story.mp3")
    assert body["fields"]["Content-Type"] == "application/octet-stream"


def test_upload_url_for_an_existing_file_is_409_unless_overwrite(local_env):
    put_story("story.mp3")
    reply = invoke("upload_url", event("http_upload_url.json"))
    assert reply.status == 409
    assert reply.json()["code"] == "audio_exists"
    body = json.dumps({"filename": "story.m4a", "size": 1000})
    assert invoke("upload_url", event("http_upload_url.json", body=body)).status == 409
    body = json.dumps({"filename": "story.m4a", "size": 1000, "overwrite": True})
    reply = invoke("upload_url", event("http_upload_url.json", body=body))
    assert reply.status == 201
    assert reply.json()["fields"]["key"].endswith("/story.m4a")


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        "{'filename': 'x.mp3'}",
        '{"filename": "x.mp3", "size": 1',
        "\udcff",
        "[" * 100_000,  # deeply nested: must not blow the parser's stack into a 500
    ],
)
def test_upload_url_with_a_malformed_body_is_400(local_env, body):
    reply = invoke("upload_url", event("http_upload_url.json", body=body))
    assert reply.status == 400
    assert reply.json()["code"] == "bad_request"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"filename": "x.mp3"},
        {"size": 100},
        {"filename": "x.mp3", "size": 0},
        {"filename": "x.mp3", "size": -5},
        {"filename": "x.mp3", "size": "lots"},
        {"filename": 5, "size": 100},
        {"filename": "x.mp3", "size": 100, "surprise": True},
        [],
        None,
        "x.mp3",
    ],
)
def test_upload_url_with_missing_or_invalid_fields_is_422(local_env, payload):
    reply = invoke("upload_url", event("http_upload_url.json", body=json.dumps(payload)))
    assert reply.status == 422
    assert reply.json()["code"] == "invalid_value"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"filename": "../x.mp3", "size": 100}, 400),
        ({"filename": "x.txt", "size": 100}, 400),
        ({"filename": "x.mp3", "size": 5 * 1024**3 + 1}, 413),
    ],
)
def test_upload_url_refusals(local_env, payload, status):
    reply = invoke("upload_url", event("http_upload_url.json", body=json.dumps(payload)))
    assert reply.status == status


def test_upload_url_with_a_base64_body(local_env):
    body = base64.b64encode(b'{"filename":"story.mp3","size":123456}').decode()
    reply = invoke("upload_url", event("http_upload_url.json", body=body, isBase64Encoded=True))
    assert reply.status == 201


# --- upload ---------------------------------------------------------------------------------


def test_upload_multipart_base64(app_env, mp3_bytes):
    """Given a multipart body as HTTP API delivers it (base64), the file is stored and its
    record returned with 201."""
    content_type, body = multipart([("file", "Bedtime Story.mp3", mp3_bytes)])
    reply = invoke("upload_audio", upload_event(content_type, body))
    assert reply.status == 201, reply.body
    audio = reply.json()
    assert audio["filename"] == "Bedtime Story.mp3"
    assert audio["size"] == len(mp3_bytes)
    assert audio["title"] == "Bedtime Story"
    assert audio["url"].startswith(f"https://{HOST}/api/audio/Bedtime%20Story.mp3?sig=")
    stream = get_storage().open_range("Bedtime Story.mp3")
    assert b"".join(stream) == mp3_bytes
    stream.close()

    again = invoke("upload_audio", upload_event(content_type, body))
    assert again.status == 409
    replaced = invoke("upload_audio", upload_event(content_type, body, query={"overwrite": "true"}))
    assert replaced.status == 201


def test_upload_takes_the_filename_field_over_the_part_name(local_env, mp3_bytes):
    content_type, body = multipart(
        [("filename", None, b"Chosen name.mp3"), ("file", "blob", mp3_bytes)]
    )
    reply = invoke("upload_audio", upload_event(content_type, body))
    assert reply.status == 201
    assert reply.json()["filename"] == "Chosen name.mp3"


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda mp3: multipart([("file", "notes.mp3", b"just some text " * 50)]), 415),
        (lambda mp3: multipart([("file", "empty.mp3", b"")]), 415),
        (lambda mp3: multipart([("file", "../evil.mp3", mp3)]), 400),
        (lambda mp3: multipart([("file", "story.txt", mp3)]), 400),
        (lambda mp3: multipart([("other", "story.mp3", mp3)]), 400),
        (lambda mp3: multipart([("file", "", mp3)]), 400),
        (lambda mp3: ("application/json", b'{"file": "story.mp3"}'), 415),
        (lambda mp3: ("", mp3), 415),
        (lambda mp3: ("multipart/form-data", mp3), 400),  # no boundary
        (lambda mp3: ("multipart/form-data; boundary=nope", b"garbage" * 20), 400),
    ],
)
def test_upload_refusals_store_nothing(local_env, mp3_bytes, make, status):
    content_type, body = make(mp3_bytes)
    reply = invoke("upload_audio", upload_event(content_type, body))
    assert reply.status == status, reply.body
    assert list(get_storage().iter_objects()) == []
    assert list(local_env.audio_dir.iterdir()) == []


def test_upload_over_4_mib_is_413(local_env):
    content_type, body = multipart([("file", "big.mp3", b"\x00" * (MAX_UPLOAD_BYTES + 1))])
    reply = invoke("upload_audio", upload_event(content_type, body))
    assert reply.status == 413
    assert "upload-url" in reply.json()["message"]
    assert list(get_storage().iter_objects()) == []


def test_upload_with_a_bad_overwrite_flag_is_422(local_env, mp3_bytes):
    content_type, body = multipart([("file", "story.mp3", mp3_bytes)])
    reply = invoke("upload_audio", upload_event(content_type, body, query={"overwrite": "maybe"}))
    assert reply.status == 422
    assert not get_storage().exists("story.mp3")


def test_an_unknown_path_is_a_json_404(local_env):
    data = with_path(event("http_list_audio.json"), "/api/nothing/here")
    reply = invoke("list_audio", data)
    assert reply.status == 404


def test_the_sample_events_are_the_contract_paths():
    """The events in events/ are what the template routes: if they drift, these tests lie."""
    for _, sample in MANAGEMENT:
        data = json.loads(Path(EVENTS / sample).read_text())
        method, path = data["routeKey"].split(" ", 1)
        assert data["requestContext"]["http"]["method"] == method
        assert path.startswith("/api/audio/")
        assert data["headers"].get("authorization") == f"Bearer {TOKEN}"


# --- the catalogue's schema: migrated by writing functions only -----------------------------

#: DynamoDB's write operations.
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def api_event(
    method: str,
    raw_path: str,
    body: str | None = None,
    *,
    query: dict[str, str] | None = None,
    **path_parameters: str,
) -> dict[str, Any]:
    """A management API event for any route, shaped as the samples are."""
    data = with_path(event("http_list_audio.json"), raw_path, **path_parameters)
    route = f"{method} {raw_path}"
    data["routeKey"] = data["requestContext"]["routeKey"] = route
    data["requestContext"]["http"]["method"] = method
    data["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    data["queryStringParameters"] = query
    if not query:
        data.pop("queryStringParameters")
    if not path_parameters:
        data.pop("pathParameters")
    if body is not None:
        data["body"] = body
        data["headers"]["content-type"] = "application/json"
    return data


def schema_item(table: str) -> dict[str, Any] | None:
    import boto3

    return boto3.client("dynamodb").get_item(TableName=table, Key=SCHEMA_KEY).get("Item")


@pytest.fixture
def cold_start(aws_env) -> tuple[Services, list[str]]:
    """A catalogue that holds a file and a queue but no schema item (written by services
    that never migrated), then a cold start: fresh services, installed, whose DynamoDB calls
    are recorded by name as botocore makes them."""
    seed = Services(Settings.from_env())
    data = make_mp3(0.5, title="Story")
    seed.library.upload("story.mp3", io.BytesIO(data), len(data), overwrite=False)
    seed.queues.put("bedtime", QueueChange(files=["story.mp3"]))
    assert schema_item(aws_env.table) is None, "the seeding wrote the schema item"
    root = fresh_services()
    calls: list[str] = []

    def record(model, **kwargs) -> None:
        calls.append(model.name)

    root.client("dynamodb").meta.events.register("before-call.dynamodb", record)
    return root, calls


def read_only_requests() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("list_audio", event("http_list_audio.json")),
        ("search_audio", api_event("GET", "/api/audio/search", query={"q": "story"})),
        ("audio_metadata", event("http_audio_metadata.json")),
        ("get_queue", api_event("GET", "/api/streams/bedtime/queue", name="bedtime")),
        ("list_queues", api_event("GET", "/api/streams")),
        ("health", api_event("GET", "/api/health")),
    ]


def test_read_only_functions_never_write_the_catalogue_at_a_cold_start(cold_start, aws_env):
    """A read-only function (and a device function) on a catalogue whose schema item is
    missing answers from it as it is: no PutItem, no UpdateItem, no schema item written.
    Only functions that write anyway bring the schema forward (see the next test)."""
    from starlette.testclient import TestClient

    root, calls = cold_start
    list_reply = invoke("list_audio", event("http_list_audio.json"))
    assert list_reply.status == 200
    assert [f["filename"] for f in list_reply.json()["files"]] == ["story.mp3"]
    assert calls, "no DynamoDB call was recorded: the hook sees nothing"
    assert not WRITES & set(calls), calls
    for function_dir, data in read_only_requests():
        reply = invoke(function_dir, data)
        assert reply.status == 200, (function_dir, reply.body)
    # The device functions: the file and the queue's (finite) stream.
    audio = root.urls.audio(root.catalog.get_audio("story.mp3"), "http://testserver")
    queue = root.urls.queue(root.catalog.get_queue("bedtime"), "http://testserver")
    for function_dir, url in (("stream_audio", audio), ("queue_stream", queue)):
        with TestClient(function_module(function_dir).app) as client:
            response = client.get(url)
        assert response.status_code == 200, (function_dir, response.text)
    assert not WRITES & set(calls), calls
    assert schema_item(aws_env.table) is None, "a read-only function migrated the catalogue"


@pytest.mark.parametrize("function_dir", ["put_queue", "upload_audio"])
def test_a_writing_function_brings_the_schema_forward(cold_start, aws_env, mp3_bytes, function_dir):
    _, calls = cold_start
    if function_dir == "put_queue":
        body = json.dumps({"files": ["story.mp3"], "play_mode": "loop"})
        data = api_event("POST", "/api/streams/night/queue", body, name="night")
    else:
        data = upload_event(*multipart([("file", "Another.mp3", mp3_bytes)]))
    assert invoke(function_dir, data).status == 201
    item = schema_item(aws_env.table)
    assert item is not None, f"{function_dir} wrote without migrating"
    assert int(item["version"]["N"]) == SCHEMA_VERSION
    assert "PutItem" in calls
