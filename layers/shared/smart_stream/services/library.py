"""The audio library: list, search, look up, upload, delete, and revoke a file's URL.
Each use case takes typed values (``http`` parses requests) and returns records (``http``
turns them into the contract's JSON)."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import BinaryIO

from smart_stream.audio.analysis import analyse_upload
from smart_stream.audio.formats import ACCEPTED_FORMATS, probe
from smart_stream.domain.credentials import AUDIO_KIND
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    ConversionError,
    InvalidQueryError,
    NotMp3Error,
    PayloadTooLargeError,
    UnsupportedAudioError,
)
from smart_stream.domain.names import incoming_key, library_name, validate_filename
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import Catalog, Page, PresignedPost, Storage
from smart_stream.services import credentials
from smart_stream.services.conversions import Conversions
from smart_stream.services.queues import Queues
from smart_stream.services.versions import Versions

#: Largest file the upload function takes in one request; larger files use the upload URL.
#: A Lambda request payload is capped at 6 MB and HTTP API base64-encodes binary bodies.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
#: Largest file the presigned upload URL admits (S3's single-PUT/POST limit).
MAX_PRESIGNED_UPLOAD_BYTES = 5 * 1024**3
UPLOAD_URL_EXPIRES = 3600
ACCEPTED = f"Send audio: {ACCEPTED_FORMATS}."
#: What a list (and search) shows unless asked for other statuses.
VISIBLE = (AudioStatus.PENDING, AudioStatus.CONVERTING, AudioStatus.READY)


class Library:
    def __init__(
        self,
        storage: Storage,
        catalog: Catalog,
        versions: Versions,
        queues: Queues,
        conversions: Conversions,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.versions = versions
        self.queues = queues
        self.conversions = conversions

    def page(
        self, *, limit: int, after: str | None, statuses: Collection[AudioStatus] = VISIBLE
    ) -> Page:
        return self.catalog.list_audio(limit=limit, after=after, statuses=statuses)

    def search(self, query: str) -> list[AudioRecord]:
        needle = query.strip().casefold()
        if not needle:
            raise InvalidQueryError("Say what to search for: ?q=<words>.")
        return list(self.catalog.search_audio(needle, statuses=VISIBLE))

    def get(self, filename: str) -> AudioRecord:
        record = self.catalog.get_audio(validate_filename(filename))
        if record is None:
            raise AudioNotFoundError(filename)
        return record

    def delete(self, filename: str, *, force: bool = False) -> None:
        """Delete the object and its record. A file that queues use is 409 (naming them)
        unless ``force``; then it leaves those queues too."""
        validate_filename(filename)
        record = self.catalog.get_audio(filename)
        self.queues.check_deletable(filename, force=force)
        try:
            self.storage.delete(filename)
        except AudioNotFoundError:
            if record is None:
                raise
        self.catalog.delete_audio(filename)
        if record is not None:
            credentials.retire(self.catalog, AUDIO_KIND, filename, record.credential_version)
            if record.source_key:  # it was being converted: its upload goes too
                with contextlib.suppress(AudioNotFoundError):
                    self.storage.delete(record.source_key)
        self.queues.file_removed(filename)

    def upload(
        self, upload_name: str, source: BinaryIO, size: int, *, overwrite: bool
    ) -> AudioRecord:
        """Check one upload by its content. A house MP3 is stored as it is and catalogued
        (``ready``); any other accepted audio waits for its conversion (``converting``).
        Nothing is stored on a rejection."""
        name = library_name(upload_name)
        if size > MAX_UPLOAD_BYTES:
            raise PayloadTooLargeError(
                f"The file is {size} bytes; this route takes at most {MAX_UPLOAD_BYTES}. "
                "Ask POST /api/audio/upload-url for an upload URL and send larger files there."
            )
        if size == 0:
            raise UnsupportedAudioError(f"The file is empty. {ACCEPTED}")
        try:
            analysis = analyse_upload(source)
        except NotMp3Error:
            analysis = None
        if analysis is not None and analysis.frame.is_house:
            return self.versions.store(name, source, analysis, overwrite=overwrite)
        source.seek(0)
        try:
            found = probe(source)  # 415 naming the accepted formats when it is not audio
        except ConversionError as exc:  # audio, but not even its header can be read
            raise UnsupportedAudioError(f"{exc.reason} {ACCEPTED}") from None
        return self.conversions.accept(upload_name, source, found, overwrite=overwrite)

    def upload_url(
        self, upload_name: str, size: int, *, overwrite: bool = False, base_url: str
    ) -> PresignedPost:
        """A form the client sends the file with, straight to storage, under ``incoming/``:
        once it has arrived its conversion checks it, keeps or converts it, and catalogues
        it as ``<stem>.mp3`` (a name that is taken is 409 now, unless ``overwrite``)."""
        name = library_name(upload_name)
        if size > MAX_PRESIGNED_UPLOAD_BYTES:
            raise PayloadTooLargeError(
                f"size is {size} bytes; an upload URL takes at most "
                f"{MAX_PRESIGNED_UPLOAD_BYTES} bytes."
            )
        if not overwrite and (
            self.catalog.get_audio(name) is not None or self.storage.exists(name)
        ):
            raise AudioExistsError(name)
        key = incoming_key(self.conversions.new_id(), upload_name)
        return self.storage.presigned_post(
            key, max_size=size, expires_in=UPLOAD_URL_EXPIRES, base_url=base_url
        )

    def revoke_url(self, filename: str) -> AudioRecord:
        """A new device credential for the file: its old url answers 403 from now on (device
        functions elsewhere may trust their cached record for DEVICE_CACHE_SECONDS more)."""
        record = self.get(filename)
        updated = record.model_copy(update={"credential_version": record.credential_version + 1})
        self.catalog.put_audio(updated)
        return updated
