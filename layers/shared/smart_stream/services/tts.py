"""Text to speech: a story typed by a parent becomes an MP3 in the library, in the house
format, its text kept as the file's transcript (so search finds its words)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import tempfile
import time
from collections.abc import Callable
from typing import BinaryIO, cast

from smart_stream import telemetry
from smart_stream.audio.analysis import analyse_upload
from smart_stream.audio.house_format import HouseEncoder
from smart_stream.audio.text_split import balance_ssml, name_from_text, plain_text, split_text
from smart_stream.domain.asks import Story
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    PayloadTooLargeError,
    UnprocessableError,
)
from smart_stream.domain.names import (
    MAX_FILENAME_BYTES,
    filename_problem,
    incoming_target,
    story_key,
    validate_filename,
)
from smart_stream.domain.records import AudioRecord
from smart_stream.ports import Catalog, ObjectInfo, SpeechEngine, Storage, Voice
from smart_stream.services.conversions import Conversions, Superseded
from smart_stream.services.versions import Versions

#: The longest text taken in one request (characters). Polly takes 3,000 a call; longer
#: texts are split at sentences and the parts joined into one MP3.
MAX_TEXT_CHARS = 20_000
#: Characters of a part kept for SSML wrapping (<speak>, elements carried across a cut).
SSML_MARGIN = 400
_SPOOL_BYTES = 8 * 1024 * 1024
_SPEAK = re.compile(r"^\s*<speak\b[^>]*>(.*)</speak>\s*$", re.DOTALL)


class Stories:
    """Stories up to ``inline_max_chars`` are spoken within their request (201); longer ones
    wait under ``incoming/`` as a job and are spoken in the background by the conversion's
    machinery (202, ``converting``), so no request time limit cuts a long story short."""

    def __init__(
        self,
        engine: SpeechEngine,
        storage: Storage,
        catalog: Catalog,
        versions: Versions,
        conversions: Conversions | None = None,
        *,
        inline_max_chars: int = MAX_TEXT_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.storage = storage
        self.catalog = catalog
        self.versions = versions
        self.conversions = conversions
        self.inline_max_chars = inline_max_chars
        #: Monotonic seconds: how long a story takes to speak.
        self.clock = clock

    def _taken(self, filename: str) -> bool:
        return self.catalog.get_audio(filename) is not None or self.storage.exists(filename)

    def _free_name(self, stem_name: str) -> str:
        """``stem_name``, or "<stem> 2.mp3", "<stem> 3.mp3"... whichever is free."""
        stem = stem_name[: -len(".mp3")]
        for number in range(1, 1000):
            candidate = stem_name if number == 1 else f"{stem} {number}.mp3"
            if filename_problem(candidate) is None and not self._taken(candidate):
                return candidate
        raise UnprocessableError(
            "Give this story a filename: the one made from its words is taken."
        )

    def generate(self, story: Story) -> AudioRecord:
        """Speak ``story.text`` into an MP3 in the library. Nothing is stored unless the
        whole text was spoken and encoded."""
        engine = self.engine
        text = story.text
        if not text.strip() or not plain_text(text):
            raise UnprocessableError("There is no text to speak.")
        if len(text) > MAX_TEXT_CHARS:
            raise PayloadTooLargeError(
                f"The text is {len(text)} characters; at most {MAX_TEXT_CHARS} are spoken at "
                "once. Split it into chapters."
            )
        if story.filename is not None:
            filename = validate_filename(story.filename)
            if not story.overwrite and self._taken(filename):
                raise AudioExistsError(filename)  # before the work, not after
        else:
            filename = self._free_name(name_from_text(text))
        assert len(filename.encode()) <= MAX_FILENAME_BYTES
        voice = engine.resolve_voice(story.voice, story.engine)
        if len(text) > self.inline_max_chars and self.conversions is not None:
            return self._wait(filename, story)
        started = self.clock()
        record = self._speak(filename, story, voice)
        assert record is not None  # only a job's work is conditional
        self._done(started)
        return record

    def _done(self, started: float) -> None:
        telemetry.count(telemetry.STORIES_DONE)
        telemetry.measure(telemetry.STORY_SECONDS, self.clock() - started)

    def _speak(
        self,
        filename: str,
        story: Story,
        voice: Voice,
        *,
        job: AudioRecord | None = None,
    ) -> AudioRecord | None:
        """Speak and store ``story`` as ``filename``; for a background ``job`` (its waiting
        record), say how far it has come after each part and store it only if the record
        still waits for it."""
        engine = self.engine
        text = story.text
        ssml_match = _SPEAK.match(text)
        body = ssml_match.group(1) if ssml_match else text
        # Room for what each SSML part gets back around it: <speak></speak> and the elements
        # it continues from the part before (reopened first, closed last).
        margin = min(SSML_MARGIN, engine.max_request_chars // 4) if ssml_match else 0
        parts = split_text(body, engine.max_request_chars - margin)
        if ssml_match:
            parts = [f"<speak>{part}</speak>" for part in balance_ssml(parts)]
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spooled:
            mp3 = cast(BinaryIO, spooled)
            encoder = HouseEncoder(mp3)
            for number, spoken in enumerate(parts, start=1):
                pcm = engine.synthesize(spoken, voice, ssml=bool(ssml_match))
                encoder.add(pcm.samples, pcm.sample_rate)
                if job is not None and self.conversions is not None:
                    self.conversions.heartbeat(job, round(number / len(parts), 3))
            encoder.finish()
            analysis = analyse_upload(mp3)
            return self.versions.store(
                filename,
                mp3,
                analysis,
                overwrite=True if job is not None else story.overwrite,
                transcript=plain_text(text),
                if_source=job.source_key if job is not None else None,
            )

    def _wait(self, filename: str, story: Story) -> AudioRecord:
        """Keep a long story as a job under ``incoming/`` and catalogue it ``converting``
        (the record first: the job's event may be handled before the job is stored)."""
        assert self.conversions is not None
        key = story_key(self.conversions.new_id(), filename)
        job = json.dumps(dataclasses.asdict(story)).encode()
        previous = self.catalog.get_audio(filename)
        stand_in = ObjectInfo(key, len(job), f'"{key.split("/")[1]}"', self.conversions.now())
        # Its progress is known from the start: the parts spoken so far.
        record = self.conversions.wait_for(
            stand_in, previous, source_format=None, progress=0.0, transcript=plain_text(story.text)
        )
        try:
            self.storage.put(key, io.BytesIO(job), overwrite=False, content_type="application/json")
        except Exception:
            self.conversions.withdraw(record, previous)
            raise
        return record

    def speak_job(self, info: ObjectInfo) -> AudioRecord | None:
        """Speak the story waiting at ``info`` (ConvertAudioFunction's event for it), if its
        record still waits for it; the job is removed either way. A voice that became
        unknown meanwhile, or a speech service that refuses, ends ``invalid`` with why."""
        assert self.conversions is not None
        key = info.name
        filename = incoming_target(key)
        record = self.conversions.waiting(filename, key)
        if record is None:
            self.conversions.remove(key)
            return None
        started = self.clock()
        try:
            story = Story(**json.loads(b"".join(self.storage.open_range(key))))
            voice = self.engine.resolve_voice(story.voice, story.engine)
            spoken = self._speak(filename, story, voice, job=record)
        except Superseded:
            spoken = None
        except AudioNotFoundError:
            return None  # the job is gone: whoever removed it took over
        except UnprocessableError as exc:
            self.conversions.give_up(record, exc.message)
            telemetry.count(telemetry.STORIES_FAILED)
            return None
        if spoken is not None:
            self._done(started)
        self.conversions.remove(key)
        return spoken
