"""The local server's directory watcher: files a parent copies into (or deletes from)
AUDIO_FILES_DIR by hand are catalogued (or removed) like uploads, whether the server was
running or not, once a copy has finished; nothing else in the directory is ever audio, and
writes made through the app are not handled twice."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_server.app import adopter, create_app
from local_server.s3_events import S3EventDispatcher
from local_server.template import read_template
from local_server.watcher import DirectoryWatcher
from smart_stream.bootstrap import Services, services
from smart_stream.changes import ObjectChanged
from smart_stream.domain.records import AudioStatus
from smart_stream.ports import ObjectInfo
from tests.audio import make_mp3
from tests.conftest import ROOT, fresh_services
from tests.unit.test_audio_analysis import decoded_samples, encode, id3v2

ONE_FRAME = 1152 / 44100 + 0.0005


class Recorder:
    """An emit function that remembers what it was told, then hands it on (to the real
    bucket-event dispatcher, so the real extract_metadata handler catalogues it)."""

    def __init__(self, forward=None) -> None:
        self.events: list[tuple[str, str]] = []
        self.forward = forward

    def __call__(self, kind: str, info: ObjectInfo) -> None:
        self.events.append((kind, info.name))
        if self.forward is not None:
            self.forward(kind, info)

    def on_change(self, change: ObjectChanged) -> None:
        """As a change-feed listener (what Storage tells of its own writes)."""
        self(change.kind, change.info)

    def take(self) -> list[tuple[str, str]]:
        taken, self.events = sorted(self.events), []
        return taken


@pytest.fixture
def app(local_env) -> Services:
    """The services of the test's environment, installed: the extract_metadata handler the
    dispatcher calls uses them too."""
    return fresh_services()


@pytest.fixture
def dispatcher(app) -> Iterator[S3EventDispatcher]:
    rules = read_template(ROOT / "template.yaml").event_rules
    assert rules, "extract_metadata has a rule for the bucket's events in template.yaml"
    events = S3EventDispatcher(rules)
    events.start()
    yield events
    events.stop()


@pytest.fixture
def emit(dispatcher) -> Recorder:
    return Recorder(dispatcher)


@pytest.fixture
def audio_dir(local_env, app) -> Path:
    assert app.storage is not None  # makes the directory, as the server does at start-up
    return local_env.audio_dir


def watcher_for(audio_dir: Path, emit: Recorder, settle_polls: int = 2) -> DirectoryWatcher:
    return DirectoryWatcher(audio_dir, emit, interval=3600, settle_polls=settle_polls)


def poll(watcher: DirectoryWatcher, dispatcher: S3EventDispatcher, times: int = 1) -> None:
    for _ in range(times):
        watcher.poll()
    dispatcher.drain()


def get_catalog():
    """The catalogue of the installed services (what the handlers write to)."""
    return services().catalog


def get_storage():
    return services().storage


def catalogued(status=tuple(AudioStatus)) -> dict[str, str]:
    page = get_catalog().list_audio(limit=1000, after=None, statuses=status)
    return {r.filename: r.status.value for r in page.records}


def put_and_catalogue(name: str, data: bytes) -> ObjectInfo:
    """A file stored and catalogued by the app earlier (before this server started)."""
    info = get_storage().put(name, io.BytesIO(data))
    services().pipeline.object_created(info, sequencer="01")
    return info


# --- Start-up ----------------------------------------------------------------------------


def test_reconcile_catches_up_with_what_changed_while_stopped(audio_dir, emit, dispatcher):
    """Given files copied in, replaced and deleted by hand while the server was stopped,
    when it starts, then the deleted ones leave the catalogue at once, the new and replaced
    ones are catalogued (once settled) with what they are, and the untouched ones cause no
    event at all."""
    put_and_catalogue("kept.mp3", make_mp3(0.5, title="Kept"))
    put_and_catalogue("changed.mp3", make_mp3(0.5, title="Before"))
    put_and_catalogue("deleted.mp3", make_mp3(0.5, title="Deleted"))
    put_and_catalogue("bad.mp3", b"not audio" * 100)
    kept_record = get_catalog().get_audio("kept.mp3")
    assert catalogued() == {
        "kept.mp3": "ready",
        "changed.mp3": "ready",
        "deleted.mp3": "ready",
        "bad.mp3": "invalid",
    }
    # While stopped: a copy in, a replacement, a deletion.
    copied = id3v2(4, title="Copied In") + encode(2.0)
    (audio_dir / "copied.mp3").write_bytes(copied)
    (audio_dir / "changed.mp3").write_bytes(make_mp3(1.5, title="After"))
    (audio_dir / "deleted.mp3").unlink()
    watcher = watcher_for(audio_dir, emit)

    watcher.reconcile(get_catalog())
    dispatcher.drain()

    assert emit.take() == [("ObjectRemoved", "deleted.mp3")]
    assert "deleted.mp3" not in catalogued()

    poll(watcher, dispatcher, times=2)

    assert emit.take() == [("ObjectCreated", "changed.mp3"), ("ObjectCreated", "copied.mp3")]
    catalog = get_catalog()
    assert catalogued() == {
        "kept.mp3": "ready",
        "changed.mp3": "ready",
        "copied.mp3": "ready",
        "bad.mp3": "invalid",
    }
    new = catalog.get_audio("copied.mp3")
    assert new.title == "Copied In"
    assert new.duration == pytest.approx(decoded_samples(copied) / 44100, abs=ONE_FRAME)
    assert new.size == len(copied)
    changed = catalog.get_audio("changed.mp3")
    assert changed.title == "After"
    assert changed.duration == pytest.approx(1.5, abs=0.1)
    assert catalog.get_audio("kept.mp3") == kept_record

    poll(watcher, dispatcher, times=3)
    assert emit.take() == [], "nothing changed since"


def test_reconcile_on_an_empty_directory_and_catalogue(audio_dir, emit, dispatcher):
    watcher = watcher_for(audio_dir, emit)
    watcher.reconcile(get_catalog())
    poll(watcher, dispatcher, times=3)
    assert emit.take() == []


def test_reconcile_removes_every_record_when_the_directory_is_emptied(audio_dir, emit, dispatcher):
    names = [f"track {i:03d}.mp3" for i in range(12)]
    data = make_mp3(0.2)
    for name in names:
        put_and_catalogue(name, data)
    for name in names:
        (audio_dir / name).unlink()

    watcher_for(audio_dir, emit).reconcile(get_catalog())
    dispatcher.drain()

    assert emit.take() == sorted(("ObjectRemoved", n) for n in names)
    assert catalogued() == {}


# --- While running -----------------------------------------------------------------------


def test_a_file_being_copied_is_not_catalogued_until_it_settles(audio_dir, emit, dispatcher):
    """Given a file copied in slowly (its size changes between polls), then nothing is
    catalogued while it grows (a half-copied file is not a bad file), and once its size has
    stayed the same for the settling polls it is catalogued once, whole."""
    data = id3v2(4, title="Slow Copy") + encode(2.0)
    watcher = watcher_for(audio_dir, emit, settle_polls=2)
    target = audio_dir / "slow.mp3"
    pieces = [data[i : i + 7000] for i in range(0, len(data), 7000)]
    with open(target, "wb") as out:
        for piece in pieces:
            out.write(piece)
            out.flush()
            poll(watcher, dispatcher)
            assert emit.take() == [], "catalogued while still being written"
            assert catalogued() == {}

    poll(watcher, dispatcher)  # first poll that sees it unchanged
    assert emit.take() == []
    poll(watcher, dispatcher)

    assert emit.take() == [("ObjectCreated", "slow.mp3")]
    record = get_catalog().get_audio("slow.mp3")
    assert record.status is AudioStatus.READY
    assert record.size == len(data)
    assert record.title == "Slow Copy"
    assert record.duration == pytest.approx(decoded_samples(data) / 44100, abs=ONE_FRAME)


def test_a_file_touched_but_the_same_size_settles_again(audio_dir, emit, dispatcher):
    watcher = watcher_for(audio_dir, emit, settle_polls=2)
    target = audio_dir / "touched.mp3"
    target.write_bytes(make_mp3(0.5))
    poll(watcher, dispatcher, times=2)
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    poll(watcher, dispatcher)
    assert emit.take() == [], "its mtime moved: it is still being written"
    poll(watcher, dispatcher, times=2)
    assert emit.take() == [("ObjectCreated", "touched.mp3")]


def test_files_copied_in_and_deleted_by_hand_while_running(audio_dir, emit, dispatcher):
    watcher = watcher_for(audio_dir, emit)
    watcher.reconcile(get_catalog())
    first = make_mp3(1.0, title="By Hand")
    (audio_dir / "hand.mp3").write_bytes(first)
    poll(watcher, dispatcher, times=3)
    assert emit.take() == [("ObjectCreated", "hand.mp3")]
    assert get_catalog().get_audio("hand.mp3").title == "By Hand"

    # Replaced by hand: catalogued again, with the new bytes.
    second = make_mp3(2.0, title="Replaced")
    (audio_dir / "hand.mp3").write_bytes(second)
    poll(watcher, dispatcher, times=3)
    assert emit.take() == [("ObjectCreated", "hand.mp3")]
    record = get_catalog().get_audio("hand.mp3")
    assert (record.title, record.size) == ("Replaced", len(second))

    # Deleted by hand: gone at the next poll.
    (audio_dir / "hand.mp3").unlink()
    poll(watcher, dispatcher)
    assert emit.take() == [("ObjectRemoved", "hand.mp3")]
    assert catalogued() == {}

    # And copied back: here again (its newer event outranks the delete's).
    (audio_dir / "hand.mp3").write_bytes(first)
    poll(watcher, dispatcher, times=3)
    assert emit.take() == [("ObjectCreated", "hand.mp3")]
    assert get_catalog().get_audio("hand.mp3").title == "By Hand"


def test_a_file_deleted_while_it_settles_causes_no_event(audio_dir, emit, dispatcher):
    watcher = watcher_for(audio_dir, emit)
    (audio_dir / "brief.mp3").write_bytes(make_mp3(0.2))
    poll(watcher, dispatcher)
    (audio_dir / "brief.mp3").unlink()
    poll(watcher, dispatcher, times=3)
    assert emit.take() == []
    assert catalogued() == {}


IGNORED = [
    ".incoming-k2j3h4",  # Storage's own temporary file
    ".story.mp3",  # hidden
    ".story.mp3.swp",
    "story.mp3.part",  # a browser's download in progress
    "story.mp3.crdownload",
    "notes.txt",
    "desktop.ini",
    "cover.jpg",
]


def test_hidden_temporary_and_other_files_are_never_audio(audio_dir, emit, dispatcher):
    watcher = watcher_for(audio_dir, emit)
    watcher.reconcile(get_catalog())
    for name in IGNORED:
        (audio_dir / name).write_bytes(make_mp3(0.2))
    (audio_dir / "folder.mp3").mkdir()
    (audio_dir / "folder.mp3" / "inside.mp3").write_bytes(make_mp3(0.2))

    poll(watcher, dispatcher, times=4)

    assert emit.take() == []
    assert catalogued() == {}
    for name in IGNORED:
        (audio_dir / name).unlink()
    poll(watcher, dispatcher, times=2)
    assert emit.take() == []


def test_writes_through_storage_are_not_handled_twice(audio_dir, emit, dispatcher):
    """Given the watcher listening to Storage as the server wires it, when the app writes
    and deletes files (uploads, TTS), then each change makes exactly one event (Storage's
    own) and the watcher's polls add none."""
    watcher = watcher_for(audio_dir, emit)
    heard = Recorder(dispatcher)
    changes = services().changes
    changes.subscribe(ObjectChanged, heard.on_change)
    changes.subscribe(ObjectChanged, watcher.observe_change)
    try:
        watcher.reconcile(get_catalog())
        storage = get_storage()
        storage.put("app.mp3", io.BytesIO(make_mp3(0.5, title="Through The App")))
        poll(watcher, dispatcher, times=3)
        storage.put("app.mp3", io.BytesIO(make_mp3(1.0, title="Again")), overwrite=True)
        poll(watcher, dispatcher, times=3)
        assert heard.take() == [("ObjectCreated", "app.mp3"), ("ObjectCreated", "app.mp3")]
        assert emit.take() == [], "the watcher emitted an event for the app's own write"
        assert get_catalog().get_audio("app.mp3").title == "Again"

        storage.delete("app.mp3")
        poll(watcher, dispatcher, times=3)
        assert heard.take() == [("ObjectRemoved", "app.mp3")]
        assert emit.take() == []
        assert catalogued() == {}
    finally:
        changes.unsubscribe(ObjectChanged, watcher.observe_change)
        changes.unsubscribe(ObjectChanged, heard.on_change)


def test_a_write_through_storage_while_a_hand_copy_settles(audio_dir, emit, dispatcher):
    """A file copied by hand and then overwritten through the app before it settled is
    catalogued once, from the app's write."""
    watcher = watcher_for(audio_dir, emit)
    heard = Recorder(dispatcher)
    changes = services().changes
    changes.subscribe(ObjectChanged, heard.on_change)
    changes.subscribe(ObjectChanged, watcher.observe_change)
    try:
        (audio_dir / "race.mp3").write_bytes(make_mp3(0.3, title="Hand"))
        poll(watcher, dispatcher)
        get_storage().put("race.mp3", io.BytesIO(make_mp3(0.3, title="App")))
        poll(watcher, dispatcher, times=3)
        assert emit.take() == []
        assert heard.take() == [("ObjectCreated", "race.mp3")]
        assert get_catalog().get_audio("race.mp3").title == "App"
    finally:
        changes.unsubscribe(ObjectChanged, watcher.observe_change)
        changes.unsubscribe(ObjectChanged, heard.on_change)


def test_the_watcher_thread_catalogues_a_copy_by_itself(audio_dir, dispatcher):
    emit = Recorder(dispatcher)
    watcher = DirectoryWatcher(audio_dir, emit, interval=0.05, settle_polls=2)
    watcher.reconcile(get_catalog())
    watcher.start()
    try:
        (audio_dir / "threaded.mp3").write_bytes(make_mp3(0.5, title="Threaded"))
        deadline = time.monotonic() + 5
        while get_catalog().get_audio("threaded.mp3") is None:
            assert time.monotonic() < deadline, "not catalogued within 5 s"
            time.sleep(0.02)
            dispatcher.drain()
    finally:
        watcher.stop()
    assert get_catalog().get_audio("threaded.mp3").title == "Threaded"
    assert emit.take() == [("ObjectCreated", "threaded.mp3")]


# --- How the server wires it -------------------------------------------------------------


def server(access_log: bool = False):
    """The local server over services built from the environment as it is now."""
    return create_app(ROOT / "template.yaml", fresh_services(), access_log=access_log)


def test_the_local_server_watches_its_audio_directory(local_env, monkeypatch):
    app = server()
    assert app.state.watcher is not None
    assert app.state.watcher.root == local_env.audio_dir
    assert app.state.watcher.interval == 1.0, "LOCAL_WATCH_SECONDS defaults to 1 s"

    monkeypatch.setenv("LOCAL_WATCH_SECONDS", "0.25")
    assert server().state.watcher.interval == 0.25

    monkeypatch.setenv("LOCAL_WATCH_SECONDS", "0")
    assert server().state.watcher is None


def test_no_directory_watcher_on_s3(aws_env):
    app = server()
    assert app.state.watcher is None


def test_audio_of_another_format_copied_in_by_hand_is_converted(local_env, monkeypatch):
    """Given the server running, a parent copies a voice memo (story.m4a) into the audio
    folder: once settled it leaves the folder for its conversion, and story.mp3 appears."""
    from starlette.testclient import TestClient

    from tests.audio import audio_source

    monkeypatch.setenv("LOCAL_WATCH_SECONDS", "0")  # the test polls by hand: no thread
    app = server()
    root = app.state.services
    with TestClient(app):
        watcher = DirectoryWatcher(local_env.audio_dir, app.state.dispatcher, adopt=adopter(root))
        (local_env.audio_dir / "story.m4a").write_bytes(audio_source("m4a"))
        for _ in range(4):
            watcher.poll()
        assert not (local_env.audio_dir / "story.m4a").exists()
        app.state.dispatcher.drain()
        record = root.catalog.get_audio("story.mp3")
        assert record.status is AudioStatus.READY and record.source_format == "m4a/aac"
        assert sorted(p.name for p in local_env.audio_dir.iterdir()) == ["story.mp3"]
        watcher.poll()
        assert root.catalog.get_audio("story.m4a") is None, "never catalogued as it was"


def test_other_formats_are_left_alone_where_nothing_converts_them(audio_dir, emit):
    watcher = DirectoryWatcher(audio_dir, emit)  # no adopter: as before
    (audio_dir / "story.m4a").write_bytes(b"x" * 100)
    for _ in range(4):
        watcher.poll()
    assert emit.events == []
    assert (audio_dir / "story.m4a").exists()
