"""MPEG audio frame headers and ID3v2 tag sizes: the small binary facts the app needs
without decoding audio (mutagen reads tags and duration; this finds real frames)."""

from __future__ import annotations

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
    return FrameHeader(version, layer, bitrate, sample_rate, padding, channels, length, samples)


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
