"""What an upload or a new object is (``smart_stream.audio.analysis`` and, for anything that
is not a house MP3, ``smart_stream.audio.formats.probe``), on real files made in this
process and then mutated: bits flipped, bytes set, inserted, deleted, chunks copied, the
file cut short, ID3v2 tags spliced in whose sizes lie, Xing/Info and VBRI frames whose
counts lie, trailing tags appended, the counts of a real Xing header overwritten.

The check does what ``Library.upload`` does with an upload's bytes (``analyse_upload``,
then ``probe`` unless it is a house MP3), and analyses the same bytes again as the
metadata pipeline reads an object (``analyse_mp3`` over ranged reads in blocks of another
size), which must come to the same answer. Allowed: ``NotMp3Error`` from the analysis,
``UnsupportedAudioError`` and ``ConversionError`` from the probe. An analysis must place
the audio inside the file, with a finite, non-negative duration and a positive bitrate.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from bench.fuzz import pieces
from bench.fuzz.engine import Finding, Target
from smart_stream.audio.analysis import AudioAnalysis, analyse_mp3, analyse_upload
from smart_stream.audio.formats import probe
from smart_stream.audio.frames import skip_id3v2
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.domain.errors import ConversionError, NotMp3Error, UnsupportedAudioError

#: One mutation: its name and arguments (positions are taken modulo the file's length).
Op = tuple[Any, ...]


@dataclass(frozen=True)
class Mutant:
    """A seed file, the mutations made to it, and the block size the second analysis reads
    in. Shown as its recipe; ``data`` is the result."""

    seed: str
    ops: tuple[Op, ...]
    block: int
    data: bytes = field(repr=False)


def _at(data: bytes, pos: int) -> int:
    return pos % (len(data) + 1)


def apply(data: bytes, op: Op) -> bytes:
    name, *args = op
    if name == "flip":
        pos, bit = args
        if not data:
            return data
        i = pos % len(data)
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
    if name == "set":
        pos, value = args
        i = _at(data, pos)
        return data[:i] + value + data[i + len(value) :]
    if name == "insert":
        pos, value = args
        i = _at(data, pos)
        return data[:i] + value + data[i:]
    if name == "delete":
        pos, length = args
        i = _at(data, pos)
        return data[:i] + data[i + length :]
    if name == "truncate":
        return data[: _at(data, args[0])]
    if name == "copy":
        src, dst, length = args
        i, j = _at(data, src), _at(data, dst)
        return data[:j] + data[i : i + length] + data[j:]
    if name == "after-tags":  # where the first frame usually is
        (value,) = args
        i = skip_id3v2(data)
        return data[:i] + value + data[i:]
    if name == "append":
        return data + args[0]
    if name == "xing-counts":  # a real header frame's counts, overwritten
        frames, size = args
        found = re.search(rb"Xing|Info", data)
        if found is None:
            return data
        at = found.start() + 8
        return data[:at] + frames.to_bytes(4, "big") + size.to_bytes(4, "big") + data[at + 8 :]
    raise ValueError(f"no mutation {name!r}")


def _ops() -> st.SearchStrategy[Op]:
    positions = st.one_of(st.integers(0, 64), st.integers(0, 2**16))
    counts = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 100), st.integers(0, 20_000))
    return st.one_of(
        st.tuples(st.just("flip"), positions, st.integers(0, 7)),
        st.tuples(st.just("set"), positions, st.binary(min_size=1, max_size=4)),
        st.tuples(st.just("insert"), positions, st.binary(min_size=1, max_size=32)),
        st.tuples(st.just("delete"), positions, st.integers(1, 2000)),
        st.tuples(st.just("truncate"), positions),
        st.tuples(st.just("copy"), positions, positions, st.integers(1, 3000)),
        st.tuples(st.just("insert"), st.just(0), pieces.id3v2_tags()),
        st.tuples(st.just("after-tags"), pieces.header_frames()),
        st.tuples(st.just("after-tags"), pieces.frame_runs()),
        st.tuples(st.just("append"), pieces.trailing_tags()),
        st.tuples(st.just("xing-counts"), counts, counts),
    )


def strategy() -> st.SearchStrategy[Mutant]:
    def build(seed: str, ops: list[Op], block: int) -> Mutant:
        data = pieces.seeds()[seed]
        for op in ops:
            data = apply(data, op)
        return Mutant(seed, tuple(ops), block, data)

    return st.builds(
        build,
        st.sampled_from(sorted(pieces.seeds())),
        st.lists(_ops(), min_size=1, max_size=4),
        st.sampled_from([512, 4096, 64 * 1024]),
    )


def _analyse_ranged(data: bytes, block: int) -> AudioAnalysis:
    """The metadata pipeline's way: ranged reads through a small block cache."""

    def fetch(start: int, end: int) -> bytes:
        return data[start : end + 1]

    def scan(start: int, end: int) -> Iterable[bytes]:
        for at in range(start, end + 1, 64 * 1024):
            yield data[at : min(at + 64 * 1024, end + 1)]

    return analyse_mp3(RangedFile(fetch, len(data), block_size=block, max_blocks=4), scan)


def _sane(analysis: AudioAnalysis, size: int) -> None:
    info = analysis.info
    if not 0 <= analysis.audio_start < analysis.audio_end <= size:
        raise Finding(f"audio at {analysis.audio_start}-{analysis.audio_end} of {size} bytes")
    if info.duration is None or not math.isfinite(info.duration) or info.duration < 0:
        raise Finding(f"duration {info.duration}")
    if not info.bitrate or info.bitrate <= 0:
        raise Finding(f"bitrate {info.bitrate}")
    for text in (info.title, info.artist, info.album):
        if text is not None:
            text.encode("utf-8")  # a catalogue record must be storable


def check(case: Mutant) -> None:
    data = case.data
    try:
        upload: AudioAnalysis | None = analyse_upload(io.BytesIO(data))
    except NotMp3Error:
        upload = None
    if upload is not None:
        _sane(upload, len(data))
    try:
        ranged: AudioAnalysis | None = _analyse_ranged(data, case.block)
    except NotMp3Error:
        ranged = None
    if ranged != upload:
        raise Finding(f"blocks of {case.block} B: {ranged}; the upload's analysis: {upload}")
    if upload is None or not upload.frame.is_house:
        with contextlib.suppress(UnsupportedAudioError, ConversionError):
            probe(io.BytesIO(data))


def size(case: Mutant) -> int:
    return len(case.data)


def _shape(data: bytes) -> Mutant:
    return Mutant("shape", (), 4096, data)


def _lying_info(n: int) -> bytes:
    """A CBR stream behind an Info frame that says it holds one frame: scanned."""
    info = pieces.xing_frame(pieces.HOUSE_HEADER, frames=1, size=417)
    return info + pieces.repeat_to(pieces.clip(), n)


SHAPES: dict[str, Any] = {
    "a CBR file": lambda n: _shape(pieces.repeat_to(pieces.clip(), n)),
    "a VBR file, no header (scanned)": lambda n: _shape(pieces.repeat_to(pieces.vbr_clip(), n)),
    "a lying Info frame (scanned)": lambda n: _shape(_lying_info(n)),
    "sync words, no stream": lambda n: _shape(pieces.repeat_to(pieces.HOUSE_HEADER, n)),
    "stacked ID3v2 tags in front": lambda n: _shape(
        pieces.repeat_to(pieces.id3v2_header(0), n) + pieces.clip()[:4000]
    ),
    "stacked ID3v1 tags behind": lambda n: _shape(
        pieces.clip()[:4000] + pieces.repeat_to(pieces.id3v1(), n)
    ),
    "stacked APE footers behind": lambda n: _shape(
        pieces.clip()[:4000] + pieces.repeat_to(pieces.ape_footer(32), n)
    ),
}

TARGET = Target(
    name="analysis",
    about="mutated real files through analyse_upload, the pipeline's ranged analysis, probe",
    strategy=strategy,
    check=check,
    size=size,
    shapes=SHAPES,
    prepare=pieces.seeds,
)
