"""What an MP3 is, read from as few bytes as possible: stream parameters, exact duration,
ID3 tags, and the audio byte span (first real frame to the end of the last whole frame, past
every ID3v2, Xing/Info/VBRI, APEv2, Lyrics3 and ID3v1 tag) that queues join on.

Reads go through a ``RangedFile``: a CBR file, or one with a Xing/VBRI header, costs the head
block, the tail block and one block in the middle, whatever its length. Only a VBR file
without a header (or with one that lies) is scanned, once, frame by frame, in constant memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from smart_stream.audio.frames import (
    ID3V2_HEADER_SIZE,
    LONGEST_FRAME,
    TAIL_WINDOW,
    TRAILER_PROBE,
    FrameHeader,
    find_frame_run,
    foreign_gapless_samples,
    id3v2_size,
    info_frame_kind,
    parse_frame_header,
    trailing_tag_size,
)
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.audio.tags import read_tags
from smart_stream.domain.errors import NotMp3Error
from smart_stream.domain.records import AudioInfo

#: How far past the leading tags the first frame may be (junk some encoders leave).
HEAD_WINDOW = 64 * 1024
#: Consecutive frames that make a sure start (a stray 0xFFE in junk is not one).
_RUN = 3
#: Bytes looked at around the middle to tell a VBR stream without a header from CBR.
MIDDLE_WINDOW = 8 * 1024

#: scan(start, end_inclusive) -> the bytes of that span, in chunks (one sequential read).
Scan = Callable[[int, int], Iterable[bytes]]


@dataclass(frozen=True)
class AudioAnalysis:
    info: AudioInfo
    audio_start: int
    audio_end: int  # exclusive
    frame: FrameHeader  # the first audio frame: what the stream is
    scanned: bool  # True when every frame was walked


def _leading_tags_end(f: RangedFile) -> int:
    # One request for the head: the first tag header and, behind a tag of ordinary size,
    # the whole sync window too (read next, from the cache).
    f.pread(0, HEAD_WINDOW + _RUN * LONGEST_FRAME)
    offset = 0
    while offset < f.size and (size := id3v2_size(f.pread(offset, offset + ID3V2_HEADER_SIZE))):
        offset += size
    return offset


def _trailing_tags_start(f: RangedFile, floor: int) -> int:
    end = f.size
    window = end  # where the last read of the tail began
    while end > floor:
        if end - TRAILER_PROBE < window:
            # One request for the tail: these tags, those stacked before them, the last frames.
            window = max(floor, end - TAIL_WINDOW)
            f.pread(window, end)
        # Only the tail's last bytes, from the cache: a copy of the whole window for each
        # tag made a stack of 32-byte APE footers cost 2,000 times its size in copying.
        size = trailing_tag_size(f.pread(max(floor, end - TRAILER_PROBE), end))
        if size == 0 or end - size < floor:
            break
        end -= size
    return end


def _walk(window: bytes, pos: int, first: FrameHeader) -> tuple[int, list[int]]:
    """Walk whole frames of ``first``'s stream from ``pos``; (end of the last, bitrates)."""
    bitrates: list[int] = []
    while True:
        header = parse_frame_header(window, pos)
        if header is None or not header.same_stream(first) or pos + header.length > len(window):
            return pos, bitrates
        bitrates.append(header.bitrate)
        pos += header.length


def _mutagen_xing(f: RangedFile, first_pos: int) -> tuple[float, int, bool] | None:
    """(duration, bitrate, is_vbr) from the Xing/Info/VBRI header, through mutagen."""
    from mutagen import MutagenError
    from mutagen.mp3 import BitrateMode, MPEGInfo

    f.seek(first_pos)
    try:
        info = MPEGInfo(f, offset=first_pos)
    except (MutagenError, ValueError, EOFError):
        return None
    if info.bitrate_mode is BitrateMode.UNKNOWN or not info.length:
        return None
    is_vbr = info.bitrate_mode in (BitrateMode.VBR, BitrateMode.ABR)
    return float(info.length), int(info.bitrate), is_vbr


def scan_frames(
    chunks: Iterable[bytes], first: FrameHeader, start: int
) -> tuple[int, int, int, set[int]]:
    """Walk every frame of a stream given as chunks from ``start``: (samples, frames, end of
    the last whole frame, bitrates seen). Junk between frames is skipped by resyncing."""
    carry = b""
    base = start  # stream offset of carry[0]
    samples = frames = 0
    end = start
    bitrates: set[int] = set()
    for chunk in chunks:
        buf = carry + chunk
        pos = 0
        while len(buf) - pos >= 4:
            header = parse_frame_header(buf, pos)
            if header is None or not header.same_stream(first):
                nxt = buf.find(b"\xff", pos + 1)
                pos = nxt if nxt >= 0 else len(buf)
                continue
            if pos + header.length > len(buf):
                break  # the frame continues in the next chunk
            samples += header.samples
            frames += 1
            bitrates.add(header.bitrate)
            pos += header.length
            end = base + pos
        carry = buf[pos:]
        base += pos
    return samples, frames, end, bitrates


def analyse_mp3(f: RangedFile, scan: Scan) -> AudioAnalysis:
    """Analyse the MP3 behind ``f``. Raises ``NotMp3Error`` saying why it is not one."""
    if f.size == 0:
        raise NotMp3Error("The file is empty.")
    leading_end = _leading_tags_end(f)
    if leading_end >= f.size:
        raise NotMp3Error("The file holds ID3 tags but no audio.")
    head = f.pread(leading_end, leading_end + HEAD_WINDOW + _RUN * LONGEST_FRAME)
    found = find_frame_run(head, run=_RUN)
    if found is None or found[0] >= HEAD_WINDOW:
        raise NotMp3Error("This is not an MP3: no MPEG audio frames were found.")
    rel, first = found
    if first.layer != 3:
        raise NotMp3Error(f"This is MPEG layer {first.layer} audio, not MP3 (layer 3).")
    first_pos = leading_end + rel
    kind = info_frame_kind(head, rel, first)
    audio_start = first_pos + (first.length if kind else 0)
    trailing_start = _trailing_tags_start(f, audio_start)
    tags = read_tags(f, leading_end, trailing_start)

    # The head: frames from the first audio frame on.
    head_rel = audio_start - leading_end
    _, head_rates = _walk(head[: trailing_start - leading_end], head_rel, first)
    # The tail: from a sure frame run near the end, walk to the last whole frame.
    tail_from = max(audio_start, trailing_start - 16 * 1024)
    tail = f.pread(tail_from, trailing_start)
    tail_found = find_frame_run(tail)
    if not head_rates or tail_found is None:
        return _scanned(scan, first, audio_start, trailing_start, tags)
    tail_end, tail_rates = _walk(tail, tail_found[0], first)
    audio_end = tail_from + tail_end
    span = audio_end - audio_start

    if kind is not None:
        xing = _mutagen_xing(f, first_pos)
        # What a decoder trims (encoder delay, end padding) when the header says so.
        trim = foreign_gapless_samples(head, rel, first) / first.sample_rate
        # A header that disagrees with the bytes present (a cut or patched file), or that
        # would trim away every sample it counts, is not trusted: the frames are counted
        # instead.
        if xing is not None and _plausible(*xing, span, first) and trim < xing[0]:
            duration, bitrate, is_vbr = xing
            return _result(
                first, duration - trim, bitrate, is_vbr, audio_start, audio_end, tags, False
            )
        return _scanned(scan, first, audio_start, trailing_start, tags)

    rates = set(head_rates) | set(tail_rates)
    if len(rates) == 1:
        middle = audio_start + span // 2
        window = f.pread(middle, min(middle + MIDDLE_WINDOW, audio_end))
        mid_found = find_frame_run(window)
        if mid_found is not None:
            rates |= set(_walk(window, mid_found[0], first)[1])
    if len(rates) > 1:
        return _scanned(scan, first, audio_start, trailing_start, tags)
    bitrate = first.bitrate
    return _result(first, span * 8 / bitrate, bitrate, False, audio_start, audio_end, tags, False)


#: Layer III bitrates (bits per second) each MPEG version allows: no stream of whole frames
#: averages outside them.
_LAYER3_BITRATES = {"1": (32_000, 320_000), "2": (8_000, 160_000), "2.5": (8_000, 160_000)}


def _plausible(duration: float, bitrate: int, is_vbr: bool, span: int, first: FrameHeader) -> bool:
    """Whether a header's duration fits the bytes present. Its byte count (which ``bitrate``
    is derived from) must match the span, and so must its frame count, which the byte count
    says nothing about: frames of a CBR stream all have the first frame's bitrate, and a VBR
    stream cannot average outside the bitrates its MPEG version allows."""
    low, high = _LAYER3_BITRATES[first.version]
    # The tolerance below is four frames, which is all of a short file: only this bound
    # keeps such a header from giving its byte count, however absurd, as the bitrate.
    if not low * 0.98 <= bitrate <= high * 1.02:
        return False
    tolerance = max(4 * first.length, span * 0.02)
    if abs(duration * bitrate / 8 - span) > tolerance:
        return False
    if not is_vbr:
        return abs(duration * first.bitrate / 8 - span) <= tolerance
    return low * 0.98 <= span * 8 / duration <= high * 1.02


def _scanned(
    scan: Scan, first: FrameHeader, audio_start: int, stop: int, tags: dict[str, str]
) -> AudioAnalysis:
    samples, frames, audio_end, rates = scan_frames(scan(audio_start, stop - 1), first, audio_start)
    if frames == 0:
        raise NotMp3Error("This MP3 has no whole audio frame.")
    duration = samples / first.sample_rate
    bitrate = round((audio_end - audio_start) * 8 / duration) if duration else first.bitrate
    return _result(first, duration, bitrate, len(rates) > 1, audio_start, audio_end, tags, True)


def _result(
    first: FrameHeader,
    duration: float,
    bitrate: int,
    is_vbr: bool,
    audio_start: int,
    audio_end: int,
    tags: dict[str, str],
    scanned: bool,
) -> AudioAnalysis:
    info = AudioInfo(
        duration=round(duration, 3),
        bitrate=bitrate,
        bitrate_mode="VBR" if is_vbr else "CBR",
        sample_rate=first.sample_rate,
        channels=first.channels,
        mpeg_version=first.version,
        **tags,
    )
    return AudioAnalysis(info, audio_start, audio_end, first, scanned)


def analyse_file(
    source: io.BufferedIOBase | io.RawIOBase | io.BytesIO | BinaryIO, size: int
) -> AudioAnalysis:
    """Analyse a local seekable file object (an upload being checked)."""

    def fetch(start: int, end: int) -> bytes:
        source.seek(start)
        return source.read(end - start + 1) or b""

    def scan(start: int, end: int) -> Iterable[bytes]:
        source.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = source.read(min(1024 * 1024, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    return analyse_mp3(RangedFile(fetch, size), scan)


def analyse_upload(source: BinaryIO) -> AudioAnalysis:
    """Analyse a seekable upload from its start; ``NotMp3Error`` says why it is not an MP3."""
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    return analyse_file(source, size)
