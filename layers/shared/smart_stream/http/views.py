"""The contract's JSON (``AudioFile``, ``Queue`` ...) as pydantic models, and the views that
make them from records: each device URL built from the record and one base."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from smart_stream.domain.asks import QueueChange, Story
from smart_stream.domain.records import (
    AudioInfo,
    AudioRecord,
    AudioStatus,
    PlayMode,
    QueueRecord,
)
from smart_stream.ports import Page, PresignedPost, VoiceInfo
from smart_stream.services.library import UPLOAD_URL_EXPIRES
from smart_stream.services.urls import DeviceUrls


class AudioFile(AudioInfo):
    """The ``AudioFile`` JSON of the HTTP contract."""

    filename: str
    size: int
    etag: str
    uploaded_at: datetime
    status: AudioStatus
    status_reason: str | None = None
    transcript_status: str | None = None
    progress: float | None = None
    source_format: str | None = None
    url: str


class AudioList(BaseModel):
    files: list[AudioFile]
    next_token: str | None = None


class SearchResult(BaseModel):
    files: list[AudioFile]


class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str
    size: int = Field(gt=0)
    overwrite: bool = False


class UploadUrlResponse(BaseModel):
    url: str
    fields: dict[str, str]
    method: str = "POST"
    expires_in: int


class ErrorBody(BaseModel):
    """Every error's body: a machine word, and what went wrong and what to do."""

    code: str
    message: str


class Health(BaseModel):
    status: str = "ok"


class Voice(BaseModel):
    id: str
    name: str
    language: str


class VoiceList(BaseModel):
    engine: str
    voices: list[Voice]

    @classmethod
    def of(cls, engine: str, voices: Iterable[VoiceInfo]) -> VoiceList:
        listed = [Voice(id=v.id, name=v.name, language=v.language) for v in voices]
        return cls(engine=engine, voices=listed)


class Authorize(BaseModel):
    authorize_url: str


class YotoLogin(BaseModel):
    signed_in: bool
    pending: bool
    redirect_uri: str


class DeviceLogin(BaseModel):
    verification_uri: str
    user_code: str
    expires_in: int
    verification_uri_complete: str | None = None


class CardContent(BaseModel):
    """Yoto's MYO content JSON (its schema is Yoto's: https://yoto.dev)."""

    model_config = ConfigDict(extra="allow")

    title: str
    content: dict[str, Any]
    metadata: dict[str, Any] | None = None
    cardId: str | None = None


class Queue(BaseModel):
    """The ``Queue`` JSON of the HTTP contract."""

    name: str
    title: str
    description: str
    files: list[str]
    play_mode: PlayMode
    stream_url: str
    total_duration: float
    version: int
    yoto_card_id: str | None
    updated_at: datetime


class QueueList(BaseModel):
    queues: list[Queue]


class QueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[str]
    play_mode: PlayMode = PlayMode.SEQUENTIAL
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)

    def change(self) -> QueueChange:
        return QueueChange(self.files, self.play_mode, self.title, self.description)


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    filename: str | None = None
    voice: str | None = None
    engine: Literal["standard", "neural", "generative", "long-form"] | None = None
    overwrite: bool = False

    def story(self) -> Story:
        return Story(self.text, self.filename, self.voice, self.engine, self.overwrite)


# Views ---------------------------------------------------------------------------------------


class Views:
    """Records as the contract's JSON, for a request made to ``request_base``."""

    def __init__(self, urls: DeviceUrls, request_base: str) -> None:
        self.urls = urls
        self.request_base = request_base

    def audio_file(self, record: AudioRecord) -> AudioFile:
        return AudioFile(
            **record.model_dump(exclude=AudioRecord.INTERNAL),
            url=self.urls.audio(record, self.request_base),
        )

    def audio_list(self, page: Page, next_token: str | None) -> AudioList:
        return AudioList(files=[self.audio_file(r) for r in page.records], next_token=next_token)

    def search_result(self, records: list[AudioRecord]) -> SearchResult:
        return SearchResult(files=[self.audio_file(r) for r in records])

    def queue(self, record: QueueRecord) -> Queue:
        return Queue(
            name=record.name,
            title=record.title,
            description=record.description,
            files=record.files,
            play_mode=record.play_mode,
            stream_url=self.urls.queue(record, self.request_base),
            total_duration=record.total_duration,
            version=record.version,
            yoto_card_id=record.yoto_card_id,
            updated_at=record.updated_at,
        )

    def queue_list(self, records: list[QueueRecord]) -> QueueList:
        return QueueList(queues=[self.queue(r) for r in records])


def made_status(record: AudioRecord) -> int:
    """The status of a request that made ``record``: 201 when it was made within the
    request, 202 when it was accepted and is being made in the background (converting)."""
    return 202 if record.status is AudioStatus.CONVERTING else 201


def upload_url_response(post: PresignedPost) -> UploadUrlResponse:
    return UploadUrlResponse(url=post.url, fields=post.fields, expires_in=UPLOAD_URL_EXPIRES)
