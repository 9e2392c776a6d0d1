"""Small helpers shared by the integration tests: exact raw requests, the contract's JSON
error shape, and what is really stored (the directory or the bucket) and catalogued."""

from __future__ import annotations

import http.client
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

#: Text that must never reach a client: stack traces, SDK and AWS error text.
LEAKS = (
    "Traceback",
    'File "',
    "botocore",
    "boto3",
    "ClientError",
    "An error occurred (",
    "NoSuchKey",
    "NoSuchBucket",
    "ResourceNotFoundException",
    "/work/",
    "site-packages",
)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> object:
        import json

        return json.loads(self.body)


def raw_request(
    base_url: str,
    method: str,
    raw_path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> RawResponse:
    """Send ``raw_path`` exactly as written (no normalisation of ``..`` or escapes)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def assert_json_error(
    response: httpx.Response | RawResponse,
    status: int,
    code: str | None = None,
    context: object = None,
) -> dict[str, str]:
    """The contract's error: the status, JSON ``{"code", "message"}``, and no leaked
    internals. Returns the body."""
    body_bytes = response.content if isinstance(response, httpx.Response) else response.body
    text = body_bytes.decode("utf-8", "replace")
    status_code = response.status_code if isinstance(response, httpx.Response) else response.status
    where = f" ({context})" if context is not None else ""
    assert status_code == status, f"expected {status}, got {status_code}{where}: {text[:500]}"
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (content_type, context)
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into the error body: {text[:500]}"
    if code is not None:
        assert body["code"] == code, (body, context)
    return body


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def stored_names(env) -> set[str]:
    """Every object in storage, whatever its name (temporary files included)."""
    if env.backend == "local":
        if not env.audio_dir.exists():
            return set()
        return {p.name for p in env.audio_dir.iterdir()}
    listing = s3_client().list_objects_v2(Bucket=env.bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def stored_bytes(env, name: str) -> bytes:
    if env.backend == "local":
        return (env.audio_dir / name).read_bytes()
    return s3_client().get_object(Bucket=env.bucket, Key=name)["Body"].read()


def catalogued_names(client: httpx.Client) -> set[str]:
    """Every filename the catalogue lists, whatever its status (all pages)."""
    names: set[str] = set()
    token = None
    while True:
        params = {"status": "all", "limit": "1000"}
        if token:
            params["next_token"] = token
        page = client.get("/api/audio/list", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        names.update(f["filename"] for f in body["files"])
        token = body.get("next_token")
        if not token:
            return names


def upload(
    client: httpx.Client, name: str, data: bytes, *, overwrite: bool = False
) -> httpx.Response:
    params = {"overwrite": "true"} if overwrite else None
    return client.post(
        "/api/audio/upload", params=params, files={"file": (name, data, "audio/mpeg")}
    )


def post_form(url: str, fields: dict[str, str], name: str, data: bytes) -> httpx.Response:
    """Send a presigned POST form the way S3 wants it: the fields, then the file last."""
    return httpx.post(url, data=fields, files={"file": (name, data, "audio/mpeg")}, timeout=60)


def events_handled(server, key: str | None = None) -> None:
    """Wait until the local server has handled every event of what was stored so far: an
    upload URL's file (at ``key``) checked (copied, or converted) and then catalogued.

    On the S3 backend a form goes to moto itself, which sends no events: the event S3 would
    send through EventBridge is sent here, as it would arrive."""
    from smart_stream.changes import ObjectChanged

    root = server.app.state.services
    if key is not None and server.env.backend == "aws":
        root.changes.publish(ObjectChanged("ObjectCreated", root.storage.head(key)))
    server.app.state.dispatcher.drain()


class Player:
    """A player on a raw socket with a small receive buffer (so that the kernel cannot take
    the whole stream on its behalf): it asks for a URL, reads the start, later hangs up."""

    def __init__(self, url: str, receive_buffer: int = 16 * 1024) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect((parts.hostname, parts.port))
        self.sock.sendall(
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
        )

    def read_start(self, at_least: int = 4096) -> tuple[bytes, bytes]:
        """(status line and headers, the first body bytes)."""
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < at_least:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head, body

    def hang_up(self) -> None:
        self.sock.close()
