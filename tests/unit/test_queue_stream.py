"""The queue device route in process (Starlette's TestClient over the real app), on every
backend: what a player receives. Finite modes answer like one file (exact length, strong
ETag, ranges at and across every join, conditions, HEAD that reads no audio); open modes end
on a frame boundary and the next request on the same URL carries on where the last stopped.

The MP3s are real (lameenc) and carry what real files carry: ID3v2 at the front, a LAME-style
Info frame, an APEv2 tag and an ID3v1 tag at the end. Each file's audio span is known here
from how it was built, not from the code under test."""

from __future__ import annotations

import functools
import io
import itertools
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from smart_stream.adapters.aws.s3 import S3Storage
from smart_stream.adapters.local import directory as local_storage
from smart_stream.adapters.local.directory import LocalDirectoryStorage
from smart_stream.audio.frames import parse_frame_header
from smart_stream.bootstrap import Services, install, services
from smart_stream.device.open_stream import OpenStream
from smart_stream.device.queue_route import create_queue_stream_app
from smart_stream.domain.asks import QueueChange
from smart_stream.domain.play_order import cursor_key, round_order
from smart_stream.domain.records import PlayMode, QueueRecord
from smart_stream.http.views import Queue, Views
from smart_stream.ports import ObjectStream
from smart_stream.settings import Settings
from tests.audio import add_id3, decode_pcm, make_mp3
from tests.conftest import TOKEN

BASE = "http://testserver"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
MARKERS = (b"ID3", b"3DI", b"TAG", b"APETAGEX", b"LYRICS", b"Xing", b"Info", b"VBRI")


# --- Real MP3s with every tag a real file carries ------------------------------------------


@functools.cache
def bare(seconds: float, kbps: int = 128, rate: int = 44100, channels: int = 2) -> bytes:
    """Frames only (lameenc writes no tags and no header frame), made once per run."""
    return make_mp3(seconds, sample_rate=rate, channels=channels, bitrate=kbps)


def info_frame(audio: bytes, kind: str = "Info") -> bytes:
    """A silent frame of ``audio``'s stream carrying a Xing/Info header (flags, frame count,
    byte count, quality) after the side information, as LAME writes it."""
    first = parse_frame_header(audio, 0)
    assert first is not None and not first.protected
    raw = bytearray(audio[:4])
    raw[2] &= ~0x02  # no padding bit
    length = parse_frame_header(bytes(raw) + b"\x00" * 4, 0).length
    count = len(frame_offsets(audio)) - 1
    frame = bytearray(length)
    frame[:4] = raw
    payload = kind.encode() + struct.pack(">IIII", 0x1 | 0x2 | 0x8, count, length + len(audio), 60)
    at = 4 + first.side_info_size
    frame[at : at + len(payload)] = payload
    return bytes(frame)


def apev2(title: str) -> bytes:
    value = title.encode()
    body = struct.pack("<II", len(value), 0) + b"Title\x00" + value
    size = len(body) + 32

    def block(is_header: bool) -> bytes:
        flags = 0x80000000 | (0x20000000 if is_header else 0)
        return b"APETAGEX" + struct.pack("<IIII", 2000, size, 1, flags) + b"\x00" * 8

    return block(True) + body + block(False)


def id3v1(title: str) -> bytes:
    def pad(text: str, n: int) -> bytes:
        return text.encode("latin-1")[:n].ljust(n, b"\x00")

    tag = b"TAG" + pad(title, 30) + pad("Mum", 30) + pad("Evenings", 30) + b"2024" + pad("", 30)
    tag += b"\x0c"  # genre
    assert len(tag) == 128
    return tag


@dataclass(frozen=True)
class Track:
    name: str
    data: bytes  # the whole file as uploaded
    span: bytes  # its audio frames alone: what a queue stream must carry of it


def track(name: str, seconds: float, kbps: int = 128, header: str = "Info", **shape: int) -> Track:
    """A tagged MP3: ID3v2 + Info (or Xing) frame + audio + APEv2 + ID3v1."""
    audio = bare(seconds, kbps, **shape)
    title = name.removesuffix(".mp3")
    data = add_id3(b"", title=title, artist="Mum") + info_frame(audio, header) + audio
    data += apev2(title) + id3v1(title)
    return Track(name, data, audio)


def frame_offsets(audio: bytes) -> list[int]:
    """Offsets of each whole frame walked from 0, and the end of the last one."""
    offsets = [0]
    while offsets[-1] < len(audio):
        header = parse_frame_header(audio, offsets[-1])
        if header is None or offsets[-1] + header.length > len(audio):
            break
        offsets.append(offsets[-1] + header.length)
    return offsets


def leading_tag(body: bytes) -> int:
    """The length of the one ID3v2 tag a stream starts with (0 if none)."""
    if body[:3] != b"ID3":
        return 0
    size = 0
    for b in body[6:10]:
        size = (size << 7) | b
    return 10 + size + (10 if body[5] & 0x10 else 0)


def split_stream(body: bytes, title: str) -> bytes:
    """Check the stream's head (exactly one ID3v2 tag, carrying ``title``) and return the
    audio after it."""
    from mutagen.id3 import ID3

    n = leading_tag(body)
    assert n > 0, f"no title tag at the start: {body[:16]!r}"
    tag = ID3(io.BytesIO(body[:n]))
    assert str(tag["TIT2"]) == title
    return body[n:]


def assert_clean_audio(audio: bytes) -> None:
    """Whole frames from the first byte to the last, no tag or header marker anywhere."""
    offsets = frame_offsets(audio)
    assert offsets[-1] == len(audio), f"not whole frames: stops at {offsets[-1]} of {len(audio)}"
    for marker in MARKERS:
        assert marker not in audio, f"{marker!r} at {audio.find(marker)} of the stream's audio"


def decode_frames(data: bytes) -> int:
    return decode_pcm(data).num_frames


# --- The app under test ---------------------------------------------------------------------


class FakeClock:
    """Monotonic seconds that move only when the test says: by ``advance``, or by ``step`` at
    every reading. Deadlines read it, so no test races the machine's speed."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.readings = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.readings += 1
            self.now += self.step
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def install_clock(clock: Callable[[], float]) -> Services:
    """The process's services from now on: the environment as it is, the test's clock."""
    root = Services(Settings.from_env(), clock=clock)
    install(root)
    return root


@pytest.fixture
def env(app_env, monkeypatch):
    """Every backend, with small storage reads so that one file takes several."""
    monkeypatch.setenv("STREAM_CHUNK_BYTES", "4096")
    install(None)
    return app_env


@pytest.fixture
def client(env) -> Iterator[TestClient]:
    # The provider is asked at each request: services installed later in a test are used.
    app = create_queue_stream_app(lambda: services().device)
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def store(*tracks: Track, overwrite: bool = True) -> None:
    library = services().library
    for t in tracks:
        library.upload(t.name, io.BytesIO(t.data), len(t.data), overwrite=overwrite)


def make_queue(name: str, tracks, mode: str = "sequential", title: str | None = None) -> Queue:
    """Save a queue; its contract JSON (the device URL included), as the API answers it."""
    root = services()
    change = QueueChange(files=[t.name for t in tracks], play_mode=PlayMode(mode), title=title)
    record = root.queues.put(name, change)[1]
    return Views(root.urls, BASE).queue(record)


def open_stream(record: QueueRecord, mode: PlayMode, key: str, **overrides) -> OpenStream:
    """An open stream session as the queue route makes it, from the installed services'
    device context (``overrides``: any of OpenStream's keyword arguments)."""
    device = services().device
    kwargs = {
        "catalog": device.catalog,
        "storage": device.storage,
        "title_tag": device.layouts.title_tag(record.title),
        "clock": device.clock,
        "session_seconds": device.session_seconds,
        "session_bytes": device.session_bytes,
        "chunk_size": device.chunk_bytes,
    }
    kwargs.update(overrides)
    return OpenStream(record, mode, key, **kwargs)


def device_path(queue) -> str:
    """The path and query of the queue's device URL (its credential included)."""
    parts = urlsplit(queue.stream_url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def three(env):
    """Three tagged files of one stream shape, different lengths and bitrates (so that no
    file's frames look like another's)."""
    tracks = (
        track("one.mp3", 0.8, 96),
        track("two.mp3", 1.1, 128, header="Xing"),
        track("three.mp3", 0.6, 160),
    )
    store(*tracks)
    return tracks


class StorageReads:
    """Counts reads made through either storage adapter: objects opened (in order) and bytes
    read. S3 reads go through ``open_range``; the local adapter's ``read_spans`` reads with
    ``os.open``/``os.preadv`` into its own buffers, so those are counted where it calls them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = 0
        self.bytes = 0
        self.names: list[str] = []  # each read's object, in order
        for adapter in (LocalDirectoryStorage, S3Storage):
            monkeypatch.setattr(adapter, "open_range", self._wrap(adapter.open_range))
        monkeypatch.setattr(local_storage, "os", _CountingOs(self))

    def _wrap(self, original):
        counter = self

        def open_range(storage, *args, **kwargs):
            stream = original(storage, *args, **kwargs)
            counter.opened += 1
            counter.names.append(args[0] if args else kwargs["name"])

            def counted() -> Iterator[bytes]:
                for chunk in stream:
                    counter.bytes += len(chunk)
                    yield chunk

            return ObjectStream(stream.info, counted(), stream.close)

        return open_range


class _CountingOs:
    """``os`` as the local storage module sees it, with its opens and reads counted."""

    def __init__(self, counter: StorageReads) -> None:
        self._counter = counter

    def __getattr__(self, name: str):
        return getattr(os, name)

    def open(self, path, flags, *args):
        fd = os.open(path, flags, *args)
        self._counter.opened += 1
        self._counter.names.append(os.path.basename(path))
        return fd

    def preadv(self, fd, buffers, offset):
        got = os.preadv(fd, buffers, offset)
        self._counter.bytes += got
        return got


# --- Finite modes ---------------------------------------------------------------------------


def test_sequential_is_title_tag_then_each_files_audio_and_nothing_else(client, three):
    queue = make_queue("bedtime", three, title="Bedtime Songs")
    response = client.get(device_path(queue))
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    body = response.content
    assert response.headers["content-length"] == str(len(body))
    audio = split_stream(body, "Bedtime Songs")
    assert audio == b"".join(t.span for t in three)
    assert_clean_audio(audio)
    joined = decode_frames(body)
    expected = sum(decode_frames(t.span) for t in three)
    assert abs(joined - expected) <= 1152 * (len(three) - 1)


def test_the_bearer_token_plays_the_same_bytes_and_a_wrong_credential_is_403(client, three):
    queue = make_queue("bedtime", three)
    with_credential = client.get(device_path(queue))
    with_token = client.get(urlsplit(queue.stream_url).path, headers=BEARER)
    assert with_token.status_code == 200
    assert with_token.content == with_credential.content
    forged = client.get(urlsplit(queue.stream_url).path + "?sig=AAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 403
    assert forged.json()["code"]
    assert client.get(urlsplit(queue.stream_url).path).status_code == 403


def test_ranges_at_and_across_every_join_are_the_bytes_of_the_full_response(client, three):
    queue = make_queue("bedtime", three)
    path = device_path(queue)
    full = client.get(path)
    body, etag, size = full.content, full.headers["etag"], len(full.content)
    joins = [leading_tag(body)]
    for t in three:
        joins.append(joins[-1] + len(t.span))
    assert joins[-1] == size
    wanted: set[tuple[int, int]] = {(0, 0), (0, size - 1), (size - 1, size - 1)}
    for b in joins[:-1]:
        for lo, hi in ((b - 1, b), (b, b), (b - 1, b - 1), (b - 3, b + 3), (b, b + 4095)):
            if 0 <= lo <= hi:
                wanted.add((lo, min(hi, size - 1)))
    for a, b in itertools.pairwise(joins):
        wanted.add((a - 5 if a >= 5 else 0, min(b + 5, size - 1)))  # a whole file and a bit
    wanted.add((joins[0] + 7, joins[-2] + 11))  # across both joins
    for lo, hi in sorted(wanted):
        part = client.get(path, headers={"Range": f"bytes={lo}-{hi}"})
        assert part.status_code == 206, (lo, hi)
        assert part.headers["content-range"] == f"bytes {lo}-{hi}/{size}"
        assert part.headers["content-length"] == str(hi - lo + 1)
        assert part.headers["etag"] == etag
        assert part.content == body[lo : hi + 1], (lo, hi)
    for n in (1, 100, joins[-1] - joins[-2] + 1, size, size + 50):
        tail = client.get(path, headers={"Range": f"bytes=-{n}"})
        assert tail.status_code == 206
        assert tail.content == body[-n:]
        assert tail.headers["content-range"] == f"bytes {max(size - n, 0)}-{size - 1}/{size}"
    for a in (1, joins[1], joins[2] - 1, size - 1):
        rest = client.get(path, headers={"Range": f"bytes={a}-"})
        assert rest.status_code == 206
        assert rest.content == body[a:]
    for a in (size, size + 1000):
        past = client.get(path, headers={"Range": f"bytes={a}-"})
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{size}"


def test_conditions_if_range_and_if_none_match(client, three):
    queue = make_queue("bedtime", three)
    path = device_path(queue)
    full = client.get(path)
    etag = full.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), "a strong ETag"
    fresh = client.get(path, headers={"Range": "bytes=100-199", "If-Range": etag})
    assert fresh.status_code == 206
    assert fresh.content == full.content[100:200]
    stale = client.get(path, headers={"Range": "bytes=100-199", "If-Range": '"q-stale"'})
    assert stale.status_code == 200
    assert stale.content == full.content
    same = client.get(path, headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    other = client.get(path, headers={"If-None-Match": '"q-other"'})
    assert other.status_code == 200
    assert other.content == full.content


def test_head_answers_the_same_headers_and_reads_no_audio(client, three, monkeypatch):
    queue = make_queue("bedtime", three)
    path = device_path(queue)
    full = client.get(path)
    reads = StorageReads(monkeypatch)
    head = client.head(path)
    ranged = client.head(path, headers={"Range": "bytes=10-19"})
    assert reads.opened == 0 and reads.bytes == 0, "HEAD read audio from storage"
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "etag", "content-type", "accept-ranges", "last-modified"):
        assert head.headers[name] == full.headers[name], name
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(full.content)}"
    assert ranged.content == b""
    # The counter does count: a GET reads every file once.
    client.get(path)
    assert reads.opened == len(three)
    assert reads.bytes == sum(len(t.span) for t in three)


def test_the_etag_changes_when_the_queue_changes_or_a_file_is_replaced(client, three):
    queue = make_queue("bedtime", three)
    first = client.get(device_path(queue))
    again = client.get(device_path(queue))
    assert again.headers["etag"] == first.headers["etag"]
    replaced = make_queue("bedtime", three)  # the same files, saved again: a new version
    second = client.get(device_path(replaced))
    assert second.headers["etag"] != first.headers["etag"]
    newer = track("two.mp3", 1.4, 128)
    store(newer)
    # What the metadata pipeline does for every new object version, whatever route wrote it.
    root = services()
    root.pipeline.object_created(root.storage.head("two.mp3"), sequencer=None)
    third = client.get(device_path(replaced))
    assert third.status_code == 200, third.text
    assert third.headers["etag"] not in (first.headers["etag"], second.headers["etag"])
    assert split_stream(third.content, "bedtime") == three[0].span + newer.span + three[2].span
    assert third.headers["content-length"] == str(len(third.content))


def four_tracks() -> tuple[Track, ...]:
    return tuple(
        track(f"s{i}.mp3", 0.3 + 0.1 * i, kbps) for i, kbps in enumerate((96, 112, 128, 160))
    )


def order_of(audio: bytes, tracks) -> list[str]:
    """Which files, in which order, make up ``audio`` (whole files only)."""
    names, pos = [], 0
    while pos < len(audio):
        found = [t for t in tracks if audio.startswith(t.span, pos)]
        assert len(found) == 1, f"no file's audio at {pos}"
        names.append(found[0].name)
        pos += len(found[0].span)
    return names


def test_shuffle_is_stable_per_url_and_redrawn_when_the_queue_changes(client, env):
    tracks = four_tracks()
    store(*tracks)
    names = sorted(t.name for t in tracks)
    queue = make_queue("mix", tracks, "shuffle")
    first = client.get(device_path(queue))
    assert first.headers["content-length"] == str(len(first.content))
    order = order_of(split_stream(first.content, "mix"), tracks)
    assert sorted(order) == names
    for _ in range(2):
        again = client.get(device_path(queue))
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
    # A Range request on the same URL sees the same order.
    mid = len(first.content) // 2
    part = client.get(device_path(queue), headers={"Range": f"bytes={mid}-{mid + 999}"})
    assert part.content == first.content[mid : mid + 1000]
    orders = {tuple(order)}
    for _ in range(6):
        queue = make_queue("mix", tracks, "shuffle")
        response = client.get(device_path(queue))
        new_order = order_of(split_stream(response.content, "mix"), tracks)
        assert sorted(new_order) == names
        assert response.headers["etag"] != first.headers["etag"]
        orders.add(tuple(new_order))
    assert len(orders) > 1, "seven saves of the queue, always the same shuffle"


def test_play_mode_override_shuffles_a_sequential_queue(client, env):
    tracks = four_tracks()
    store(*tracks)
    queue = make_queue("mix", tracks, "sequential")
    path = device_path(queue)
    plain = client.get(path)
    assert order_of(split_stream(plain.content, "mix"), tracks) == [t.name for t in tracks]
    shuffled = client.get(path + "&play_mode=shuffle")
    assert shuffled.status_code == 200
    order = order_of(split_stream(shuffled.content, "mix"), tracks)
    assert sorted(order) == sorted(t.name for t in tracks)
    assert shuffled.headers["etag"] != plain.headers["etag"]
    assert client.get(path + "&play_mode=shuffle").content == shuffled.content
    # The override is the record's seed's order, as a shuffle queue of these files plays.
    expected = round_order(services().catalog.get_queue("mix"), PlayMode.SHUFFLE, 0)
    assert order == [tracks[i].name for i in expected]
    bad = client.get(path + "&play_mode=backwards")
    assert bad.status_code == 422
    assert bad.json()["code"]


# --- Open modes -----------------------------------------------------------------------------


@pytest.fixture
def short_sessions(env, monkeypatch):
    """Open streams that end after about 15 KB (a simulated deadline)."""
    monkeypatch.setenv("STREAM_SESSION_BYTES", "15000")
    install(None)


def sessions(client: TestClient, path: str, count: int, title: str, **kw) -> list[bytes]:
    """``count`` consecutive open-stream responses' audio, each checked to be a clean MP3
    that ends on a frame boundary."""
    out = []
    for _ in range(count):
        response = client.get(path, **kw)
        assert response.status_code == 200, response.text
        assert "content-length" not in response.headers, "an open stream has no length"
        audio = split_stream(response.content, title)
        assert audio, "a session carried no audio"
        assert_clean_audio(audio)
        decode_frames(response.content)  # decodes without error
        out.append(audio)
    return out


def test_loop_carries_on_where_the_last_response_stopped(client, three, short_sessions):
    queue = make_queue("forever", three, "loop")
    parts = sessions(client, device_path(queue), 8, "forever")
    heard = b"".join(parts)
    cycle = b"".join(t.span for t in three)
    expected = cycle * (len(heard) // len(cycle) + 1)
    assert len(heard) > 2 * len(cycle), "eight sessions should go round the queue twice"
    assert heard == expected[: len(heard)], "a repeat, a skip or a restart between sessions"
    assert all(len(p) <= 15000 for p in parts)


def paced(monkeypatch: pytest.MonkeyPatch, wait: Callable[[], None]) -> None:
    """Storage that takes its time, as a network does: ``wait`` before each chunk of every
    read through either adapter's ``open_range`` (what open streams read with)."""

    def slow(original_open):
        def open_range(storage, *args, **kwargs):
            stream = original_open(storage, *args, **kwargs)

            def chunks() -> Iterator[bytes]:
                for chunk in stream:
                    wait()
                    yield chunk

            return ObjectStream(stream.info, chunks(), stream.close)

        return open_range

    for adapter in (LocalDirectoryStorage, S3Storage):
        monkeypatch.setattr(adapter, "open_range", slow(adapter.open_range))


def test_a_session_deadline_in_seconds_ends_cleanly_too(client, three, monkeypatch):
    """The deadline ends a session on a frame boundary, and the next one carries on. Time is
    the test's clock: each chunk read "takes" 1/64 s of it, so the 1/8 s deadline falls
    after the same reads on any machine, however loaded."""
    monkeypatch.setenv("STREAM_SESSION_SECONDS", str(1 / 8))
    clock = FakeClock()
    install_clock(clock)
    paced(monkeypatch, lambda: clock.advance(1 / 64))
    queue = make_queue("forever", three, "loop")
    parts = sessions(client, device_path(queue), 4, "forever")
    heard = b"".join(parts)
    cycle = b"".join(t.span for t in three)
    assert clock.readings > 0, "the open stream did not read the injected clock"
    assert 4096 < len(parts[0]) < len(cycle), "the deadline did not end the first session"
    assert heard == (cycle * (len(heard) // len(cycle) + 1))[: len(heard)]


def test_a_session_that_starts_past_its_deadline_still_plays_one_frame_run(
    client, three, monkeypatch
):
    """A session whose deadline has passed before its first frame run (a late start, a busy
    machine) still carries one whole frame run after the title tag, and the next session on
    the URL carries on after it: the player always moves forward, never stuck replaying
    silence."""
    monkeypatch.setenv("STREAM_SESSION_SECONDS", "0.001")
    clock = FakeClock(step=60.0)  # every reading a minute after the last
    install_clock(clock)
    queue = make_queue("forever", three, "loop")
    parts = sessions(client, device_path(queue), 30, "forever")
    assert clock.readings > 0, "the open stream did not read the injected clock"
    # One frame run each: what one 4 KB storage read holds, cut to whole frames.
    assert all(0 < len(p) <= 4096 for p in parts), [len(p) for p in parts]
    heard = b"".join(parts)
    cycle = b"".join(t.span for t in three)
    assert heard == (cycle * (len(heard) // len(cycle) + 1))[: len(heard)], (
        "a repeat, a skip or a restart between sessions"
    )
    assert len(heard) > 2 * len(cycle), "30 one-run sessions should go round the queue twice"


@pytest.mark.parametrize("limit", ["deadline", "bytes"])
def test_an_open_stream_over_its_limit_sends_the_title_tag_then_one_frame_run(env, three, limit):
    """OpenStream itself, with its clock injected: however spent its session is before the
    first frame run (a deadline already passed, a byte budget smaller than the title tag),
    each session is the title tag then one whole frame run, and consecutive sessions walk
    through the queue's audio without a repeat or a gap."""
    make_queue("forever", three, "loop")
    record = services().catalog.get_queue("forever")
    key = cursor_key("forever", PlayMode.LOOP, "one-device-url")
    title = services().layouts.title_tag("forever")

    def session() -> list[bytes]:
        if limit == "deadline":
            # The deadline is set at 0 s; every later reading is past it.
            readings = itertools.chain([0.0], itertools.repeat(100.0))
            limits = {"clock": lambda: next(readings), "session_seconds": 1.0}
        else:
            limits = {"clock": lambda: 0.0, "session_bytes": 1}
        stream = open_stream(record, PlayMode.LOOP, key, chunk_size=4096, **limits)
        return [bytes(chunk) for chunk in stream.chunks()]

    cycle = b"".join(t.span for t in three)
    heard = b""
    for _ in range(30):
        chunks = session()
        assert len(chunks) == 2 and chunks[0] == title, [len(c) for c in chunks]
        run = chunks[1]
        assert 0 < len(run) <= 4096
        assert_clean_audio(run)
        heard += run
    assert heard == (cycle * 3)[: len(heard)], "a repeat, a skip or a restart between sessions"
    assert len(heard) > 2 * len(cycle)


def test_endless_shuffle_over_sessions_plays_every_file_once_per_round(client, env, monkeypatch):
    monkeypatch.setenv("STREAM_SESSION_BYTES", "9000")
    install(None)
    tracks = four_tracks()
    store(*tracks)
    queue = make_queue("dream", tracks, "endless-shuffle")
    heard = b"".join(sessions(client, device_path(queue), 14, "dream"))
    by_name = {t.name: t for t in tracks}
    record = services().catalog.get_queue("dream")
    expected: list[str] = []
    for round_no in range(12):
        expected += [tracks[i].name for i in round_order(record, queue.play_mode, round_no)]
    pos = 0
    played = []
    for name in expected:
        span = by_name[name].span
        if pos + len(span) > len(heard):
            assert span.startswith(heard[pos:]), "the last session stopped inside another file"
            break
        assert heard[pos : pos + len(span)] == span, f"file {len(played)} is not {name}"
        played.append(name)
        pos += len(span)
    assert len(played) >= 3 * len(tracks), "fewer than three rounds heard"
    assert all(a != b for a, b in itertools.pairwise(played)), played
    for r in range(len(played) // len(tracks)):
        assert sorted(played[r * 4 : r * 4 + 4]) == sorted(by_name), played


def test_two_device_urls_keep_their_own_cursors(client, three, short_sessions):
    queue = make_queue("forever", three, "loop")
    cycle = b"".join(t.span for t in three)
    by_credential = sessions(client, device_path(queue), 2, "forever")
    by_token = sessions(client, urlsplit(queue.stream_url).path, 1, "forever", headers=BEARER)
    assert cycle.startswith(by_token[0]), "the bearer URL did not start at the top"
    third = sessions(client, device_path(queue), 1, "forever")
    heard = b"".join(by_credential + third)
    assert heard == (cycle * 3)[: len(heard)]
    # Another play mode on the same URL is another stream, with its own cursor.
    other = sessions(client, device_path(queue) + "&play_mode=endless-shuffle", 1, "forever")
    assert any(other[0].startswith(t.span[:2000]) for t in three)


def test_a_disconnect_mid_file_resumes_at_the_next_file(client, three, short_sessions):
    queue = make_queue("forever", three, "loop")
    record = services().catalog.get_queue("forever")
    credential = urlsplit(queue.stream_url).query.partition("sig=")[2]
    key = cursor_key("forever", PlayMode.LOOP, credential)
    chunks = open_stream(record, PlayMode.LOOP, key).chunks()
    assert next(chunks).startswith(b"ID3")
    first = next(chunks)
    assert three[0].span.startswith(first) and len(first) < len(three[0].span)
    chunks.close()  # the player hung up in the middle of the first file
    resumed = sessions(client, device_path(queue), 1, "forever")[0]
    assert resumed.startswith(three[1].span[: min(len(resumed), len(three[1].span))]), (
        "after a hang-up the stream did not go on with the next file"
    )


def test_replacing_the_queue_restarts_at_the_top(client, three, short_sessions):
    queue = make_queue("forever", three, "loop")
    path = device_path(queue)
    first = sessions(client, path, 1, "forever")[0]
    assert len(three[0].span) < len(first) < len(three[0].span) + len(three[1].span)
    # Stopped inside the second file; the queue is replaced by another three.
    make_queue("forever", (three[2], three[0], three[1]), "loop")
    after = sessions(client, path, 3, "forever")
    cycle = three[2].span + three[0].span + three[1].span
    heard = b"".join(after)
    assert heard == (cycle * 4)[: len(heard)]


def test_head_of_an_open_stream_reads_nothing(client, three, short_sessions, monkeypatch):
    queue = make_queue("forever", three, "loop")
    reads = StorageReads(monkeypatch)
    head = client.head(device_path(queue))
    assert head.status_code == 200
    assert head.headers["content-type"] == "audio/mpeg"
    assert head.content == b""
    assert reads.opened == 0
    # and it moved no cursor: the first GET starts at the top
    first = sessions(client, device_path(queue), 1, "forever")[0]
    assert three[0].span.startswith(first[:1000])
