"""Any audio in: ``smart_stream.audio.convert.convert`` on long inputs, 48 kHz stereo AAC in
M4A (a phone's recording) and 44.1 kHz FLAC (a ripped CD), 1 and 10 minutes long (``--full``:
60 minutes too), from a file on disk to a file on disk.

Figures, for each input:
- x real time of ``convert`` (seconds of audio per second of wall time, best of N);
- against PyAV's bare decode-resample-encode loop on the same input in the same run (demux,
  decode, ``AudioResampler`` to 44.1 kHz stereo, PyAV's libmp3lame at 128 kbps CBR, the mp3
  muxer): their ratio. Beside it the same bare loop with lameenc for the encoder (what
  ``convert`` uses), which shows ``convert``'s own overhead;
- peak RSS of a process that runs one conversion (each way in a fresh process, so peaks do
  not carry over; sampled every 20 ms during the conversion), and its growth from the
  1-minute input to the longest.

Targets (issue 11): at least 0.9x the bare loop; at least 60x real time; RSS growth from 1 to
60 minutes under 64 MB. The inputs are a made-up signal (tones, a sweep and noise, so that the
encoders work as on real audio), encoded by PyAV's own encoders into the workspace.
"""

from __future__ import annotations

import array
import itertools
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import MB, PYTHON, ROOT, Figure, Report, log, run_alone, workspace

NAME = "convert"
INPUTS = {
    "m4a 48k AAC": ("ipod", "aac", 48000, "m4a"),
    "flac 44.1k": ("flac", "flac", 44100, "flac"),
}
MAX_SECONDS = 4 * 3600.0
MIN_RATIO = 0.9
MIN_REALTIME = 60.0
MAX_GROWTH = 64 * MB
BLOCK_SECONDS = 10
WAYS = ("convert", "bare-pyav", "bare-lameenc")


def signal_block(rate: int) -> bytes:
    """``BLOCK_SECONDS`` of stereo s16: two tones, a sweep and some noise (not silence, not
    a bare sine: the encoders work as on music or speech)."""
    rng = random.Random(11)
    count = BLOCK_SECONDS * rate
    samples = array.array("h", bytes(4 * count))
    for i in range(count):
        t = i / rate
        sweep = math.sin(2 * math.pi * (200 + 40 * t) * t)
        left = 0.3 * math.sin(2 * math.pi * 220 * t) + 0.15 * sweep + rng.uniform(-0.05, 0.05)
        right = 0.3 * math.sin(2 * math.pi * 330 * t) + 0.15 * sweep + rng.uniform(-0.05, 0.05)
        samples[2 * i] = int(20000 * left)
        samples[2 * i + 1] = int(20000 * right)
    return samples.tobytes()


def make_input(path: Path, container_format: str, codec: str, rate: int, minutes: int) -> None:
    import av

    block = signal_block(rate)
    with av.open(str(path), "w", format=container_format) as container:
        container.metadata.update({"title": "A long story", "artist": "Bench"})
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        to_codec = av.AudioResampler(
            format=stream.codec_context.format.name, layout="stereo", rate=rate
        )
        for i in range(minutes * 60 // BLOCK_SECONDS):
            frame = av.AudioFrame(format="s16", layout="stereo", samples=len(block) // 4)
            frame.planes[0].update(block)
            frame.sample_rate = rate
            frame.pts = i * len(block) // 4
            for part in to_codec.resample(frame):
                for packet in stream.encode(part):
                    container.mux(packet)
        for part in [*to_codec.resample(None), None]:
            for packet in stream.encode(part):
                container.mux(packet)


# --------------------------------------------------------------------------- in the child


def bare_pyav(source: Path, target: Path) -> None:
    """PyAV's bare loop: decode, resample, libmp3lame, mp3 muxer."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=44100, layout="stereo")
        stream.codec_context.bit_rate = 128_000
        resampler = av.AudioResampler(format="s16p", layout="stereo", rate=44100)
        for frame in itertools.chain(src.decode(audio=0), [None]):
            for part in resampler.resample(frame):
                for packet in stream.encode(part):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def bare_lameenc(source: Path, target: Path) -> None:
    """The same bare loop with lameenc, the encoder ``convert`` uses."""
    import av
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(128)
    encoder.set_in_sample_rate(44100)
    encoder.set_out_sample_rate(44100)
    encoder.set_channels(2)
    encoder.set_quality(5)
    with av.open(str(source)) as src, open(target, "wb") as out:
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=44100)
        for frame in itertools.chain(src.decode(audio=0), [None]):
            for part in resampler.resample(frame):
                out.write(encoder.encode(bytes(part.planes[0])[: part.samples * 4]))
        out.write(encoder.flush())


def with_convert(source: Path, target: Path) -> None:
    from smart_stream.audio.convert import convert

    with open(source, "rb") as src, open(target, "wb") as out:
        convert(src, out, max_seconds=MAX_SECONDS)


def measure(way: str, source: str, target: str) -> dict[str, float]:
    """In a fresh process: one conversion's wall time, and the process's RSS before it and
    at its highest during it (sampled every 20 ms: the peak of the whole process would be
    the imports', which hides what the conversion itself holds)."""
    import av  # noqa: F401 - loaded before the baseline, as every way loads it
    import lameenc  # noqa: F401

    import smart_stream.audio.convert  # noqa: F401
    from bench.common import RssSampler

    sampler = RssSampler(os.getpid(), interval=0.02)
    before = sampler.rss()
    run = {"convert": with_convert, "bare-pyav": bare_pyav, "bare-lameenc": bare_lameenc}[way]
    with sampler:
        started = time.perf_counter()
        run(Path(source), Path(target))
        wall = time.perf_counter() - started
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"wall_s": wall, "peak_rss": sampler.peak, "rss_before": before, "maxrss": maxrss}


# --------------------------------------------------------------------------- in the bench


def in_child(way: str, source: Path, target: Path) -> dict[str, float]:
    argv = [PYTHON, "-m", "bench.convert", "--measure", way, str(source), str(target)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{way} on {source.name}: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    lengths = [1, 10, 60] if full else [1, 10]
    with workspace(NAME) as (tmp, _):
        for label, (container_format, codec, rate, ext) in INPUTS.items():
            peaks: dict[int, float] = {}
            for minutes in lengths:
                source = tmp / f"input-{minutes}min.{ext}"
                started = time.perf_counter()
                make_input(source, container_format, codec, rate, minutes)
                log(f"{label} {minutes} min: made in {time.perf_counter() - started:.0f}s")
                best: dict[str, dict[str, float]] = {}
                for _ in range(1 if quick or minutes > 10 else 2):  # best of 2
                    for way in WAYS:
                        sample = in_child(way, source, tmp / f"out-{way}.mp3")
                        if way not in best or sample["wall_s"] < best[way]["wall_s"]:
                            best[way] = sample
                seconds = minutes * 60.0
                key = f"{label} {minutes} min"
                report.raw[key] = {"audio_s": seconds, **best}
                ways = {way: seconds / best[way]["wall_s"] for way in WAYS}
                log(f"{key}: " + ", ".join(f"{w} {x:.0f}x" for w, x in ways.items()))
                _figures(report, key, ways, best["convert"])
                peaks[minutes] = best["convert"]["peak_rss"]
                source.unlink()
            growth = peaks[lengths[-1]] - peaks[lengths[0]]
            report.add(
                Figure.check(
                    f"{label}: RSS growth {lengths[0]} -> {lengths[-1]} min",
                    growth / MB,
                    "{:+.1f} MB",
                    "< 64 MB (1 -> 60 min)",
                    growth < MAX_GROWTH,
                )
            )
    return report


def _figures(report: Report, key: str, ways: dict[str, float], mine: dict[str, float]) -> None:
    rate = ways["convert"]
    report.add(Figure.check(f"{key}: convert x real time", rate, "{:.0f}x", ">= 60x", rate >= 60))
    for way in ("bare-pyav", "bare-lameenc"):
        ratio = rate / ways[way]
        report.add(
            Figure.check(
                f"{key}: convert / {way} loop",
                ratio,
                "{:.2f}x",
                ">= 0.9x",
                ratio >= MIN_RATIO,
                note=f"{way} {ways[way]:.0f}x real time" if way == "bare-pyav" else "",
            )
        )
    peak, grown = mine["peak_rss"] / MB, (mine["peak_rss"] - mine["rss_before"]) / MB
    report.add(Figure(f"{key}: convert peak RSS", f"{peak:.0f} MB ({grown:+.1f} MB in the run)"))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        way, source, target = argv[1:4]
        print(json.dumps(measure(way, source, target)))
        return 0
    return run_alone(NAME, run, __doc__ or "", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
