"""Queue packs on both backends: written when a queue changes (by the real PackQueueFunction
handler, fed the stream records the catalogue would send), served with one storage read,
and byte for byte the stream that the files' spans give."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from local_server.lambda_bridge import LocalLambdaContext, load_handler
from local_server.stream_events import stream_record
from local_server.template import read_template
from smart_stream.bootstrap import services
from smart_stream.changes import QueueChanged
from smart_stream.domain.errors import ServiceUnavailableError
from smart_stream.domain.records import PlayMode, QueueRecord
from smart_stream.services.packs import pack_key
from tests.conftest import ROOT
from tests.unit import test_queue_stream as streams
from tests.unit.test_queue_stream import (
    BEARER,
    StorageReads,
    device_path,
    make_queue,
    split_stream,
    store,
    track,
)

# The queue stream tests' fixtures: every backend, small reads, three tagged files.
env, client, three = streams.env, streams.client, streams.three


CONTEXT = LocalLambdaContext("PackQueueFunction", 900)


class Packer:
    """What the catalogue's stream does deployed, done at once: each queue change, as a
    stream record, to the real PackQueueFunction handler."""

    def __init__(self) -> None:
        (subscription,) = read_template(ROOT / "template.yaml").stream_subscriptions
        self.handler = load_handler(subscription.function)
        self.sequence = itertools.count(1)
        self.answers: list[dict] = []

    def __call__(self, change: QueueChanged) -> None:
        event = {"Records": [stream_record(change, next(self.sequence))]}
        self.answers.append(self.handler(event, CONTEXT))


def changed(old: QueueRecord | None, new: QueueRecord | None) -> QueueChanged:
    """The change from ``old`` to ``new`` (None: absent), as the catalogue adapter tells it."""
    current = new or old
    assert current is not None
    return QueueChanged(current.name, existed=old is not None, exists=new is not None)


@pytest.fixture
def packer(env) -> Iterator[Packer]:
    packer = Packer()
    feed = services().changes
    feed.subscribe(QueueChanged, packer)
    yield packer
    feed.unsubscribe(QueueChanged, packer)


def get_storage():
    return services().storage


def get_record(name: str) -> QueueRecord:
    return services().queues.get(name)


def finite_layout(record: QueueRecord, mode: PlayMode):
    return services().layouts.finite(record, mode)


def key_of(name: str, mode: PlayMode = PlayMode.SEQUENTIAL) -> str:
    return pack_key(name, finite_layout(get_record(name), mode))


def has_pack(key: str) -> bool:
    return get_storage().exists(key)


def drop_pack(key: str) -> None:
    get_storage().delete_pack(key)
    services().packs.misses.clear()


def test_a_saved_queue_is_packed_and_played_with_one_read(client, three, packer, monkeypatch):
    queue = make_queue("bedtime", three, title="Bedtime")
    key = key_of("bedtime")
    assert has_pack(key)
    assert packer.answers == [{"batchItemFailures": []}]
    reads = StorageReads(monkeypatch)
    response = client.get(device_path(queue))
    assert response.status_code == 200
    assert reads.names == [key], "the stream should be one read of the pack"
    assert split_stream(response.content, "Bedtime") == b"".join(t.span for t in three)
    assert response.headers["content-length"] == str(len(response.content))


def _answers(client, path: str, size: int, offsets: list[int]) -> list[tuple]:
    ranges = ["bytes=0-", f"bytes=-{size // 3}", f"bytes={size - 1}-"]
    for at in offsets:
        ranges += [f"bytes={max(at - 1, 0)}-{at}", f"bytes={at}-{at + 700}", f"bytes={at}-"]
    out = []
    for value in [None, *ranges]:
        headers = {"Range": value} if value else {}
        response = client.get(path, headers=headers)
        kept = ("content-length", "content-range", "etag", "accept-ranges", "last-modified")
        out.append(
            (
                value,
                response.status_code,
                {k: response.headers.get(k) for k in kept},
                response.content,
            )
        )
    return out


def test_every_range_from_the_pack_is_the_same_as_from_the_files(client, three, packer):
    queue = make_queue("bedtime", three, title="Bedtime")
    path = device_path(queue)
    layout = finite_layout(get_record("bedtime"), PlayMode.SEQUENTIAL)
    # Every file boundary, the title tag's end, and a spot inside each file.
    offsets = sorted({p.offset for p in layout.pieces} | {p.offset + 333 for p in layout.pieces})
    packed = _answers(client, path, layout.size, offsets)
    drop_pack(key_of("bedtime"))
    from_files = _answers(client, path, layout.size, offsets)
    assert packed == from_files
    assert {status for _, status, _, _ in packed} == {200, 206}


def test_a_changed_queue_gets_a_new_pack_and_loses_the_old(client, three, packer):
    make_queue("bedtime", three)
    first = key_of("bedtime")
    make_queue("bedtime", three[::-1])
    second = key_of("bedtime")
    assert second != first and has_pack(second) and not has_pack(first)
    # A change that leaves the bytes alone (a card, a new credential) keeps the pack.
    written = get_storage().head(second)
    services().queues.set_card("bedtime", "card-1")
    assert key_of("bedtime") == second
    assert get_storage().head(second).etag == written.etag
    # A new title is new bytes (the stream's title tag).
    make_queue("bedtime", three[::-1], title="Renamed")
    assert not has_pack(second) and has_pack(key_of("bedtime"))
    last = key_of("bedtime")
    services().queues.delete("bedtime", force=True)
    assert not has_pack(last)
    assert all(a == {"batchItemFailures": []} for a in packer.answers)


def test_open_modes_are_not_packed_and_shuffle_packs_its_own_order(client, three, packer):
    make_queue("forever", three, "loop")
    record = get_record("forever")
    for mode in (PlayMode.SEQUENTIAL, PlayMode.SHUFFLE):
        assert not has_pack(pack_key("forever", finite_layout(record, mode)))
    queue = make_queue("mixed", three, "shuffle", title="Mixed")
    shuffle_key, in_order_key = key_of("mixed", PlayMode.SHUFFLE), key_of("mixed")
    assert has_pack(shuffle_key)
    # (A draw that happens to keep the order is the same bytes, so the same pack.)
    assert has_pack(in_order_key) == (in_order_key == shuffle_key)
    shuffled = client.get(device_path(queue)).content
    drop_pack(shuffle_key)
    assert client.get(device_path(queue)).content == shuffled
    # The queue's other finite order is read from the files, and is right too.
    in_order = client.get(device_path(queue) + "&play_mode=sequential")
    assert split_stream(in_order.content, "Mixed") == b"".join(t.span for t in three)


def test_a_pack_of_the_wrong_size_is_never_served(client, three, monkeypatch):
    queue = make_queue("bedtime", three, title="Bedtime")
    get_storage().put_pack(key_of("bedtime"), [b"\xff" * 100])
    reads = StorageReads(monkeypatch)
    response = client.get(device_path(queue))
    assert split_stream(response.content, "Bedtime") == b"".join(t.span for t in three)
    assert reads.names[0] == key_of("bedtime") and len(reads.names) == 1 + len(three)


def test_a_file_replaced_before_its_queue_follows_leaves_no_pack(env, three):
    make_queue("bedtime", three)
    stale = get_record("bedtime")
    store(track(three[1].name, 0.5, 96))  # the queue now follows the new version
    assert services().packs.build(stale) is None
    assert not has_pack(pack_key("bedtime", finite_layout(stale, stale.play_mode)))
    storage = get_storage()
    root = getattr(storage, "packs_root", None)
    if root is not None and root.exists():
        leftovers = [p for p in root.rglob("*") if p.is_file()]
        assert leftovers == [], f"left behind: {leftovers}"
    fresh = get_record("bedtime")
    assert fresh.version > stale.version
    assert services().packs.build(fresh) is not None


def test_a_failing_pack_is_reported_for_that_record_alone(env, three, monkeypatch):
    packer = Packer()
    make_queue("a", three)
    make_queue("b", three)
    a, b = get_record("a"), get_record("b")
    packs = services().packs  # what the handler uses: the installed services'
    sync = packs.sync

    def flaky(name: str) -> None:
        if name == "a":
            raise ServiceUnavailableError("storage is down")
        sync(name)

    monkeypatch.setattr(packs, "sync", flaky)
    records = [stream_record(changed(None, a), 41), stream_record(changed(None, b), 42)]
    event = {"Records": records}
    answer = packer.handler(event, CONTEXT)
    assert answer == {"batchItemFailures": [{"itemIdentifier": f"{41:021d}"}]}
    assert has_pack(key_of("b")) and not has_pack(key_of("a"))


def test_changes_handled_late_twice_or_out_of_order_end_the_same(env, three):
    """Each change is handled from the queue as it is then: whatever order the records come
    in, the queue ends with exactly its current pack."""
    packer = Packer()
    make_queue("bedtime", three)
    v1 = get_record("bedtime")
    make_queue("bedtime", three[::-1])
    v2 = get_record("bedtime")
    # The second change handled first, the first one after it, then the first again.
    for old, new in ((v1, v2), (None, v1), (None, v1)):
        packer(changed(old, new))
    assert list(get_storage().iter_packs("bedtime")) == [key_of("bedtime")]
    # A delete then a re-create with the same files, handled in reverse order.
    services().queues.delete("bedtime", force=True)
    make_queue("bedtime", three[::-1])
    packer(changed(None, get_record("bedtime")))
    packer(changed(v2, None))
    assert list(get_storage().iter_packs("bedtime")) == [key_of("bedtime")]
    assert all(a == {"batchItemFailures": []} for a in packer.answers)


def test_the_hourly_sweep_catches_up_with_every_queue(env, three):
    """The scheduled event: missing packs written, stale ones and those of deleted queues
    removed, open modes left without."""
    packer = Packer()
    make_queue("bedtime", three)  # no listener: its change was never handled
    make_queue("forever", three, "loop")
    storage = get_storage()
    stale = f"packs/bedtime/{'0' * 32}.mp3"
    orphan = f"packs/gone/{'1' * 32}.mp3"
    storage.put_pack(stale, [b"stale"])
    storage.put_pack(orphan, [b"orphan"])
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    assert packer.handler(scheduled, CONTEXT) == {"swept": True}
    assert sorted(storage.iter_packs()) == [key_of("bedtime")]


def test_head_and_304_read_nothing_even_with_a_pack(client, three, packer, monkeypatch):
    queue = make_queue("bedtime", three)
    reads = StorageReads(monkeypatch)
    head = client.head(device_path(queue))
    assert head.status_code == 200 and head.content == b""
    again = client.get(device_path(queue), headers={"If-None-Match": head.headers["etag"]})
    assert again.status_code == 304
    assert reads.opened == 0


def test_management_token_streams_the_pack_too(client, three, packer, monkeypatch):
    make_queue("bedtime", three, title="Bedtime")
    reads = StorageReads(monkeypatch)
    response = client.get("/api/streams/bedtime/stream.mp3", headers=BEARER)
    assert response.status_code == 200
    assert reads.names == [key_of("bedtime")]


def test_the_local_server_catches_up_with_packs_at_start_up(local_env, monkeypatch):
    """A pack the server did not write before it stopped is written at the next start (the
    scheduled sweep, run once); what a stop cut short (a half-written file, a stale or
    orphaned pack) is removed."""
    from local_server.app import catch_up
    from local_server.stream_events import CatalogStreamDispatcher
    from tests.unit.test_queue_stream import bare

    monkeypatch.setenv("STREAM_CHUNK_BYTES", "4096")
    tracks = (track("one.mp3", 0.4), track("two.mp3", 0.3))
    store(*tracks)
    make_queue("bedtime", tracks)  # no listener: as if the server stopped before packing it
    make_queue("forever", tracks, "loop")  # never packed
    storage = get_storage()
    key = key_of("bedtime")
    assert not has_pack(key)
    root = storage.packs_root
    (root / "bedtime").mkdir(parents=True)
    (root / "bedtime" / ("0" * 32 + ".mp3")).write_bytes(bare(0.1))
    (root / "bedtime" / ".incoming-x1").write_bytes(b"half")
    (root / "gone").mkdir()
    (root / "gone" / ("1" * 32 + ".mp3")).write_bytes(b"orphan")
    template = read_template(ROOT / "template.yaml")
    streams = CatalogStreamDispatcher(template.stream_subscriptions, template.schedules)
    streams.start()
    try:
        catch_up(streams, services())
        streams.drain()
    finally:
        streams.stop()
    assert has_pack(key)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "bedtime",
        key.removeprefix("packs/"),
    ]


def test_the_sample_stream_event_passes_the_filter_and_packs_its_queue(env, three):
    """events/dynamodb_queue_modify.json, as DynamoDB Streams sends a queue's change: the
    template's filter lets it through, and the handler packs the queue it names and removes
    that queue's old pack."""
    import json

    from local_server.stream_events import matches

    sample = json.loads((ROOT / "events" / "dynamodb_queue_modify.json").read_text())
    (subscription,) = read_template(ROOT / "template.yaml").stream_subscriptions
    assert any(matches(p, sample["Records"][0]) for p in subscription.patterns)
    assert sample["Records"][0]["dynamodb"]["Keys"]["sk"] == {"S": "bedtime"}
    make_queue("bedtime", three)
    services().packs.build(get_record("bedtime"))
    old_key = key_of("bedtime")
    make_queue("bedtime", three[::-1])  # no listener: the sample event delivers the change
    answer = Packer().handler(sample, CONTEXT)
    assert answer == {"batchItemFailures": []}
    assert list(get_storage().iter_packs("bedtime")) == [key_of("bedtime")] != [old_key]
