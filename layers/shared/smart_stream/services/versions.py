"""Store a version: the one path by which bytes become a catalogued library file, for an
upload, a story and the metadata pipeline's event alike."""

from __future__ import annotations

import contextlib
from typing import BinaryIO, overload

from smart_stream.audio.analysis import AudioAnalysis
from smart_stream.domain.credentials import AUDIO_KIND
from smart_stream.domain.errors import AudioExistsError
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import Catalog, ObjectInfo, Storage
from smart_stream.services import credentials
from smart_stream.services.queues import Queues


class Versions:
    def __init__(self, storage: Storage, catalog: Catalog, queues: Queues) -> None:
        self.storage = storage
        self.catalog = catalog
        self.queues = queues

    def record_for(
        self,
        info: ObjectInfo,
        analysis: AudioAnalysis | None,
        reason: str | None,
        previous: AudioRecord | None,
    ) -> AudioRecord:
        """The catalogue record of one object version, keeping what belongs to the name
        rather than to the bytes (its device credential version, a story's transcript). A new
        name starts past the credential versions of any earlier file of that name."""
        kept: dict[str, object]
        if previous is None:
            first = credentials.first_version(self.catalog, AUDIO_KIND, info.name)
            kept = {"credential_version": first}
        else:
            kept = {
                "credential_version": previous.credential_version,
                "transcript": previous.transcript,
                "transcript_status": previous.transcript_status,
            }
            if previous.status is AudioStatus.CONVERTING:
                # The house MP3 a conversion made: what it was made from stays known.
                kept["source_format"] = previous.source_format
        what: dict[str, object] = (
            {"status": AudioStatus.INVALID, "status_reason": reason}
            if analysis is None
            else {
                **analysis.info.model_dump(),
                "status": AudioStatus.READY,
                "audio_start": analysis.audio_start,
                "audio_end": analysis.audio_end,
            }
        )
        return AudioRecord.model_validate(
            {
                "filename": info.name,
                "size": info.size,
                "etag": info.etag,
                "uploaded_at": info.last_modified,
                **what,
                **kept,
            }
        )

    def catalogue(
        self,
        record: AudioRecord,
        *,
        replaces: bool,
        sequencer: str | None = None,
        keep_version: bool = False,
        if_source: str | None = None,
    ) -> bool:
        """Write the record of a stored version. When it ``replaces`` an earlier version,
        queues that play that one take the new span. False, and nothing changed, when the
        catalogue refused the write (an event older than one applied already; see
        ``Catalog.put_audio``)."""
        written = self.catalog.put_audio(
            record, sequencer=sequencer, keep_version=keep_version, if_source=if_source
        )
        if not written:
            return False
        if replaces:
            self.queues.file_changed(record)
        return True

    @overload
    def store(
        self,
        name: str,
        source: BinaryIO,
        analysis: AudioAnalysis,
        *,
        overwrite: bool,
        transcript: str | None = None,
        extra: dict[str, object] | None = None,
        if_source: None = None,
    ) -> AudioRecord: ...

    @overload
    def store(
        self,
        name: str,
        source: BinaryIO,
        analysis: AudioAnalysis,
        *,
        overwrite: bool,
        transcript: str | None = None,
        extra: dict[str, object] | None = None,
        if_source: str,
    ) -> AudioRecord | None: ...

    def store(
        self,
        name: str,
        source: BinaryIO,
        analysis: AudioAnalysis,
        *,
        overwrite: bool,
        transcript: str | None = None,
        extra: dict[str, object] | None = None,
        if_source: str | None = None,
    ) -> AudioRecord | None:
        """Store ``source`` (already analysed) as the current version of ``name`` and
        catalogue it at once: it is ``ready`` when this returns. The metadata pipeline's event
        for this version then finds it catalogued and reads nothing.

        409 (``AudioExistsError``) when ``name`` exists and not ``overwrite``. With
        ``if_source`` (a conversion's result), the record is written only over one that
        still waits for that upload; None when it no longer does (the file was deleted
        meanwhile: what was stored is removed again; or replaced: the newer version stays).

        Rollback, when something fails part-way (the error is raised in every case):
        - the storage write fails: nothing changed (a write is atomic);
        - the catalogue fails after the object is stored (its read of the name's past
          credential versions, or its write):
          - on a name that had no object and no record (``overwrite`` or not), the object is
            removed again: nothing is left half-stored;
          - on an existing name (``overwrite``), the new object stays: the old bytes are gone
            already, and the new version's event catalogues it as it would any write.
        """
        previous = self.catalog.get_audio(name)
        existed = previous is not None or self.storage.exists(name)
        if existed and not overwrite:
            raise AudioExistsError(name)
        source.seek(0)
        stored = self.storage.put(name, source, overwrite=overwrite)
        try:
            # A replaced file keeps its device URL: cards that play it go on working.
            record = self.record_for(stored, analysis, None, previous)
            if transcript is not None:
                record = record.model_copy(
                    update={"transcript": transcript, "transcript_status": "completed"}
                )
            if extra:
                record = record.model_copy(update=extra)
            if not self.catalogue(record, replaces=previous is not None, if_source=if_source):
                # Only ``if_source`` refuses: the record no longer waits for that upload.
                if self.catalog.get_audio(name) is None:
                    self.storage.delete(name)  # it was deleted meanwhile: it stays deleted
                return None
        except Exception:
            if not existed:
                # The removal failing too must not hide why the catalogue failed.
                with contextlib.suppress(Exception):
                    self.storage.delete(name)
            raise
        return record
