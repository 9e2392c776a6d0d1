"""The device routes' record cache: a few seconds of trust, and never an old record kept
after a write in this process forgot it."""

from __future__ import annotations

import threading

import pytest

from smart_stream.device.cache import DeviceCache
from tests.conftest import reset_caches


@pytest.fixture(autouse=True)
def ttl(monkeypatch):
    monkeypatch.setenv("DEVICE_CACHE_SECONDS", "60")
    reset_caches()


def test_a_record_is_read_once_then_served_from_the_cache():
    reads: list[str] = []

    def fetch(key: str) -> str:
        reads.append(key)
        return f"{key}-v{len(reads)}"

    cache = DeviceCache(fetch)
    assert cache.get("a") == "a-v1"
    assert cache.get("a") == "a-v1"
    cache.forget("a")
    assert cache.get("a") == "a-v2"
    assert reads == ["a", "a"]


def test_nothing_absent_is_kept():
    reads: list[str] = []

    def fetch(key: str) -> str | None:
        reads.append(key)
        return None

    cache = DeviceCache(fetch)
    assert cache.get("a") is None and cache.get("a") is None
    assert reads == ["a", "a"]


def test_a_read_that_began_before_a_write_is_not_kept_after_it():
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

    cache = DeviceCache(fetch)
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(cache.get("q")))
    reader.start()
    assert started.wait(5)
    cache.forget("q")  # the write lands while the read is under way
    release.set()
    reader.join(5)
    assert got == ["old"]
    assert cache.get("q") == "new", "the read from before the write was kept"


def test_no_cache_when_the_setting_is_zero(monkeypatch):
    monkeypatch.setenv("DEVICE_CACHE_SECONDS", "0")
    reset_caches()
    reads: list[str] = []

    def fetch(key: str) -> str:
        reads.append(key)
        return key

    cache = DeviceCache(fetch)
    cache.get("a")
    cache.get("a")
    assert reads == ["a", "a"]
