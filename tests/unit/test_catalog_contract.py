"""One contract for every Catalog adapter (SQLite; DynamoDB in moto): records kept whole,
listed in filename order page by page, filtered by status, searched case-insensitively."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smart_stream.catalog import Catalog, get_catalog
from smart_stream.catalog.base import SCHEMA_VERSION
from smart_stream.domain.records import AudioRecord, AudioStatus
from tests.conftest import reset_caches

ALL = tuple(AudioStatus)
VISIBLE = (AudioStatus.PENDING, AudioStatus.READY)

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
def catalog(app_env) -> Catalog:
    return get_catalog()


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
    """Given a catalogue with data, when the process starts again (caches reset, adapter made
    anew), then its schema version is current and nothing was lost or migrated twice."""
    assert catalog.schema_version() == SCHEMA_VERSION
    catalog.put_audio(record("kept.mp3", title="Still here"))

    reset_caches()
    reopened = get_catalog()

    assert reopened is not catalog
    assert reopened.schema_version() == SCHEMA_VERSION
    assert reopened.get_audio("kept.mp3").title == "Still here"
    assert walk(reopened, 10) == [["kept.mp3"]]
    reset_caches()
    assert get_catalog().schema_version() == SCHEMA_VERSION
