"""Queues: named, ordered lists of audio files that a player hears as one MP3.

A queue keeps, for each file, the span of its audio frames (``QueueEntry``), so a stream of
any length starts after one catalogue read (see ``domain.layout`` for the bytes it makes).
Every write is one conditional write over the version it replaces: two writers never mix.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from smart_stream.domain.asks import QueueChange
from smart_stream.domain.credentials import QUEUE_KIND
from smart_stream.domain.errors import (
    AudioInUseError,
    ConflictError,
    FilesNotFoundError,
    QueueHasCardError,
    QueueNotFoundError,
    UnprocessableError,
)
from smart_stream.domain.names import validate_filename, validate_queue_name
from smart_stream.domain.records import (
    AudioRecord,
    AudioStatus,
    QueueEntry,
    QueueRecord,
    utc_now,
)
from smart_stream.ports import Catalog
from smart_stream.services import credentials

#: Conditional writes tried before a queue that keeps changing is a 409.
ATTEMPTS = 5


def _stream_shape(record: AudioRecord) -> str:
    channels = "mono" if record.channels == 1 else "stereo"
    return f"MPEG-{record.mpeg_version} {record.sample_rate} Hz {channels}"


def queue_entry(record: AudioRecord) -> QueueEntry:
    assert record.audio_start is not None and record.audio_end is not None
    return QueueEntry(
        filename=record.filename,
        etag=record.etag,
        audio_start=record.audio_start,
        audio_end=record.audio_end,
        duration=record.duration or 0.0,
    )


class Queues:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def get(self, name: str) -> QueueRecord:
        record = self.catalog.get_queue(validate_queue_name(name))
        if record is None:
            raise QueueNotFoundError(name)
        return record

    def all(self) -> list[QueueRecord]:
        return self.catalog.list_queues()

    def _entries(self, files: list[str]) -> list[QueueEntry]:
        """The queue's files as entries, after every check the contract names."""
        if not files:
            raise UnprocessableError("A queue needs at least one file.")
        for filename in files:
            validate_filename(filename)
        records = {name: self.catalog.get_audio(name) for name in dict.fromkeys(files)}
        missing = [name for name, record in records.items() if record is None]
        if missing:
            raise FilesNotFoundError(missing)
        found = {name: record for name, record in records.items() if record is not None}
        unready = [
            f"{name!r} ({record.status_reason or record.status.value})"
            for name, record in found.items()
            if record.status is not AudioStatus.READY or record.audio_start is None
        ]
        if unready:
            raise UnprocessableError(
                "These files cannot be played yet: " + ", ".join(unready) + "."
            )
        first = found[files[0]]
        differ = [
            f"{name!r} is {_stream_shape(record)}"
            for name, record in found.items()
            if (record.mpeg_version, record.sample_rate, record.channels)
            != (first.mpeg_version, first.sample_rate, first.channels)
        ]
        if differ:
            raise UnprocessableError(
                "These files cannot be joined into one stream with the first, "
                f"{files[0]!r} ({_stream_shape(first)}): " + "; ".join(differ) + ". "
                "MPEG version, sample rate and channel count must match."
            )
        return [queue_entry(found[name]) for name in files]

    def put(self, name: str, change: QueueChange) -> tuple[bool, QueueRecord]:
        """Create (True) or replace (False) a queue. Two clients replacing one queue at once:
        one wins whole, the other gets a 409, never a mix."""
        validate_queue_name(name)
        entries = self._entries(change.files)
        existing = self.catalog.get_queue(name)
        record = QueueRecord(
            name=name,
            title=change.title
            if change.title is not None
            else (existing.title if existing else name),
            description=(
                change.description
                if change.description is not None
                else (existing.description if existing else "")
            ),
            entries=entries,
            play_mode=change.play_mode,
            version=existing.version + 1 if existing else 1,
            seed=secrets.randbits(48),
            credential_version=(
                existing.credential_version
                if existing
                else credentials.first_version(self.catalog, QUEUE_KIND, name)
            ),
            yoto_card_id=existing.yoto_card_id if existing else None,
            updated_at=utc_now(),
        )
        if not self.catalog.put_queue(
            record, expected_version=existing.version if existing else None
        ) and not self._saved(record):
            raise ConflictError(
                f"The queue {name!r} was changed by another request at the same moment; "
                "fetch it and try again."
            )
        return existing is None, record

    def _saved(self, record: QueueRecord) -> bool:
        """Whether the queue stored is ``record``: a write refused by its condition may have
        been this very one, carried out, its answer lost, and retried (the seed, drawn for
        each write, tells it from another writer's)."""
        stored = self.catalog.get_queue(record.name)
        return stored is not None and (stored.version, stored.seed) == (
            record.version,
            record.seed,
        )

    def delete(self, name: str, *, force: bool) -> None:
        record = self.get(name)
        if record.yoto_card_id and not force:
            raise QueueHasCardError(
                f"The queue {name!r} is on the Yoto card {record.yoto_card_id}; remove the card "
                "first, or add ?force=true (the card's stream then answers 404)."
            )
        if not self.catalog.delete_queue(name):
            raise QueueNotFoundError(name)
        credentials.retire(self.catalog, QUEUE_KIND, name, record.credential_version)

    def _update(self, name: str, change: Callable[[QueueRecord], QueueRecord]) -> QueueRecord:
        """Save ``change`` of the queue as it is now, through the same conditional write as
        everything else: applied again to what a concurrent writer saved, never lost."""
        for _ in range(ATTEMPTS):
            record = self.get(name)
            updated = change(record).model_copy(
                update={"version": record.version + 1, "updated_at": utc_now()}
            )
            if self.catalog.put_queue(updated, expected_version=record.version):
                return updated
        raise ConflictError(f"The queue {name!r} keeps changing; try again.")

    def set_card(self, name: str, card_id: str | None) -> QueueRecord:
        return self._update(name, lambda q: q.model_copy(update={"yoto_card_id": card_id}))

    def revoke_url(self, name: str) -> QueueRecord:
        """A new device credential for the queue: its old stream_url answers 403 from now on
        (device functions elsewhere may trust their cached record for DEVICE_CACHE_SECONDS
        more)."""
        return self._update(
            name, lambda q: q.model_copy(update={"credential_version": q.credential_version + 1})
        )

    # A file of the library changed ---------------------------------------------------------

    def using(self, filename: str) -> list[QueueRecord]:
        return [q for q in self.catalog.list_queues() if filename in q.files]

    def check_deletable(self, filename: str, *, force: bool) -> None:
        """409 naming the queues that use a file, unless ``force`` (then it leaves them)."""
        using = self.using(filename)
        if using and not force:
            raise AudioInUseError(filename, [q.name for q in using])

    def _rewrite(
        self, record: QueueRecord, change: Callable[[QueueRecord], list[QueueEntry]]
    ) -> None:
        """Save a queue whose files changed under it. ``change`` gives the new entries of a
        record; when another writer got in first it is applied again to what that writer
        saved (never to the stale record, which would undo their write), and nothing is
        written when it changes nothing (say, a second delivery of the same event)."""
        for _ in range(ATTEMPTS):
            entries = change(record)
            if entries == record.entries:
                return
            updated = record.model_copy(
                update={"entries": entries, "version": record.version + 1, "updated_at": utc_now()}
            )
            if self.catalog.put_queue(updated, expected_version=record.version):
                return
            fresh = self.catalog.get_queue(record.name)
            if fresh is None:
                return
            record = fresh
        raise ConflictError(f"The queue {record.name!r} keeps changing; try again.")

    def file_removed(self, filename: str) -> None:
        """Take a deleted file out of every queue that uses it."""

        def without(queue: QueueRecord) -> list[QueueEntry]:
            return [e for e in queue.entries if e.filename != filename]

        for queue in self.using(filename):
            self._rewrite(queue, without)

    def file_changed(self, audio: AudioRecord) -> None:
        """A file got a new version: queues that use it take its new span (or drop it when
        it is no longer playable)."""
        playable = audio.status is AudioStatus.READY and audio.audio_start is not None

        def refreshed(queue: QueueRecord) -> list[QueueEntry]:
            if playable:
                return [
                    queue_entry(audio) if e.filename == audio.filename else e for e in queue.entries
                ]
            return [e for e in queue.entries if e.filename != audio.filename]

        for queue in self.using(audio.filename):
            self._rewrite(queue, refreshed)
