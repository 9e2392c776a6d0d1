"""The audio library: list, search, look up, upload, delete, and revoke a file's URL.
Each use case takes typed values (``http`` parses requests) and returns records (``http``
turns them into the contract's JSON)."""

from __future__ import annotations

from collections.abc import Collection
from typing import BinaryIO

from smart_stream.audio.analysis import analyse_upload
from smart_stream.domain.credentials import AUDIO_KIND
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    InvalidQueryError,
    NotMp3Error,
    PayloadTooLargeError,
)
from smart_stream.domain.names import validate_filename
from smart_stream.domain.records import AudioRecord, AudioStatus
from smart_stream.ports import Catalog, Page, PresignedPost, Storage
from smart_stream.services import credentials
from smart_stream.services.queues import Queues
from smart_stream.services.versions import Versions

#: Largest file the upload function takes in one request; larger files use the upload URL.
#: A Lambda request payload is capped at 6 MB and HTTP API base64-encodes binary bodies.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
#: Largest file the presigned upload URL admits (S3's single-PUT/POST limit).
MAX_PRESIGNED_UPLOAD_BYTES = 5 * 1024**3
UPLOAD_URL_EXPIRES = 3600
#: What a list (and search) shows unless asked for other statuses.
VISIBLE = (AudioStatus.PENDING, AudioStatus.CONVERTING, AudioStatus.READY)


class Library:
    def __init__(
        self, storage: Storage, catalog: Catalog, versions: Versions, queues: Queues
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.versions = versions
        self.queues = queues

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
        self.queues.file_removed(filename)

    def upload(self, filename: str, source: BinaryIO, size: int, *, overwrite: bool) -> AudioRecord:
        """Check, store and catalogue one uploaded MP3. Nothing is stored on a rejection."""
        validate_filename(filename)
        if size > MAX_UPLOAD_BYTES:
            raise PayloadTooLargeError(
                f"The file is {size} bytes; this route takes at most {MAX_UPLOAD_BYTES}. "
                "Ask POST /api/audio/upload-url for an upload URL and send larger files there."
            )
        if size == 0:
            raise NotMp3Error("The file is empty.")
        analysis = analyse_upload(source)
        return self.versions.store(filename, source, analysis, overwrite=overwrite)

    def upload_url(self, filename: str, size: int, *, base_url: str) -> PresignedPost:
        """A form the client sends the file with, straight to storage."""
        validate_filename(filename)
        if size > MAX_PRESIGNED_UPLOAD_BYTES:
            raise PayloadTooLargeError(
                f"size is {size} bytes; an upload URL takes at most "
                f"{MAX_PRESIGNED_UPLOAD_BYTES} bytes."
            )
        if self.storage.exists(filename):
            raise AudioExistsError(filename)
        return self.storage.presigned_post(
            filename, max_size=size, expires_in=UPLOAD_URL_EXPIRES, base_url=base_url
        )

    def revoke_url(self, filename: str) -> AudioRecord:
        """A new device credential for the file: its old url answers 403 from now on (device
        functions elsewhere may trust their cached record for DEVICE_CACHE_SECONDS more)."""
        record = self.get(filename)
        updated = record.model_copy(update={"credential_version": record.credential_version + 1})
        self.catalog.put_audio(updated)
        return updated
