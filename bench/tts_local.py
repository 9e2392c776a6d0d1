"""Text to speech on the local engine (eSpeak NG through ctypes): a story of about 2,000
words (``--quick``: 500) through ``POST /api/audio/generate-tts`` of ``python -m
local_server`` (local backend, no S3 bucket, so the local engine).

Figures (information; issue 5 asks for both to be printed):
- seconds of audio produced per second of wall time, end to end (the request's time: text
  split, synthesis, resampling to 44.1 kHz stereo, MP3 encoding, storage, catalogue);
- the server's peak RSS during the request (sampled), and its growth over its RSS after a
  short warm-up request (eSpeak loaded);
- where the time goes, measured in the same run in this process: eSpeak's synthesis alone on
  the same parts (the baseline the end-to-end rate is a ratio of), then the house-format
  encoder alone (PyAV resampling + lameenc) on the PCM it produced.
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any

from bench.common import (
    MB,
    Figure,
    Report,
    RssSampler,
    api_call,
    app_settings,
    log,
    run_alone,
    start_local_server,
    workspace,
)

NAME = "tts_local"
WORDS = 2_000
QUICK_WORDS = 500
SENTENCES = (
    "Once upon a time, in a little house at the edge of a great green wood, there lived a "
    "girl called {name} who loved nothing more than stories.",
    "Every evening, when the sun slid down behind the hills, she climbed into bed and "
    "waited for the owl to call from the old oak tree.",
    "Tonight was different: the owl did not call, and the wind whispered something she "
    "had never heard before.",
    '"Who is there?" asked {name}, pulling the blanket up to her chin.',
    "A small voice answered from the windowsill, where a mouse in a blue waistcoat stood "
    "holding a lantern no bigger than a thimble.",
    '"I have come a very long way," said the mouse, "and I need your help to find the '
    'moon, which has gone missing from the sky."',
    "So they set off together, over the garden wall, across the meadow silver with dew, "
    "and into the wood where the fireflies kept watch.",
    "They met a badger who was counting the stars and kept losing his place at number {number}.",
    "They met a fox who had borrowed the moon's reflection from the pond and was too "
    "embarrassed to give it back.",
    "At last, on the top of the highest hill, they found the moon asleep in a nest of "
    "clouds, snoring very gently.",
    "{name} sang the softest song she knew, and the moon yawned, stretched, and rose "
    "slowly back into the sky.",
    "The mouse bowed, the badger finally finished counting, and the fox returned the "
    "reflection with a shy little smile.",
    "When {name} got home, her bed was warm, the owl was calling, and the whole wood was "
    "bathed in soft white light.",
    "And she fell asleep, chapter {chapter} of her adventures done, dreaming of lanterns "
    "and waistcoats and a moon that needed a lullaby.",
)
NAMES = ("Mia", "Leo", "Ava", "Sam", "Isla", "Noah")
NUMBERS = ("seventeen", "forty-two", "one hundred and six", "nine", "twenty-three")


def story(words: int) -> str:
    """A bedtime story of about ``words`` words, the same every run."""
    out: list[str] = []
    count = 0
    chapter = 0
    while count < words:
        chapter += 1
        name = NAMES[chapter % len(NAMES)]
        number = NUMBERS[chapter % len(NUMBERS)]
        for template in SENTENCES:
            sentence = template.format(name=name, number=number, chapter=chapter)
            out.append(sentence)
            count += len(sentence.split())
            if count >= words:
                break
        out.append("\n\n")
    return " ".join(out).strip()


def in_process(text: str, tmp: Any) -> dict[str, float]:
    """eSpeak alone on the parts the app would send it, then the house encoder alone."""
    with app_settings(AUDIO_FILES_DIR=str(tmp / "inproc-audio"), DATA_DIR=str(tmp / "inproc")):
        from smart_stream.audio.house_format import HouseEncoder
        from smart_stream.audio.text_split import split_text
        from smart_stream.bootstrap import services

        engine = services().speech
        voice = engine.resolve_voice(None, None)
        engine.synthesize("Good night.", voice, ssml=False)  # warm-up
        started = time.perf_counter()
        pcms = [
            engine.synthesize(p, voice, ssml=False)
            for p in split_text(text, engine.max_request_chars)
        ]
        synth = time.perf_counter() - started
        audio = sum(len(p.samples) / 2 / p.sample_rate for p in pcms)
        started = time.perf_counter()
        encoder = HouseEncoder(io.BytesIO())
        for pcm in pcms:
            encoder.add(pcm.samples, pcm.sample_rate)
        encoder.finish()
        encode = time.perf_counter() - started
    return {"audio_s": audio, "synth_s": synth, "encode_s": encode, "parts": len(pcms)}


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    words = QUICK_WORDS if quick else WORDS
    text = story(words)
    with workspace(NAME) as (tmp, procs):
        settings = {"AUDIO_FILES_DIR": str(tmp / "audio"), "DATA_DIR": str(tmp / "state")}
        proc, base = start_local_server(procs, tmp, "server-tts", **settings)
        warm = {"text": "Good night, little one.", "filename": "warm-up.mp3"}
        status, answer = api_call(base, "POST", "/api/audio/generate-tts", json_body=warm)
        if status != 201:
            raise RuntimeError(f"warm-up TTS: {status} {answer}")
        sampler = RssSampler(proc.pid, interval=0.02)
        baseline = sampler.rss()
        body = {"text": text, "filename": "bench-story.mp3"}
        with sampler:
            started = time.perf_counter()
            status, answer = api_call(
                base, "POST", "/api/audio/generate-tts", json_body=body, timeout=600
            )
            wall = time.perf_counter() - started
        if status != 201:
            raise RuntimeError(f"TTS: {status} {answer}")
        duration = float(answer["duration"])
        log(f"server: {len(text.split()):,} words -> {duration:.1f}s of audio in {wall:.1f}s")
        procs.stop(proc)
        parts = in_process(text, tmp)
        log(f"in process: synthesis {parts['synth_s']:.1f}s, encoding {parts['encode_s']:.1f}s")
    report.raw.update(
        words=len(text.split()),
        chars=len(text),
        audio_s=duration,
        wall_s=wall,
        size=answer.get("size"),
        rss_baseline_mb=baseline / MB,
        rss_peak_mb=sampler.peak / MB,
        rss_samples=sampler.samples,
        in_process=parts,
    )
    rate = duration / wall
    synth_rate = parts["audio_s"] / parts["synth_s"]
    encode_rate = parts["audio_s"] / parts["encode_s"]
    n = f"{len(text.split()):,} words"
    report.add(
        Figure(
            f"tts {n}: audio s per wall s (server)",
            f"{rate:.1f}x = {duration:.0f} s in {wall:.1f} s",
            note=f"{len(text):,} characters, {parts['parts']:.0f} parts for eSpeak",
        )
    )
    report.add(
        Figure(
            f"tts {n}: server/eSpeak alone",
            f"{rate:.1f}/{synth_rate:.1f} = {rate / synth_rate:.2f}x",
            note=f"house encoder alone (resample + lameenc): {encode_rate:.1f}x real time",
        )
    )
    report.add(
        Figure(
            f"tts {n}: server peak RSS",
            f"{sampler.peak / MB:.0f} MB (+{(sampler.peak - baseline) / MB:.1f} MB)",
            note="growth over the server's RSS after a warm-up request (eSpeak loaded)",
        )
    )
    return report


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
