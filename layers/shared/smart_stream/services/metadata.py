"""The metadata pipeline: an object landed in (or left) storage, by whatever route; put what
it is into the Catalog, reading only what is needed, safe against duplicate, stale and
out-of-order events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from smart_stream.audio.analysis import AudioAnalysis, Scan, analyse_mp3
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.catalog import Catalog, get_catalog
from smart_stream.domain.errors import AudioNotFoundError, NotMp3Error, ObjectChangedError
from smart_stream.domain.names import filename_problem
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.services import credentials
from smart_stream.storage import Storage, get_storage

#: The device-credential kind of a single file (see ``auth.device_credential``).
AUDIO_KIND = "audio"

logger = logging.getLogger("smart_stream.services.metadata")


def object_reader(storage: Storage, name: str, size: int, etag: str) -> RangedFile:
    """A seekable file over ranged reads of exactly this version of the object."""

    def fetch(start: int, end: int) -> bytes:
        return b"".join(storage.open_range(name, start, end, if_match=etag))

    return RangedFile(fetch, size)


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


def record_for(
    name: str,
    size: int,
    etag: str,
    uploaded_at: datetime,
    analysis: AudioAnalysis | None,
    reason: str | None,
    previous: AudioRecord | None,
    catalog: Catalog | None = None,
) -> AudioRecord:
    """The catalogue record of one object version, keeping what belongs to the name rather
    than to the bytes (its device credential version, a TTS transcript). A new name starts
    past the credential versions of any earlier file of that name (``catalog`` tells)."""
    kept: dict[str, object] = {}
    if previous is None and catalog is not None:
        kept = {"credential_version": credentials.first_version(catalog, AUDIO_KIND, name)}
    if previous is not None:
        kept = {
            "credential_version": previous.credential_version,
            "transcript": previous.transcript,
            "transcript_status": previous.transcript_status,
        }
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
    return AudioRecord(filename=name, size=size, etag=etag, uploaded_at=uploaded_at, **what, **kept)


def object_created(
    name: str,
    *,
    size: int,
    etag: str,
    uploaded_at: datetime,
    sequencer: str | None,
    storage: Storage | None = None,
    catalog: Catalog | None = None,
) -> AudioRecord | None:
    """Catalogue one new object version. None when the event is stale or not for audio."""
    if filename_problem(name) is not None:
        logger.info("ignoring an object that is not an audio file", extra={"key": name})
        return None
    storage = storage or get_storage()
    catalog = catalog or get_catalog()
    etag = etag if etag.startswith('"') else f'"{etag}"'
    previous = catalog.get_audio(name)
    if (
        previous is not None
        and previous.etag == etag
        and previous.status is not AudioStatus.PENDING
    ):
        # The same version again (a duplicate event, or the upload or TTS function got there
        # first): read nothing and write nothing, since writing back the copy read here could
        # undo what that function writes next (a new transcript over the same bytes).
        return previous

    def mark_pending() -> None:
        # A full scan takes a while: meanwhile the file shows as pending. The object was just
        # read at this very version, so this is its current one.
        if previous is None or previous.etag != etag:
            catalog.put_audio(
                record_for(name, size, etag, uploaded_at, None, None, previous, catalog).model_copy(
                    update={"status": AudioStatus.PENDING, "status_reason": None}
                )
            )

    try:
        analysis, reader = analyse_object(storage, name, size, etag, mark_pending)
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
        current = catalog.get_audio(name)
        if current is not None and current.etag == etag and current.status is AudioStatus.PENDING:
            catalog.delete_audio(name)
        return None
    # The analysis took a while: whoever wrote meanwhile (the upload or TTS function, with
    # this very version and perhaps a transcript) is not to be undone.
    current = catalog.get_audio(name)
    if current is not None and current.etag == etag and current.status is not AudioStatus.PENDING:
        return current
    if current is not None and current.status is not AudioStatus.PENDING:
        previous = current
    record = record_for(name, size, etag, uploaded_at, analysis, reason, previous, catalog)
    if not catalog.put_audio(record, sequencer=sequencer, keep_version=True):
        return None
    from smart_stream.services import queues  # queues builds on the library, which builds on this

    queues.refresh_queues(record, catalog)
    return record


def object_removed(name: str, *, sequencer: str | None, catalog: Catalog | None = None) -> bool:
    if filename_problem(name) is not None:
        return False
    from smart_stream.services import queues

    catalog = catalog or get_catalog()
    record = catalog.get_audio(name)
    removed = catalog.delete_audio(name, sequencer=sequencer)
    if removed:
        if record is not None:
            credentials.retire(catalog, AUDIO_KIND, name, record.credential_version)
        queues.leave_queues(name, catalog)
    return removed
