"""Queues: named, ordered lists of audio files that a player hears as one MP3.

A queue keeps, for each file, the span of its audio frames (``QueueEntry``), so a stream of
any length starts after one catalogue read. The bytes of a finite stream are a pure function
of the queue record and the play mode: an optional ID3v2 tag with the queue's title, then
each file's audio span in play order. That is what makes Content-Length exact, the ETag
strong and Range requests answer exactly the bytes of the full response.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from smart_stream.catalog import Catalog, get_catalog
from smart_stream.changes import Listeners
from smart_stream.device.cache import DeviceCache
from smart_stream.domain.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from smart_stream.domain.names import is_valid_queue_name, validate_filename
from smart_stream.domain.records import (
    AudioRecord,
    AudioStatus,
    PlayMode,
    Queue,
    QueueEntry,
    QueueList,
    QueueRecord,
    QueueRequest,
    utc_now,
)
from smart_stream.services import auth, credentials
from smart_stream.services.library import public_base
from smart_stream.settings import get_settings
from smart_stream.storage import Span

QUEUE_KIND = "queue"


class QueueNotFoundError(NotFoundError):
    code = "queue_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"No queue named {name!r}.")


class FilesNotFoundError(NotFoundError):
    code = "audio_not_found"

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            "These files are not in the library: " + ", ".join(repr(m) for m in missing) + "."
        )
        self.missing = missing


class InvalidQueueNameError(BadRequestError):
    code = "invalid_queue_name"


class QueueHasCardError(ConflictError):
    code = "queue_has_card"


class AudioInUseError(ConflictError):
    code = "audio_in_use"

    def __init__(self, filename: str, queues: list[str]) -> None:
        super().__init__(
            f"{filename!r} is in the queue(s) {', '.join(queues)}; "
            "remove it from them first, or add ?force=true to delete it and leave those queues."
        )
        self.queues = queues


def validate_queue_name(name: str) -> str:
    if not is_valid_queue_name(name):
        raise InvalidQueueNameError(
            "A queue name is 1-64 characters of letters, digits, '-' and '_'."
        )
    return name


def stream_url(record: QueueRecord, base: str) -> str:
    credential = auth.device_credential(QUEUE_KIND, record.name, record.credential_version)
    return (
        f"{base}/api/streams/{quote(record.name)}/stream.mp3?{auth.CREDENTIAL_PARAM}={credential}"
    )


def to_queue(record: QueueRecord, request_base: str) -> Queue:
    return Queue(
        name=record.name,
        title=record.title,
        description=record.description,
        files=record.files,
        play_mode=record.play_mode,
        stream_url=stream_url(
            record, public_base(request_base, get_settings().queue_stream_base_url)
        ),
        total_duration=record.total_duration,
        version=record.version,
        yoto_card_id=record.yoto_card_id,
        updated_at=record.updated_at,
    )


#: Queue records by name, as the device route reads them (a player's requests come in runs).
device_records: DeviceCache[QueueRecord] = DeviceCache(lambda name: get_catalog().get_queue(name))


def device_record(name: str) -> QueueRecord:
    record = device_records.get(validate_queue_name(name))
    if record is None:
        raise QueueNotFoundError(name)
    return record


#: Told of every queue change made through this module: (old, new), None for absent. The
#: local server passes them on as the catalogue stream's events (deployed, DynamoDB Streams
#: sends those itself and nothing listens here).
QueueListener = Callable[[QueueRecord | None, QueueRecord | None], None]
queue_listeners: Listeners[QueueListener] = Listeners()


def _changed(old: QueueRecord | None, new: QueueRecord | None) -> None:
    changed = new or old
    assert changed is not None
    device_records.forget(changed.name)  # the device route of this process reads it afresh
    for listener in queue_listeners:
        listener(old, new)


def _save(catalog: Catalog, record: QueueRecord, old: QueueRecord | None) -> bool:
    """The one conditional write of a queue (over ``old``, the version it replaces)."""
    saved = catalog.put_queue(record, expected_version=old.version if old else None)
    if saved:
        _changed(old, record)
    else:
        device_records.forget(record.name)
    return saved


def get_record(name: str, catalog: Catalog | None = None) -> QueueRecord:
    record = (catalog or get_catalog()).get_queue(validate_queue_name(name))
    if record is None:
        raise QueueNotFoundError(name)
    return record


def list_queues(*, request_base: str) -> QueueList:
    return QueueList(queues=[to_queue(q, request_base) for q in get_catalog().list_queues()])


def get_queue(name: str, *, request_base: str) -> Queue:
    return to_queue(get_record(name), request_base)


def _stream_shape(record: AudioRecord) -> str:
    channels = "mono" if record.channels == 1 else "stereo"
    return f"MPEG-{record.mpeg_version} {record.sample_rate} Hz {channels}"


def _entries(files: list[str], catalog: Catalog) -> list[QueueEntry]:
    """The queue's files as entries, after every check the contract names."""
    if not files:
        raise UnprocessableError("A queue needs at least one file.")
    for filename in files:
        validate_filename(filename)
    records = {name: catalog.get_audio(name) for name in dict.fromkeys(files)}
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
        raise UnprocessableError("These files cannot be played yet: " + ", ".join(unready) + ".")
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
    return [_entry(found[name]) for name in files]


def _entry(record: AudioRecord) -> QueueEntry:
    assert record.audio_start is not None and record.audio_end is not None
    return QueueEntry(
        filename=record.filename,
        etag=record.etag,
        audio_start=record.audio_start,
        audio_end=record.audio_end,
        duration=record.duration or 0.0,
    )


def put_queue(
    name: str, request: QueueRequest, *, request_base: str, catalog: Catalog | None = None
) -> tuple[bool, Queue]:
    """Create (True) or replace (False) a queue. Two clients replacing one queue at once:
    one wins whole, the other gets a 409, never a mix."""
    catalog = catalog or get_catalog()
    validate_queue_name(name)
    entries = _entries(request.files, catalog)
    existing = catalog.get_queue(name)
    record = QueueRecord(
        name=name,
        title=request.title
        if request.title is not None
        else (existing.title if existing else name),
        description=(
            request.description
            if request.description is not None
            else (existing.description if existing else "")
        ),
        entries=entries,
        play_mode=request.play_mode,
        version=existing.version + 1 if existing else 1,
        seed=secrets.randbits(48),
        credential_version=(
            existing.credential_version
            if existing
            else credentials.first_version(catalog, QUEUE_KIND, name)
        ),
        yoto_card_id=existing.yoto_card_id if existing else None,
        updated_at=utc_now(),
    )
    if not _save(catalog, record, existing):
        raise ConflictError(
            f"The queue {name!r} was changed by another request at the same moment; "
            "fetch it and try again."
        )
    return existing is None, to_queue(record, request_base)


def delete_queue(name: str, *, force: bool, catalog: Catalog | None = None) -> None:
    catalog = catalog or get_catalog()
    record = get_record(name, catalog)
    if record.yoto_card_id and not force:
        raise QueueHasCardError(
            f"The queue {name!r} is on the Yoto card {record.yoto_card_id}; remove the card "
            "first, or add ?force=true (the card's stream then answers 404)."
        )
    if not catalog.delete_queue(name):
        device_records.forget(name)
        raise QueueNotFoundError(name)
    _changed(record, None)
    credentials.retire(catalog, QUEUE_KIND, name, record.credential_version)


def queues_using(filename: str, catalog: Catalog | None = None) -> list[QueueRecord]:
    return [q for q in (catalog or get_catalog()).list_queues() if filename in q.files]


def _rewrite(
    record: QueueRecord,
    change: Callable[[QueueRecord], list[QueueEntry]],
    catalog: Catalog,
) -> None:
    """Save a queue whose files changed under it. ``change`` gives the new entries of a
    record; when another writer got in first it is applied again to what that writer saved
    (never to the stale record, which would undo their write), and nothing is written when it
    changes nothing (say, a second delivery of the same event)."""
    for _ in range(5):
        entries = change(record)
        if entries == record.entries:
            return
        updated = record.model_copy(
            update={"entries": entries, "version": record.version + 1, "updated_at": utc_now()}
        )
        if _save(catalog, updated, record):
            return
        fresh = catalog.get_queue(record.name)
        if fresh is None:
            return
        record = fresh
    raise ConflictError(f"The queue {record.name!r} keeps changing; try again.")


def leave_queues(filename: str, catalog: Catalog | None = None) -> None:
    """Take a deleted file out of every queue that uses it."""
    catalog = catalog or get_catalog()

    def without(queue: QueueRecord) -> list[QueueEntry]:
        return [e for e in queue.entries if e.filename != filename]

    for queue in queues_using(filename, catalog):
        _rewrite(queue, without, catalog)


def refresh_queues(audio: AudioRecord, catalog: Catalog | None = None) -> None:
    """A file got a new version: queues that use it take its new span (or drop it when it
    is no longer playable, or no longer joins the rest)."""
    catalog = catalog or get_catalog()
    playable = audio.status is AudioStatus.READY and audio.audio_start is not None

    def refreshed(queue: QueueRecord) -> list[QueueEntry]:
        if playable:
            return [_entry(audio) if e.filename == audio.filename else e for e in queue.entries]
        return [e for e in queue.entries if e.filename != audio.filename]

    for queue in queues_using(audio.filename, catalog):
        _rewrite(queue, refreshed, catalog)


def check_deletable(filename: str, *, force: bool, catalog: Catalog | None = None) -> None:
    """409 naming the queues that use a file, unless ``force`` (then it leaves them)."""
    using = queues_using(filename, catalog)
    if using and not force:
        raise AudioInUseError(filename, [q.name for q in using])


# Play order and stream layout ---------------------------------------------------------------


def parse_mode(raw: str | None, default: PlayMode) -> PlayMode:
    if not raw:
        return default
    try:
        return PlayMode(raw)
    except ValueError:
        modes = ", ".join(m.value for m in PlayMode)
        raise UnprocessableError(f"play_mode must be one of {modes}.") from None


def _shuffled(count: int, seed: int, round_no: int) -> list[int]:
    order = list(range(count))
    # A string seed is hashed with SHA-512: the same order in every process and version.
    random.Random(f"{seed}:{round_no}").shuffle(order)
    return order


def round_order(record: QueueRecord, mode: PlayMode, round_no: int) -> list[int]:
    """Entry indexes in play order for one round (one pass over every file).

    Endless shuffle draws a new order each round, and never plays the same file twice in a
    row across a round's boundary."""
    count = len(record.entries)
    if not mode.shuffled:
        return list(range(count))
    if mode is PlayMode.SHUFFLE or count < 3:
        # Two files can only alternate: every round repeats the first draw.
        return _shuffled(count, record.seed, 0)
    order = _shuffled(count, record.seed, round_no)
    if round_no > 0:
        # Swapping the first two never moves a round's last file (count >= 3), so the
        # previous round's last file is its draw's last.
        previous_last = _shuffled(count, record.seed, round_no - 1)[-1]
        if order[0] == previous_last:
            order[0], order[1] = order[1], order[0]
    return order


@lru_cache(maxsize=256)
def title_tag(title: str) -> bytes:
    """The one ID3v2 tag a stream starts with: the queue's title, nothing else."""
    from mutagen.id3 import ID3, TIT2

    tag = ID3()
    tag.add(TIT2(encoding=3, text=title))
    out = io.BytesIO()
    tag.save(out, padding=lambda info: 0)
    return out.getvalue()


@dataclass(frozen=True)
class Piece:
    """A run of the stream's bytes: the title tag, or one file's audio span."""

    offset: int  # where it starts in the stream
    length: int
    entry: QueueEntry | None  # None: the title tag


@dataclass(frozen=True)
class FiniteLayout:
    pieces: list[Piece]
    prefix: bytes
    size: int
    etag: str
    #: A hash of exactly the stream's bytes (title tag, then each file version's span in
    #: order): what names the queue's pack.
    content: str

    def spans(self, start: int = 0, end: int | None = None) -> list[Span]:
        """The files' bytes that make the stream's bytes ``start``..``end`` (inclusive; None:
        to the end), in order; the title tag's part of them is ``prefix``."""
        end = self.size - 1 if end is None else end
        spans = []
        for piece in self.pieces:
            lo = max(start, piece.offset)
            hi = min(end, piece.offset + piece.length - 1)
            if piece.entry is not None and lo <= hi:
                base = piece.entry.audio_start - piece.offset
                spans.append(Span(piece.entry.filename, lo + base, hi + base, piece.entry.etag))
        return spans


_layouts: dict[tuple[object, ...], FiniteLayout] = {}
#: The layouts of the record objects seen last (the device route's cached records): found
#: without building the key above, which walks every entry. Holding the record keeps its id.
_by_record: dict[tuple[int, PlayMode], tuple[QueueRecord, FiniteLayout]] = {}
_layouts_lock = threading.Lock()  # the device route, the pack writer and start-up share them


def finite_layout(record: QueueRecord, mode: PlayMode) -> FiniteLayout:
    """The layout of a finite stream, made once per queue content and mode."""
    with _layouts_lock:
        seen = _by_record.get((id(record), mode))
    if seen is not None and seen[0] is record:
        return seen[1]
    spans = tuple((e.filename, e.etag, e.audio_start, e.audio_end) for e in record.entries)
    key = (record.name, record.version, record.seed, mode, record.title, spans)
    with _layouts_lock:
        layout = _layouts.get(key)
    if layout is None:
        layout = _make_layout(record, mode)
    with _layouts_lock:
        if len(_layouts) >= 64:
            _layouts.pop(next(iter(_layouts)))
        if len(_by_record) >= 64:
            _by_record.pop(next(iter(_by_record)))
        _layouts[key] = layout
        _by_record[(id(record), mode)] = (record, layout)
    return layout


def _make_layout(record: QueueRecord, mode: PlayMode) -> FiniteLayout:
    prefix = title_tag(record.title)
    pieces = [Piece(0, len(prefix), None)]
    offset = len(prefix)
    for index in round_order(record, mode, 0):
        entry = record.entries[index]
        pieces.append(Piece(offset, entry.length, entry))
        offset += entry.length
    spans = [
        [p.entry.filename, p.entry.etag, p.entry.audio_start, p.entry.audio_end]
        for p in pieces
        if p.entry
    ]
    identity = json.dumps([record.name, record.version, mode.value, record.title, spans])
    etag = '"q-' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'
    content = hashlib.sha256(json.dumps([prefix.hex(), spans]).encode()).hexdigest()[:32]
    return FiniteLayout(pieces, prefix, offset, etag, content)


def cursor_key(name: str, mode: PlayMode, credential: str | None) -> str:
    """One cursor per device URL (two players on one card share it)."""
    raw = f"{name}\n{mode.value}\n{credential or 'management-token'}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def update_queue(
    name: str, changes: dict[str, object], catalog: Catalog | None = None
) -> QueueRecord:
    """Set fields of a queue that are not its files (its card, its credential), through the
    same conditional write as everything else: retried on a concurrent change, never lost."""
    catalog = catalog or get_catalog()
    for _ in range(5):
        record = get_record(name, catalog)
        updated = record.model_copy(
            update={**changes, "version": record.version + 1, "updated_at": utc_now()}
        )
        if _save(catalog, updated, record):
            return updated
    raise ConflictError(f"The queue {name!r} keeps changing; try again.")


def revoke_url(name: str, *, request_base: str, catalog: Catalog | None = None) -> Queue:
    """A new device credential for the queue: its old stream_url answers 403 from now on."""
    catalog = catalog or get_catalog()
    record = get_record(name, catalog)
    updated = update_queue(name, {"credential_version": record.credential_version + 1}, catalog)
    return to_queue(updated, request_base)
