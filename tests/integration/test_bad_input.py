"""What a client can get wrong, over real HTTP on both backends: every answer is the
contract's JSON error with the right status, leaks nothing, and leaves nothing behind."""

from __future__ import annotations

import httpx
import pytest

from tests.audio import make_mp3
from tests.conftest import TOKEN
from tests.integration.helpers import (
    assert_json_error,
    catalogued_names,
    raw_request,
    s3_client,
    stored_bytes,
    stored_names,
    upload,
)

pytestmark = pytest.mark.integration

MAX_UPLOAD = 4 * 1024 * 1024
SECRET = b"not audio, and not yours: outside the audio files"

#: Raw path segments naming something that is not an acceptable filename.
BAD_SEGMENTS = [
    "..%2F..%2Fetc%2Fpasswd.mp3",
    "..%2Fsecret.mp3",
    "%2e%2e%2fsecret.mp3",
    "%2E%2E%2F%2E%2E%2Fsecret.mp3",
    "..%5Csecret.mp3",
    "a%5C..%5C..%5Csecret.mp3",
    "%2Fetc%2Fpasswd.mp3",
    "%2F..%2Fsecret.mp3",
    "x%00.mp3",
    "x.mp3%00.txt",
    "x%01.mp3",
    "x%7F.mp3",
    "%E2%80%AEx.mp3",  # right-to-left override
    "a" * 296 + ".mp3",  # 300 bytes
    "%C3%A9" * 127 + ".mp3",  # 254 characters, 258 bytes of UTF-8
    "notes.txt",
    "song.mp3.exe",
    ".hidden.mp3",
    "..",
    ".",
]


@pytest.fixture
def planted(live_server) -> None:
    """A file just outside the audio files, where a traversal would land."""
    env = live_server.env
    env.audio_dir.mkdir(parents=True, exist_ok=True)
    if env.backend == "local":
        (env.audio_dir.parent / "secret.mp3").write_bytes(SECRET)
    else:
        for key in ("../secret.mp3", "/etc/passwd.mp3", "..\\secret.mp3"):
            s3_client().put_object(Bucket=env.bucket, Key=key, Body=SECRET)


def test_bad_names_in_paths_are_400(live_server, story, planted, mp3_bytes):
    before = stored_names(live_server.env)
    base = live_server.base_url
    auth = live_server.auth()
    for segment in BAD_SEGMENTS:
        attempts = [
            ("GET", f"/api/audio/{segment}"),
            ("GET", f"/api/audio/{segment}?sig=anything"),
            ("HEAD", f"/api/audio/{segment}"),
            ("GET", f"/api/audio/{segment}/metadata"),
            ("DELETE", f"/api/audio/{segment}"),
        ]
        for method, path in attempts:
            response = raw_request(base, method, path, auth)
            assert SECRET not in response.body, (method, path)
            if method == "HEAD":
                assert response.status == 400, (path, response.status)
                assert response.body == b""
                continue
            assert_json_error(response, 400, "invalid_filename", (method, path))
    assert stored_names(live_server.env) == before
    assert stored_bytes(live_server.env, "story.mp3") == mp3_bytes
    with httpx.Client(base_url=base, headers=auth) as client:
        assert catalogued_names(client) == {"story.mp3"}
    # The planted file is still there, untouched.
    if live_server.env.backend == "local":
        assert (live_server.env.audio_dir.parent / "secret.mp3").read_bytes() == SECRET


def test_newline_in_a_name_is_400(live_server, story):
    """A line break is a control character: the name is bad (400), like any other."""
    base = live_server.base_url
    for segment in ("x%0A.mp3", "x%0D.mp3", "x%0D%0A.mp3", "%0Ax.mp3"):
        for method, path in [
            ("GET", f"/api/audio/{segment}"),
            ("GET", f"/api/audio/{segment}/metadata"),
            ("DELETE", f"/api/audio/{segment}"),
        ]:
            response = raw_request(base, method, path, live_server.auth())
            assert_json_error(response, 400, "invalid_filename", (method, path))


def test_unencoded_dot_segments_never_escape(live_server, story, planted):
    """Literal dot segments: a bad name (400) or, read as the normalised path, nothing
    there (404); never the file outside."""
    base = live_server.base_url
    auth = live_server.auth()
    for method, path in [
        ("GET", "/api/audio/../secret.mp3"),
        ("GET", "/api/audio/../../etc/passwd.mp3"),
        ("GET", "/api/audio/./../secret.mp3"),
        ("GET", "/api/audio/../secret.mp3/metadata"),
        ("DELETE", "/api/audio/../secret.mp3"),
        ("GET", "/api/audio//etc/passwd.mp3"),
    ]:
        response = raw_request(base, method, path, auth)
        assert SECRET not in response.body, path
        assert response.status in (400, 404), (method, path, response.status)
        assert_json_error(response, response.status, context=(method, path))


BAD_UPLOAD_NAMES = [
    "../evil.mp3",
    "../../evil.mp3",
    "..\\evil.mp3",
    "/tmp/evil.mp3",
    "sub/evil.mp3",
    ".evil.mp3",
    "evil.txt",
    "e" * 300 + ".mp3",
    "evil\x01.mp3",
]


def test_upload_with_a_bad_name_is_400(live_server, client, mp3_bytes):
    for name in BAD_UPLOAD_NAMES:
        upload_with_a_bad_name(live_server, client, mp3_bytes, name)


def upload_with_a_bad_name(live_server, client, mp3_bytes, name):
    # Built by hand: httpx would percent-escape some characters of a part's filename.
    boundary = "smartstreamboundary"
    disposition = f'form-data; name="file"; filename="{name}"'.encode()
    body = (
        f"--{boundary}\r\n".encode()
        + b"Content-Disposition: "
        + disposition
        + b"\r\nContent-Type: audio/mpeg\r\n\r\n"
        + mp3_bytes
        + f"\r\n--{boundary}--\r\n".encode()
    )
    as_part_name = client.post(
        "/api/audio/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_json_error(as_part_name, 400, context=("part name", name))
    as_field = client.post(
        "/api/audio/upload", data={"filename": name}, files={"file": ("fine.mp3", mp3_bytes)}
    )
    assert_json_error(as_field, 400, context=("filename field", name))
    assert stored_names(live_server.env) == set()
    assert catalogued_names(client) == set()
    root = live_server.env.audio_dir.parent
    assert not list(root.rglob("evil*")), list(root.rglob("evil*"))


def management_calls(mp3_bytes: bytes) -> list[tuple[str, str, dict]]:
    return [
        ("GET", "/api/audio/list", {}),
        ("GET", "/api/audio/search?q=story", {}),
        ("GET", "/api/audio/story.mp3/metadata", {}),
        ("DELETE", "/api/audio/story.mp3", {}),
        ("POST", "/api/audio/upload", {"files": {"file": ("new.mp3", mp3_bytes)}}),
        ("POST", "/api/audio/upload-url", {"json": {"filename": "big.mp3", "size": 10}}),
    ]


WRONG_AUTHORIZATIONS = [
    None,
    "",
    "Bearer",
    "Bearer wrong",
    f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}",
    f"Basic {TOKEN}",
    TOKEN,
]


def test_management_routes_need_the_token(live_server, story, mp3_bytes):
    for authorization in WRONG_AUTHORIZATIONS:
        headers = {} if authorization is None else {"Authorization": authorization}
        with httpx.Client(base_url=live_server.base_url, headers=headers) as anonymous:
            for method, path, kwargs in management_calls(mp3_bytes):
                response = anonymous.request(method, path, **kwargs)
                assert_json_error(response, 401, context=(authorization, method, path))
                assert "www-authenticate" in response.headers
    # Nothing was done on their behalf.
    assert stored_names(live_server.env) == {"story.mp3"}
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as owner:
        assert catalogued_names(owner) == {"story.mp3"}


def test_bearer_scheme_is_case_insensitive(live_server, story):
    response = httpx.get(
        f"{live_server.base_url}/api/audio/list", headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert response.status_code == 200


def test_device_route_needs_its_credential(live_server, client, story, mp3_bytes):
    other = upload(client, "other.mp3", make_mp3(0.3)).json()
    bare = f"{live_server.base_url}/api/audio/story.mp3"
    sig = story["url"].rpartition("sig=")[2]
    other_sig = other["url"].rpartition("sig=")[2]
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    attempts = [
        (bare, {}),
        (f"{bare}?sig=", {}),
        (f"{bare}?sig={flipped}", {}),
        (f"{bare}?sig={sig[:-2]}", {}),
        (f"{bare}?sig={sig}x", {}),
        (f"{bare}?sig={other_sig}", {}),  # another file's credential
        (f"{bare}?SIG={sig}", {}),
        (f"{bare}?signature={sig}", {}),
        (bare, {"Authorization": "Bearer wrong"}),
        (bare, {"Authorization": f"Bearer {sig}"}),
        (f"{bare}?sig={TOKEN}", {}),
    ]
    for url, headers in attempts:
        got = httpx.get(url, headers=headers)
        assert_json_error(got, 403)
        assert mp3_bytes[-1000:] not in got.content
        ranged = httpx.get(url, headers={**headers, "Range": "bytes=0-99"})
        assert_json_error(ranged, 403)
        head = httpx.head(url, headers=headers)
        assert head.status_code == 403, url
        assert head.content == b""
    # The right one still plays.
    assert httpx.get(story["url"]).content == mp3_bytes


def not_mp3s() -> list[tuple[str, bytes]]:
    return [
        ("empty", b""),
        ("text", b"Once upon a time there was a little MP3 that was really a text file.\n" * 50),
        ("truncated_tagged", make_mp3(0.5, title="Cut")[:50]),
        ("truncated_frames", make_mp3(0.5)[:50]),
        ("random", bytes(range(256)) * 400),
        ("zeros", b"\x00" * 20000),
        ("id3_tag_only", make_mp3(0.2, title="Only a tag")[:40] + b"\x00" * 2000),
    ]


def test_upload_of_something_that_is_not_an_mp3_is_415(live_server, client):
    for label, data in not_mp3s():
        response = upload(client, f"{label}.mp3", data)
        assert_json_error(response, 415, context=label)
    assert stored_names(live_server.env) == set()
    assert catalogued_names(client) == set()


def sized_mp3(size: int) -> bytes:
    """A real MP3 stream of exactly ``size`` bytes (whole frames, cut at the end)."""
    one = make_mp3(5.0)
    data = one * (size // len(one) + 1)
    return data[:size]


def test_upload_limit_is_4_mib(live_server, client):
    over = sized_mp3(MAX_UPLOAD + 1)
    response = upload(client, "big.mp3", over)
    body = assert_json_error(response, 413)
    assert "upload-url" in body["message"] or "upload URL" in body["message"], body
    assert stored_names(live_server.env) == set()
    assert catalogued_names(client) == set()
    # Exactly the limit is taken.
    exact = sized_mp3(MAX_UPLOAD)
    response = upload(client, "big.mp3", exact)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == MAX_UPLOAD
    assert stored_bytes(live_server.env, "big.mp3") == exact


def test_request_over_6_mb_is_413(live_server, client):
    blob = sized_mp3(6 * 1024 * 1024 + 100)
    response = upload(client, "huge.mp3", blob)
    assert_json_error(response, 413)
    raw = client.post(
        "/api/audio/upload",
        content=blob,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_json_error(raw, 413)
    assert stored_names(live_server.env) == set()
    assert catalogued_names(client) == set()
    assert client.get("/api/health").status_code == 200


def test_malformed_uploads(live_server, client, mp3_bytes):
    no_file = client.post("/api/audio/upload", files={"song": ("a.mp3", mp3_bytes)})
    assert_json_error(no_file, 400)
    only_fields = client.post(
        "/api/audio/upload",
        content=b'--xyz\r\nContent-Disposition: form-data; name="filename"\r\n\r\na.mp3\r\n'
        b"--xyz--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_json_error(only_fields, 400)
    garbage = client.post(
        "/api/audio/upload",
        content=b"this is not a multipart body",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert garbage.status_code in (400, 415), garbage.text
    assert_json_error(garbage, garbage.status_code)
    no_boundary = client.post(
        "/api/audio/upload",
        content=mp3_bytes,
        headers={"Content-Type": "multipart/form-data"},
    )
    assert no_boundary.status_code in (400, 415), no_boundary.text
    assert_json_error(no_boundary, no_boundary.status_code)
    for content_type in ("audio/mpeg", "application/octet-stream", "application/json"):
        raw = client.post(
            "/api/audio/upload", content=mp3_bytes, headers={"Content-Type": content_type}
        )
        body = assert_json_error(raw, 415)
        assert "multipart" in body["message"]
    not_json = client.post(
        "/api/audio/upload-url",
        content=b"{'filename': 'a.mp3'}",
        headers={"Content-Type": "application/json"},
    )
    assert_json_error(not_json, 400)
    bad_flag = upload(client, "a.mp3", mp3_bytes, overwrite=False)
    assert bad_flag.status_code == 201
    maybe = client.post("/api/audio/upload?overwrite=maybe", files={"file": ("a.mp3", mp3_bytes)})
    assert_json_error(maybe, 422)
    assert_json_error(client.get("/api/audio/list?limit=0"), 422)
    assert_json_error(client.get("/api/audio/list?limit=-3"), 422)
    assert stored_names(live_server.env) == {"a.mp3"}
    assert catalogued_names(client) == {"a.mp3"}


def test_unknown_routes_and_wrong_methods(live_server, client):
    for path in ("/api/nope", "/nope", "/assets/nope.js", "/api/v2/audio/list", "/api/health/x"):
        assert_json_error(client.get(path), 404)
        assert_json_error(httpx.get(f"{live_server.base_url}{path}"), 404)
    # Under the device route's prefix an extra segment is a bad filename or nothing at all.
    deeper = client.get("/api/audio/story.mp3/nope")
    assert deeper.status_code in (400, 404)
    assert_json_error(deeper, deeper.status_code)
    for method, path in [
        ("PUT", "/api/audio/story.mp3"),
        ("PATCH", "/api/audio/story.mp3"),
        ("POST", "/api/audio/story.mp3"),
        ("POST", "/api/health"),
        ("DELETE", "/api/health"),
        ("PUT", "/api/audio/upload"),
        ("POST", "/api/audio/list"),
        ("POST", "/api/audio/story.mp3/metadata"),
    ]:
        response = client.request(method, path)
        assert_json_error(response, 405)
    # HEAD on a management route is never a server error.
    for path in ("/api/health", "/api/audio/list", "/api/audio/story.mp3/metadata"):
        head = client.head(path)
        assert head.status_code < 500, (path, head.status_code)


def test_missing_file_is_404(live_server, client, story):
    missing = "nobody-here.mp3"
    for response in (
        client.get(f"/api/audio/{missing}/metadata"),
        client.delete(f"/api/audio/{missing}"),
        client.get(f"/api/audio/{missing}"),
        client.get(f"/api/audio/{missing}", headers={"Range": "bytes=0-1"}),
    ):
        assert_json_error(response, 404)
    assert client.head(f"/api/audio/{missing}").status_code == 404
    assert stored_names(live_server.env) == {"story.mp3"}
