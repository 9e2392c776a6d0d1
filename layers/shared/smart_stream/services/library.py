"""The audio library: what the list, search, metadata, delete, upload and upload-url
functions do. Handlers call one function here; this module calls the ports."""

from __future__ import annotations

import base64
import binascii
import json
from typing import BinaryIO
from urllib.parse import quote

from smart_stream.audio.probe import analyse_upload
from smart_stream.catalog import Catalog, get_catalog
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    InvalidQueryError,
    NotMp3Error,
    PayloadTooLargeError,
    UnprocessableError,
)
from smart_stream.domain.names import validate_filename
from smart_stream.domain.records import (
    AudioFile,
    AudioList,
    AudioRecord,
    AudioStatus,
    SearchResult,
    UploadUrlRequest,
    UploadUrlResponse,
)
from smart_stream.services import auth, credentials
from smart_stream.services.metadata import AUDIO_KIND, record_for
from smart_stream.settings import MAX_PRESIGNED_UPLOAD_BYTES, MAX_UPLOAD_BYTES, get_settings
from smart_stream.storage import Storage, get_storage

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
UPLOAD_URL_EXPIRES = 3600
VISIBLE = (AudioStatus.PENDING, AudioStatus.READY)


def public_base(request_base: str, function_url: str | None = None) -> str:
    """Where device URLs point: PUBLIC_BASE_URL, else the device function's own URL (each
    function URL is a host of its own), else the base of the request being answered (local)."""
    base = get_settings().public_base_url or function_url or request_base
    return base.rstrip("/")


def device_url(record: AudioRecord, base: str) -> str:
    credential = auth.device_credential(AUDIO_KIND, record.filename, record.credential_version)
    return (
        f"{base}/api/audio/{quote(record.filename, safe='')}?{auth.CREDENTIAL_PARAM}={credential}"
    )


def to_audio_file(record: AudioRecord, request_base: str) -> AudioFile:
    base = public_base(request_base, get_settings().audio_stream_base_url)
    return AudioFile.from_record(record, device_url(record, base))


def _statuses(raw: str | None) -> tuple[AudioStatus, ...]:
    if raw is None or raw == "":
        return VISIBLE
    if raw == "all":
        return tuple(AudioStatus)
    try:
        return tuple(AudioStatus(part.strip()) for part in raw.split(","))
    except ValueError:
        allowed = ", ".join(s.value for s in AudioStatus)
        raise UnprocessableError(f"status must be one of {allowed} (or all).") from None


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise UnprocessableError("limit must be a whole number.") from None
    if value < 1:
        raise UnprocessableError("limit must be at least 1.")
    return min(value, MAX_PAGE_SIZE)


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    # RecursionError: a forged token of deeply nested JSON ("[[[[...").
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise InvalidQueryError("next_token is not one this API handed out.") from None
    if not isinstance(after, str):
        raise InvalidQueryError("next_token is not one this API handed out.")
    return after


def list_audio(
    *,
    limit: str | None,
    next_token: str | None,
    status: str | None,
    request_base: str,
    catalog: Catalog | None = None,
) -> AudioList:
    catalog = catalog or get_catalog()
    page = catalog.list_audio(
        limit=_page_size(limit),
        after=_decode_token(next_token) if next_token else None,
        statuses=_statuses(status),
    )
    return AudioList(
        files=[to_audio_file(r, request_base) for r in page.records],
        next_token=_encode_token(page.after) if page.after else None,
    )


def search_audio(
    query: str | None, *, request_base: str, catalog: Catalog | None = None
) -> SearchResult:
    needle = (query or "").strip().casefold()
    if not needle:
        raise InvalidQueryError("Say what to search for: ?q=<words>.")
    catalog = catalog or get_catalog()
    found = catalog.search_audio(needle, statuses=VISIBLE)
    return SearchResult(files=[to_audio_file(r, request_base) for r in found])


def get_record(filename: str, catalog: Catalog | None = None) -> AudioRecord:
    record = (catalog or get_catalog()).get_audio(validate_filename(filename))
    if record is None:
        raise AudioNotFoundError(filename)
    return record


def get_audio(filename: str, *, request_base: str) -> AudioFile:
    return to_audio_file(get_record(filename), request_base)


def delete_audio(
    filename: str,
    *,
    force: bool = False,
    storage: Storage | None = None,
    catalog: Catalog | None = None,
) -> None:
    """Delete the object and its record. A file that queues use is 409 (naming them) unless
    ``force``; then it leaves those queues too."""
    from smart_stream.services import queues  # queues builds on this module

    storage = storage or get_storage()
    catalog = catalog or get_catalog()
    validate_filename(filename)
    record = catalog.get_audio(filename)
    queues.check_deletable(filename, force=force, catalog=catalog)
    try:
        storage.delete(filename)
    except AudioNotFoundError:
        if record is None:
            raise
    catalog.delete_audio(filename)
    if record is not None:
        credentials.retire(catalog, AUDIO_KIND, filename, record.credential_version)
    queues.leave_queues(filename, catalog)


def upload_audio(
    filename: str,
    source: BinaryIO,
    size: int,
    *,
    overwrite: bool,
    request_base: str,
    storage: Storage | None = None,
    catalog: Catalog | None = None,
) -> AudioFile:
    """Check, store and catalogue one uploaded MP3. Nothing is stored on a rejection."""
    storage = storage or get_storage()
    catalog = catalog or get_catalog()
    validate_filename(filename)
    if size > MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError(
            f"The file is {size} bytes; this route takes at most {MAX_UPLOAD_BYTES}. "
            "Ask POST /api/audio/upload-url for an upload URL and send larger files there."
        )
    if size == 0:
        raise NotMp3Error("The file is empty.")
    analysis = analyse_upload(source)
    previous = catalog.get_audio(filename)
    if not overwrite and (previous is not None or storage.exists(filename)):
        raise AudioExistsError(filename)
    source.seek(0)
    stored = storage.put(filename, source, overwrite=overwrite)
    # A replaced file keeps its device URL: cards that play it go on working.
    record = record_for(
        filename, stored.size, stored.etag, stored.last_modified, analysis, None, previous, catalog
    )
    try:
        catalog.put_audio(record)
    except Exception:
        if not overwrite:
            storage.delete(filename)  # leave nothing half-written behind
        raise
    if previous is not None:
        # The metadata pipeline's event for this version finds it catalogued already and
        # reads nothing more, so queues that play this file take its new span here.
        from smart_stream.services import queues  # queues builds on this module

        queues.refresh_queues(record, catalog)
    return to_audio_file(record, request_base)


def create_upload_url(
    request: UploadUrlRequest, *, request_base: str, storage: Storage | None = None
) -> UploadUrlResponse:
    storage = storage or get_storage()
    validate_filename(request.filename)
    if request.size > MAX_PRESIGNED_UPLOAD_BYTES:
        raise PayloadTooLargeError(
            f"size is {request.size} bytes; an upload URL takes at most "
            f"{MAX_PRESIGNED_UPLOAD_BYTES} bytes."
        )
    if storage.exists(request.filename):
        raise AudioExistsError(request.filename)
    post = storage.presigned_post(
        request.filename,
        max_size=request.size,
        expires_in=UPLOAD_URL_EXPIRES,
        base_url=request_base,
    )
    return UploadUrlResponse(url=post.url, fields=post.fields, expires_in=UPLOAD_URL_EXPIRES)


def revoke_url(filename: str, *, request_base: str, catalog: Catalog | None = None) -> AudioFile:
    """A new device credential for the file: its old url answers 403 from now on (device
    functions elsewhere may trust their cached record for DEVICE_CACHE_SECONDS more)."""
    catalog = catalog or get_catalog()
    record = get_record(filename, catalog)
    updated = record.model_copy(update={"credential_version": record.credential_version + 1})
    catalog.put_audio(updated)
    from smart_stream.device.streaming import records  # the device route of this same process

    records.forget(filename)
    return to_audio_file(updated, request_base)
