"""What a parent asks of the use cases, as typed values (``http`` makes them from requests)."""

from __future__ import annotations

from dataclasses import dataclass

from smart_stream.domain.records import PlayMode


@dataclass(frozen=True)
class QueueChange:
    """What a client asks of a queue: its files, play mode and (when given) its texts."""

    files: list[str]
    play_mode: PlayMode = PlayMode.SEQUENTIAL
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Story:
    """What a parent asks to be spoken."""

    text: str
    filename: str | None = None
    voice: str | None = None
    engine: str | None = None  # Polly's engine; the local engine has one kind
    overwrite: bool = False
