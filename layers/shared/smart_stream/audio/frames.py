"""MPEG audio frame headers and ID3v2 tag sizes: the small binary facts the app needs
without decoding audio (mutagen reads tags and duration; this finds real frames)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass

_BITRATES_KBPS = {
    # (MPEG-1?, layer) -> table indexed by the header's 4-bit bitrate index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {
    "1": (44100, 48000, 32000),
    "2": (22050, 24000, 16000),
    "2.5": (11025, 12000, 8000),
}
_VERSIONS = {0: "2.5", 2: "2", 3: "1"}  # 1 is reserved
_LAYERS = {1: 3, 2: 2, 3: 1}  # 0 is reserved

ID3V2_HEADER_SIZE = 10
#: Longest MPEG audio frame the header parser admits (layer II, 160 kbps, 8 kHz): a run of
#: frames that starts inside a window needs this much room past it to be seen whole.
LONGEST_FRAME = 2881


@dataclass(frozen=True)
class FrameHeader:
    """One MPEG audio frame header. ``length`` counts the header itself."""

    version: str  # "1", "2" or "2.5"
    layer: int
    bitrate: int  # bits per second
    sample_rate: int
    padding: bool
    channels: int
    length: int
    samples: int
    protected: bool = False  # a 16-bit CRC follows the header

    @property
    def side_info_size(self) -> int:
        if self.version == "1":
            return 17 if self.channels == 1 else 32
        return 9 if self.channels == 1 else 17

    @property
    def is_house(self) -> bool:
        """MPEG-1 Layer III at 44.1 kHz with two channels: the house format's stream (any
        bitrate, CBR or VBR), so the file joins every queue as it is, byte for byte."""
        return (self.version, self.layer, self.sample_rate, self.channels) == ("1", 3, 44100, 2)

    def same_stream(self, other: FrameHeader) -> bool:
        """Whether two frames can belong to one stream (and so be joined)."""
        return (self.version, self.layer, self.sample_rate, self.channels) == (
            other.version,
            other.layer,
            other.sample_rate,
            other.channels,
        )


def parse_frame_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader | None:
    """The frame header at ``offset``, or None if those 4 bytes are not one.

    Free-format frames (bitrate index 0) are refused: their length is not in the header.
    """
    if offset < 0 or len(data) - offset < 4:
        return None
    b0, b1, b2, b3 = data[offset], data[offset + 1], data[offset + 2], data[offset + 3]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = _VERSIONS.get((b1 >> 3) & 3)
    layer = _LAYERS.get((b1 >> 1) & 3)
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version is None or layer is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    if b3 & 3 == 2:  # reserved emphasis
        return None
    mpeg1 = version == "1"
    bitrate = _BITRATES_KBPS[(mpeg1, layer)][bitrate_index] * 1000
    sample_rate = _SAMPLE_RATES[version][rate_index]
    padding = bool((b2 >> 1) & 1)
    channels = 1 if (b3 >> 6) == 3 else 2
    if layer == 1:
        samples = 384
        length = (12 * bitrate // sample_rate + padding) * 4
    elif layer == 2 or mpeg1:
        samples = 1152
        length = 144 * bitrate // sample_rate + padding
    else:  # layer III of MPEG-2 / 2.5
        samples = 576
        length = 72 * bitrate // sample_rate + padding
    protected = not (b1 & 1)
    return FrameHeader(
        version, layer, bitrate, sample_rate, padding, channels, length, samples, protected
    )


def info_frame_kind(
    data: bytes | bytearray | memoryview, offset: int, header: FrameHeader
) -> str | None:
    """ "Xing", "Info" or "VBRI" when the frame at ``offset`` is an encoder's header frame
    (silence that carries the frame count): such a frame is not audio and must not sit in the
    middle of a joined stream."""
    if header.layer != 3:
        return None
    xing_at = offset + 4 + (2 if header.protected else 0) + header.side_info_size
    marker = bytes(data[xing_at : xing_at + 4])
    if marker in (b"Xing", b"Info"):
        return marker.decode()
    if bytes(data[offset + 36 : offset + 40]) == b"VBRI":
        return "VBRI"
    return None


def id3v2_size(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Total size of an ID3v2 tag starting at ``offset`` (header, body, footer), or 0."""
    if len(data) - offset < ID3V2_HEADER_SIZE or bytes(data[offset : offset + 3]) != b"ID3":
        return 0
    major, flags = data[offset + 3], data[offset + 5]
    size_bytes = data[offset + 6 : offset + 10]
    if major == 0xFF or any(b & 0x80 for b in size_bytes):
        return 0
    body = 0
    for b in size_bytes:  # syncsafe: 7 bits a byte
        body = (body << 7) | b
    footer = ID3V2_HEADER_SIZE if (major >= 4 and flags & 0x10) else 0
    return ID3V2_HEADER_SIZE + body + footer


def skip_id3v2(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Offset just past every ID3v2 tag stacked at ``offset``."""
    while (size := id3v2_size(data, offset)) > 0:
        offset += size
    return offset


def find_frame_run(
    data: bytes | bytearray | memoryview, start: int = 0, run: int = 3
) -> tuple[int, FrameHeader] | None:
    """The first offset at or after ``start`` where ``run`` consecutive frames of one stream
    follow each other (fewer if the data ends cleanly after the last of them).

    Requiring a run keeps a stray 0xFFE in random or text data from passing for audio.
    """
    buf = bytes(data)
    pos = buf.find(b"\xff", start)
    while 0 <= pos <= len(buf) - 4:
        first = parse_frame_header(buf, pos)
        if first is not None and _run_follows(buf, pos, first, run):
            return pos, first
        pos = buf.find(b"\xff", pos + 1)
    return None


def _run_follows(
    data: bytes | bytearray | memoryview, pos: int, first: FrameHeader, run: int
) -> bool:
    header = first
    for _ in range(run - 1):
        pos += header.length
        if pos == len(data):
            return True  # the data ends exactly after a whole frame
        following = parse_frame_header(data, pos)
        if following is None or not following.same_stream(first):
            return False
        header = following
    return True


ID3V1_SIZE = 128
APE_FOOTER_SIZE = 32
#: How far from the end trailing tags are looked for at once; larger tags cost another read.
TAIL_WINDOW = 64 * 1024
#: The most of a tail ``trailing_tag_size`` looks at (an ID3v1 tag): a tail's last
#: ``TRAILER_PROBE`` bytes tell it as much as the whole tail.
TRAILER_PROBE = ID3V1_SIZE


def trailing_tag_size(tail: bytes | bytearray | memoryview) -> int:
    """Size of the one tag that ends exactly at the end of ``tail`` (ID3v1, APEv2, Lyrics3v2,
    or an appended ID3v2.4 with footer), or 0. Call again on what precedes it for stacks."""
    end = len(tail)
    if end >= ID3V1_SIZE and bytes(tail[end - ID3V1_SIZE : end - ID3V1_SIZE + 3]) == b"TAG":
        return ID3V1_SIZE
    if end >= APE_FOOTER_SIZE and bytes(tail[end - 32 : end - 24]) == b"APETAGEX":
        footer = bytes(tail[end - 32 : end])
        body = int.from_bytes(footer[12:16], "little")  # items + footer, without the header
        has_header = bool(int.from_bytes(footer[20:24], "little") & 0x80000000)
        return body + (APE_FOOTER_SIZE if has_header else 0)
    if end >= 15 and bytes(tail[end - 9 : end]) == b"LYRICS200":
        digits = bytes(tail[end - 15 : end - 9])
        if digits.isdigit():
            return int(digits) + 15
    if end >= 10 and bytes(tail[end - 10 : end - 7]) == b"3DI":
        size = 0
        for b in bytes(tail[end - 4 : end]):
            size = (size << 7) | (b & 0x7F)
        return size + 20
    return 0


_XING_FRAMES, _XING_BYTES, _XING_TOC, _XING_QUALITY = 1, 2, 4, 8


def foreign_gapless_samples(
    data: bytes | bytearray | memoryview, offset: int, header: FrameHeader
) -> int:
    """Encoder delay plus end padding (samples) recorded in the LAME-style extension of the
    Xing/Info frame at ``offset`` when another encoder than LAME wrote it (ffmpeg writes
    "Lavc..."/"Lavf..."). Decoders trim these samples; mutagen reads the extension only when
    it says "LAME", so for other encoders the trim is read here. 0 when there is none."""
    xing_at = offset + 4 + (2 if header.protected else 0) + header.side_info_size
    if bytes(data[xing_at : xing_at + 4]) not in (b"Xing", b"Info"):
        return 0
    flags = int.from_bytes(bytes(data[xing_at + 4 : xing_at + 8]), "big")
    ext = xing_at + 8
    ext += 4 * bool(flags & _XING_FRAMES) + 4 * bool(flags & _XING_BYTES)
    ext += 100 * bool(flags & _XING_TOC) + 4 * bool(flags & _XING_QUALITY)
    version = bytes(data[ext : ext + 9])
    if len(version) < 9 or version.startswith((b"LAME", b"L3.99")) or not version[:3].isalpha():
        return 0
    # version(9) revision(1) lowpass(1) replay gain(8) flags(1) bitrate(1), then 12 + 12 bits.
    field = bytes(data[ext + 21 : ext + 24])
    if len(field) < 3:
        return 0
    delay = (field[0] << 4) | (field[1] >> 4)
    padding = ((field[1] & 0x0F) << 8) | field[2]
    return delay + padding


def whole_frames(chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Re-cut a run of audio frames into pieces that each end on a frame boundary."""
    carry = b""
    for chunk in chunks:
        buf = carry + chunk
        pos = 0
        while len(buf) - pos >= 4:
            header = parse_frame_header(buf, pos)
            if header is None:
                pos = len(buf)  # not a frame (never inside a span): pass it on whole
                break
            if pos + header.length > len(buf):
                break
            pos += header.length
        if pos:
            yield buf[:pos]
        carry = buf[pos:]
    if carry:
        yield carry
