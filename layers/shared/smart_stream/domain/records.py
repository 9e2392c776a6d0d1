"""The records the app keeps: audio files, queues and stream cursors (the Catalog stores
them; ``http.views`` turns them into the contract's JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator


def utc_now() -> datetime:
    return datetime.now(UTC)


class AudioStatus(StrEnum):
    PENDING = "pending"
    #: Being converted to the house format from an upload kept under ``incoming/``.
    CONVERTING = "converting"
    READY = "ready"
    INVALID = "invalid"


class AudioInfo(BaseModel):
    """What reading an MP3's headers and tags tells (see ``audio.analysis``)."""

    duration: float | None = None
    bitrate: int | None = None
    bitrate_mode: str | None = None  # "CBR" | "VBR"
    sample_rate: int | None = None
    channels: int | None = None
    mpeg_version: str | None = None  # "1" | "2" | "2.5"
    title: str | None = None
    artist: str | None = None
    album: str | None = None


class AudioRecord(AudioInfo):
    """One audio file as the Catalog keeps it."""

    model_config = ConfigDict(extra="ignore")

    filename: str
    size: int
    etag: str
    uploaded_at: datetime = Field(default_factory=utc_now)
    status: AudioStatus = AudioStatus.READY
    status_reason: str | None = None
    transcript_status: str | None = None
    transcript: str | None = None
    #: Bumped to revoke the device URLs handed out so far.
    credential_version: int = 1
    #: Where the audio frames are: from the first real frame to the end of the last whole
    #: one, past every tag and Xing/Info/VBRI frame (what queues join). None until analysed.
    audio_start: int | None = None
    audio_end: int | None = None
    #: How far a conversion has come (0 to 1), None while unknown or not converting.
    progress: float | None = None
    #: What the file was made from (``m4a/aac`` ...); None for an MP3 kept as uploaded.
    source_format: str | None = None
    #: The upload a ``converting`` record waits for (``incoming/<id>/<name>``): only that
    #: upload's conversion may store the result.
    source_key: str | None = None
    #: When the conversion last said how far it had come: a conversion killed part-way
    #: (a timeout runs no cleanup) is found by its silence.
    heartbeat_at: datetime | None = None

    @field_validator("uploaded_at")
    @classmethod
    def _whole_seconds(cls, value: datetime) -> datetime:
        # HTTP dates (Last-Modified) have whole seconds, and so do S3's: whoever catalogues a
        # version (the upload function or the metadata pipeline) writes the same record.
        return value.replace(microsecond=0)

    #: Fields kept inside the app, never in the AudioFile JSON.
    INTERNAL: ClassVar[set[str]] = {
        "transcript",
        "credential_version",
        "audio_start",
        "audio_end",
        "source_key",
        "heartbeat_at",
    }


class PlayMode(StrEnum):
    SEQUENTIAL = "sequential"
    LOOP = "loop"
    SHUFFLE = "shuffle"
    ENDLESS_SHUFFLE = "endless-shuffle"

    @property
    def finite(self) -> bool:
        return self in (PlayMode.SEQUENTIAL, PlayMode.SHUFFLE)

    @property
    def shuffled(self) -> bool:
        return self in (PlayMode.SHUFFLE, PlayMode.ENDLESS_SHUFFLE)


class QueueEntry(BaseModel):
    """One file of a queue, as it was when the queue was saved: where its audio frames are,
    so that streaming a queue needs one catalogue read, not one per file."""

    filename: str
    etag: str
    audio_start: int
    audio_end: int
    duration: float

    @property
    def length(self) -> int:
        return self.audio_end - self.audio_start


class QueueRecord(BaseModel):
    """One queue as the Catalog keeps it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    title: str
    description: str = ""
    entries: list[QueueEntry]
    play_mode: PlayMode = PlayMode.SEQUENTIAL
    version: int = 1
    #: Draws the shuffle order; redrawn whenever the queue changes, so one URL always means
    #: the same bytes until then.
    seed: int = 0
    credential_version: int = 1
    yoto_card_id: str | None = None
    updated_at: datetime = Field(default_factory=utc_now)

    @property
    def files(self) -> list[str]:
        return [entry.filename for entry in self.entries]

    @property
    def total_duration(self) -> float:
        return round(sum(entry.duration for entry in self.entries), 3)


class StreamCursor(BaseModel):
    """Where an open-ended stream of one device URL goes on: the round (for endless
    shuffle), the index in that round's order, and a byte offset (on a frame boundary) into
    that file's audio."""

    queue_version: int
    round: int = 0
    index: int = 0
    offset: int = 0
