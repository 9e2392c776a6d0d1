"""The device routes' record cache: a few seconds of trust, and never an old record kept
after a write in this process forgot it. Time is the test's clock (no sleeps); the caches
the app uses belong to its ``Services`` and are told of writes by its change feed."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from smart_stream.bootstrap import Services, install, services
from smart_stream.device.cache import DeviceCache
from smart_stream.device.file_route import create_stream_app
from smart_stream.device.queue_route import create_queue_stream_app
from smart_stream.domain.asks import QueueChange
from smart_stream.domain.records import PlayMode
from smart_stream.settings import Settings
from tests.audio import make_mp3

BASE = "http://testserver"
TTL = 60.0


class FakeClock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def counting_fetch(reads: list[str]):
    def fetch(key: str) -> str:
        reads.append(key)
        return f"{key}-v{len(reads)}"

    return fetch


def test_a_record_is_read_once_then_served_from_the_cache(clock):
    reads: list[str] = []
    cache = DeviceCache(counting_fetch(reads), TTL, clock)
    assert cache.get("a") == "a-v1"
    clock.advance(TTL - 1)
    assert cache.get("a") == "a-v1"
    cache.forget("a")
    assert cache.get("a") == "a-v2"
    assert reads == ["a", "a"]


def test_a_record_is_read_again_once_its_time_is_up(clock):
    reads: list[str] = []
    cache = DeviceCache(counting_fetch(reads), TTL, clock)
    assert cache.get("a") == "a-v1"
    clock.advance(TTL - 0.001)
    assert cache.get("a") == "a-v1"
    clock.advance(0.001)
    assert cache.get("a") == "a-v2", "a record trusted past its time"
    assert cache.get("a") == "a-v2"
    assert reads == ["a", "a"]


def test_clear_forgets_everything(clock):
    reads: list[str] = []
    cache = DeviceCache(counting_fetch(reads), TTL, clock)
    cache.get("a")
    cache.get("b")
    cache.clear()
    assert (cache.get("a"), cache.get("b")) == ("a-v3", "b-v4")
    assert reads == ["a", "b", "a", "b"]


def test_nothing_absent_is_kept(clock):
    reads: list[str] = []

    def fetch(key: str) -> str | None:
        reads.append(key)
        return None

    cache = DeviceCache(fetch, TTL, clock)
    assert cache.get("a") is None and cache.get("a") is None
    assert reads == ["a", "a"]


def test_a_read_that_began_before_a_write_is_not_kept_after_it(clock):
    """A read under way while a write forgets the key returns what it read, but keeps
    nothing: the next request reads the written record."""
    started, release = threading.Event(), threading.Event()
    versions = iter(["old", "new"])

    def fetch(key: str) -> str:
        value = next(versions)
        if value == "old":
            started.set()
            release.wait(5)
        return value

    cache = DeviceCache(fetch, TTL, clock)
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(cache.get("q")))
    reader.start()
    assert started.wait(5)
    cache.forget("q")  # the write lands while the read is under way
    release.set()
    reader.join(5)
    assert got == ["old"]
    assert cache.get("q") == "new", "the read from before the write was kept"


def test_no_cache_when_the_ttl_is_zero(clock):
    reads: list[str] = []
    cache = DeviceCache(counting_fetch(reads), 0, clock)
    cache.get("a")
    cache.get("a")
    assert reads == ["a", "a"]


@pytest.mark.parametrize(("setting", "reads_of_two_gets"), [("0", 2), ("60", 1)])
def test_the_app_caches_follow_the_setting(
    local_env, monkeypatch, clock, setting, reads_of_two_gets
):
    """DEVICE_CACHE_SECONDS is the lifetime of the caches the services build (0: none)."""
    monkeypatch.setenv("DEVICE_CACHE_SECONDS", setting)
    root = Services(Settings.from_env(), clock=clock)
    reads: list[str] = []
    catalog_type = type(root.catalog)
    real_get_audio, real_get_queue = catalog_type.get_audio, catalog_type.get_queue

    def get_audio(self, filename):
        reads.append(filename)
        return real_get_audio(self, filename)

    def get_queue(self, name):
        reads.append(name)
        return real_get_queue(self, name)

    monkeypatch.setattr(catalog_type, "get_audio", get_audio)
    monkeypatch.setattr(catalog_type, "get_queue", get_queue)
    data = make_mp3(0.3)
    root.library.upload("a.mp3", io.BytesIO(data), len(data), overwrite=False)
    root.queues.put("q", QueueChange(files=["a.mp3"]))
    device = root.device
    for cache, key in ((device.audio_records, "a.mp3"), (device.queue_records, "q")):
        reads.clear()
        assert cache.get(key) is not None and cache.get(key) is not None
        assert reads == [key] * reads_of_two_gets


# --- The app's caches and the change feed ---------------------------------------------------


@pytest.fixture
def process(app_env, monkeypatch, clock) -> Services:
    """The process's services on every backend, with caches trusted for a minute of a clock
    that only the test moves: whatever a request sees afresh, no cache expired to show it."""
    monkeypatch.setenv("DEVICE_CACHE_SECONDS", str(TTL))
    built = Services(Settings.from_env(), clock=clock)
    install(built)
    return built


@pytest.fixture
def audio_client(process) -> Iterator[TestClient]:
    with TestClient(create_stream_app(lambda: services().device), base_url=BASE) as client:
        yield client


@pytest.fixture
def queue_client(process) -> Iterator[TestClient]:
    app = create_queue_stream_app(lambda: services().device)
    with TestClient(app, base_url=BASE) as client:
        yield client


def device_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def upload(process: Services, name: str, data: bytes, *, overwrite: bool = False):
    return process.library.upload(name, io.BytesIO(data), len(data), overwrite=overwrite)


def test_a_revoked_file_url_is_refused_at_once_in_this_process(process, audio_client):
    record = upload(process, "story.mp3", make_mp3(0.4, title="Story"))
    old = device_path(process.urls.audio(record, BASE))
    assert audio_client.get(old).status_code == 200  # its record is cached now
    assert process.device.audio_records.get("story.mp3") is not None
    revoked = process.library.revoke_url("story.mp3")
    assert audio_client.get(old).status_code == 403, "the cached record outlived the revoke"
    assert audio_client.get(device_path(process.urls.audio(revoked, BASE))).status_code == 200


def test_a_file_replaced_in_this_process_is_served_new_at_once(process, audio_client):
    record = upload(process, "story.mp3", make_mp3(0.4, title="Story"))
    path = device_path(process.urls.audio(record, BASE))
    first = audio_client.get(path)
    assert first.status_code == 200
    newer = make_mp3(0.9, title="Story, longer")
    upload(process, "story.mp3", newer, overwrite=True)
    # A HEAD answers from the record alone (no storage read to find the object changed).
    head = audio_client.head(path)
    assert head.headers["content-length"] == str(len(newer)), "the cached record outlived it"
    assert head.headers["etag"] != first.headers["etag"]
    second = audio_client.get(path)
    assert second.status_code == 200
    assert second.content == newer
    assert second.headers["etag"] == head.headers["etag"]


def test_a_queue_put_or_revoke_in_this_process_is_seen_at_once(process, queue_client):
    for name, seconds in (("a.mp3", 0.4), ("b.mp3", 0.6)):
        upload(process, name, make_mp3(seconds))
    record = process.queues.put("q", QueueChange(files=["a.mp3"]))[1]
    path = device_path(process.urls.queue(record, BASE))
    first = queue_client.get(path)
    assert first.status_code == 200
    process.queues.put("q", QueueChange(files=["a.mp3", "b.mp3"], play_mode=PlayMode.SEQUENTIAL))
    second = queue_client.get(path)
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"], "the cached queue outlived the put"
    assert len(second.content) > len(first.content)
    revoked = process.queues.revoke_url("q")
    assert queue_client.get(path).status_code == 403, "the cached queue outlived the revoke"
    assert queue_client.get(device_path(process.urls.queue(revoked, BASE))).status_code == 200
    process.queues.delete("q", force=False)
    assert queue_client.get(path).status_code == 404


def test_a_write_by_another_process_is_seen_once_the_cache_time_is_up(
    process, audio_client, clock, monkeypatch
):
    """The other side of the trade: a write this process did not make (another warm
    function's) is not told to its caches, and is seen within DEVICE_CACHE_SECONDS. This is
    what shows the caches above do cache, and that the change feed is what made them forget."""
    record = upload(process, "story.mp3", make_mp3(0.4, title="Story"))
    old = device_path(process.urls.audio(record, BASE))
    assert audio_client.get(old).status_code == 200
    elsewhere = Services(Settings.from_env(), clock=clock)  # the same stores, another feed
    elsewhere.library.revoke_url("story.mp3")
    assert audio_client.get(old).status_code == 200, "trusted for DEVICE_CACHE_SECONDS"
    clock.advance(TTL)
    assert audio_client.get(old).status_code == 403
