"""SpeechEngine over Amazon Polly's SynthesizeSpeech (PCM out, 16 kHz)."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smart_stream.domain.errors import BadGatewayError, ServiceUnavailableError, UnprocessableError
from smart_stream.ports import Pcm, Voice, VoiceInfo

#: SynthesizeSpeech takes at most 3,000 billed characters a request.
POLLY_MAX_CHARS = 3000
PCM_RATE = 16000
DEFAULT_VOICE = "Joanna"
ENGINES = ("generative", "neural", "long-form", "standard")
#: Best first: what a voice's "best engine" means when the request names none.
PREFERENCE = ("generative", "neural", "standard", "long-form")
_TRANSIENT = {
    "ThrottlingException",
    "ServiceFailureException",
    "ServiceUnavailableException",
    "RequestTimeout",
}
_BAD_INPUT = {
    "InvalidSsmlException",
    "TextLengthExceededException",
    "SsmlMarksNotSupportedForTextTypeException",
    "LanguageNotSupportedException",
    "EngineNotSupportedException",
    "InvalidSampleRateException",
}


class PollySpeech:
    name = "polly"
    max_request_chars = POLLY_MAX_CHARS

    def __init__(self, client: Any) -> None:
        self.client = client
        self._described: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _call(self, operation: str, **kwargs: Any) -> Any:
        # Throttling and 5xx are retried with backoff by botocore's "standard" retry mode
        # (smart_stream.adapters.aws.clients); what still fails after that is answered, not
        # retried here.
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _TRANSIENT:
                raise ServiceUnavailableError(
                    "The speech service is busy or unavailable; try again in a minute."
                ) from exc
            if code in _BAD_INPUT:
                raise UnprocessableError(f"The speech service refused this text ({code}).") from exc
            raise BadGatewayError("The speech service failed; nothing was saved.") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailableError(
                "The speech service did not answer; try again in a minute."
            ) from exc

    def _describe(self) -> list[dict[str, Any]]:
        """DescribeVoices, every page, asked once per process (the list changes with
        Polly's releases, not from one request to the next)."""
        with self._lock:
            if self._described is None:
                found: list[dict[str, Any]] = []
                kwargs: dict[str, Any] = {}
                while True:
                    page = self._call("describe_voices", **kwargs)
                    found.extend(page.get("Voices", []))
                    if not page.get("NextToken"):
                        break
                    kwargs["NextToken"] = page["NextToken"]
                self._described = found
            return self._described

    def voices(self) -> dict[str, list[str]]:
        """Each voice id with the engines it supports."""
        return {
            voice["Id"]: list(voice.get("SupportedEngines") or ["standard"])
            for voice in self._describe()
        }

    def list_voices(self) -> list[VoiceInfo]:
        found = {
            voice["Id"]: VoiceInfo(
                id=voice["Id"],
                name=voice.get("Name") or voice["Id"],
                language=voice.get("LanguageCode", ""),
            )
            for voice in self._describe()
        }
        return sorted(found.values(), key=lambda v: (v.language, v.name))

    def resolve_voice(self, voice: str | None, engine: str | None) -> Voice:
        voice_id = voice or DEFAULT_VOICE
        voices = self.voices()
        if voice_id not in voices:
            sample = ", ".join(sorted(voices)[:8])
            raise UnprocessableError(f"Unknown voice {voice_id!r}; Polly has e.g. {sample}.")
        supported = voices[voice_id]
        if engine is not None:
            if engine not in ENGINES:
                raise UnprocessableError(f"engine must be one of {', '.join(ENGINES)}.")
            if engine not in supported:
                raise UnprocessableError(
                    f"The voice {voice_id} has no {engine} engine; it has {', '.join(supported)}."
                )
            return Voice(voice_id, engine)
        best = next(e for e in PREFERENCE if e in supported or e == PREFERENCE[-1])
        return Voice(voice_id, best if best in supported else supported[0])

    def synthesize(self, text: str, voice: Voice, *, ssml: bool) -> Pcm:
        response = self._call(
            "synthesize_speech",
            Text=text,
            TextType="ssml" if ssml else "text",
            VoiceId=voice.voice_id,
            Engine=voice.engine or "standard",
            OutputFormat="pcm",
            SampleRate=str(PCM_RATE),
        )
        stream = response["AudioStream"]
        try:
            samples = stream.read()
        except BotoCoreError as exc:
            raise ServiceUnavailableError("The speech service broke off; try again.") from exc
        finally:
            stream.close()
        if len(samples) % 2:
            samples = samples[:-1]
        return Pcm(samples, PCM_RATE)
