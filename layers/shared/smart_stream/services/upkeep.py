"""What conversions leave behind, looked after by the conversion's schedule (hourly
deployed; the local server's sweep and start-up locally): conversions that stopped answering,
conversions a stopped local server was in the middle of, and library MP3s that are not in
the house format yet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import cast

from smart_stream import telemetry
from smart_stream.domain.errors import AudioNotFoundError
from smart_stream.domain.names import incoming_key, is_story_key
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import ObjectInfo
from smart_stream.services.conversions import Conversions

#: A conversion silent for this long is taken for dead (its function was stopped).
STALE_SECONDS = 300.0


class Upkeep:
    """What the conversion's schedule does, over its ``Conversions``."""

    def __init__(self, conversions: Conversions) -> None:
        self.conversions = conversions
        self.storage = conversions.storage
        self.catalog = conversions.catalog

    def _records(self, status: AudioStatus) -> Iterator[AudioRecord]:
        """Every record of ``status``, page after page (in filename order: what is written
        meanwhile never moves the walk)."""
        after: str | None = None
        while True:
            page = self.catalog.list_audio(limit=500, after=after, statuses=(status,))
            yield from page.records
            if page.after is None:
                return
            after = page.after

    def _stale(self, record: AudioRecord, seconds: float) -> bool:
        beat = record.heartbeat_at or record.uploaded_at
        return beat < self.conversions.now() - timedelta(seconds=seconds)

    def interrupted(self) -> list[ObjectInfo]:
        """What waits for work that no process is doing (the local server's start-up: its
        conversions stopped with it): each still-stored upload or job, for its event to be
        sent again (a retried event starts again from the start). A record whose upload is
        gone already is given up on."""
        waiting = []
        for record in self._records(AudioStatus.CONVERTING):
            try:
                waiting.append(self.storage.head(cast(str, record.source_key)))
            except AudioNotFoundError:
                self._failed(record, "The conversion failed (its upload is gone).")
        return waiting

    def _failed(self, record: AudioRecord, reason: str) -> None:
        self.conversions.give_up(record, reason)
        story = record.source_key is not None and is_story_key(record.source_key)
        telemetry.count(telemetry.STORIES_FAILED if story else telemetry.CONVERSIONS_FAILED)

    def convert_in_place(self, record: AudioRecord) -> str:
        """Start converting a library MP3 that is not in the house format (from before
        uploads were converted, or copied in by hand): a copy of it waits under
        ``incoming/``, its conversion replaces the file, and the file keeps its name and
        device URL, and plays as it is meanwhile. The copy's key."""
        key = incoming_key(self.conversions.new_id(), record.filename)
        marked = record.model_copy(
            update={"source_key": key, "heartbeat_at": self.conversions.now()}
        )
        self.catalog.put_audio(marked)  # first: the copy's event must find it waiting
        self.storage.copy(record.filename, key)
        if record.source_key:
            self.conversions.remove(record.source_key)  # an earlier attempt that died
        return key

    def not_house(self) -> list[AudioRecord]:
        """Library MP3s that do not join every queue as they are (and are not being
        converted already)."""
        return [
            r
            for r in self._records(AudioStatus.READY)
            if (r.mpeg_version, r.sample_rate, r.channels) != ("1", 44100, 2)
            and (r.source_key is None or self._stale(r, STALE_SECONDS))
        ]

    def sweep(self, *, stale_after: float = STALE_SECONDS) -> list[str]:
        """Mark ``invalid`` ("conversion failed") every conversion silent for longer than
        ``stale_after`` seconds, and start converting in place every library MP3 not in the
        house format; the names marked invalid."""
        for record in self.not_house():
            self.convert_in_place(record)
        marked = []
        for record in self._records(AudioStatus.CONVERTING):
            if self._stale(record, stale_after):
                self._failed(record, "The conversion failed (it stopped answering).")
                marked.append(record.filename)
        return marked
