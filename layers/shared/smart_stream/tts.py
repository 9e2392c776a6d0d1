"""Text to speech: a story typed by a parent becomes an MP3 in the library, in the house
format, its text kept as the file's transcript (so search finds its words)."""

from __future__ import annotations

import re
import tempfile
from typing import Literal

from pydantic import BaseModel, ConfigDict

from smart_stream.audio_probe import analyse_upload
from smart_stream.catalog import Catalog, get_catalog
from smart_stream.errors import AudioExistsError, PayloadTooLargeError, UnprocessableError
from smart_stream.house_format import HouseEncoder
from smart_stream.library import to_audio_file
from smart_stream.metadata import record_for
from smart_stream.models import AudioFile
from smart_stream.names import MAX_FILENAME_BYTES, filename_problem, validate_filename
from smart_stream.speech import SpeechEngine, get_speech_engine
from smart_stream.storage import Storage, get_storage
from smart_stream.text_split import split_text

#: The longest text taken in one request (characters). Polly takes 3,000 a call; longer
#: texts are split at sentences and the parts joined into one MP3.
MAX_TEXT_CHARS = 20_000
_SPOOL_BYTES = 8 * 1024 * 1024
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_SPEAK = re.compile(r"^\s*<speak\b[^>]*>(.*)</speak>\s*$", re.DOTALL)


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    filename: str | None = None
    voice: str | None = None
    engine: Literal["standard", "neural", "generative", "long-form"] | None = None
    overwrite: bool = False


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", _TAG.sub(" ", text)).strip()


def name_from_text(text: str, taken: set[str] | None = None, exists: object = None) -> str:
    """A filename from the text's first words ("Once upon a time.mp3")."""
    words = _WORD.findall(_plain(text))[:6]
    stem = " ".join(words)[:60].strip() or "Story"
    return stem + ".mp3"


def _free_name(stem_name: str, storage: Storage, catalog: Catalog) -> str:
    """``stem_name``, or "<stem> 2.mp3", "<stem> 3.mp3"... whichever is free."""
    stem = stem_name[: -len(".mp3")]
    for number in range(1, 1000):
        candidate = stem_name if number == 1 else f"{stem} {number}.mp3"
        if filename_problem(candidate) is not None:
            continue
        if catalog.get_audio(candidate) is None and not storage.exists(candidate):
            return candidate
    raise UnprocessableError("Give this story a filename: the one made from its words is taken.")


def generate_tts(
    request: TtsRequest,
    *,
    request_base: str,
    engine: SpeechEngine | None = None,
    storage: Storage | None = None,
    catalog: Catalog | None = None,
) -> AudioFile:
    """Speak ``request.text`` into an MP3 in the library. Nothing is stored unless the whole
    text was spoken and encoded."""
    engine = engine or get_speech_engine()
    storage = storage or get_storage()
    catalog = catalog or get_catalog()
    text = request.text
    if not text.strip() or not _plain(text):
        raise UnprocessableError("There is no text to speak.")
    if len(text) > MAX_TEXT_CHARS:
        raise PayloadTooLargeError(
            f"The text is {len(text)} characters; at most {MAX_TEXT_CHARS} are spoken at once. "
            "Split it into chapters."
        )
    if request.filename is not None:
        filename = validate_filename(request.filename)
        if not request.overwrite and (
            catalog.get_audio(filename) is not None or storage.exists(filename)
        ):
            raise AudioExistsError(filename)
    else:
        filename = _free_name(name_from_text(text), storage, catalog)
    assert len(filename.encode()) <= MAX_FILENAME_BYTES
    voice = engine.resolve_voice(request.voice, request.engine)

    ssml_match = _SPEAK.match(text)
    body = ssml_match.group(1) if ssml_match else text
    # Room for the <speak></speak> wrapper each SSML part gets back.
    limit = engine.max_request_chars - (len("<speak></speak>") if ssml_match else 0)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as mp3:
        encoder = HouseEncoder(mp3)
        for part in split_text(body, limit):
            spoken = f"<speak>{part}</speak>" if ssml_match else part
            pcm = engine.synthesize(spoken, voice, ssml=bool(ssml_match))
            encoder.add(pcm.samples, pcm.sample_rate)
        encoder.finish()
        analysis = analyse_upload(mp3)
        mp3.seek(0)
        previous = catalog.get_audio(filename)
        stored = storage.put(filename, mp3, overwrite=request.overwrite)
    record = record_for(
        filename, stored.size, stored.etag, stored.last_modified, analysis, None, previous, catalog
    ).model_copy(update={"transcript": _plain(text), "transcript_status": "completed"})
    try:
        catalog.put_audio(record)
    except Exception:
        if previous is None:
            storage.delete(filename)  # leave nothing half-written behind
        raise
    if previous is not None:
        # As for an upload: the pipeline's event finds this version catalogued already, so
        # queues that play the story take its new span here.
        from smart_stream import queues  # queues builds on the library

        queues.refresh_queues(record, catalog)
    return to_audio_file(record, request_base)
