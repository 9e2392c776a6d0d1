"""One contract for every Storage adapter (a local directory; S3 in moto): what is stored,
read back, listed and removed, byte for byte, and what is never left behind."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_stream.errors import (
    AudioExistsError,
    AudioNotFoundError,
    InvalidFilenameError,
    ObjectChangedError,
)
from smart_stream.storage import Span, Storage, get_storage

DATA = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes, every offset distinguishable


@pytest.fixture
def storage(app_env) -> Storage:
    return get_storage()


def put(storage: Storage, name: str, data: bytes = DATA, **kwargs):
    return storage.put(name, io.BytesIO(data), **kwargs)


def read(storage: Storage, name: str, start: int = 0, end: int | None = None, **kwargs) -> bytes:
    stream = storage.open_range(name, start, end, **kwargs)
    try:
        return b"".join(stream)
    finally:
        stream.close()


def names_in(storage: Storage) -> list[str]:
    return sorted(info.name for info in storage.iter_objects())


class ExplodingSource(io.RawIOBase):
    """A client that goes away mid-upload: some bytes arrive, then reading fails."""

    def __init__(self, good: bytes) -> None:
        self._good = io.BytesIO(good)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        chunk = self._good.read(size if size and size > 0 else 4096)
        if chunk:
            return chunk
        raise ConnectionResetError("the client went away")

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_put_head_exists_list_delete(storage):
    """Given an empty store, when a file is put, then it is there with its size and a strong
    etag, listed, and readable; once deleted it is gone everywhere."""
    assert not storage.exists("story.mp3")
    assert names_in(storage) == []

    info = put(storage, "story.mp3")

    assert info.name == "story.mp3"
    assert info.size == len(DATA)
    assert info.etag.startswith('"') and info.etag.endswith('"') and len(info.etag) > 2
    assert info.last_modified.tzinfo is not None
    head = storage.head("story.mp3")
    assert (head.size, head.etag) == (info.size, info.etag)
    assert storage.exists("story.mp3")
    listed = list(storage.iter_objects())
    assert [(i.name, i.size, i.etag) for i in listed] == [("story.mp3", len(DATA), info.etag)]
    assert read(storage, "story.mp3") == DATA

    storage.delete("story.mp3")

    assert not storage.exists("story.mp3")
    assert names_in(storage) == []
    with pytest.raises(AudioNotFoundError):
        storage.head("story.mp3")
    with pytest.raises(AudioNotFoundError):
        storage.delete("story.mp3")


def test_overwrite_replaces_the_bytes_and_moves_the_etag(storage):
    first = put(storage, "story.mp3", b"old bytes")
    second = put(storage, "story.mp3", b"brand new bytes", overwrite=True)
    assert read(storage, "story.mp3") == b"brand new bytes"
    assert second.size == len(b"brand new bytes")
    assert second.etag != first.etag
    assert names_in(storage) == ["story.mp3"]


def test_put_without_overwrite_refuses_an_existing_name_and_keeps_the_old_bytes(storage):
    original = put(storage, "story.mp3", b"the original")
    with pytest.raises(AudioExistsError) as caught:
        put(storage, "story.mp3", b"an impostor", overwrite=False)
    assert caught.value.filename == "story.mp3"
    assert read(storage, "story.mp3") == b"the original"
    assert storage.head("story.mp3").etag == original.etag
    assert names_in(storage) == ["story.mp3"]


def test_put_without_overwrite_creates_a_new_name(storage):
    put(storage, "new.mp3", b"fresh", overwrite=False)
    assert read(storage, "new.mp3") == b"fresh"


RANGES = [
    (0, None),
    (0, 0),
    (0, len(DATA) - 1),
    (1, 1),
    (100, 199),
    (len(DATA) - 1, None),
    (len(DATA) - 4, len(DATA) - 1),
    (5000, len(DATA) + 1000),  # past the end: clamped, as RFC 9110 does
]


def test_open_range_returns_exactly_those_bytes(storage):
    put(storage, "story.mp3")
    etag = storage.head("story.mp3").etag
    for start, end in RANGES:
        stream = storage.open_range("story.mp3", start, end)
        try:
            assert stream.info.size == len(DATA), "the total size rides along with a ranged read"
            assert stream.info.etag == etag
            body = b"".join(stream)
        finally:
            stream.close()
        last = len(DATA) - 1 if end is None else min(end, len(DATA) - 1)
        assert body == DATA[start : last + 1], (start, end)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_range_and_chunk_size(storage, data):
    """Reads do not change the store, so one stored file serves every example."""
    if not storage.exists("ranges.mp3"):
        put(storage, "ranges.mp3")
    start = data.draw(st.integers(0, len(DATA) - 1), label="start")
    end = data.draw(st.none() | st.integers(start, len(DATA) + 50), label="end")
    chunk_size = data.draw(st.integers(1, 5000), label="chunk_size")
    stream = storage.open_range("ranges.mp3", start, end, chunk_size=chunk_size)
    try:
        chunks = list(stream)
    finally:
        stream.close()
    last = len(DATA) - 1 if end is None else min(end, len(DATA) - 1)
    assert b"".join(chunks) == DATA[start : last + 1]
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)


def test_chunks_never_exceed_chunk_size(storage):
    big = os.urandom(300_000)
    put(storage, "big.mp3", big)
    stream = storage.open_range("big.mp3", chunk_size=4096)
    chunks = list(stream)
    stream.close()
    assert b"".join(chunks) == big
    assert max(len(c) for c in chunks) <= 4096
    assert len(chunks) >= 300_000 // 4096


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_closing_a_stream_early_works(storage):
    """A player that hangs up after the first chunk: closing stops the read, frees what it
    held, and the file can still be read, replaced and deleted."""
    big = os.urandom(200_000)
    put(storage, "story.mp3", big)
    baseline = _open_fds()
    for _ in range(20):
        stream = storage.open_range("story.mp3", chunk_size=1024)
        first = next(iter(stream))
        assert first == big[:1024]
        stream.close()
        stream.close()  # twice is harmless
    never_read = storage.open_range("story.mp3")
    never_read.close()
    assert _open_fds() <= baseline + 2, "closed streams must not keep files or sockets open"
    assert read(storage, "story.mp3", 1000, 1999) == big[1000:2000]
    put(storage, "story.mp3", b"replaced")
    assert read(storage, "story.mp3") == b"replaced"
    storage.delete("story.mp3")
    assert not storage.exists("story.mp3")


def test_if_match_guards_against_a_changed_object(storage):
    old = put(storage, "story.mp3", b"version one")
    assert read(storage, "story.mp3", if_match=old.etag) == b"version one"
    put(storage, "story.mp3", b"version two!")
    with pytest.raises(ObjectChangedError):
        storage.open_range("story.mp3", if_match=old.etag)
    with pytest.raises(ObjectChangedError):
        storage.open_range("story.mp3", 2, 5, if_match='"not-the-etag"')
    new = storage.head("story.mp3")
    assert read(storage, "story.mp3", if_match=new.etag) == b"version two!"


def test_missing_objects(storage):
    put(storage, "other.mp3")
    with pytest.raises(AudioNotFoundError) as caught:
        storage.open_range("missing.mp3")
    assert caught.value.filename == "missing.mp3"
    with pytest.raises(AudioNotFoundError):
        storage.head("missing.mp3")
    with pytest.raises(AudioNotFoundError):
        storage.delete("missing.mp3")
    assert not storage.exists("missing.mp3")
    assert names_in(storage) == ["other.mp3"]


# --- read_spans: many ranges of many objects as one run of bytes ---------------------------

SPAN_FILES = {f"span-{i}.mp3": bytes([i]) * 7 + DATA[i * 100 : i * 100 + 900] for i in range(5)}


def _spans_store(storage: Storage) -> dict[str, str]:
    """The span files, stored once for every example; their etags by name."""
    return {
        name: (storage.head(name) if storage.exists(name) else put(storage, name, data)).etag
        for name, data in SPAN_FILES.items()
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_read_spans_is_the_spans_bytes_in_order_in_bounded_chunks(storage, data):
    etags = _spans_store(storage)
    names = sorted(SPAN_FILES)
    spans = []
    for _ in range(data.draw(st.integers(0, 12), label="count")):
        name = data.draw(st.sampled_from(names))
        size = len(SPAN_FILES[name])
        first = data.draw(st.integers(0, size - 1))
        last = data.draw(st.integers(first, size - 1))
        etag = data.draw(st.sampled_from([None, etags[name]]))
        spans.append(Span(name, first, last, etag))
    chunk_size = data.draw(st.integers(1, 3000), label="chunk_size")
    chunks = list(storage.read_spans(spans, chunk_size=chunk_size))
    expected = b"".join(SPAN_FILES[s.name][s.first : s.last + 1] for s in spans)
    assert b"".join(chunks) == expected
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)


def test_read_spans_raises_when_a_spans_file_changed_or_went(storage):
    etags = _spans_store(storage)
    good = Span("span-0.mp3", 0, 99, etags["span-0.mp3"])
    changed = Span("span-1.mp3", 0, 99, '"not-the-etag"')
    with pytest.raises(ObjectChangedError):
        list(storage.read_spans([good, changed], chunk_size=50))
    with pytest.raises(AudioNotFoundError):
        list(storage.read_spans([good, Span("gone.mp3", 0, 9)], chunk_size=1000))
    # A file replaced since its etag was taken is refused, not served with the new bytes.
    put(storage, "span-2.mp3", b"replaced" * 200)
    with pytest.raises(ObjectChangedError):
        list(storage.read_spans([Span("span-2.mp3", 0, 9, etags["span-2.mp3"])], chunk_size=9))


def test_closing_read_spans_stops_reading_and_frees_what_it_held(storage):
    big = os.urandom(100_000)
    etag = put(storage, "span-big.mp3", big).etag
    spans = [Span("span-big.mp3", 0, len(big) - 1, etag)] * 20 + [
        Span(f"span-{i}.mp3", 0, 10) for i in range(5)
    ]
    _spans_store(storage)
    baseline = _open_fds()
    for _ in range(10):
        reads = storage.read_spans(spans, chunk_size=4096)
        assert bytes(next(reads)) == big[:4096]
        reads.close()
    assert _open_fds() <= baseline + 2, "closed span reads must not keep files or sockets open"


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_failed_put_leaves_nothing_behind(storage, app_env, overwrite):
    """Given an upload whose source fails halfway, nothing is stored: no object, nothing
    listed, and (locally) no temporary file in the directory a parent looks at."""
    with pytest.raises(Exception) as caught:
        storage.put("broken.mp3", ExplodingSource(DATA[:5000]), overwrite=overwrite)
    assert not isinstance(caught.value, AudioExistsError)
    assert not storage.exists("broken.mp3")
    assert names_in(storage) == []
    if app_env.backend == "local":
        assert os.listdir(app_env.audio_dir) == []


def test_a_failed_overwrite_keeps_the_old_file(storage, app_env):
    put(storage, "story.mp3", b"the good version")
    with pytest.raises(Exception):  # noqa: B017 - any failure, as long as nothing changes
        storage.put("story.mp3", ExplodingSource(DATA[:3000]), overwrite=True)
    assert read(storage, "story.mp3") == b"the good version"
    assert names_in(storage) == ["story.mp3"]
    if app_env.backend == "local":
        assert os.listdir(app_env.audio_dir) == ["story.mp3"]


ODD_NAMES = [
    "my bedtime story.mp3",
    "a+b.mp3",
    "100% fun.mp3",
    "what?&x=1#frag.mp3",
    "Gute Nacht, Bär.MP3",
    "おやすみ 🐻.mp3",
    "%20already-encoded.mp3",
    "a" * 251 + ".mp3",
]


def test_names_with_spaces_plus_and_non_ascii(storage):
    """The name is the object's name exactly: no URL-encoding surprises."""
    for name in ODD_NAMES:
        content = b"audio for " + name.encode()
        info = put(storage, name, content)
        assert info.name == name
        assert storage.exists(name)
        assert storage.head(name).size == len(content)
        assert read(storage, name) == content
        assert read(storage, name, 3, 7) == content[3:8]
        assert names_in(storage) == [name]
        storage.delete(name)
        assert names_in(storage) == []


def test_only_audio_names_are_listed(storage, app_env):
    """Things in the bucket or directory that are not valid audio names are never listed."""
    put(storage, "story.mp3")
    strays = ["notes.txt", ".hidden.mp3", "cover.jpg"]
    if app_env.backend == "local":
        for stray in strays:
            (app_env.audio_dir / stray).write_bytes(b"not audio")
        (app_env.audio_dir / "folder.mp3").mkdir()
    else:
        for stray in [*strays, "sub/dir.mp3"]:
            storage.client.put_object(Bucket=app_env.bucket, Key=stray, Body=b"not audio")
    assert names_in(storage) == ["story.mp3"]


def test_many_objects_are_all_listed(storage):
    names = [f"track {i:03d}.mp3" for i in range(30)]
    for name in names:
        put(storage, name, name.encode())
    assert names_in(storage) == names


@pytest.mark.parametrize("name", ["story.mp3", "my story + more ü.mp3"])
def test_presigned_post_names_the_key_and_content_type(storage, name):
    post = storage.presigned_post(
        name, max_size=10_000_000, expires_in=600, base_url="http://127.0.0.1:8080"
    )
    assert post.url.startswith(("http://", "https://"))
    assert post.fields["key"] == name
    assert post.fields["Content-Type"] == "audio/mpeg"
    assert not storage.exists(name), "asking for an upload form stores nothing"


BAD_NAMES = ["../x.mp3", "..\\x.mp3", "/etc/x.mp3", "a\x00.mp3", "notes.txt", "", ".x.mp3"]


def test_invalid_names_are_refused_before_touching_storage(storage, app_env, tmp_path):
    for name in BAD_NAMES:
        source = ExplodingSource(b"never read")
        with pytest.raises(InvalidFilenameError):
            storage.put(name, source)
        assert source.reads == 0, "the body is not read for a name that cannot be stored"
        with pytest.raises(InvalidFilenameError):
            storage.head(name)
        with pytest.raises(InvalidFilenameError):
            storage.exists(name)
        with pytest.raises(InvalidFilenameError):
            storage.open_range(name)
        with pytest.raises(InvalidFilenameError):
            storage.delete(name)
        with pytest.raises(InvalidFilenameError):
            storage.presigned_post(name, max_size=10, expires_in=60, base_url="http://x")
    assert names_in(storage) == []
    if app_env.backend == "local":
        assert os.listdir(app_env.audio_dir) == []
        assert not Path(tmp_path / "x.mp3").exists()
