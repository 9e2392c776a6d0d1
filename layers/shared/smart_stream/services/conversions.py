"""Any audio in: an upload that is not already a house MP3 waits under ``incoming/`` while a
``converting`` record stands for it in the library; ``ConvertAudioFunction`` (a worker of its
own locally) turns it into the house format and stores the result through ``Versions``.

A record names the one upload it waits for (``source_key``), and every write of the
conversion is conditional on that: a delete, or a newer upload, during a conversion wins, and
a deleted file never comes back. A conversion killed part-way (a timeout or an out-of-memory
kill runs no cleanup) stops saying how far it has come, and ``sweep`` marks it invalid.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import BinaryIO, cast

from smart_stream import telemetry
from smart_stream.audio.analysis import analyse_upload
from smart_stream.audio.convert import convert
from smart_stream.audio.formats import Probe, probe
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    ConversionError,
    NotMp3Error,
    ObjectChangedError,
    SmartStreamError,
    UnsupportedMediaTypeError,
)
from smart_stream.domain.names import (
    incoming_key,
    incoming_target,
    is_incoming_key,
    is_story_key,
    library_name,
)
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import Catalog, ObjectInfo, Storage
from smart_stream.services.pipeline import analyse_object, object_reader
from smart_stream.services.versions import Versions

logger = logging.getLogger("smart_stream.conversions")

#: Reads of an upload being converted: ranged reads of 1 MiB (on S3, a GET each), eight of
#: them cached, so memory stays flat whatever the upload's length.
READ_BLOCK = 1024 * 1024
#: A converted file is spooled to disk past this size, never held whole in memory.
_SPOOL_BYTES = 8 * 1024 * 1024
#: What an upload waiting for its conversion is stored as (it is judged by its content).
UPLOAD_TYPE = "application/octet-stream"


class Superseded(Exception):
    """The record stopped waiting for this upload mid-way (deleted, or replaced)."""


class Conversions:
    def __init__(
        self,
        storage: Storage,
        catalog: Catalog,
        versions: Versions,
        *,
        max_seconds: float,
        wall_clock: Callable[[], float],
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.versions = versions
        self.max_seconds = max_seconds
        self.wall_clock = wall_clock
        self.clock = clock
        self.new_id = new_id

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall_clock(), UTC)

    # An upload arrives ---------------------------------------------------------------------

    def accept(
        self, upload_name: str, source: BinaryIO, found: Probe, *, overwrite: bool
    ) -> AudioRecord:
        """Keep an upload that needs converting under ``incoming/`` and catalogue it as
        ``converting``. 409 when its library name exists (or is being converted) and not
        ``overwrite``. Nothing is left behind when storing the upload fails."""
        name = library_name(upload_name)
        previous = self.catalog.get_audio(name)
        if not overwrite and (previous is not None or self.storage.exists(name)):
            raise AudioExistsError(name)
        key = incoming_key(self.new_id(), upload_name)
        size = source.seek(0, 2)
        source.seek(0)
        # The record first: the upload's event may be handled before ``put`` returns, and it
        # must find the record that waits for it.
        stand_in = ObjectInfo(key, size, f'"{key.split("/")[1]}"', self.now())
        record = self.wait_for(stand_in, previous, source_format=found.source_format)
        try:
            self.storage.put(key, source, overwrite=False, content_type=UPLOAD_TYPE)
        except Exception:
            self.withdraw(record, previous)
            raise
        return record

    def wait_for(
        self,
        upload: ObjectInfo,
        previous: AudioRecord | None,
        *,
        source_format: str | None,
        duration: float | None = None,
        progress: float | None = None,
        transcript: str | None = None,
    ) -> AudioRecord:
        """Catalogue the ``converting`` record that waits for ``upload`` (what is kept under
        ``incoming/``): it takes the library name over, keeping what belongs to the name (its
        device URL). What the name waited for until now is dropped: its work, if under way,
        stops at its next step.

        What the result must keep that only this request knows (a story's ``transcript``)
        goes in this record: whoever catalogues the result, the work itself or the result's
        own storage event if it gets there first, keeps it from here."""
        name = incoming_target(upload.name)
        info = ObjectInfo(name, upload.size, upload.etag, upload.last_modified)
        record = self.versions.record_for(info, None, None, previous).model_copy(
            update={
                "status": AudioStatus.CONVERTING,
                "status_reason": None,
                "source_format": source_format,
                "source_key": upload.name,
                "duration": duration,
                "heartbeat_at": self.now(),
                "progress": 0.0 if duration else progress,
            }
        )
        if transcript is not None:
            record = record.model_copy(
                update={"transcript": transcript, "transcript_status": "completed"}
            )
        self.catalog.put_audio(record)
        if previous is not None and previous.source_key and previous.source_key != upload.name:
            self.remove(previous.source_key)
        return record

    def withdraw(self, record: AudioRecord, previous: AudioRecord | None) -> None:
        """Undo ``wait_for`` when what it waits for could not be stored: the name is as it
        was (unless something newer took it meanwhile)."""
        if previous is not None:
            self.catalog.put_audio(previous, if_source=record.source_key)
        elif self.waiting(record.filename, record.source_key or "") is not None:
            self.catalog.delete_audio(record.filename)

    # The conversion --------------------------------------------------------------------------

    def waiting(self, name: str, key: str) -> AudioRecord | None:
        """The record that waits for ``key``: a ``converting`` file, or a ``ready`` one
        being converted in place (it plays as it is until its house MP3 replaces it)."""
        record = self.catalog.get_audio(name)
        if record is None or record.status not in (AudioStatus.CONVERTING, AudioStatus.READY):
            return None
        return record if record.source_key == key else None

    def convert_incoming(
        self, info: ObjectInfo, *, sequencer: str | None = None
    ) -> AudioRecord | None:
        """Convert the upload ``info`` names into the house MP3 of its library name, then
        remove the upload. The record that waits for it says where it goes; an upload no
        record waits for came through an upload URL, and is checked first: a house MP3 is
        copied as it is (the metadata pipeline catalogues it), anything else waits for its
        conversion like a direct upload. None when there is nothing (more) to do: the upload
        is gone (the event came twice, or a delete or a newer upload won), or it failed.
        (Each upload has a key of its own, written once: its events need no ordering, and
        ``sequencer`` is not needed.)"""
        key = info.name
        if not is_incoming_key(key):
            return None
        name = incoming_target(key)
        try:
            record = self.waiting(name, key) or self._claim(info)
        except (AudioNotFoundError, ObjectChangedError):
            return None  # the upload is gone already: whoever removed it took over
        if record is None:
            return None
        started = self.clock()
        try:
            stored = self._convert(record, info)
        except Superseded:
            stored = None
        except ConversionError as exc:
            self.give_up(record, exc.reason)
            telemetry.count(telemetry.CONVERSIONS_FAILED)
            return None
        except (AudioNotFoundError, ObjectChangedError):
            return None  # the upload is gone already: whoever removed it took over
        if stored is not None:
            telemetry.count(telemetry.CONVERSIONS_DONE)
            telemetry.measure(telemetry.CONVERSION_SECONDS, self.clock() - started)
        self.remove(key)
        return stored

    def _reader(self, key: str, etag: str, size: int) -> BinaryIO:
        """The upload as a seekable file, over ranged reads of exactly this version."""
        reader = object_reader(self.storage, key, size, etag, block_size=READ_BLOCK, max_blocks=8)
        return cast(BinaryIO, reader)

    def _claim(self, info: ObjectInfo) -> AudioRecord | None:
        """An upload that came through an upload URL: a house MP3 is copied into the library
        as it is; other audio waits for its conversion; anything else is removed (shown as
        ``invalid`` with why, unless the name already holds a file)."""
        key = info.name
        upload = self.storage.head(key)  # AudioNotFoundError: nothing left to do
        name = library_name(key.rsplit("/", 1)[1])
        source = self._reader(key, upload.etag, upload.size)
        try:
            house = analyse_upload(source).frame.is_house
        except NotMp3Error:
            house = False
        if house:
            self.storage.copy(key, name)
            self.remove(key)
            return None
        previous = self.catalog.get_audio(name)
        try:
            found = probe(source)
        except (UnsupportedMediaTypeError, ConversionError) as exc:
            if previous is None:
                refused = ObjectInfo(name, upload.size, upload.etag, upload.last_modified)
                self.catalog.put_audio(self.versions.record_for(refused, None, exc.message, None))
            telemetry.count(telemetry.CONVERSIONS_FAILED)  # not audio it can convert
            self.remove(key)
            return None
        return self.wait_for(
            upload, previous, source_format=found.source_format, duration=found.duration
        )

    def _convert(self, record: AudioRecord, info: ObjectInfo) -> AudioRecord | None:
        key = cast(str, record.source_key)
        etag = info.etag if info.etag.startswith('"') else f'"{info.etag}"'
        source = self._reader(key, etag, info.size)

        def progress(fraction: float | None) -> None:
            # At most every few seconds of work (``convert`` paces it): the heartbeat that
            # tells a live conversion from one that was killed.
            self.heartbeat(record, fraction)

        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spooled:
            out = cast(BinaryIO, spooled)
            converted = convert(
                source, out, max_seconds=self.max_seconds, progress=progress, clock=self.clock
            )
            if self.waiting(record.filename, key) is None:
                return None
            analysis = analyse_upload(out)
            return self.versions.store(
                record.filename,
                out,
                analysis,
                overwrite=True,
                extra={"source_format": converted.source_format},
                if_source=key,
            )

    def heartbeat(self, record: AudioRecord, fraction: float | None) -> None:
        """Say how far the work for ``record`` has come; ``Superseded`` when the record no
        longer waits for it (deleted, or replaced): the work stops there."""
        beat: dict[str, object] = {"heartbeat_at": self.now()}
        if record.status is AudioStatus.CONVERTING:
            beat["progress"] = fraction
        if not self.catalog.put_audio(record.model_copy(update=beat), if_source=record.source_key):
            raise Superseded

    def give_up(self, record: AudioRecord, reason: str) -> None:
        """End the work ``record`` waits for, unfinished: the file it was to replace stays
        as it was, or else the name is ``invalid`` with ``reason``."""
        if record.status is AudioStatus.READY:
            # A conversion in place that failed: the file stays as it was, and playable.
            kept = record.model_copy(update={"source_key": None, "heartbeat_at": None})
            if self.catalog.put_audio(kept, if_source=record.source_key):
                logger.warning("kept as it is", extra={"key": record.filename, "why": reason})
                self.remove(cast(str, record.source_key))
            return
        if self._put_back(record):
            return
        failed = record.model_copy(
            update={
                "status": AudioStatus.INVALID,
                "status_reason": reason,
                "progress": None,
                "source_key": None,
            }
        )
        if self.catalog.put_audio(failed, if_source=record.source_key):
            self.remove(cast(str, record.source_key))

    def _put_back(self, record: AudioRecord) -> bool:
        """A replacement whose upload never arrived, given up on while the file it was to
        replace is still stored: that file is catalogued again, and the name is as it was.
        (Its record is written before the upload is stored; when storing the upload fails
        and so does putting the record back, in a catalogue outage, the request answers 503
        and the record waits for nothing.) False when the upload is there after all (its
        conversion failed: the name says so) or no file is stored under the name."""
        key = cast(str, record.source_key)
        if self.storage.exists(key):
            return False
        try:
            stored = self.storage.head(record.filename)
        except AudioNotFoundError:
            return False
        try:
            analysis, _ = analyse_object(self.storage, stored.name, stored.size, stored.etag)
            problem = None
        except NotMp3Error as exc:
            analysis, problem = None, exc.message
        except (AudioNotFoundError, ObjectChangedError):
            return True  # replaced or removed meanwhile: whoever did it catalogues it
        earlier = self.versions.record_for(stored, analysis, problem, record)
        # What only the replacement had: the format it came in, a new story's transcript.
        update: dict[str, object] = {"source_format": None}
        if is_story_key(key):
            update |= {"transcript": None, "transcript_status": None}
        if self.catalog.put_audio(earlier.model_copy(update=update), if_source=key):
            logger.warning("replacement never arrived, earlier file kept", extra={"key": key})
        return True

    def remove(self, key: str) -> None:
        with contextlib.suppress(AudioNotFoundError, SmartStreamError):
            self.storage.delete(key)
