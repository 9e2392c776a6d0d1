"""One contract for every Storage adapter (a local directory; S3 in moto): what is stored,
read back, listed and removed, byte for byte, what is never left behind, and the changes
told to the change feed."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_stream.bootstrap import Services
from smart_stream.changes import ObjectChanged
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    InvalidFilenameError,
    ObjectChangedError,
)
from smart_stream.ports import Chunk, Span, Storage

DATA = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes, every offset distinguishable


@pytest.fixture
def storage(app_env, root: Services) -> Storage:
    return root.storage


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


@pytest.mark.parametrize(
    "name",
    [
        "story.mp3",
        "my story + more ü.mp3",
        "incoming/" + "0" * 32 + "/Grandma's story.m4a",
        "incoming/" + "0" * 32 + "/my story + more ü.webm",
    ],
)
def test_presigned_post_names_the_key_and_content_type(storage, name):
    post = storage.presigned_post(
        name, max_size=10_000_000, expires_in=600, base_url="http://127.0.0.1:8080"
    )
    assert post.url.startswith(("http://", "https://"))
    assert post.fields["key"] == name
    # Whatever the browser thinks the file is, it is judged by its content on arrival.
    assert post.fields["Content-Type"] == "application/octet-stream"
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


# --- packs: a queue's stream stored whole, apart from the library ---------------------------

MIB = 1024 * 1024


def pack_key(queue: str = "bedtime") -> str:
    return f"packs/{queue}/{uuid.uuid4().hex}.mp3"


def big_pack() -> tuple[list[Chunk], bytes]:
    """Just over 17 MiB in pieces of every kind: more than two 8 MiB upload parts."""
    pieces = [os.urandom(MIB) for _ in range(17)] + [os.urandom(12_345)]
    chunks: list[Chunk] = [b""]
    for i, piece in enumerate(pieces):
        chunks.append(memoryview(piece) if i % 2 else piece)
        if i % 5 == 0:
            chunks.append(memoryview(b""))
    return chunks, b"".join(pieces)


class ChunksThatFail:
    """A pack whose source fails midway (a file of the queue vanished while it was copied)."""

    def __init__(self, good: list[bytes]) -> None:
        self.good = good
        self.given = 0

    def __iter__(self) -> Iterator[Chunk]:
        for chunk in self.good:
            self.given += 1
            yield chunk
        raise ConnectionResetError("the source went away")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


def test_put_pack_from_many_chunks_reads_back_byte_for_byte(storage):
    chunks, data = big_pack()
    key = pack_key()

    info = storage.put_pack(key, chunks)

    assert info.name == key
    assert info.size == len(data) > 2 * 8 * MIB + 1
    assert info.etag.startswith('"') and info.etag.endswith('"') and len(info.etag) > 2
    head = storage.head(key)
    assert (head.size, head.etag) == (len(data), info.etag)
    assert read(storage, key) == data
    for start, end in [(0, 0), (8 * MIB - 3, 8 * MIB + 2), (len(data) - 10, None), (MIB, 3 * MIB)]:
        last = len(data) - 1 if end is None else end
        assert read(storage, key, start, end) == data[start : last + 1], (start, end)
    stream = storage.open_range(key, 5, 9)
    try:
        assert stream.info.size == len(data)
        assert stream.info.etag == info.etag
    finally:
        stream.close()
    assert read(storage, key, if_match=info.etag)[:100] == data[:100]


def test_a_big_pack_goes_to_s3_in_parts_not_whole_in_memory(aws_env, root):
    """Packs are as long as a queue: S3 gets them as a multipart upload of full-size parts
    (S3 refuses a part under 5 MiB but the last), never as one body built in memory."""
    storage = root.storage
    calls: list[tuple[str, int, int]] = []

    def record_call(params, model, **_):
        body = params.get("Body")
        size = len(body) if hasattr(body, "__len__") else -1
        calls.append((model.name, params.get("PartNumber", 0), size))

    storage.client.meta.events.register("before-parameter-build.s3.*", record_call)
    chunks, data = big_pack()  # what packs.build hands on: many chunks of 1 MiB at most
    info = storage.put_pack(pack_key(), chunks)
    assert info.size == len(data)
    operations = [name for name, _, _ in calls]
    assert "PutObject" not in operations, "the whole pack was sent as one PutObject"
    # Parts go up several at once: in part order, every one but the last is full size.
    parts = [size for name, _, size in sorted(calls) if name == "UploadPart"]
    assert len(parts) >= 3
    assert sum(parts) == len(data)
    assert all(size >= 5 * MIB for size in parts[:-1]), parts
    assert operations.count("CompleteMultipartUpload") == 1


def test_an_empty_and_a_small_pack(storage):
    key = pack_key()
    info = storage.put_pack(key, [b"", memoryview(b"ab"), b"", b"cd"])
    assert info.size == 4
    assert read(storage, key) == b"abcd"
    assert read(storage, key, 1, 2) == b"bc"


def test_a_second_put_pack_replaces_the_first(storage):
    key = pack_key()
    first = storage.put_pack(key, [b"the first ", b"pack"])
    second = storage.put_pack(key, iter([memoryview(b"a longer second pack")]))
    assert read(storage, key) == b"a longer second pack"
    assert second.size == storage.head(key).size == len(b"a longer second pack")
    assert second.etag == storage.head(key).etag != first.etag
    with pytest.raises(ObjectChangedError):
        storage.open_range(key, if_match=first.etag)


def test_packs_are_never_listed_or_kept_in_the_audio_folder(storage, app_env):
    put(storage, "story.mp3")
    before = sorted(os.listdir(app_env.audio_dir)) if app_env.backend == "local" else None
    keys = [pack_key("bedtime"), pack_key("bedtime"), pack_key("story")]
    for key in keys:
        storage.put_pack(key, [DATA])
    assert names_in(storage) == ["story.mp3"]
    assert all(storage.head(key).size == len(DATA) for key in keys)
    if app_env.backend == "local":
        assert sorted(os.listdir(app_env.audio_dir)) == before == ["story.mp3"]
        assert not storage.packs_root.is_relative_to(app_env.audio_dir)
        assert len(files_under(storage.packs_root)) == len(keys)


def test_delete_pack_removes_it_and_a_missing_pack_is_fine(storage, app_env):
    key, other = pack_key("bedtime"), pack_key("other")
    storage.put_pack(key, [DATA])
    storage.put_pack(other, [b"kept"])
    put(storage, "story.mp3")

    storage.delete_pack(key)

    with pytest.raises(AudioNotFoundError):
        storage.open_range(key)
    with pytest.raises(AudioNotFoundError):
        storage.head(key)
    assert not storage.exists(key)
    storage.delete_pack(key)  # already gone: not an error
    storage.delete_pack(pack_key("never-made"))
    assert read(storage, other) == b"kept"
    assert read(storage, "story.mp3") == DATA
    assert names_in(storage) == ["story.mp3"]
    if app_env.backend == "local":
        assert not (storage.packs_root / "bedtime").exists(), "the queue's empty folder goes"
        assert (storage.packs_root / "other").is_dir()


BAD_PACK_KEYS = [
    "story.mp3",
    "packs/../x.mp3",
    "packs/q/abc.mp3",
    "packs/q/" + "A" * 32 + ".mp3",
    "packs/q/" + "0" * 32 + ".MP3",
    "packs/" + "0" * 32 + ".mp3",
    "packs/a b/" + "0" * 32 + ".mp3",
    "packs/q/x/" + "0" * 32 + ".mp3",
    "/packs/q/" + "0" * 32 + ".mp3",
    "packs/q/" + "0" * 32 + ".mp3/",
    "packs/" + "q" * 65 + "/" + "0" * 32 + ".mp3",
    "",
]


def test_put_pack_and_delete_pack_refuse_anything_but_a_pack_key(storage, app_env):
    put(storage, "story.mp3")
    for key in BAD_PACK_KEYS:
        source = ChunksThatFail([b"never read"])
        with pytest.raises(ValueError):
            storage.put_pack(key, source)
        assert source.given == 0, key
        with pytest.raises(ValueError):
            storage.delete_pack(key)
    assert read(storage, "story.mp3") == DATA, "a filename is not a pack: nothing removed"
    assert names_in(storage) == ["story.mp3"]
    if app_env.backend == "local":
        assert files_under(storage.packs_root) == []


@pytest.mark.parametrize("key", [k for k in BAD_PACK_KEYS if "/" in k])
def test_reads_refuse_malformed_pack_keys(storage, key):
    with pytest.raises(InvalidFilenameError):
        storage.open_range(key)
    with pytest.raises(InvalidFilenameError):
        storage.head(key)


def test_a_failed_put_pack_leaves_nothing_behind(storage, app_env):
    key = pack_key()
    source = ChunksThatFail([os.urandom(MIB) for _ in range(10)])  # past the first part
    with pytest.raises(ConnectionResetError):
        storage.put_pack(key, source)
    assert source.given == 10
    with pytest.raises(AudioNotFoundError):
        storage.open_range(key)
    assert not storage.exists(key)
    assert names_in(storage) == []
    if app_env.backend == "local":
        assert files_under(storage.packs_root) == []
        assert os.listdir(app_env.audio_dir) == []
    else:
        uploads = storage.client.list_multipart_uploads(Bucket=app_env.bucket)
        assert uploads.get("Uploads", []) == [], "a failed upload is aborted, not left to bill"


@pytest.mark.parametrize("size", [100, 10 * MIB])
def test_a_failed_replacement_keeps_the_previous_pack(storage, app_env, size):
    key = pack_key()
    previous = storage.put_pack(key, [b"the good ", memoryview(b"pack")])
    with pytest.raises(ConnectionResetError):
        storage.put_pack(key, ChunksThatFail([os.urandom(size // 2), os.urandom(size // 2)]))
    assert read(storage, key) == b"the good pack"
    assert storage.head(key).etag == previous.etag
    if app_env.backend == "local":
        assert files_under(storage.packs_root) == [storage.packs_root / key.removeprefix("packs/")]


def test_put_and_delete_of_a_file_refuse_a_pack_key(storage):
    """A pack is written and removed as a pack only: never through the file routes' writes,
    which announce library changes."""
    key = pack_key()
    with pytest.raises(InvalidFilenameError):
        put(storage, key)
    storage.put_pack(key, [b"pack"])
    with pytest.raises(InvalidFilenameError):
        storage.delete(key)
    assert read(storage, key) == b"pack"


def test_iter_packs_lists_pack_keys_only_by_queue(storage):
    keys = {pack_key("bedtime"), pack_key("bedtime"), pack_key("morning")}
    for key in keys:
        storage.put_pack(key, [b"pack"])
    put(storage, "song.mp3")
    assert sorted(storage.iter_packs()) == sorted(keys)
    assert sorted(storage.iter_packs("bedtime")) == sorted(k for k in keys if "/bedtime/" in k)
    assert list(storage.iter_packs("nothing")) == []
    for key in keys:
        storage.delete_pack(key)
    assert list(storage.iter_packs()) == []


def test_read_spans_without_preadv_reads_the_same(local_env, root, monkeypatch):
    """Systems without ``preadv`` (macOS) seek and ``readv`` instead."""
    from smart_stream.adapters.local import directory as local_storage

    class NoPreadv:
        def __getattr__(self, name: str):
            if name == "preadv":
                raise AttributeError(name)
            return getattr(os, name)

    storage = root.storage
    etags = _spans_store(storage)
    spans = [Span(name, 3, 700, etags[name]) for name in sorted(SPAN_FILES)] * 2
    expected = b"".join(bytes(c) for c in storage.read_spans(spans, chunk_size=999))
    monkeypatch.setattr(local_storage, "os", NoPreadv())
    assert b"".join(bytes(c) for c in storage.read_spans(spans, chunk_size=999)) == expected
    assert expected == b"".join(SPAN_FILES[s.name][3:701] for s in spans)


# --- the change feed: files stored and removed are told; packs never ------------------------


@pytest.fixture
def told(storage) -> list[ObjectChanged]:
    heard: list[ObjectChanged] = []
    storage.changes.subscribe(ObjectChanged, heard.append)
    return heard


def test_the_services_storage_tells_the_services_feed(app_env, root):
    heard: list[ObjectChanged] = []
    root.changes.subscribe(ObjectChanged, heard.append)
    info = put(root.storage, "story.mp3")
    assert heard == [ObjectChanged("ObjectCreated", info)]


def test_puts_and_deletes_of_files_are_told_once_done(storage, told):
    """Each file stored or removed is told once, after the fact, with what storage holds."""
    seen: list[bool] = []
    storage.changes.subscribe(ObjectChanged, lambda change: seen.append(storage.exists("a.mp3")))

    first = put(storage, "a.mp3", b"first")
    second = put(storage, "a.mp3", b"second", overwrite=True)
    created = put(storage, "b.mp3", b"other", overwrite=False)
    storage.delete("a.mp3")

    assert [(c.kind, c.info.name) for c in told] == [
        ("ObjectCreated", "a.mp3"),
        ("ObjectCreated", "a.mp3"),
        ("ObjectCreated", "b.mp3"),
        ("ObjectRemoved", "a.mp3"),
    ]
    assert [c.info for c in told[:3]] == [first, second, created]
    removed = told[3].info
    assert (removed.size, removed.etag) == (second.size, second.etag), "what was removed"
    assert seen == [True, True, True, False], "told before the change was made, not after"


def test_failed_and_refused_writes_are_not_told(storage, told):
    put(storage, "story.mp3", b"the original")
    told.clear()
    with pytest.raises(AudioExistsError):
        put(storage, "story.mp3", b"an impostor", overwrite=False)
    with pytest.raises(ConnectionResetError):
        storage.put("broken.mp3", ExplodingSource(DATA[:5000]))
    with pytest.raises(AudioNotFoundError):
        storage.delete("missing.mp3")
    with pytest.raises(InvalidFilenameError):
        put(storage, "notes.txt")
    assert told == []


def test_packs_are_never_told(storage, told):
    key = pack_key()
    storage.put_pack(key, [b"pack"])
    storage.put_pack(key, [b"another pack"])
    storage.delete_pack(key)
    assert told == []


# Uploads waiting for their conversion (incoming/<id>/<upload name>) --------------------------

INCOMING = "incoming/" + "0123456789abcdef" * 2 + "/Grandma's story.m4a"


def test_an_upload_is_stored_read_and_removed_under_its_key_but_never_listed(
    storage, app_env, told
):
    info = put(storage, INCOMING, overwrite=False, content_type="application/octet-stream")
    assert info.name == INCOMING and info.size == len(DATA)
    assert storage.exists(INCOMING) and storage.head(INCOMING).etag == info.etag
    assert read(storage, INCOMING, 100, 199) == DATA[100:200]
    assert names_in(storage) == [], "an upload is not a library file"
    if app_env.backend == "local":
        assert list(app_env.audio_dir.iterdir()) == [], "nor in the audio folder"
    storage.delete(INCOMING)
    assert not storage.exists(INCOMING)
    with pytest.raises(AudioNotFoundError):
        storage.delete(INCOMING)
    assert [(c.kind, c.info.name) for c in told] == [
        ("ObjectCreated", INCOMING),
        ("ObjectRemoved", INCOMING),
    ], "the local server routes an upload's events to the conversion"


def test_copy_makes_a_library_file_of_an_upload_byte_for_byte(storage, told):
    put(storage, INCOMING)
    put(storage, "story.mp3", b"old bytes")
    info = storage.copy(INCOMING, "story.mp3")
    assert info.name == "story.mp3" and info.size == len(DATA)
    assert read(storage, "story.mp3") == DATA
    assert read(storage, INCOMING) == DATA, "the upload is left for its owner to remove"
    assert names_in(storage) == ["story.mp3"]
    assert (told[-1].kind, told[-1].info.name) == ("ObjectCreated", "story.mp3")


def test_copy_of_a_missing_upload_is_not_found_and_stores_nothing(storage):
    with pytest.raises(AudioNotFoundError):
        storage.copy(INCOMING, "story.mp3")
    assert names_in(storage) == []


@pytest.mark.parametrize(
    "key",
    [
        "incoming/" + "0" * 31 + "/a.m4a",  # the id is 32 hex digits
        "incoming/" + "0" * 32 + "/a.txt",  # not an audio upload's name
        "incoming/" + "0" * 32 + "/sub/a.m4a",
        "incoming/" + "0" * 32 + "/.hidden.m4a",
    ],
)
def test_malformed_upload_keys_are_refused(storage, key):
    with pytest.raises(InvalidFilenameError):
        put(storage, key)
    with pytest.raises(InvalidFilenameError):
        storage.head(key)
