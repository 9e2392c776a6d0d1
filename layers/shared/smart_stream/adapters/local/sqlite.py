"""The Catalog in SQLite, in DATA_DIR: the local twin of the DynamoDB table."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from smart_stream.adapters.catalog_rows import (
    SCHEMA_VERSION,
    TOMBSTONE,
    QueueParser,
    normalize_sequencer,
    search_text,
)
from smart_stream.changes import AudioChanged, ChangeFeed, QueueChanged
from smart_stream.domain.records import AudioRecord, AudioStatus, QueueRecord, StreamCursor
from smart_stream.ports import Page


def _migrate_to_1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE audio_files (
               filename TEXT PRIMARY KEY,
               status TEXT NOT NULL,
               search_text TEXT NOT NULL,
               record TEXT NOT NULL
           )"""
    )


def _migrate_to_2(db: sqlite3.Connection) -> None:
    # The sequencer of the last S3 event applied to each name (stale events are dropped).
    db.execute("ALTER TABLE audio_files ADD COLUMN sequencer TEXT")


def _migrate_to_3(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE queues"
        " (name TEXT PRIMARY KEY, version INTEGER NOT NULL, record TEXT NOT NULL)"
    )
    db.execute("CREATE TABLE stream_cursors (key TEXT PRIMARY KEY, cursor TEXT NOT NULL)")


def _migrate_to_4(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE app_values (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


#: Migration n takes the schema from version n to n + 1 (index 0: from nothing to 1).
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


class SqliteCatalog:
    """One connection per thread (sqlite3 objects stay in their thread); WAL so readers
    never wait on a writer. The file is opened, and its schema brought forward, by the first
    call that needs it: a local catalogue is only ever opened by the app that owns it.

    Every write is told to ``changes``: the local stand-in for the table's DynamoDB stream,
    and what tells the device caches of this process to forget what changed."""

    def __init__(self, path: Path, changes: ChangeFeed | None = None) -> None:
        self.path = Path(path)
        self.changes = changes or ChangeFeed()
        self._local = threading.local()
        self._migrating = threading.Lock()
        self._migrated = False
        self._parse_queue = QueueParser()

    def _db(self) -> sqlite3.Connection:
        if not self._migrated:
            self.migrate()
        return self._connection()

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def migrate(self) -> None:
        # One thread at a time: two first migrations at once would find the database locked.
        with self._migrating:
            if self._migrated:
                return
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"{self.path} has schema {version}, newer than this code's "
                        f"{SCHEMA_VERSION}."
                    )
                for step in MIGRATIONS[version:]:
                    step(db)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._migrated = True

    def schema_version(self) -> int:
        return int(self._db().execute("PRAGMA user_version").fetchone()[0])

    def get_audio(self, filename: str) -> AudioRecord | None:
        row = (
            self._db()
            .execute(
                "SELECT record FROM audio_files WHERE filename = ? AND status != ?",
                (filename, TOMBSTONE),
            )
            .fetchone()
        )
        return None if row is None else AudioRecord.model_validate_json(row[0])

    def put_audio(
        self,
        record: AudioRecord,
        *,
        sequencer: str | None = None,
        keep_version: bool = False,
        if_source: str | None = None,
    ) -> bool:
        values = (
            record.filename,
            record.status.value,
            search_text(record),
            record.model_dump_json(),
        )
        if if_source is not None:
            cursor = self._db().execute(
                "UPDATE audio_files SET status = ?, search_text = ?, record = ?"
                " WHERE filename = ? AND status != ?"
                " AND json_extract(record, '$.source_key') = ?",
                (*values[1:], record.filename, TOMBSTONE, if_source),
            )
            return self._audio_changed(record.filename, cursor.rowcount > 0)
        return self._audio_changed(record.filename, self._upsert(values, sequencer, keep_version))

    def _audio_changed(self, filename: str, written: bool) -> bool:
        if written:
            self.changes.publish(AudioChanged(filename))
        return written

    def delete_audio(self, filename: str, *, sequencer: str | None = None) -> bool:
        if sequencer is None:
            cursor = self._db().execute(
                "DELETE FROM audio_files WHERE filename = ? AND status != ?", (filename, TOMBSTONE)
            )
            return self._audio_changed(filename, cursor.rowcount > 0)
        existed = self.get_audio(filename) is not None
        written = self._upsert((filename, TOMBSTONE, "", ""), sequencer)
        return self._audio_changed(filename, written and existed)

    def _upsert(
        self, values: tuple[str, str, str, str], sequencer: str | None, keep_version: bool = False
    ) -> bool:
        if sequencer is None:
            # A write that is not an event's keeps the last event's sequencer.
            cursor = self._db().execute(
                "INSERT INTO audio_files (filename, status, search_text, record)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT(filename) DO UPDATE SET status = excluded.status,"
                " search_text = excluded.search_text, record = excluded.record",
                values,
            )
        else:
            cursor = self._db().execute(
                "INSERT INTO audio_files (filename, status, search_text, record, sequencer)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(filename) DO UPDATE SET status = excluded.status,"
                " search_text = excluded.search_text, record = excluded.record,"
                " sequencer = excluded.sequencer"
                " WHERE (audio_files.sequencer IS NULL"
                " OR audio_files.sequencer < excluded.sequencer)"
                " AND NOT (? AND audio_files.status IN ('ready', 'invalid')"
                " AND json_extract(audio_files.record, '$.etag')"
                " = json_extract(excluded.record, '$.etag'))",
                (*values, normalize_sequencer(sequencer), keep_version),
            )
        return cursor.rowcount > 0

    def list_audio(
        self, *, limit: int, after: str | None, statuses: Collection[AudioStatus]
    ) -> Page:
        wanted = [s.value for s in statuses]
        marks = ",".join("?" * len(wanted))
        rows = (
            self._db()
            .execute(
                f"SELECT record FROM audio_files WHERE filename > ? AND status IN ({marks})"  # noqa: S608 - placeholders only
                " ORDER BY filename LIMIT ?",
                (after or "", *wanted, limit + 1),
            )
            .fetchall()
        )
        records = [AudioRecord.model_validate_json(row[0]) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(records, records[-1].filename if more and records else None)

    def search_audio(
        self, needle: str, *, statuses: Collection[AudioStatus]
    ) -> Iterator[AudioRecord]:
        wanted = [s.value for s in statuses]
        marks = ",".join("?" * len(wanted))
        rows = self._db().execute(
            f"SELECT record FROM audio_files WHERE instr(search_text, ?) > 0"  # noqa: S608 - placeholders only
            f" AND status IN ({marks}) ORDER BY filename",
            (needle, *wanted),
        )
        for row in rows:
            yield AudioRecord.model_validate_json(row[0])

    def get_queue(self, name: str) -> QueueRecord | None:
        row = self._db().execute("SELECT record FROM queues WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._parse_queue(row[0])

    def put_queue(self, record: QueueRecord, *, expected_version: int | None) -> bool:
        values = (record.name, record.version, record.model_dump_json())
        if expected_version is None:
            cursor = self._db().execute(
                "INSERT OR IGNORE INTO queues (name, version, record) VALUES (?, ?, ?)", values
            )
        else:
            cursor = self._db().execute(
                "UPDATE queues SET version = ?, record = ? WHERE name = ? AND version = ?",
                (record.version, values[2], record.name, expected_version),
            )
        if cursor.rowcount == 0:
            return False
        self.changes.publish(QueueChanged(record.name, expected_version is not None, True))
        return True

    def delete_queue(self, name: str) -> bool:
        if self._db().execute("DELETE FROM queues WHERE name = ?", (name,)).rowcount == 0:
            return False
        self.changes.publish(QueueChanged(name, True, False))
        return True

    def list_queues(self) -> list[QueueRecord]:
        rows = self._db().execute("SELECT record FROM queues ORDER BY name").fetchall()
        return [QueueRecord.model_validate_json(row[0]) for row in rows]

    def get_cursor(self, key: str) -> StreamCursor | None:
        row = (
            self._db().execute("SELECT cursor FROM stream_cursors WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else StreamCursor.model_validate_json(row[0])

    def put_cursor(self, key: str, cursor: StreamCursor) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO stream_cursors (key, cursor) VALUES (?, ?)",
            (key, cursor.model_dump_json()),
        )

    def get_value(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM app_values WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_value(self, key: str, value: str) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO app_values (key, value) VALUES (?, ?)", (key, value)
        )

    def delete_value(self, key: str) -> None:
        self._db().execute("DELETE FROM app_values WHERE key = ?", (key,))
