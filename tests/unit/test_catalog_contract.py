"""One contract for every Catalog adapter (SQLite; DynamoDB in moto): records kept whole,
listed in filename order page by page, filtered by status, searched case-insensitively;
made without I/O, migrated on demand, and telling their change feed of each write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smart_stream.adapters.catalog_rows import SCHEMA_VERSION
from smart_stream.bootstrap import SQLITE_FILENAME, Services
from smart_stream.changes import AudioChanged, ChangeFeed, QueueChanged
from smart_stream.domain.records import AudioRecord, AudioStatus, PlayMode, QueueRecord
from smart_stream.ports import Catalog
from tests.conftest import fresh_services

ALL = tuple(AudioStatus)
VISIBLE = (AudioStatus.PENDING, AudioStatus.CONVERTING, AudioStatus.READY)

# Mixed case, accents, other scripts, emoji, punctuation: filename order is code-point order
# (what SQLite's BINARY collation and DynamoDB's UTF-8 byte order both give).
NAMES = [
    "apple.mp3",
    "Zebra.mp3",
    "zebra.mp3",
    "Äpfel.mp3",
    "éclair.mp3",
    "おやすみ.mp3",
    "🐻 bear.mp3",
    "100% fun.mp3",
    "a b.mp3",
    "a+b.mp3",
    "a.mp3",
    "ab.mp3",
]


def record(filename: str, **fields) -> AudioRecord:
    values = {
        "size": 1234,
        "etag": f'"etag-{abs(hash(filename))}"',
        "uploaded_at": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "duration": 12.345,
        "bitrate": 128000,
        "bitrate_mode": "CBR",
        "sample_rate": 44100,
        "channels": 2,
        "mpeg_version": "1",
    }
    values.update(fields)
    return AudioRecord(filename=filename, **values)


@pytest.fixture
def catalog(app_env, root: Services) -> Catalog:
    return root.catalog


def walk(catalog: Catalog, limit: int, statuses=ALL) -> list[list[str]]:
    """Every page, following the cursor until the catalog says there is no more."""
    pages: list[list[str]] = []
    after = None
    while True:
        page = catalog.list_audio(limit=limit, after=after, statuses=statuses)
        assert len(page.records) <= limit
        pages.append([r.filename for r in page.records])
        if page.after is None:
            return pages
        assert page.after == page.records[-1].filename, "the cursor is the last name given"
        after = page.after
        assert len(pages) <= len(NAMES) + 2, "paging must end"


def test_put_get_round_trip_keeps_every_field(catalog):
    original = record(
        "Bedtime Story.mp3",
        title="The Gruffalo",
        artist="Julia Donaldson",
        album="Stories",
        transcript="A mouse took a stroll through the deep dark wood.",
        transcript_status="done",
        status=AudioStatus.PENDING,
        status_reason="waiting for metadata",
        credential_version=7,
        duration=None,
    )
    catalog.put_audio(original)
    got = catalog.get_audio("Bedtime Story.mp3")
    assert got == original
    assert got.uploaded_at.utcoffset() == timedelta(0)


def test_get_of_a_missing_record_is_none(catalog):
    catalog.put_audio(record("there.mp3"))
    assert catalog.get_audio("missing.mp3") is None
    assert catalog.get_audio("There.mp3") is None, "names are case-sensitive"


def test_put_replaces_a_record_of_the_same_name(catalog):
    catalog.put_audio(record("story.mp3", title="Old title", size=1))
    catalog.put_audio(record("story.mp3", title="New title", size=2))
    got = catalog.get_audio("story.mp3")
    assert (got.title, got.size) == ("New title", 2)
    assert walk(catalog, 10) == [["story.mp3"]]
    # Search sees the new text, not the old.
    assert [r.filename for r in catalog.search_audio("new title", statuses=ALL)] == ["story.mp3"]
    assert list(catalog.search_audio("old title", statuses=ALL)) == []


def test_delete(catalog):
    catalog.put_audio(record("story.mp3"))
    catalog.put_audio(record("other.mp3"))
    assert catalog.delete_audio("story.mp3") is True
    assert catalog.get_audio("story.mp3") is None
    assert catalog.delete_audio("story.mp3") is False
    assert walk(catalog, 10) == [["other.mp3"]]


def test_an_empty_catalog_lists_one_empty_page(catalog):
    page = catalog.list_audio(limit=5, after=None, statuses=ALL)
    assert page.records == []
    assert page.after is None


@pytest.fixture
def filled(catalog) -> Catalog:
    for name in reversed(NAMES):  # insertion order must not matter
        catalog.put_audio(record(name))
    return catalog


def test_every_page_size_lists_every_name_once_in_filename_order(filled):
    """Given n files, when they are listed page by page with any page size from 1 to n+1,
    then the pages together are every name exactly once, in filename order, and only the
    last page says there is no more."""
    expected = sorted(NAMES)
    for limit in range(1, len(NAMES) + 2):
        pages = walk(filled, limit)
        assert [name for page in pages for name in page] == expected, f"limit={limit}"
        assert all(len(page) == limit for page in pages[:-1])
        # No empty trailing page when n is a multiple of the page size.
        if len(NAMES) % limit == 0 and limit <= len(NAMES):
            assert len(pages) == len(NAMES) // limit


def test_after_continues_strictly_after_any_name(filled):
    expected = sorted(NAMES)
    for i, name in enumerate(expected):
        page = filled.list_audio(limit=100, after=name, statuses=ALL)
        assert [r.filename for r in page.records] == expected[i + 1 :]
    # A cursor need not be a stored name (the file may have been deleted since).
    page = filled.list_audio(limit=100, after="b", statuses=ALL)
    assert [r.filename for r in page.records] == [n for n in expected if n > "b"]


def test_paging_survives_a_deleted_cursor(filled):
    expected = sorted(NAMES)
    first = filled.list_audio(limit=3, after=None, statuses=ALL)
    filled.delete_audio(first.after)
    rest = filled.list_audio(limit=100, after=first.after, statuses=ALL)
    assert [r.filename for r in rest.records] == expected[3:]


STATUS_OF = {name: list(AudioStatus)[i % 3] for i, name in enumerate(sorted(NAMES))}


@pytest.fixture
def mixed(catalog) -> Catalog:
    for name, status in STATUS_OF.items():
        catalog.put_audio(record(name, status=status))
    return catalog


STATUS_FILTERS = [
    (AudioStatus.READY,),
    (AudioStatus.PENDING,),
    (AudioStatus.INVALID,),
    VISIBLE,
    ALL,
    (AudioStatus.INVALID, AudioStatus.READY),
]


def test_status_filters_with_paging(mixed):
    """Filtered pages are full pages of matching records (the filter does not leave holes
    or end the listing early), for every page size."""
    for statuses in STATUS_FILTERS:
        expected = sorted(name for name, status in STATUS_OF.items() if status in statuses)
        for limit in (1, 2, 3, 5, len(NAMES)):
            pages = walk(mixed, limit, statuses)
            got = [name for page in pages for name in page]
            assert got == expected, f"statuses={statuses} limit={limit}"
            assert all(len(page) == limit for page in pages[:-1])


def search(catalog: Catalog, needle: str, statuses=VISIBLE) -> set[str]:
    return {r.filename for r in catalog.search_audio(needle, statuses=statuses)}


@pytest.fixture
def library(catalog) -> Catalog:
    catalog.put_audio(
        record(
            "Bedtime_Story.mp3",
            title="The GRUFFALO",
            artist="Julia Donaldson",
            album="Woodland Tales",
            transcript="A mouse took a stroll through the deep dark wood.",
        )
    )
    catalog.put_audio(record("Gute Nacht.mp3", title="Straße der Träume", artist="Oma"))
    catalog.put_audio(record("100% fun.mp3", title="Songs"))
    catalog.put_audio(record("1000 songs.mp3"))
    catalog.put_audio(record("hidden gruffalo.mp3", status=AudioStatus.INVALID))
    catalog.put_audio(record("new gruffalo.mp3", status=AudioStatus.PENDING))
    return catalog


SEARCHES = [
    ("gruffalo", {"Bedtime_Story.mp3", "new gruffalo.mp3"}),  # title (and a filename)
    ("DONALDSON", {"Bedtime_Story.mp3"}),  # artist
    ("woodland", {"Bedtime_Story.mp3"}),  # album
    ("deep dark wood", {"Bedtime_Story.mp3"}),  # transcript
    ("bedtime_story", {"Bedtime_Story.mp3"}),  # filename
    ("gute nacht", {"Gute Nacht.mp3"}),
    ("STRASSE", {"Gute Nacht.mp3"}),  # ß case-folds to ss
    ("träume", {"Gute Nacht.mp3"}),
    ("100%", {"100% fun.mp3"}),  # % is a literal, not a wildcard
    ("_story", {"Bedtime_Story.mp3"}),  # _ is a literal too
    (
        ".mp3",
        {
            "Bedtime_Story.mp3",
            "Gute Nacht.mp3",
            "100% fun.mp3",
            "1000 songs.mp3",
            "new gruffalo.mp3",
        },
    ),
    ("nothing like this", set()),
]


def test_search_is_case_insensitive_over_names_tags_and_transcripts(library):
    for query, expected in SEARCHES:
        assert search(library, query.casefold()) == expected, query


def test_search_respects_the_status_filter(library):
    assert search(library, "gruffalo", ALL) == {
        "Bedtime_Story.mp3",
        "hidden gruffalo.mp3",
        "new gruffalo.mp3",
    }
    assert search(library, "gruffalo", (AudioStatus.INVALID,)) == {"hidden gruffalo.mp3"}


def test_schema_version_and_reopening_keep_the_data(catalog):
    """Given a catalogue with data, when the process starts again (services and adapter made
    anew), then its schema version is current and nothing was lost or migrated twice."""
    catalog.migrate()  # what the local server and the writing functions do first
    assert catalog.schema_version() == SCHEMA_VERSION
    catalog.put_audio(record("kept.mp3", title="Still here"))

    reopened = fresh_services().catalog

    assert reopened is not catalog
    assert reopened.schema_version() == SCHEMA_VERSION
    assert reopened.get_audio("kept.mp3").title == "Still here"
    assert walk(reopened, 10) == [["kept.mp3"]]
    again = fresh_services().catalog
    again.migrate()  # a second migration of a current store changes nothing
    assert again.schema_version() == SCHEMA_VERSION
    assert again.get_audio("kept.mp3").title == "Still here"


# --- Made without I/O; migrated on demand ---------------------------------------------------


class NoRequests:
    """A DynamoDB client whose every call fails the test: constructing must not use it."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the adapter called DynamoDB ({name}) while being made")


def test_constructing_a_sqlite_catalog_touches_nothing(tmp_path: Path):
    from smart_stream.adapters.local.sqlite import SqliteCatalog

    path = tmp_path / "state" / "catalog.sqlite3"
    catalog = SqliteCatalog(path)
    assert not path.exists() and not path.parent.exists(), "made a file before first use"

    assert catalog.get_audio("story.mp3") is None  # first use: opened and migrated

    assert path.is_file()
    assert catalog.schema_version() == SCHEMA_VERSION


def test_local_services_make_no_catalogue_file_until_it_is_used(local_env):
    services = fresh_services()
    path = local_env.data_dir / SQLITE_FILENAME
    assert services.catalog is not None
    assert not path.exists(), "the catalogue was opened when only made"
    services.catalog.list_queues()
    assert path.is_file()


def test_constructing_a_dynamo_catalog_makes_no_request(aws_env):
    from smart_stream.adapters.aws.dynamodb import DynamoCatalog

    DynamoCatalog(aws_env.table, NoRequests())  # type: ignore[arg-type]

    # Through the services too: the catalogue is made, and nothing is asked of the table.
    services = fresh_services()
    requests: list[str] = []
    client = services.client("dynamodb")
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: requests.append(model.name)
    )
    assert services.catalog is not None
    assert requests == []
    services.migrate()
    assert "PutItem" in requests, "migrate writes the schema item"


def _schema_item(aws_env) -> dict | None:
    import boto3

    from smart_stream.adapters.aws.dynamo_items import SCHEMA_KEY

    found = boto3.client("dynamodb").get_item(TableName=aws_env.table, Key=SCHEMA_KEY)
    return found.get("Item")


def test_dynamo_writes_its_schema_item_only_in_migrate(aws_env, root):
    catalog = root.catalog
    catalog.put_audio(record("story.mp3"))  # ordinary use does not write the schema item
    assert catalog.get_audio("story.mp3") is not None
    assert _schema_item(aws_env) is None
    assert catalog.schema_version() == 0, "not migrated yet"

    catalog.migrate()

    assert _schema_item(aws_env)["version"] == {"N": str(SCHEMA_VERSION)}
    assert catalog.schema_version() == SCHEMA_VERSION


def test_migrate_brings_the_schema_version_current(catalog):
    catalog.migrate()
    assert catalog.schema_version() == SCHEMA_VERSION
    catalog.migrate()  # twice is harmless
    assert catalog.schema_version() == SCHEMA_VERSION
    catalog.put_audio(record("story.mp3"))
    assert catalog.get_audio("story.mp3") is not None


def test_migrate_refuses_a_store_newer_than_the_code(app_env, root, tmp_path):
    """A catalogue written by a newer version of the app is not used by an older one."""
    if app_env.backend == "local":
        import sqlite3

        from smart_stream.adapters.local.sqlite import SqliteCatalog

        path = tmp_path / "newer.sqlite3"
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        newer: Catalog = SqliteCatalog(path)
    else:
        import boto3

        from smart_stream.adapters.aws.dynamo_items import SCHEMA_KEY

        boto3.client("dynamodb").put_item(
            TableName=app_env.table,
            Item={**SCHEMA_KEY, "version": {"N": str(SCHEMA_VERSION + 1)}},
        )
        newer = root.catalog
    with pytest.raises(RuntimeError, match="newer"):
        newer.migrate()


# --- The change feed: told of each write that was made ----------------------------------------


def queue(name: str = "bedtime", version: int = 1) -> QueueRecord:
    return QueueRecord(
        name=name,
        title=f"Title of {name}",
        entries=[],
        play_mode=PlayMode.SEQUENTIAL,
        version=version,
        seed=1,
        updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


class Heard:
    """A change-feed listener that remembers each change, with what the catalogue held for
    it at that moment (a change is told once it is written)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.changes: list[object] = []
        self.seen: list[object] = []

    def audio(self, change: AudioChanged) -> None:
        self.changes.append(change)
        self.seen.append(self.catalog.get_audio(change.filename))

    def queue(self, change: QueueChanged) -> None:
        self.changes.append(change)
        self.seen.append(self.catalog.get_queue(change.name))

    def take(self) -> tuple[list[object], list[object]]:
        taken = (self.changes, self.seen)
        self.changes, self.seen = [], []
        return taken


@pytest.fixture
def heard(catalog) -> Heard:
    listener = Heard(catalog)
    catalog.changes.subscribe(AudioChanged, listener.audio)
    catalog.changes.subscribe(QueueChanged, listener.queue)
    return listener


def test_the_services_catalog_tells_the_services_feed(app_env, root):
    assert isinstance(root.catalog.changes, ChangeFeed)
    assert root.catalog.changes is root.changes


def test_audio_writes_are_told_after_they_are_made(catalog, heard):
    first = record("story.mp3", title="First")
    assert catalog.put_audio(first)
    assert heard.take() == ([AudioChanged("story.mp3")], [first])

    second = record("story.mp3", title="Second")
    assert catalog.put_audio(second)
    assert heard.take() == ([AudioChanged("story.mp3")], [second])

    assert catalog.delete_audio("story.mp3") is True
    assert heard.take() == ([AudioChanged("story.mp3")], [None])


def test_audio_writes_that_change_nothing_are_not_told(catalog, heard):
    assert catalog.delete_audio("missing.mp3") is False
    assert heard.take() == ([], [])

    newer = record("story.mp3", title="From the newer event")
    assert catalog.put_audio(newer, sequencer="0A")
    heard.take()
    stale = record("story.mp3", title="From an older event")
    assert catalog.put_audio(stale, sequencer="09") is False
    assert heard.take() == ([], []), "a stale event wrote nothing and must tell nothing"
    assert catalog.delete_audio("story.mp3", sequencer="08") is False
    assert heard.take() == ([], [])
    assert catalog.get_audio("story.mp3") == newer

    assert catalog.delete_audio("story.mp3", sequencer="0B") is True
    assert heard.take() == ([AudioChanged("story.mp3")], [None])


def test_queue_writes_are_told_after_they_are_made(catalog, heard):
    created = queue(version=1)
    assert catalog.put_queue(created, expected_version=None)
    assert heard.take() == ([QueueChanged("bedtime", existed=False, exists=True)], [created])

    replaced = queue(version=2)
    assert catalog.put_queue(replaced, expected_version=1)
    assert heard.take() == ([QueueChanged("bedtime", existed=True, exists=True)], [replaced])

    assert catalog.delete_queue("bedtime") is True
    assert heard.take() == ([QueueChanged("bedtime", existed=True, exists=False)], [None])


def test_a_failed_conditional_queue_write_tells_nothing(catalog, heard):
    stored = queue(version=1)
    assert catalog.put_queue(stored, expected_version=None)
    heard.take()

    # Another writer got there first: created already, or moved on from the version read.
    assert catalog.put_queue(queue(version=1), expected_version=None) is False
    assert catalog.put_queue(queue(version=3), expected_version=2) is False
    assert catalog.put_queue(queue("nowhere", version=2), expected_version=1) is False
    assert catalog.delete_queue("nowhere") is False

    assert heard.take() == ([], [])
    assert catalog.get_queue("bedtime") == stored


# Conversions: a record that waits for one upload ---------------------------------------------

SOURCE = "incoming/" + "a" * 32 + "/story.m4a"
NEWER = "incoming/" + "b" * 32 + "/story.m4a"


def converting(source: str = SOURCE, **fields) -> AudioRecord:
    values = {
        "status": AudioStatus.CONVERTING,
        "source_key": source,
        "source_format": "m4a/aac",
        "progress": None,
        "heartbeat_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    return record("story.mp3", **{**values, **fields})


def test_a_converting_record_keeps_its_source_and_is_listed_as_converting(catalog):
    catalog.put_audio(converting())
    assert catalog.get_audio("story.mp3") == converting()
    page = catalog.list_audio(limit=10, after=None, statuses=(AudioStatus.CONVERTING,))
    assert [r.filename for r in page.records] == ["story.mp3"]
    assert catalog.list_audio(limit=10, after=None, statuses=(AudioStatus.READY,)).records == []


def test_if_source_writes_only_over_a_record_waiting_for_that_upload(catalog, heard):
    catalog.put_audio(converting())
    heard.take()
    beat = converting(progress=0.5)
    assert catalog.put_audio(beat, if_source=SOURCE)
    assert catalog.get_audio("story.mp3").progress == 0.5
    assert heard.take()[0] == [AudioChanged("story.mp3")]
    # A newer upload took the name: the older conversion's writes change nothing.
    catalog.put_audio(converting(NEWER))
    heard.take()
    assert not catalog.put_audio(converting(progress=0.9), if_source=SOURCE)
    assert catalog.get_audio("story.mp3").source_key == NEWER
    # Finished (no source any more), or deleted: refused too, and nothing comes back.
    done = record("story.mp3", status=AudioStatus.READY)
    catalog.put_audio(done)
    assert not catalog.put_audio(converting(NEWER, progress=1.0), if_source=NEWER)
    assert catalog.get_audio("story.mp3") == done
    catalog.delete_audio("story.mp3")
    heard.take()
    assert not catalog.put_audio(converting(), if_source=SOURCE)
    assert catalog.get_audio("story.mp3") is None
    assert heard.take() == ([], [])


def test_if_source_never_resurrects_a_deleted_file_behind_a_tombstone(catalog):
    catalog.put_audio(converting())
    catalog.delete_audio("story.mp3", sequencer="00000000000000000A")
    assert not catalog.put_audio(converting(progress=0.3), if_source=SOURCE)
    assert catalog.get_audio("story.mp3") is None
