"""A large file over the device route: whole and ranged bodies arrive intact, memory stays
flat, and a player that hangs up mid-stream costs the server nothing lasting."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest

from smart_stream.device.read_ahead import READ_AHEAD_CHUNKS
from tests.audio import make_mp3
from tests.integration.helpers import Player, events_handled, post_form

pytestmark = pytest.mark.integration

BIG_SIZE = 20 * 1024 * 1024
NAME = "Big Audiobook.mp3"


@pytest.fixture(scope="module")
def big_mp3() -> bytes:
    """About 20 MB of real MP3 frames (one recording, over and over), tagged once."""
    one = make_mp3(6.0)
    body = one * (BIG_SIZE // len(one) + 1)
    tagged = make_mp3(0.1, title="Big Book", artist="Narrator")
    return tagged + body[: BIG_SIZE - len(tagged)]


@pytest.fixture
def big_url(live_server, big_mp3) -> str:
    """The big file, sent the way a parent sends it (the upload URL: the upload route
    takes at most 4 MiB), kept as it is (a house MP3) and catalogued, then its device URL."""
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        grant = client.post("/api/audio/upload-url", json={"filename": NAME, "size": len(big_mp3)})
        assert grant.status_code == 201, grant.text
        body = grant.json()
        posted = post_form(body["url"], body["fields"], NAME, big_mp3)
        assert posted.status_code == 204, posted.text
        events_handled(live_server, body["fields"]["key"])
        meta = client.get(f"/api/audio/{NAME}/metadata")
        assert meta.status_code == 200, meta.text
        assert meta.json()["size"] == len(big_mp3)
        return meta.json()["url"]


def fetch_digest(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, str, int]:
    """(status, headers, sha256 of the body, body length), reading as a player does."""
    digest = hashlib.sha256()
    length = 0
    with httpx.stream("GET", url, headers=headers, timeout=60) as response:
        for chunk in response.iter_bytes():
            digest.update(chunk)
            length += len(chunk)
        return response.status_code, dict(response.headers), digest.hexdigest(), length


def test_big_file_arrives_byte_for_byte(live_server, big_url, big_mp3):
    status, headers, digest, length = fetch_digest(big_url)
    assert status == 200
    assert headers["content-length"] == str(len(big_mp3))
    assert length == len(big_mp3)
    assert digest == hashlib.sha256(big_mp3).hexdigest()
    # A player resuming in the middle, and near the end.
    middle = (10_000_000, 13_999_999)
    status, headers, digest, length = fetch_digest(
        big_url, {"Range": f"bytes={middle[0]}-{middle[1]}"}
    )
    assert status == 206
    assert headers["content-range"] == f"bytes {middle[0]}-{middle[1]}/{len(big_mp3)}"
    assert digest == hashlib.sha256(big_mp3[middle[0] : middle[1] + 1]).hexdigest()
    tail = httpx.get(big_url, headers={"Range": "bytes=-70000"})
    assert tail.status_code == 206
    assert tail.content == big_mp3[-70000:]


@pytest.mark.parametrize("live_server", ["local"], indirect=True)
def test_memory_stays_flat_while_streaming(live_server, big_url, big_mp3):
    """Server and client share this process (moto too on the aws backend, and it holds
    whole objects, so only the local backend is measured): what Python allocates while
    20 MB go through must stay a small fraction of the file."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        status, _, digest, length = fetch_digest(big_url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200 and length == len(big_mp3)
    assert digest == hashlib.sha256(big_mp3).hexdigest()
    grown = peak - base
    # What is in flight at once: the chunk being read, those read ahead, the one being sent
    # and the client's; so a few chunks, whatever the file's size.
    chunk = live_server.app.state.services.settings.stream_chunk_bytes
    bound = (READ_AHEAD_CHUNKS + 4) * chunk
    assert grown < bound, f"{grown / 1e6:.1f} MB allocated for a 20 MB stream"
    assert bound < len(big_mp3) / 3


def open_handles(path: Path) -> int:
    """How many file descriptors of this process (the server's) have ``path`` open."""
    count = 0
    target = os.path.realpath(path)
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            continue
    return count


def hang_up_after_one_chunk(url: str) -> bytes:
    player = Player(url, receive_buffer=32 * 1024)
    try:
        head, body = player.read_start(8192)
    finally:
        player.hang_up()
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


def wait_until_closed(path: Path) -> int:
    deadline = time.monotonic() + 10
    while open_handles(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return open_handles(path)


def test_a_player_hanging_up_mid_stream(live_server, big_url, big_mp3):
    env = live_server.env
    big_path = env.audio_dir / NAME
    player = Player(big_url, receive_buffer=32 * 1024)
    head, first = player.read_start(8192)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert first and big_mp3.startswith(first)
    if env.backend == "local":
        time.sleep(0.2)  # the server fills the buffers, then waits for the player
        assert open_handles(big_path) >= 1  # the server is reading it now
    player.hang_up()
    # Hung up. The server stops reading storage soon after.
    if env.backend == "local":
        assert wait_until_closed(big_path) == 0, "the server kept the file open after the hang-up"

    # Many more hang-ups than the server has worker threads: none may leak one.
    for _ in range(50):
        assert big_mp3.startswith(hang_up_after_one_chunk(big_url))

    started = time.monotonic()
    health = httpx.get(f"{live_server.base_url}/api/health", timeout=10)
    assert health.status_code == 200
    tail = httpx.get(big_url, headers={"Range": "bytes=-4096"}, timeout=10)
    assert tail.status_code == 206 and tail.content == big_mp3[-4096:]
    status, _, digest, length = fetch_digest(big_url)
    assert status == 200 and length == len(big_mp3)
    assert digest == hashlib.sha256(big_mp3).hexdigest()
    assert time.monotonic() - started < 30
    if env.backend == "local":
        assert wait_until_closed(big_path) == 0
