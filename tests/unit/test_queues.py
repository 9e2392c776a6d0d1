"""Queue rules on every backend (validation, conditional replaces, deletes, files that change
under a queue, restarts) and the play order of each mode: what a parent and a listener
notice."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest

from smart_stream.bootstrap import install, services
from smart_stream.domain.asks import QueueChange
from smart_stream.domain.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from smart_stream.domain.layout import FiniteLayout
from smart_stream.domain.play_order import cursor_key, round_order
from smart_stream.domain.records import AudioStatus, PlayMode, QueueEntry, QueueRecord
from smart_stream.http.errors import status_for
from smart_stream.http.views import Queue, Views
from smart_stream.services.layouts import Layouts
from smart_stream.services.queues import queue_entry
from tests.audio import make_mp3

BASE = "http://127.0.0.1:8080"


@pytest.fixture
def env(app_env):
    return app_env


def upload(name: str, data: bytes, *, overwrite: bool = False) -> None:
    services().library.upload(name, io.BytesIO(data), len(data), overwrite=overwrite)


def view(record: QueueRecord) -> Queue:
    """A queue as the API answers it (its device URL included)."""
    return Views(services().urls, BASE).queue(record)


def put(name: str, files: list[str], mode: str = "sequential", **kw) -> tuple[bool, Queue]:
    created, record = services().queues.put(
        name, QueueChange(files=files, play_mode=PlayMode(mode), **kw)
    )
    return created, view(record)


@pytest.fixture
def songs(env) -> dict[str, bytes]:
    data = {
        "a.mp3": make_mp3(0.5, title="A"),
        "b.mp3": make_mp3(0.7, bitrate=96),
        "c.mp3": make_mp3(0.3, bitrate=160),
    }
    for name, mp3 in data.items():
        upload(name, mp3)
    return data


# --- Saving a queue -------------------------------------------------------------------------


def test_create_then_replace(songs):
    created, queue = put("bedtime", ["a.mp3", "b.mp3"], title="Bedtime", description="Night")
    assert created is True
    assert (queue.name, queue.title, queue.description) == ("bedtime", "Bedtime", "Night")
    assert queue.files == ["a.mp3", "b.mp3"]
    assert queue.version == 1
    catalogued = {n: services().catalog.get_audio(n).duration for n in ("a.mp3", "b.mp3")}
    assert queue.total_duration == pytest.approx(sum(catalogued.values()), abs=0.002)
    assert queue.stream_url.startswith(f"{BASE}/api/streams/bedtime/stream.mp3?sig=")
    created, again = put("bedtime", ["c.mp3", "a.mp3", "c.mp3"], "loop")
    assert created is False
    assert again.version == 2
    assert again.files == ["c.mp3", "a.mp3", "c.mp3"]
    assert again.play_mode is PlayMode.LOOP
    # Title and description stay when a replace does not say them; the URL stays too.
    assert (again.title, again.description) == ("Bedtime", "Night")
    assert again.stream_url == queue.stream_url
    assert again.updated_at >= queue.updated_at


def test_a_new_queue_is_titled_by_its_name(songs):
    assert put("kids_mix-2", ["a.mp3"])[1].title == "kids_mix-2"


@pytest.mark.parametrize("name", ["", "a b", "a/b", "x" * 65, "ü", "a.b", "..", "-" * 65])
def test_bad_queue_names_are_400(local_env, name):
    with pytest.raises(BadRequestError) as raised:
        put(name, ["a.mp3"])
    assert status_for(raised.value) == 400


def test_missing_files_are_404_naming_each(songs):
    with pytest.raises(NotFoundError) as raised:
        put("q", ["a.mp3", "nope.mp3", "b.mp3", "gone.mp3"])
    assert status_for(raised.value) == 404
    assert "'nope.mp3'" in raised.value.message and "'gone.mp3'" in raised.value.message
    assert "'a.mp3'" not in raised.value.message
    assert services().catalog.get_queue("q") is None


def test_an_empty_list_is_422(songs):
    with pytest.raises(UnprocessableError) as raised:
        put("q", [])
    assert status_for(raised.value) == 422
    assert services().catalog.get_queue("q") is None


def copied_in(name: str, data: bytes) -> None:
    """A file put into the library by hand (or from before uploads were converted): the
    metadata pipeline catalogues it as it is, whatever its stream's shape."""
    root = services()
    info = root.storage.put(name, io.BytesIO(data))
    assert root.pipeline.object_created(info, sequencer=None).status is AudioStatus.READY


def test_files_that_cannot_be_joined_are_422_naming_them_and_what_differs(songs):
    odd = {
        "mono.mp3": ({"channels": 1}, "MPEG-1 44100 Hz mono"),
        "48k.mp3": ({"sample_rate": 48000}, "MPEG-1 48000 Hz stereo"),
        "radio.mp3": ({"sample_rate": 22050, "channels": 1, "bitrate": 64}, "MPEG-2 22050 Hz mono"),
    }
    for name, (shape, _) in odd.items():
        copied_in(name, make_mp3(0.4, **shape))
    with pytest.raises(UnprocessableError) as raised:
        put("q", ["a.mp3", "mono.mp3", "b.mp3", "48k.mp3", "radio.mp3", "c.mp3"])
    message = raised.value.message
    assert status_for(raised.value) == 422
    for name, (_, described) in odd.items():
        assert f"'{name}' is {described}" in message, message
    assert "'a.mp3' (MPEG-1 44100 Hz stereo)" in message, message  # what they must match
    assert "'b.mp3' is" not in message and "'c.mp3' is" not in message
    assert services().catalog.get_queue("q") is None
    # Files of one shape join, whatever it is.
    copied_in("mono2.mp3", make_mp3(0.3, channels=1, bitrate=96))
    assert put("mono", ["mono.mp3", "mono2.mp3"])[0] is True


def test_a_stale_replace_writes_nothing(songs):
    catalog = services().catalog
    put("q", ["a.mp3"])
    record = catalog.get_queue("q")
    changed = record.model_copy(update={"version": 2, "entries": record.entries * 2})
    assert catalog.put_queue(changed, expected_version=1) is True
    stale = record.model_copy(update={"version": 2, "title": "lost"})
    assert catalog.put_queue(stale, expected_version=1) is False
    assert catalog.put_queue(stale, expected_version=None) is False
    kept = catalog.get_queue("q")
    assert (kept.title, kept.files, kept.version) == ("q", ["a.mp3", "a.mp3"], 2)
    fresh = record.model_copy(update={"name": "new"})
    assert catalog.put_queue(fresh, expected_version=3) is False
    assert catalog.get_queue("new") is None


def test_a_replace_that_loses_the_race_is_409_and_leaves_the_winner(songs, monkeypatch):
    put("q", ["a.mp3"])
    catalog = services().catalog
    real_put = type(catalog).put_queue

    def racing_put(self, record, *, expected_version):
        # Another client's replace lands between this one's read and its write.
        winner = self.get_queue("q").model_copy(
            update={"version": 2, "entries": self.get_queue("q").entries * 3}
        )
        assert real_put(self, winner, expected_version=1)
        return real_put(self, record, expected_version=expected_version)

    monkeypatch.setattr(type(catalog), "put_queue", racing_put)
    with pytest.raises(ConflictError) as raised:
        put("q", ["b.mp3", "c.mp3"], "shuffle")
    monkeypatch.undo()
    assert status_for(raised.value) == 409
    kept = services().catalog.get_queue("q")
    assert kept.files == ["a.mp3"] * 3 and kept.play_mode is PlayMode.SEQUENTIAL


# --- Deleting -------------------------------------------------------------------------------


def test_deleting_a_queue(songs):
    put("q", ["a.mp3"])
    services().queues.delete("q", force=False)
    assert services().catalog.get_queue("q") is None
    with pytest.raises(NotFoundError):
        services().queues.delete("q", force=False)
    with pytest.raises(NotFoundError):
        services().queues.get("q")


def test_a_queue_on_a_yoto_card_is_409_naming_the_card_unless_forced(songs):
    put("q", ["a.mp3"])
    catalog = services().catalog
    record = catalog.get_queue("q")
    carded = record.model_copy(update={"yoto_card_id": "card-7Hq2", "version": 2})
    assert catalog.put_queue(carded, expected_version=1)
    with pytest.raises(ConflictError) as raised:
        services().queues.delete("q", force=False)
    assert status_for(raised.value) == 409
    assert "card-7Hq2" in raised.value.message
    assert catalog.get_queue("q") is not None
    # A replace keeps the card.
    assert put("q", ["b.mp3"])[1].yoto_card_id == "card-7Hq2"
    services().queues.delete("q", force=True)
    assert catalog.get_queue("q") is None


def test_deleting_a_file_in_queues_is_409_naming_them_unless_forced(songs):
    put("night", ["a.mp3", "b.mp3", "a.mp3"])
    put("day", ["c.mp3", "a.mp3"])
    put("other", ["b.mp3"])
    with pytest.raises(ConflictError) as raised:
        services().library.delete("a.mp3")
    assert status_for(raised.value) == 409
    assert "night" in raised.value.message and "day" in raised.value.message
    assert "other" not in raised.value.message
    assert services().storage.exists("a.mp3") and services().catalog.get_audio("a.mp3") is not None
    services().library.delete("a.mp3", force=True)
    assert not services().storage.exists("a.mp3")
    catalog = services().catalog
    assert catalog.get_queue("night").files == ["b.mp3"]
    assert catalog.get_queue("night").version == 2
    assert catalog.get_queue("day").files == ["c.mp3"]
    assert catalog.get_queue("other").version == 1
    assert catalog.get_queue("night").total_duration == pytest.approx(
        catalog.get_audio("b.mp3").duration, abs=0.002
    )


@pytest.mark.parametrize(
    ("other_writer", "expected_files", "expected_version"),
    [
        # A parent's replace lands between the delete's read of the queue and its write:
        # the replace stays, without the deleted file.
        (["c.mp3", "a.mp3", "c.mp3"], ["c.mp3", "c.mp3"], 3),
        # The same removal made by another delivery of the delete (the storage event): the
        # second one finds nothing to do and writes nothing.
        (["b.mp3"], ["b.mp3"], 2),
    ],
)
def test_a_file_leaving_a_queue_never_undoes_a_write_that_got_in_first(
    songs, monkeypatch, other_writer, expected_files, expected_version
):
    put("q", ["a.mp3", "b.mp3"])
    catalog = services().catalog
    real_put = type(catalog).put_queue
    raced: list[bool] = []

    def racing_put(self, record, *, expected_version):
        if not raced:
            raced.append(True)
            current = self.get_queue("q")
            entries = {e.filename: e for e in current.entries}
            entries["c.mp3"] = queue_entry(self.get_audio("c.mp3"))
            winner = current.model_copy(
                update={
                    "entries": [entries[name] for name in other_writer],
                    "version": current.version + 1,
                }
            )
            assert real_put(self, winner, expected_version=current.version)
        return real_put(self, record, expected_version=expected_version)

    monkeypatch.setattr(type(catalog), "put_queue", racing_put)
    services().library.delete("a.mp3", force=True)
    monkeypatch.undo()
    assert raced
    kept = services().catalog.get_queue("q")
    assert kept.files == expected_files
    assert kept.version == expected_version


# --- Files that change under a queue --------------------------------------------------------


def test_a_replaced_file_gives_its_queues_its_new_span(songs):
    put("q", ["a.mp3", "b.mp3"])
    before = services().catalog.get_queue("q")
    upload("b.mp3", make_mp3(1.2, bitrate=96, title="longer now"), overwrite=True)
    after = services().catalog.get_queue("q")
    audio = services().catalog.get_audio("b.mp3")
    entry = after.entries[1]
    assert (entry.etag, entry.audio_start, entry.audio_end) == (
        audio.etag,
        audio.audio_start,
        audio.audio_end,
    )
    assert entry.etag != before.entries[1].etag
    assert after.version == before.version + 1
    assert after.total_duration == pytest.approx(
        audio.duration + services().catalog.get_audio("a.mp3").duration, abs=0.002
    )


def test_a_file_that_turns_unplayable_leaves_its_queues(songs):
    put("q", ["a.mp3", "b.mp3", "c.mp3"])
    # Someone copies a text file over b.mp3 (straight into storage); the pipeline sees it.
    info = services().storage.put("b.mp3", io.BytesIO(b"not audio at all " * 100))
    services().pipeline.object_created(info, sequencer=None)
    assert services().catalog.get_queue("q").files == ["a.mp3", "c.mp3"]


def test_queues_survive_a_restart(songs):
    put("q", ["c.mp3", "a.mp3"], "endless-shuffle", title="Kept", description="across restarts")
    first = services()
    before = view(first.queues.get("q"))
    install(None)  # a cold start: new settings, adapters and clients
    assert services() is not first
    after = view(services().queues.get("q"))
    assert after == before
    listed = Views(services().urls, BASE).queue_list(services().queues.all())
    assert [q.name for q in listed.queues] == ["q"]


# --- Play order -----------------------------------------------------------------------------


def record(count: int, seed: int = 12345, version: int = 1) -> QueueRecord:
    entries = [
        QueueEntry(
            filename=f"f{i}.mp3", etag=f'"e{i}"', audio_start=10, audio_end=1010 + i, duration=1.0
        )
        for i in range(count)
    ]
    return QueueRecord(
        name="q",
        title="Q",
        entries=entries,
        seed=seed,
        version=version,
        updated_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("count", range(1, 9))
def test_in_order_modes_play_the_queue_order_every_round(count):
    r = record(count)
    for mode in (PlayMode.SEQUENTIAL, PlayMode.LOOP):
        for round_no in range(5):
            assert round_order(r, mode, round_no) == list(range(count))


@pytest.mark.parametrize("count", range(1, 9))
def test_shuffle_is_one_fixed_permutation_per_seed(count):
    for seed in (1, 2, 99, 2**47):
        r = record(count, seed)
        first = round_order(r, PlayMode.SHUFFLE, 0)
        assert sorted(first) == list(range(count))
        assert round_order(r, PlayMode.SHUFFLE, 0) == first
        assert round_order(record(count, seed), PlayMode.SHUFFLE, 0) == first
    if count >= 4:
        draws = {tuple(round_order(record(count, s), PlayMode.SHUFFLE, 0)) for s in range(20)}
        assert len(draws) > 5, "twenty seeds, hardly any different shuffles"


@pytest.mark.parametrize("count", range(1, 9))
def test_endless_shuffle_rounds(count):
    rounds = 300
    for seed in (7, 8, 2**40 + 3):
        r = record(count, seed)
        played = []
        orders = []
        for round_no in range(rounds):
            order = round_order(r, PlayMode.ENDLESS_SHUFFLE, round_no)
            assert sorted(order) == list(range(count)), "a round plays every file once"
            assert round_order(r, PlayMode.ENDLESS_SHUFFLE, round_no) == order
            orders.append(tuple(order))
            played += order
        if count == 1:
            assert played == [0] * rounds
            continue
        repeats = [i for i, (a, b) in enumerate(itertools.pairwise(played)) if a == b]
        assert not repeats, f"the same file twice in a row at {repeats[:5]}"
        if count == 2:
            assert played == [played[0], played[1]] * rounds, "two files alternate"
            continue
        distinct = len(set(orders))
        assert distinct >= min(24, len(list(itertools.permutations(range(count))))) // 2, (
            f"only {distinct} different rounds in {rounds}: not a new draw per round"
        )
        # No file is kept out of the first slot (the no-repeat rule must not bias it away).
        firsts = Counter(order[0] for order in orders)
        assert set(firsts) == set(range(count))


def finite_layout(r: QueueRecord, mode: PlayMode) -> FiniteLayout:
    """Made afresh each time (a new Layouts, nothing cached), so that equal ETags are equal
    because the layouts are, not because one was kept."""
    return Layouts().finite(r, mode)


def test_layout_and_etag():
    r = record(3)
    layout = finite_layout(r, PlayMode.SEQUENTIAL)
    assert layout.etag.startswith('"') and not layout.etag.startswith("W/")
    assert layout.size == len(layout.prefix) + sum(e.length for e in r.entries)
    assert [p.offset for p in layout.pieces] == list(
        itertools.accumulate([len(layout.prefix), *[e.length for e in r.entries][:-1]], initial=0)
    )
    same = finite_layout(record(3), PlayMode.SEQUENTIAL)
    assert same.etag == layout.etag
    changes = [
        finite_layout(record(3, version=2), PlayMode.SEQUENTIAL),
        finite_layout(r, PlayMode.SHUFFLE),
        finite_layout(r.model_copy(update={"title": "Other"}), PlayMode.SEQUENTIAL),
        finite_layout(
            r.model_copy(
                update={
                    "entries": [r.entries[0].model_copy(update={"etag": '"x"'}), *r.entries[1:]]
                }
            ),
            PlayMode.SEQUENTIAL,
        ),
    ]
    etags = {layout.etag} | {c.etag for c in changes}
    assert len(etags) == 1 + len(changes), "some change of the queue kept the ETag"


def test_cursor_keys_are_per_url_and_mode():
    keys = {
        cursor_key("q", PlayMode.LOOP, "cred-a"),
        cursor_key("q", PlayMode.LOOP, "cred-b"),
        cursor_key("q", PlayMode.LOOP, None),
        cursor_key("q", PlayMode.ENDLESS_SHUFFLE, "cred-a"),
        cursor_key("r", PlayMode.LOOP, "cred-a"),
    }
    assert len(keys) == 5
    assert cursor_key("q", PlayMode.LOOP, "cred-a") == cursor_key("q", PlayMode.LOOP, "cred-a")
