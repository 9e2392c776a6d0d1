"""Queues over real HTTP on both backends (the local server, real sockets; S3 and DynamoDB in a
moto server): CRUD and every bad input, concurrent replaces, deletes that touch queues, real
tagged MP3s joined into one stream that decodes cleanly, a file replaced under a queue, a
player hanging up (storage reads stop), and queues that outlive the server."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from smart_stream.domain.errors import ConflictError
from smart_stream.domain.records import QueueRecord
from smart_stream.http.views import QueueRequest
from tests.audio import add_id3, audio_source, decode_pcm, decode_with_pyav
from tests.conftest import ROOT, TOKEN, fresh_services
from tests.contract import QUEUE_FIELDS
from tests.integration.helpers import (
    Player,
    assert_json_error,
    events_handled,
    raw_request,
    upload,
)
from tests.unit.test_queue_stream import (
    MARKERS,
    StorageReads,
    Track,
    assert_clean_audio,
    bare,
    leading_tag,
    split_stream,
    track,
)

pytestmark = pytest.mark.integration


#: Slow requests here (see the client fixture in conftest).
CLIENT_TIMEOUT = 30


def send(client: httpx.Client, *tracks: Track, overwrite: bool = False) -> None:
    for t in tracks:
        response = upload(client, t.name, t.data, overwrite=overwrite)
        assert response.status_code in (200, 201), response.text


@pytest.fixture
def three(client) -> tuple[Track, ...]:
    tracks = (
        track("Lullaby.mp3", 0.9, 96),
        track("Ocean Waves.mp3", 1.2, 128, header="Xing"),
        track("Goodnight Moon.mp3", 0.7, 160),
    )
    send(client, *tracks)
    return tracks


def save(client: httpx.Client, name: str, body) -> httpx.Response:
    return client.post(f"/api/streams/{name}/queue", json=body)


def check_queue(queue: dict, base_url: str) -> None:
    assert set(queue) == QUEUE_FIELDS, set(queue) ^ QUEUE_FIELDS
    url = urlsplit(queue["stream_url"])
    assert f"{url.scheme}://{url.netloc}" == base_url, "stream_url is not absolute"
    assert url.path == f"/api/streams/{queue['name']}/stream.mp3"
    assert url.query.startswith("sig=") and len(url.query) > 10
    assert TOKEN not in queue["stream_url"]
    datetime.fromisoformat(queue["updated_at"])


# --- CRUD -----------------------------------------------------------------------------------


def test_create_list_get_replace_delete(live_server, client, three):
    names = [t.name for t in three]
    created = save(
        client,
        "bedtime",
        {"files": names, "title": "Bedtime", "description": "Songs for sleeping"},
    )
    assert created.status_code == 201, created.text
    queue = created.json()
    check_queue(queue, live_server.base_url)
    assert queue["name"] == "bedtime"
    assert (queue["title"], queue["description"]) == ("Bedtime", "Songs for sleeping")
    assert queue["files"] == names
    assert queue["play_mode"] == "sequential"
    assert queue["version"] == 1
    assert queue["yoto_card_id"] is None
    durations = [client.get(f"/api/audio/{n}/metadata").json()["duration"] for n in names]
    assert queue["total_duration"] == pytest.approx(sum(durations), abs=0.002)
    assert queue["total_duration"] == pytest.approx(0.9 + 1.2 + 0.7, abs=0.2)

    # The device URL plays without the token.
    played = httpx.get(queue["stream_url"], timeout=30)
    assert played.status_code == 200
    assert split_stream(played.content, "Bedtime") == b"".join(t.span for t in three)

    listed = client.get("/api/streams")
    assert listed.status_code == 200
    assert listed.json() == {"queues": [queue]}
    got = client.get("/api/streams/bedtime/queue")
    assert got.status_code == 200 and got.json() == queue

    replaced = save(client, "bedtime", {"files": [names[2], names[0]], "play_mode": "loop"})
    assert replaced.status_code == 200, replaced.text
    again = replaced.json()
    check_queue(again, live_server.base_url)
    assert again["files"] == [names[2], names[0]]
    assert again["play_mode"] == "loop"
    assert again["version"] == 2
    assert again["title"] == "Bedtime"
    assert again["total_duration"] == pytest.approx(durations[2] + durations[0], abs=0.002)
    assert datetime.fromisoformat(again["updated_at"]) >= datetime.fromisoformat(
        queue["updated_at"]
    )
    second = save(client, "morning", {"files": [names[1]], "play_mode": "endless-shuffle"})
    assert second.status_code == 201
    listed = client.get("/api/streams").json()["queues"]
    assert sorted(q["name"] for q in listed) == ["bedtime", "morning"]
    assert next(q for q in listed if q["name"] == "bedtime") == again

    deleted = client.delete("/api/streams/bedtime")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_json_error(client.get("/api/streams/bedtime/queue"), 404)
    assert_json_error(client.delete("/api/streams/bedtime"), 404)
    assert_json_error(httpx.get(again["stream_url"], timeout=30), 404)
    assert [q["name"] for q in client.get("/api/streams").json()["queues"]] == ["morning"]


def test_every_bad_input(live_server, client, three, monkeypatch):
    names = [t.name for t in three]
    missing = assert_json_error(
        save(client, "q", {"files": [names[0], "Nope.mp3", names[1], "Gone Too.mp3"]}), 404
    )
    assert "Nope.mp3" in missing["message"] and "Gone Too.mp3" in missing["message"]
    assert names[0] not in missing["message"]

    # Files that are not house MP3s are converted: while they are, a queue cannot take
    # them (422 naming each); once converted they join any queue.
    odd = {  # library name: (upload name, bytes, what a decoder reads it as)
        "Mono Story.mp3": ("Mono Story.mp3", track("x", 0.5, 64, channels=1).data, "mp3"),
        "Loud 48k.mp3": ("Loud 48k.mp3", track("x", 0.5, 128, rate=48000).data, "mp3"),
        "Small Radio.mp3": (
            "Small Radio.mp3",
            track("x", 0.6, 64, rate=22050, channels=1).data,
            "mp3",
        ),
        "Voice Memo.mp3": ("Voice Memo.m4a", audio_source("m4a"), None),
    }
    # Conversions wait until the test lets them go (a gate around the server's own).
    conversions = live_server.app.state.services.conversions
    convert, go = conversions.convert_incoming, threading.Event()

    def gated(*args, **kwargs):
        assert go.wait(30), "the test never let the conversion go"
        return convert(*args, **kwargs)

    monkeypatch.setattr(conversions, "convert_incoming", gated)
    try:
        for upload_name, data, _ in odd.values():
            sent = upload(client, upload_name, data)
            assert sent.status_code == 202, sent.text
            assert sent.json()["status"] == "converting"
        waiting = assert_json_error(save(client, "q", {"files": [names[0], *odd, names[1]]}), 422)
        for name in odd:
            assert name in waiting["message"] and "converting" in waiting["message"]
        assert f"'{names[1]}'" not in waiting["message"]
    finally:
        go.set()
    events_handled(live_server)
    joined = save(client, "q", {"files": [names[0], *odd, names[1]]})
    assert joined.status_code == 201, joined.text
    stream = httpx.get(joined.json()["stream_url"], timeout=30)
    played = decode_pcm(stream.content)
    assert (played.sample_rate, played.nchannels) == (44100, 2)

    def seconds(data: bytes, format: str | None = "mp3") -> float:
        decoded = decode_pcm(data, format)
        return decoded.num_frames / decoded.sample_rate

    played_seconds = played.num_frames / 44100
    # Exactly the files' catalogued lengths (what the queue joins)...
    total = joined.json()["total_duration"]
    assert abs(played_seconds - total) < 0.03, (played_seconds, total)
    # ... and each within 50 ms of its source (an encoder's delay and padding, per file).
    sources = [seconds(three[0].data), seconds(three[1].data)]
    sources += [seconds(data, format) for _, data, format in odd.values()]
    assert abs(played_seconds - sum(sources)) < 0.05 * len(sources), (played_seconds, sources)
    client.delete("/api/streams/q")

    assert_json_error(save(client, "q", {"files": []}), 422)
    assert_json_error(save(client, "q", {"files": [names[0]], "play_mode": "random"}), 422)
    assert_json_error(save(client, "q", {"files": names[0]}), 422)
    assert_json_error(save(client, "q", {"files": [names[0]], "colour": "blue"}), 422)
    assert_json_error(save(client, "q", ["not", "an", "object"]), 422)
    for body in (b"{", b"", b"not json", b'{"files": ["a.mp3"]', b"[" * 100_000):
        sent = client.post(
            "/api/streams/q/queue", content=body, headers={"Content-Type": "application/json"}
        )
        assert_json_error(sent, 400, context=body[:20])
    for raw in ("a%20b", "x" * 65, "a.b", "%C3%BC", "a%2Fb"):
        bad = raw_request(
            live_server.base_url,
            "POST",
            f"/api/streams/{raw}/queue",
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            b'{"files": ["Lullaby.mp3"]}',
        )
        assert bad.status in (400, 404), (raw, bad.status)
        assert_json_error(bad, bad.status, context=raw)
        if "%2F" not in raw:
            assert bad.status == 400, raw
    assert_json_error(client.get("/api/streams/a.b/queue"), 400)
    assert_json_error(client.delete("/api/streams/a.b"), 400)

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        with httpx.Client(base_url=live_server.base_url, headers=headers) as anonymous:
            assert_json_error(anonymous.get("/api/streams"), 401)
            assert_json_error(anonymous.post("/api/streams/q/queue", json={"files": names}), 401)
            assert_json_error(anonymous.get("/api/streams/q/queue"), 401)
            assert_json_error(anonymous.delete("/api/streams/q"), 401)
    # Device route: no credential is 403; a queue that is not there is 404.
    assert_json_error(httpx.get(f"{live_server.base_url}/api/streams/q/stream.mp3"), 403)
    assert_json_error(client.get("/api/streams/q/stream.mp3"), 404)
    # Nothing was saved by any of it.
    assert client.get("/api/streams").json() == {"queues": []}


def test_deleting_a_file_that_a_queue_uses(client, three):
    names = [t.name for t in three]
    assert save(client, "bedtime", {"files": names}).status_code == 201
    assert save(client, "nap", {"files": [names[1]]}).status_code == 201
    assert save(client, "other", {"files": [names[0]]}).status_code == 201
    refused = assert_json_error(client.delete(f"/api/audio/{names[1]}"), 409)
    assert "bedtime" in refused["message"] and "nap" in refused["message"]
    assert "other" not in refused["message"]
    assert client.get(f"/api/audio/{names[1]}/metadata").status_code == 200
    forced = client.delete(f"/api/audio/{names[1]}", params={"force": "true"})
    assert forced.status_code == 204, forced.text
    assert_json_error(client.get(f"/api/audio/{names[1]}/metadata"), 404)
    bedtime = client.get("/api/streams/bedtime/queue").json()
    assert bedtime["files"] == [names[0], names[2]]
    assert bedtime["version"] == 2
    assert client.get("/api/streams/nap/queue").json()["files"] == []
    played = httpx.get(bedtime["stream_url"], timeout=30)
    assert played.status_code == 200
    assert split_stream(played.content, "bedtime") == three[0].span + three[2].span
    # A queue left with no files answers 404 (nothing to play), as JSON.
    nap = client.get("/api/streams/nap/queue").json()
    assert_json_error(httpx.get(nap["stream_url"], timeout=30), 404)


def test_a_queue_on_a_yoto_card(live_server, client, three):
    created = save(client, "bedtime", {"files": [three[0].name]}).json()
    catalog = live_server.app.state.services.catalog  # the server's: it runs in this process
    record = catalog.get_queue("bedtime")
    carded = record.model_copy(update={"yoto_card_id": "card-Zx81", "version": record.version + 1})
    assert catalog.put_queue(carded, expected_version=record.version)
    assert client.get("/api/streams/bedtime/queue").json()["yoto_card_id"] == "card-Zx81"
    refused = assert_json_error(client.delete("/api/streams/bedtime"), 409)
    assert "card-Zx81" in refused["message"]
    assert httpx.get(created["stream_url"], timeout=30).status_code == 200
    assert client.delete("/api/streams/bedtime", params={"force": "true"}).status_code == 204
    assert_json_error(httpx.get(created["stream_url"], timeout=30), 404)
    assert_json_error(client.get("/api/streams/bedtime/queue"), 404)


def test_two_clients_replacing_one_queue_at_once_never_mix(live_server, client, three, monkeypatch):
    # Two Lambda instances replacing one queue at once: the local server runs one
    # management invocation at a time (Powertools keeps the request in class state), so the
    # two replaces race in the put-queue use case itself, as they would on two instances.
    # A catalogue as slow as a far-away table, so that the two replaces of a round both
    # read the queue before either writes it (the server runs in this process).
    catalog_class = type(live_server.app.state.services.catalog)
    real_get_queue = catalog_class.get_queue

    def slow_get_queue(self, name):
        record = real_get_queue(self, name)
        time.sleep(0.02)
        return record

    monkeypatch.setattr(catalog_class, "get_queue", slow_get_queue)
    names = [t.name for t in three]
    bodies = (
        {"files": [names[0], names[1]], "title": "First", "play_mode": "sequential"},
        {"files": [names[2], names[1], names[0]], "title": "Second", "play_mode": "loop"},
    )
    assert save(client, "q", {"files": [names[0]]}).status_code == 201
    rounds = 15
    results: list[list[QueueRecord | None]] = [[], []]
    barrier = threading.Barrier(2)
    verdicts: list[tuple[str, list[str], str, int]] = []
    queues = live_server.app.state.services.queues

    def replace(which: int) -> QueueRecord | None:
        try:
            return queues.put("q", QueueRequest(**bodies[which]).change())[1]
        except ConflictError:  # the API's 409
            return None

    def writer(which: int) -> None:
        with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as own:
            for _ in range(rounds):
                barrier.wait(timeout=30)
                results[which].append(replace(which))
                barrier.wait(timeout=30)
                if which == 0:  # both replaces of this round are done; the next waits
                    q = own.get("/api/streams/q/queue").json()
                    verdicts.append((q["title"], q["files"], q["play_mode"], q["version"]))

    threads = [threading.Thread(target=writer, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(verdicts) == rounds
    wins = 0
    for which, records in enumerate(results):
        for record in records:
            if record is not None:
                wins += 1
                assert record.files == bodies[which]["files"]
                assert record.title == bodies[which]["title"]
    for title, files, mode, _ in verdicts:
        expected = next(b for b in bodies if b["title"] == title)
        assert files == expected["files"] and mode == expected["play_mode"], (title, files, mode)
    final = client.get("/api/streams/q/queue").json()
    assert final["version"] == 1 + wins, "a successful replace was not counted, or a lost one was"
    assert wins >= rounds, "a round where nobody won"
    assert wins < 2 * rounds, "no replace ever lost: the two were never at the same moment"
    # The stream plays exactly the winner's files.
    by_name = {t.name: t for t in three}
    body = httpx.get(final["stream_url"] + "&play_mode=sequential", timeout=30).content
    assert split_stream(body, final["title"]) == b"".join(by_name[n].span for n in final["files"])


# --- Joining real MP3s ----------------------------------------------------------------------


def test_tagged_files_join_into_one_clean_mp3(live_server, client, three):
    queue = save(client, "bedtime", {"files": [t.name for t in three], "title": "Bedtime"}).json()
    response = httpx.get(queue["stream_url"], timeout=30)
    assert response.status_code == 200
    body = response.content
    assert response.headers["content-length"] == str(len(body))
    # Each source file really carries what must not reach the stream.
    for t in three:
        assert t.data.startswith(b"ID3")
        assert b"Info" in t.data[:3000] or b"Xing" in t.data[:3000]
        assert b"APETAGEX" in t.data[-300:] and t.data[-128:].startswith(b"TAG")
    head = leading_tag(body)
    assert body.startswith(b"ID3") and head < 200, "one small title tag at the start"
    audio = split_stream(body, "Bedtime")
    assert audio == b"".join(t.span for t in three)
    joins, at = [], head
    for t in three[:-1]:
        at += len(t.span)
        joins.append(at)
    for join in joins:
        around = body[join - 512 : join + 512]
        for marker in MARKERS:
            assert marker not in around, f"{marker!r} near the join at {join}"
    assert_clean_audio(audio)
    assert body.count(b"ID3") == 1
    decoded = decode_pcm(body)
    assert decoded.sample_rate == 44100 and decoded.nchannels == 2
    parts = [decode_pcm(t.span).num_frames for t in three]
    frame = 1152
    assert abs(decoded.num_frames - sum(parts)) <= frame * len(joins)
    seconds = decoded.num_frames / decoded.sample_rate
    assert seconds == pytest.approx(queue["total_duration"], abs=frame / 44100 * len(joins) + 0.01)
    # FFmpeg's decoder too (PyAV), strict: not one error in the whole stream, the same audio.
    samples, rate, channels, errors = decode_with_pyav(body)
    assert errors == []
    assert (rate, channels) == (44100, 2)
    assert abs(samples - decoded.num_frames) <= frame


def test_a_file_replaced_under_a_queue_plays_its_new_version(live_server, client, three):
    queue = save(client, "bedtime", {"files": [t.name for t in three]}).json()
    url = queue["stream_url"]
    before = httpx.get(url, timeout=30)
    size = len(before.content)
    join = leading_tag(before.content) + len(three[0].span)
    across = httpx.get(url, headers={"Range": f"bytes={join - 100}-{join + 99}"}, timeout=30)
    assert across.status_code == 206 and across.content == before.content[join - 100 : join + 100]
    newer = track("Ocean Waves.mp3", 2.0, 128)
    send(client, newer, overwrite=True)
    after = httpx.get(url, timeout=30)
    assert after.status_code == 200, after.text
    assert after.headers["etag"] != before.headers["etag"]
    assert split_stream(after.content, "bedtime") == three[0].span + newer.span + three[2].span
    assert int(after.headers["content-length"]) == len(after.content) > size
    stale = httpx.get(
        url, headers={"Range": "bytes=0-99", "If-Range": before.headers["etag"]}, timeout=30
    )
    assert stale.status_code == 200 and stale.content == after.content
    meta = client.get("/api/streams/bedtime/queue").json()
    assert meta["total_duration"] > queue["total_duration"] + 0.5


# --- A player that hangs up -----------------------------------------------------------------


def settled(reads: StorageReads, quiet: float = 0.4, limit: float = 10.0) -> int:
    """The count of bytes read from storage once reads have stopped for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    last, since = reads.bytes, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if reads.bytes != last:
            last, since = reads.bytes, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return reads.bytes


def drop_packs(live_server, name: str) -> None:
    """Remove a queue's packs (made once the server has handled its change), so that its
    stream reads the files' spans."""
    from smart_stream.domain.records import PlayMode
    from smart_stream.services.packs import pack_key

    root = live_server.app.state.services
    live_server.app.state.streams.drain()
    record = root.queues.get(name)
    for mode in (PlayMode.SEQUENTIAL, PlayMode.SHUFFLE):
        root.storage.delete_pack(pack_key(name, root.layouts.finite(record, mode)))
    root.packs.misses.clear()


def reread_stream_settings(live_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's device routes take the stream settings from the environment as it is
    now (a test changed it), keeping everything else (caches, adapters) as it was."""
    from dataclasses import replace

    from smart_stream.settings import Settings

    root = live_server.app.state.services
    settings = Settings.from_env()
    device = replace(
        root.device,
        chunk_bytes=settings.stream_chunk_bytes,
        session_seconds=settings.stream_session_seconds,
        session_bytes=settings.stream_session_bytes,
    )
    monkeypatch.setattr(root, "device", device)  # what the routes ask for at each request


@pytest.mark.parametrize(
    ("mode", "packed"), [("sequential", True), ("sequential", False), ("loop", False)]
)
def test_hanging_up_stops_storage_reads(live_server, client, monkeypatch, mode, packed):
    chunk = 16 * 1024
    audio_a = bare(6.0) * 30  # three minutes, about 2.9 MB
    audio_b = bare(6.0, 96) * 30
    book = (
        Track("Chapter 1.mp3", add_id3(b"", title="One") + audio_a, audio_a),
        Track("Chapter 2.mp3", add_id3(b"", title="Two") + audio_b, audio_b),
    )
    send(client, *book)
    files = [t.name for t in book] * 3
    queue = save(client, "book", {"files": files, "play_mode": mode}).json()
    total = 3 * (len(audio_a) + len(audio_b))
    monkeypatch.setenv("STREAM_CHUNK_BYTES", str(chunk))
    reread_stream_settings(live_server, monkeypatch)  # from the next request on
    live_server.app.state.streams.drain()  # the pack is written: its reads are not counted
    if not packed:
        drop_packs(live_server, "book")
    reads = StorageReads(monkeypatch)
    player = Player(queue["stream_url"])
    try:
        head, first = player.read_start()
        assert head.startswith(b"HTTP/1.1 200"), head
        if b"content-length" in head.lower():
            assert audio_a.startswith(split_stream(first, "book"))
        # The server fills the socket's buffers, then waits for the player.
        before = settled(reads)
        assert reads.opened >= 1
        from_pack = [n.startswith("packs/") for n in reads.names]
        assert from_pack == ([True] if packed else [False] * len(from_pack)), reads.names
        assert before < total // 2, "the server read most of the queue for a player that waits"
    finally:
        player.hang_up()
    after = settled(reads) - before
    assert after < chunk, f"{after} bytes read from storage after the player hung up"
    if mode == "loop":
        # The hang-up was in the middle of a file (the last one the server began: its buffers
        # may hold more than one file): the next request goes on with the file after it.
        playing = len(reads.names) - 1
        assert reads.names == files[: playing + 1]
        assert 0 < before - sum(len(book[i % 2].span) for i in range(playing)) < total // 6
        monkeypatch.setenv("STREAM_SESSION_BYTES", "40000")
        reread_stream_settings(live_server, monkeypatch)
        resumed = httpx.get(queue["stream_url"], timeout=30)
        assert resumed.status_code == 200
        following = book[(playing + 1) % 2].span
        assert following.startswith(split_stream(resumed.content, "book")), (
            "the stream did not go on with the file after the one hung up on"
        )
    # Still serving: the next player gets the stream.
    again = Player(queue["stream_url"])
    try:
        assert again.read_start()[0].startswith(b"HTTP/1.1 200")
    finally:
        again.hang_up()


# --- Restarts -------------------------------------------------------------------------------


def test_queues_survive_a_restart(live_server, client, three):
    from starlette.testclient import TestClient

    from local_server.app import create_app

    names = [t.name for t in three]
    body = {"files": names, "play_mode": "shuffle", "title": "Kept", "description": "for later"}
    queue = save(client, "kept", body).json()
    played = httpx.get(queue["stream_url"], timeout=30).content
    # A cold start: settings, adapters and clients made anew.
    restarted = create_app(Path(ROOT) / "template.yaml", fresh_services(), access_log=False)
    with TestClient(restarted, base_url=live_server.base_url) as fresh:
        got = fresh.get("/api/streams/kept/queue", headers=live_server.auth())
        assert got.status_code == 200
        assert got.json() == queue
        listed = fresh.get("/api/streams", headers=live_server.auth()).json()
        assert listed == {"queues": [queue]}
        again = fresh.get(
            urlsplit(queue["stream_url"]).path + "?" + urlsplit(queue["stream_url"]).query
        )
        assert again.status_code == 200
        assert again.content == played, "the same URL, another order after a restart"
