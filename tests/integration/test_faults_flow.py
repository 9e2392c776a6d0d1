"""Storage and catalogue failures over real HTTP (the local server on real sockets; S3 and
DynamoDB in moto's server, failing through the fault layer, ``tests/faults.py``):

- a stream that storage fails part-way (a connection reset in the middle of the ranged
  GET's body, or a local file cut short while it is read) ends as an aborted response, a
  body shorter than its Content-Length, never a clean end that looks complete;
- every management route (and both device routes, before their response starts) that AWS
  fails beyond botocore's retries answers the contract's 502/503 JSON, never a 500 or a
  trace.

botocore's backoff between attempts is asked for and not slept.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from smart_stream.domain.names import PACK_PREFIX
from smart_stream.ports import ObjectStream
from tests.audio import audio_source, make_mp3
from tests.conftest import fresh_services
from tests.faults import KINDS, Faults, add_figures, instant_backoff
from tests.integration.helpers import assert_json_error, upload
from tests.unit import conftest as unit_conftest

pytestmark = pytest.mark.integration
# The route test builds new clients for each route: one parse of botocore's models serves all.
_shared_botocore_loader = unit_conftest._shared_botocore_loader

AWS_ONLY = pytest.mark.parametrize("live_server", ["aws"], indirect=True)
LOCAL_ONLY = pytest.mark.parametrize("live_server", ["local"], indirect=True)
FILES = ("moon.mp3", "stars.mp3", "owl.mp3")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    instant_backoff(monkeypatch)


@pytest.fixture(autouse=True)
def polly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stories are spoken by Polly (moto's), as deployed, wherever the server is on AWS."""
    monkeypatch.setenv("TTS_ENGINE", "polly")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # the body ran to its Content-Length; False: the connection was cut

    @property
    def length(self) -> int:
        return int(self.headers["content-length"])


def fetch(url: str, headers: dict[str, str] | None = None) -> Answer:
    """GET ``url`` on a socket of its own, reading the body to its end or its cut."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}", headers=headers or {})
        response = conn.getresponse()
        found = {k.lower(): v for k, v in response.getheaders()}
        try:
            return Answer(response.status, found, response.read(), True)
        except http.client.IncompleteRead as cut:
            return Answer(response.status, found, cut.partial, False)
    finally:
        conn.close()


def library(client: httpx.Client, server: Any) -> dict[str, bytes]:
    """Three files uploaded, catalogued and listed; a queue of them (sequential), its
    pack written."""
    files = {name: make_mp3(1.0 + 0.5 * i, title=name) for i, name in enumerate(FILES)}
    for name, data in files.items():
        assert upload(client, name, data).status_code == 201
    saved = client.post("/api/streams/bedtime/queue", json={"files": list(FILES)})
    assert saved.status_code == 201, saved.text
    server.app.state.dispatcher.drain()
    server.app.state.streams.drain()
    return files


def file_url(client: httpx.Client, name: str) -> str:
    return str(client.get(f"/api/audio/{name}/metadata").json()["url"])


def stream_url(client: httpx.Client) -> str:
    return str(client.get("/api/streams/bedtime/queue").json()["stream_url"])


def faults_on(server: Any, faults: Faults, *services: str) -> Faults:
    root = server.app.state.services
    for service in services:
        faults.install(root.client(service))
    return faults


def assert_cut_short(answer: Answer, status: int, starts: bytes) -> None:
    """An aborted response: the status and length of the whole, fewer bytes, then the end
    of the connection; the bytes that came are the right ones."""
    assert answer.status == status, answer
    assert not answer.complete and len(answer.body) < answer.length, (
        f"a clean end after {len(answer.body)} of {answer.length} bytes"
    )
    assert starts.startswith(answer.body)


# --- A stream cut by storage -----------------------------------------------------------------


@AWS_ONLY
def test_a_file_stream_whose_ranged_get_is_reset_mid_body_is_aborted(
    live_server, client, record_property
):
    files = library(client, live_server)
    url = file_url(client, "owl.mp3")
    data = files["owl.mp3"]
    faults = faults_on(
        live_server, Faults(1.0, ("body-reset",), operations=frozenset({"GetObject"})), "s3"
    )

    whole = fetch(url)
    assert_cut_short(whole, 200, data)
    assert whole.length == len(data)
    ranged = fetch(url, {"Range": "bytes=1000-"})
    assert_cut_short(ranged, 206, data[1000:])
    assert ranged.length == len(data) - 1000
    assert faults.total("body-reset") == 2

    # The outage over, the same URL plays whole: nothing was cached of the cut.
    faults.rate = 0.0
    again = fetch(url)
    assert (again.status, again.complete, again.body) == (200, True, data)
    record_property("faults", add_figures({"outcomes": {"aborted responses": 2}}, faults))


@AWS_ONLY
@pytest.mark.parametrize("play_mode", [None, "shuffle"], ids=["from its pack", "file by file"])
def test_a_queue_stream_whose_ranged_get_is_reset_mid_body_is_aborted(
    live_server, client, play_mode, record_property
):
    library(client, live_server)
    url = stream_url(client) + (f"&play_mode={play_mode}" if play_mode else "")
    whole = fetch(url)
    assert whole.complete and whole.status == 200
    faults = faults_on(
        live_server, Faults(1.0, ("body-reset",), operations=frozenset({"GetObject"})), "s3"
    )

    cut = fetch(url)
    assert_cut_short(cut, 200, whole.body)
    assert cut.length == len(whole.body)
    assert faults.total("body-reset") >= 1
    faults.rate = 0.0
    assert fetch(url).body == whole.body
    record_property("faults", add_figures({"outcomes": {"aborted responses": 1}}, faults))


def shrinking(storage: Any, cut: Callable[[str], None], *, before: bool = False) -> Callable:
    """``storage.open_range`` that cuts the file short just after opening it (the read has
    begun: its length is known), or, ``before``, between the catalogue read and the open."""
    original = storage.open_range

    def open_range(name: str, *args: Any, **kwargs: Any) -> ObjectStream:
        if before:
            cut(name)
        stream = original(name, *args, **kwargs)
        if not before:
            cut(name)
        return stream

    return open_range


def on_disk(storage: Any, key: str) -> Path:
    """Where the local storage keeps ``key``: a library file, or a queue's pack."""
    if key.startswith(PACK_PREFIX):
        return Path(storage.packs_root) / key.removeprefix(PACK_PREFIX)
    return Path(storage.root) / key


def halve(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


@LOCAL_ONLY
def test_a_local_file_cut_short_while_streamed_is_aborted(live_server, client, monkeypatch):
    files = library(client, live_server)
    url = file_url(client, "owl.mp3")
    storage = live_server.app.state.services.storage
    cuts: list[str] = []

    def cut(name: str) -> None:
        if name == "owl.mp3" and not cuts:
            cuts.append(name)
            halve(storage.root / name)

    monkeypatch.setattr(storage, "open_range", shrinking(storage, cut))
    answer = fetch(url)
    assert_cut_short(answer, 200, files["owl.mp3"])
    assert answer.length == len(files["owl.mp3"])
    assert len(answer.body) <= len(files["owl.mp3"]) // 2


@LOCAL_ONLY
def test_a_local_file_cut_short_before_it_is_opened_is_not_served_as_complete(
    live_server, client, monkeypatch
):
    """Cut between the catalogue read and the open: the file is no longer the version
    catalogued. A 503 (try again), or, once the folder's watcher has catalogued the new
    version, that version whole; never the old length with fewer bytes."""
    library(client, live_server)
    url = file_url(client, "owl.mp3")
    storage = live_server.app.state.services.storage
    path = storage.root / "owl.mp3"
    cuts: list[str] = []

    def cut(name: str) -> None:
        if name == "owl.mp3" and not cuts:
            cuts.append(name)
            halve(path)

    monkeypatch.setattr(storage, "open_range", shrinking(storage, cut, before=True))
    answer = fetch(url)
    if answer.status == 503:
        assert_json_error(httpx.Response(503, headers=answer.headers, content=answer.body), 503)
    else:
        assert (answer.status, answer.complete, answer.body) == (200, True, path.read_bytes())


@LOCAL_ONLY
@pytest.mark.parametrize("play_mode", [None, "shuffle"], ids=["from its pack", "file by file"])
def test_a_local_queue_cut_short_while_streamed_is_aborted(
    live_server, client, monkeypatch, play_mode
):
    library(client, live_server)
    url = stream_url(client) + (f"&play_mode={play_mode}" if play_mode else "")
    whole = fetch(url)
    assert whole.complete
    services = live_server.app.state.services
    storage = services.storage
    cuts: list[str] = []

    def cut(key: str) -> None:
        if not cuts:
            cuts.append(key)
            halve(on_disk(storage, key))

    if play_mode is None:  # the pack: one ranged read
        monkeypatch.setattr(storage, "open_range", shrinking(storage, cut))
    else:  # the files' spans: the second file shrinks as the first is read
        # No pack: a shuffle of a few files may come out in the queue's own order, whose
        # pack (same bytes, same key) would then be read instead.
        monkeypatch.setattr(services.packs, "open", lambda *args, **kwargs: None)
        original = storage.read_spans

        def read_spans(spans: Any, **kwargs: Any) -> Any:
            cut(spans[1].name)
            return original(spans, **kwargs)

        monkeypatch.setattr(storage, "read_spans", read_spans)
    answer = fetch(url)
    assert cuts, "the stream did not read where it was cut"
    assert_cut_short(answer, 200, whole.body)
    assert answer.length == len(whole.body)


# --- Management routes failing beyond the retries ----------------------------------------


def _upload_body() -> dict[str, Any]:
    return {"files": {"file": ("new.mp3", make_mp3(0.3), "audio/mpeg")}}


#: (route, method, path, request arguments, the services that fail).
ROUTES: list[tuple[str, str, str, Callable[[], dict[str, Any]], tuple[str, ...]]] = [
    ("list", "GET", "/api/audio/list", dict, ("s3", "dynamodb")),
    ("metadata", "GET", "/api/audio/moon.mp3/metadata", dict, ("s3", "dynamodb")),
    ("search", "GET", "/api/audio/search?q=moon", dict, ("s3", "dynamodb")),
    ("upload", "POST", "/api/audio/upload", _upload_body, ("s3", "dynamodb")),
    (
        "upload-url",
        "POST",
        "/api/audio/upload-url",
        lambda: {"json": {"filename": "book.m4b", "size": 10_000_000}},
        ("s3", "dynamodb"),
    ),
    ("delete", "DELETE", "/api/audio/moon.mp3?force=true", dict, ("s3", "dynamodb")),
    ("revoke a file", "POST", "/api/audio/moon.mp3/revoke-url", dict, ("s3", "dynamodb")),
    ("queues", "GET", "/api/streams", dict, ("s3", "dynamodb")),
    (
        "queue put",
        "POST",
        "/api/streams/bedtime/queue",
        lambda: {"json": {"files": ["moon.mp3", "stars.mp3"]}},
        ("s3", "dynamodb"),
    ),
    ("queue get", "GET", "/api/streams/bedtime/queue", dict, ("s3", "dynamodb")),
    ("queue delete", "DELETE", "/api/streams/bedtime", dict, ("s3", "dynamodb")),
    ("revoke a queue", "POST", "/api/streams/bedtime/revoke-url", dict, ("s3", "dynamodb")),
    (
        "tts (Polly)",
        "POST",
        "/api/audio/generate-tts",
        lambda: {"json": {"text": "Once upon a time, a fox.", "filename": "fox.mp3"}},
        ("polly",),
    ),
    ("voices (Polly)", "GET", "/api/tts/voices", dict, ("polly",)),
    ("file stream", "DEVICE", "file", dict, ("s3", "dynamodb")),
    ("queue stream", "DEVICE", "queue", dict, ("s3", "dynamodb")),
    # Storage alone failing, where the catalogue answers first.
    ("upload (S3)", "POST", "/api/audio/upload", _upload_body, ("s3",)),
    (
        "upload to convert (S3)",
        "POST",
        "/api/audio/upload",
        lambda: {"files": {"file": ("memo.m4a", audio_source("m4a"), "audio/mp4")}},
        ("s3",),
    ),
    (
        "upload-url (S3)",
        "POST",
        "/api/audio/upload-url",
        lambda: {"json": {"filename": "book.m4b", "size": 10_000_000}},
        ("s3",),
    ),
    ("delete (S3)", "DELETE", "/api/audio/moon.mp3?force=true", dict, ("s3",)),
    (
        "tts (S3)",
        "POST",
        "/api/audio/generate-tts",
        lambda: {"json": {"text": "Once upon a time, a hare.", "filename": "hare.mp3"}},
        ("s3",),
    ),
    ("file stream (S3)", "DEVICE", "file", dict, ("s3",)),
    (
        "tts",
        "POST",
        "/api/audio/generate-tts",
        lambda: {"json": {"text": "Once upon a time, an owl.", "filename": "owl.mp3"}},
        ("s3", "dynamodb", "polly"),
    ),
]


def fresh_root() -> Any:
    """New services for the handlers (new clients, so each route meets botocore's retries
    with a full retry quota), migrated already, as a warm function is."""
    root = fresh_services()
    root.migrate()
    return root


@AWS_ONLY
def test_every_route_aws_fails_beyond_the_retries_answers_a_502_or_503_json_error(
    live_server, client, record_property
):
    """Each management route (and each device route, before its response starts), with
    every attempt of every call failing: the contract's JSON error, 502 or 503 (with
    Retry-After), never a 500 or a trace."""
    library(client, live_server)
    device = {"file": file_url(client, "moon.mp3"), "queue": stream_url(client)}
    wrong: dict[str, str] = {}
    figures: dict[str, Any] = {"outcomes": {}}
    for route, method, path, arguments, failing in ROUTES:
        faults = Faults(1.0, KINDS, seed=len(route))
        root = fresh_root()
        for service in failing:
            faults.install(root.client(service))
        if method == "DEVICE":
            found = fetch(device[path])
            answer = httpx.Response(found.status, headers=found.headers, content=found.body)
        else:
            answer = client.request(method, path, **arguments())
        try:
            assert answer.status_code in (502, 503), answer.text
            body = assert_json_error(answer, answer.status_code, context=route)
            assert body["code"] in ("service_unavailable", "bad_gateway"), body
            if answer.status_code == 503:
                assert answer.headers.get("retry-after") == "5"
            ended = {o for (_, o), n in faults.calls.items() if n}
            assert ended & {"failed", "body cut"}, faults.figures()
        except AssertionError as exc:
            wrong[route] = str(exc)
        outcome = f"answered {answer.status_code}"
        figures["outcomes"][outcome] = figures["outcomes"].get(outcome, 0) + 1
        add_figures(figures, faults)
    record_property("faults", figures)
    assert wrong == {}
