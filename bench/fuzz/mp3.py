"""The MP3 frame parser and the ID3 parsers (``smart_stream.audio.frames``, ``tags``, ``id3``)
on bytes built from MP3 structures (frames, runs of them, ID3v2 tags whose sizes lie,
Xing/VBRI frames, trailing tags, slices of real files) and on random bytes.

None of them documents raising anything for bad bytes: every exception is a finding, and
so is a broken invariant (a frame shorter than its header, a re-cut stream that lost or
gained bytes, a frame run that is not where it was reported, a tag text that is not text).
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from bench.fuzz import pieces
from bench.fuzz.engine import Finding, Target
from smart_stream.audio.analysis import scan_frames
from smart_stream.audio.frames import (
    FrameHeader,
    find_frame_run,
    foreign_gapless_samples,
    id3v2_size,
    info_frame_kind,
    parse_frame_header,
    skip_id3v2,
    trailing_tag_size,
    whole_frames,
)
from smart_stream.audio.id3 import title_tag
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.audio.tags import read_tags

#: A case: the bytes, an offset to look for a frame at, where to cut the bytes into chunks
#: (as storage hands them over), and a title for the queue stream's tag.
Case = tuple[bytes, int, list[int], str]


def _slices() -> st.SearchStrategy[bytes]:
    """A slice of a real MP3."""
    return st.builds(
        lambda name, start, length: pieces.seeds()[name][start : start + length],
        st.sampled_from(["lame-cbr-tagged", "lame-vbr", "ffmpeg-cbr", "lame-8k-mono"]),
        st.integers(0, 4000),
        st.integers(0, 3000),
    )


def data() -> st.SearchStrategy[bytes]:
    piece = st.one_of(
        pieces.frame_headers(),
        pieces.frame_runs(),
        pieces.header_frames(),
        pieces.id3v2_tags(),
        pieces.id3v2_frames(),
        pieces.trailing_tags(),
        st.binary(max_size=64),
        st.sampled_from([b"\xff", b"\xff\xff", b"ID3", b"TAG", b"APETAGEX", b"LYRICS200", b"3DI"]),
        _slices(),
    )
    return st.one_of(st.lists(piece, max_size=6).map(b"".join), st.binary(max_size=2000))


def strategy() -> st.SearchStrategy[Case]:
    offsets = st.one_of(st.integers(0, 64), st.integers(-4, 5000))
    return st.tuples(
        data(),
        offsets,
        st.lists(st.integers(0, 5000), max_size=4),
        st.text(max_size=20),
    )


def _sane(header: FrameHeader) -> None:
    if header.length <= 4 or header.samples not in (384, 576, 1152):
        raise Finding(f"implausible frame header {header}")


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    marks = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


def _text(found: dict[str, str]) -> None:
    for key, value in found.items():
        if not isinstance(value, str):
            raise Finding(f"tag {key} is a {type(value).__name__}")
        value.encode("utf-8")  # a catalogue record must be storable


def _frames(data: bytes, offset: int, cuts: list[int]) -> None:
    header = parse_frame_header(data, offset)
    if header is not None:
        _sane(header)
        info_frame_kind(data, offset, header)
        trim = foreign_gapless_samples(data, offset, header)
        if not 0 <= trim <= 2 * 4095:
            raise Finding(f"gapless trim {trim} outside 12-bit fields")
    start = max(0, offset)
    found = find_frame_run(data, start)
    if found is not None:
        pos, first = found
        if pos < start or parse_frame_header(data, pos) != first:
            raise Finding(f"frame run reported at {pos} is not there")
        _sane(first)
        samples, count, end, _ = scan_frames(_chunks(data[pos:], cuts), first, pos)
        if not (pos <= end <= len(data) and count >= 1 and samples >= count * 384):
            raise Finding(f"scan of a run at {pos}: {count} frames ending at {end}")
    recut = b"".join(whole_frames(iter(_chunks(data, cuts))))
    if recut != data:
        raise Finding(f"whole_frames changed the bytes: {len(data)} in, {len(recut)} out")


def _tags(data: bytes, offset: int) -> None:
    start = max(0, offset)
    if skip_id3v2(data, start) < start:
        raise Finding("skip_id3v2 went backwards")
    if id3v2_size(data, start) < 0 or trailing_tag_size(data) < 0:
        raise Finding("a negative tag size")
    # As the analysis calls read_tags: a trailing tag that would reach into the leading ones
    # is none.
    leading = skip_id3v2(data)
    tail = trailing_tag_size(data)
    trailing = len(data) - tail if tail <= len(data) - leading else len(data)
    f = RangedFile(lambda s, e: data[s : e + 1], len(data), block_size=1024, max_blocks=4)
    _text(read_tags(f, leading, trailing))


def _title(title: str) -> None:
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        return  # the API refuses such a title (422), so title_tag never gets one
    tag = title_tag(title)
    if id3v2_size(tag) != len(tag):
        raise Finding(f"title tag of {len(tag)} bytes says it is {id3v2_size(tag)}")


def check(case: Case) -> None:
    data, offset, cuts, title = case
    _frames(data, offset, cuts)
    _tags(data, offset)
    _title(title)


def size(case: Case) -> int:
    return len(case[0])


def _case(data: bytes) -> Case:
    return data, 0, [len(data) // 3, 2 * len(data) // 3], "Title"


def _big_tag(n: int) -> bytes:
    """An ID3v2 tag of tiny frames none of which is wanted (from 256 KiB on, too big to be
    read whole: walked frame header by frame header)."""
    frames = pieces.repeat_to(pieces.id3v2_frame(b"TXXX", b""), n)
    return pieces.id3v2_header(len(frames)) + frames + pieces.clip()[:2000]


SHAPES: dict[str, Any] = {
    "all 0xFF": lambda n: _case(b"\xff" * n),
    "headers whose run fails": lambda n: _case(pieces.repeat_to(pieces.HOUSE_HEADER, n)),
    "a real CBR stream": lambda n: _case(pieces.repeat_to(pieces.clip(), n)),
    "stacked empty ID3v2 tags": lambda n: _case(pieces.repeat_to(pieces.id3v2_header(0), n)),
    "a big tag of tiny frames": lambda n: _case(_big_tag(n)),
}

TARGET = Target(
    name="mp3",
    about="MPEG frames, ID3v2/v1 and trailing tags (audio.frames, tags, id3)",
    strategy=strategy,
    check=check,
    size=size,
    shapes=SHAPES,
    prepare=pieces.seeds,
)
