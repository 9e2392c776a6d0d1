"""The metadata pipeline: an object landed in (or left) storage, by whatever route; put what
it is into the Catalog, reading only what is needed, safe against duplicate, stale and
out-of-order events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from smart_stream import telemetry
from smart_stream.audio.analysis import AudioAnalysis, Scan, analyse_mp3
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.domain.credentials import AUDIO_KIND
from smart_stream.domain.errors import AudioNotFoundError, NotMp3Error, ObjectChangedError
from smart_stream.domain.names import filename_problem
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import Catalog, ObjectInfo, Storage
from smart_stream.services import credentials
from smart_stream.services.queues import Queues
from smart_stream.services.versions import Versions

logger = logging.getLogger("smart_stream.pipeline")


def object_reader(storage: Storage, name: str, size: int, etag: str, **blocks: int) -> RangedFile:
    """A seekable file over ranged reads of exactly this version of the object
    (``blocks``: the reader's ``block_size`` and ``max_blocks``)."""

    def fetch(start: int, end: int) -> bytes:
        return b"".join(storage.open_range(name, start, end, if_match=etag))

    return RangedFile(fetch, size, **blocks)


def object_scan(
    storage: Storage, name: str, etag: str, before: Callable[[], None] | None = None
) -> Scan:
    def scan(start: int, end: int) -> Iterable[bytes]:
        if before is not None:
            before()
        stream = storage.open_range(name, start, end, if_match=etag, chunk_size=1024 * 1024)
        try:
            yield from stream
        finally:
            stream.close()

    return scan


def analyse_object(
    storage: Storage,
    name: str,
    size: int,
    etag: str,
    before_scan: Callable[[], None] | None = None,
) -> tuple[AudioAnalysis, RangedFile]:
    """Analyse one object version; ``before_scan`` runs if every frame must be walked."""
    reader = object_reader(storage, name, size, etag)
    return analyse_mp3(reader, object_scan(storage, name, etag, before_scan)), reader


class Pipeline:
    def __init__(
        self, storage: Storage, catalog: Catalog, versions: Versions, queues: Queues
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.versions = versions
        self.queues = queues

    def object_created(self, info: ObjectInfo, *, sequencer: str | None) -> AudioRecord | None:
        """Catalogue one new object version. None when the event is stale or not for audio."""
        name = info.name
        if filename_problem(name) is not None:
            logger.info("ignoring an object that is not an audio file", extra={"key": name})
            return None
        etag = info.etag if info.etag.startswith('"') else f'"{info.etag}"'
        info = ObjectInfo(name, info.size, etag, info.last_modified)
        catalog = self.catalog
        previous = catalog.get_audio(name)
        if (
            previous is not None
            and previous.etag == etag
            and previous.status is not AudioStatus.PENDING
        ):
            # The same version again (a duplicate event, or the upload or TTS function got
            # there first): read nothing and write nothing, since writing back the copy read
            # here could undo what that function writes next (a new transcript over the same
            # bytes).
            return previous

        def mark_pending() -> None:
            # A full scan takes a while: meanwhile the file shows as pending. The object was
            # just read at this very version, so this is its current one.
            if previous is None or previous.etag != etag:
                pending = self.versions.record_for(info, None, None, previous)
                catalog.put_audio(
                    pending.model_copy(
                        update={"status": AudioStatus.PENDING, "status_reason": None}
                    )
                )

        try:
            analysis, reader = analyse_object(self.storage, name, info.size, etag, mark_pending)
            reason = None
            logger.info(
                "analysed",
                extra={"key": name, "requests": reader.requests, "bytes": reader.bytes_fetched},
            )
        except NotMp3Error as exc:
            analysis, reason = None, exc.message
        except (ObjectChangedError, AudioNotFoundError):
            # This version is gone already: a newer event (or a delete) will follow. A pending
            # record this left behind is taken back.
            logger.info("stale event: the object changed since", extra={"key": name})
            telemetry.count(telemetry.METADATA_STALE)
            current = catalog.get_audio(name)
            if (
                current is not None
                and current.etag == etag
                and current.status is AudioStatus.PENDING
            ):
                catalog.delete_audio(name)
            return None
        # The analysis took a while: whoever wrote meanwhile (the upload or TTS function, with
        # this very version and perhaps a transcript) is not to be undone.
        current = catalog.get_audio(name)
        if (
            current is not None
            and current.etag == etag
            and current.status is not AudioStatus.PENDING
        ):
            return current
        if current is not None and current.status is not AudioStatus.PENDING:
            previous = current
        record = self.versions.record_for(info, analysis, reason, previous)
        # An event may follow a delete and a new file of the same name that queues took up
        # meanwhile: whatever came before, queues that play the name take this version.
        saved = self.versions.catalogue(
            record, replaces=True, sequencer=sequencer, keep_version=True
        )
        if not saved:
            telemetry.count(telemetry.METADATA_STALE)  # a newer event got there first
        elif reason is None:
            telemetry.count(telemetry.METADATA_STORED)
        else:
            telemetry.count(telemetry.METADATA_INVALID)
        return record if saved else None

    def object_removed(self, name: str, *, sequencer: str | None) -> bool:
        if filename_problem(name) is not None:
            return False
        record = self.catalog.get_audio(name)
        removed = self.catalog.delete_audio(name, sequencer=sequencer)
        if removed:
            if record is not None:
                credentials.retire(self.catalog, AUDIO_KIND, name, record.credential_version)
            self.queues.file_removed(name)
        return removed
