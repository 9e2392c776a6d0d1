"""Pydantic models at the edges: what the Catalog stores and what the API answers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator


def utc_now() -> datetime:
    return datetime.now(UTC)


class AudioStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    INVALID = "invalid"


class AudioInfo(BaseModel):
    """What reading an MP3's headers and tags tells (see ``audio_probe``)."""

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

    @field_validator("uploaded_at")
    @classmethod
    def _whole_seconds(cls, value: datetime) -> datetime:
        # HTTP dates (Last-Modified) have whole seconds, and so do S3's: whoever catalogues a
        # version (the upload function or the metadata pipeline) writes the same record.
        return value.replace(microsecond=0)

    #: Fields kept inside the app, never in the AudioFile JSON.
    INTERNAL: ClassVar[set[str]] = {"transcript", "credential_version", "audio_start", "audio_end"}

    def matches(self, needle: str) -> bool:
        """Case-insensitive search over the fields the contract names."""
        fields = (self.filename, self.title, self.artist, self.album, self.transcript)
        return any(needle in value.casefold() for value in fields if value)


class AudioFile(AudioInfo):
    """The ``AudioFile`` JSON of the HTTP contract."""

    filename: str
    size: int
    etag: str
    uploaded_at: datetime
    status: AudioStatus
    status_reason: str | None = None
    transcript_status: str | None = None
    url: str

    @classmethod
    def from_record(cls, record: AudioRecord, url: str) -> AudioFile:
        return cls(**record.model_dump(exclude=AudioRecord.INTERNAL), url=url)


class AudioList(BaseModel):
    files: list[AudioFile]
    next_token: str | None = None


class SearchResult(BaseModel):
    files: list[AudioFile]


class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str
    size: int = Field(gt=0)


class UploadUrlResponse(BaseModel):
    url: str
    fields: dict[str, str]
    method: str = "POST"
    expires_in: int


class ErrorBody(BaseModel):
    code: str
    message: str
