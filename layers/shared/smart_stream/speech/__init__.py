"""Speech: the port and its adapters, chosen once from settings."""

from __future__ import annotations

from functools import lru_cache

from smart_stream.settings import get_settings
from smart_stream.speech.base import Pcm, SpeechEngine, Voice

__all__ = ["Pcm", "SpeechEngine", "Voice", "get_speech_engine"]


@lru_cache(maxsize=1)
def get_speech_engine() -> SpeechEngine:
    if get_settings().speech_engine == "polly":
        from smart_stream.adapters.aws.clients import client
        from smart_stream.speech.polly import PollySpeech

        return PollySpeech(client("polly"))
    from smart_stream.speech.local import EspeakSpeech

    return EspeakSpeech()
