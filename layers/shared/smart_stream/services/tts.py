"""Text to speech: a story typed by a parent becomes an MP3 in the library, in the house
format, its text kept as the file's transcript (so search finds its words)."""

from __future__ import annotations

import re
import tempfile
from typing import Literal

from pydantic import BaseModel, ConfigDict

from smart_stream.audio.house_format import HouseEncoder
from smart_stream.audio.probe import analyse_upload
from smart_stream.audio.text_split import split_text
from smart_stream.catalog import Catalog, get_catalog
from smart_stream.domain.errors import AudioExistsError, PayloadTooLargeError, UnprocessableError
from smart_stream.domain.names import MAX_FILENAME_BYTES, filename_problem, validate_filename
from smart_stream.domain.records import AudioFile
from smart_stream.services.library import to_audio_file
from smart_stream.services.metadata import record_for
from smart_stream.speech import SpeechEngine, get_speech_engine
from smart_stream.storage import Storage, get_storage

#: The longest text taken in one request (characters). Polly takes 3,000 a call; longer
#: texts are split at sentences and the parts joined into one MP3.
MAX_TEXT_CHARS = 20_000
_SPOOL_BYTES = 8 * 1024 * 1024
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_SPEAK = re.compile(r"^\s*<speak\b[^>]*>(.*)</speak>\s*$", re.DOTALL)


#: Characters of a part kept for SSML wrapping (<speak>, elements carried across a cut).
SSML_MARGIN = 400
_ELEMENT = re.compile(r"<(/?)([A-Za-z][\w:.-]*)[^<>]*?(/?)>")


def balance_ssml(parts: list[str]) -> list[str]:
    """Parts of one SSML body, each made well-formed: an element a cut leaves open is closed
    at the end of its part and opened again (same attributes) at the start of the next."""
    balanced = []
    open_elements: list[tuple[str, str]] = []  # (name, its opening tag)
    for part in parts:
        reopened = "".join(tag for _, tag in open_elements)
        for match in _ELEMENT.finditer(part):
            closing, name, self_closing = match.groups()
            if self_closing:
                continue
            if not closing:
                open_elements.append((name, match.group(0)))
                continue
            for index in range(len(open_elements) - 1, -1, -1):
                if open_elements[index][0] == name:
                    del open_elements[index:]
                    break
        closed = "".join(f"</{name}>" for name, _ in reversed(open_elements))
        balanced.append(reopened + part + closed)
    return balanced


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    filename: str | None = None
    voice: str | None = None
    engine: Literal["standard", "neural", "generative", "long-form"] | None = None
    overwrite: bool = False


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", _TAG.sub(" ", text)).strip()


def name_from_text(text: str) -> str:
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
    # Room for what each SSML part gets back around it: <speak></speak> and the elements it
    # continues from the part before (reopened first, closed last).
    margin = min(SSML_MARGIN, engine.max_request_chars // 4) if ssml_match else 0
    limit = engine.max_request_chars - margin
    parts = split_text(body, limit)
    if ssml_match:
        parts = [f"<speak>{part}</speak>" for part in balance_ssml(parts)]
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as mp3:
        encoder = HouseEncoder(mp3)
        for spoken in parts:
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
        from smart_stream.services import queues  # queues builds on the library

        queues.refresh_queues(record, catalog)
    return to_audio_file(record, request_base)
