"""The SpeechEngine port: text in, 16-bit mono PCM out (Polly deployed, eSpeak NG locally)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Voice:
    voice_id: str
    engine: str | None = None  # Polly's engine; None for engines that have one kind


@dataclass(frozen=True)
class Pcm:
    """Signed 16-bit little-endian mono samples."""

    samples: bytes
    sample_rate: int


class SpeechEngine(Protocol):
    #: The longest text (characters) one ``synthesize`` call takes.
    max_request_chars: int

    def resolve_voice(self, voice: str | None, engine: str | None) -> Voice:
        """The voice to use (a default when None); ``UnprocessableError`` if unknown."""
        ...

    def synthesize(self, text: str, voice: Voice, *, ssml: bool) -> Pcm: ...
