"""SpeechEngine over eSpeak NG, offline: the library and its data ship in the
``espeakng-loader`` wheel and are called through ctypes (no system package)."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

from smart_stream.domain.errors import UnprocessableError
from smart_stream.ports import Pcm, Voice, VoiceInfo

DEFAULT_VOICE = "en"
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come back through the callback
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakVoice(ctypes.Structure):
    # speak_lib.h's espeak_VOICE. ``languages`` is a run of (priority byte, NUL-terminated
    # language name) pairs, ended by a zero priority.
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def _first_language(address: int | None) -> str:
    if not address or ctypes.string_at(address, 1) == b"\0":
        return ""
    return ctypes.string_at(address + 1).decode("utf-8", "replace")


class EspeakSpeech:
    """eSpeak NG keeps global state and is not thread-safe: one synthesis at a time."""

    name = "local"
    max_request_chars = 2000
    _lock = threading.Lock()
    _lib: Any = None
    _rate = 0
    _chunks: list[bytes] = []
    _callback: Any = None
    _voices: list[VoiceInfo] | None = None

    @classmethod
    def _load(cls) -> Any:
        if cls._lib is None:
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            lib.espeak_Initialize.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
            ]
            lib.espeak_Initialize.restype = ctypes.c_int
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
            lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
            lib.espeak_Synth.argtypes = [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            # The data directory's parent is what espeak_Initialize asks for.
            data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
            rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, data_parent, 0)
            if rate <= 0:
                raise RuntimeError("eSpeak NG did not start")
            cls._callback = _CALLBACK(cls._collect)  # kept: C holds the only other reference
            lib.espeak_SetSynthCallback(cls._callback)
            cls._rate = rate
            cls._lib = lib
        return cls._lib

    @staticmethod
    def _collect(wav: Any, count: int, events: Any) -> int:
        if wav and count > 0:
            EspeakSpeech._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0: go on

    def list_voices(self) -> list[VoiceInfo]:
        """eSpeak's voices, each by its file's name (``en``, ``en-us``, ``de``, ...): what
        ``espeak_SetVoiceByName``, and so ``resolve_voice``, takes."""
        found: dict[str, VoiceInfo] = {}
        with self._lock:
            if EspeakSpeech._voices is not None:
                return EspeakSpeech._voices
            lib = self._load()
            listed = lib.espeak_ListVoices(None)
            index = 0
            while listed[index]:
                voice = listed[index].contents
                index += 1
                name = (voice.name or b"").decode("utf-8", "replace")
                language = _first_language(voice.languages)
                identifier = (voice.identifier or b"").decode("utf-8", "replace")
                voice_id = identifier.rsplit("/", 1)[-1]
                if not voice_id or identifier.startswith("mb/") or voice_id in found:
                    continue  # MBROLA voices need data the wheel does not carry
                if lib.espeak_SetVoiceByName(voice_id.encode()) == 0:
                    found[voice_id] = VoiceInfo(id=voice_id, name=name, language=language)
            EspeakSpeech._voices = sorted(found.values(), key=lambda v: (v.language, v.name))
            return EspeakSpeech._voices

    def resolve_voice(self, voice: str | None, engine: str | None) -> Voice:
        voice_id = voice or DEFAULT_VOICE
        with self._lock:
            lib = self._load()
            if lib.espeak_SetVoiceByName(voice_id.encode()) != 0:
                raise UnprocessableError(
                    f"Unknown voice {voice_id!r} for the local engine; try en, en-us, de, fr, es."
                )
        return Voice(voice_id)

    def synthesize(self, text: str, voice: Voice, *, ssml: bool) -> Pcm:
        data = text.encode("utf-8")
        with self._lock:
            lib = self._load()
            lib.espeak_SetVoiceByName(voice.voice_id.encode())
            EspeakSpeech._chunks = []
            flags = _CHARS_UTF8 | (_SSML if ssml else 0)
            status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
            lib.espeak_Synchronize()
            samples = b"".join(EspeakSpeech._chunks)
            EspeakSpeech._chunks = []
        if status != 0:
            raise UnprocessableError("The local speech engine could not read this text.")
        return Pcm(samples, self._rate)
