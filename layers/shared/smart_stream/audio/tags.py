"""Title, artist and album from an MP3's tags (ID3v2 first, else ID3v1), reading as few
bytes as possible: cover art in a large tag is skipped, not downloaded."""

from __future__ import annotations

import io

from smart_stream.audio.frames import ID3V1_SIZE, ID3V2_HEADER_SIZE, id3v2_size
from smart_stream.audio.ranged_file import RangedFile

#: Leading ID3v2 tags up to this size are read whole; larger ones (cover art) are walked
#: frame header by frame header, and only the text frames wanted are read.
WHOLE_TAG_LIMIT = 256 * 1024
_WANTED_FRAMES = {b"TIT2": "title", b"TPE1": "artist", b"TALB": "album"}
_MAX_TEXT_FRAME = 16 * 1024


def _syncsafe(data: bytes) -> int:
    value = 0
    for b in data:
        value = (value << 7) | (b & 0x7F)
    return value


def _to_syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def read_tags(f: RangedFile, leading_end: int, trailing_start: int) -> dict[str, str]:
    if leading_end:
        tags = _id3v2_text(f)
        if tags:
            return tags
    if trailing_start <= f.size - ID3V1_SIZE:
        tail = f.pread(f.size - ID3V1_SIZE, f.size)
        if tail[:3] == b"TAG":
            return _id3v1_text(tail)
    return {}


def _id3v1_text(tag: bytes) -> dict[str, str]:
    fields = {"title": tag[3:33], "artist": tag[33:63], "album": tag[63:93]}
    found = {}
    for key, raw in fields.items():
        text = raw.split(b"\x00", 1)[0].decode("latin-1").strip()
        if text:
            found[key] = text
    return found


def _id3v2_text(f: RangedFile) -> dict[str, str]:
    from mutagen import MutagenError
    from mutagen.easyid3 import EasyID3

    header = f.pread(0, ID3V2_HEADER_SIZE)
    size = id3v2_size(header)
    tag = f.pread(0, size) if size <= WHOLE_TAG_LIMIT else _text_frames_only(f, header, size)
    if tag is None:
        return {}
    try:
        easy = EasyID3(io.BytesIO(tag))
    except (MutagenError, ValueError, EOFError):
        return {}
    found = {}
    for key in ("title", "artist", "album"):
        values = easy.get(key) or []
        text = str(values[0]).strip() if values else ""
        if text:
            found[key] = text
    return found


def _text_frames_only(f: RangedFile, header: bytes, size: int) -> bytes | None:
    """A small ID3v2 tag holding only the title/artist/album frames of a large one, read
    frame header by frame header so that cover art is skipped, not downloaded."""
    major, flags = header[3], header[5]
    if major not in (3, 4) or flags & 0x80:  # v2.2 or whole-tag unsynchronisation
        return None
    pos = ID3V2_HEADER_SIZE
    if flags & 0x40:  # extended header
        raw = f.pread(pos, pos + 4)
        pos += _syncsafe(raw) if major == 4 else int.from_bytes(raw, "big") + 4
    frames = []
    wanted = set(_WANTED_FRAMES)
    while wanted and pos + 10 <= size:
        frame_header = f.pread(pos, pos + 10)
        frame_id = frame_header[:4]
        if not frame_id.strip(b"\x00"):
            break  # padding
        raw = frame_header[4:8]
        length = _syncsafe(raw) if major == 4 else int.from_bytes(raw, "big")
        if frame_id in wanted and length <= _MAX_TEXT_FRAME:
            frames.append(f.pread(pos, pos + 10 + length))
            wanted.discard(frame_id)
        pos += 10 + length
    body = b"".join(frames)
    return b"ID3" + bytes([major, 0, 0]) + _to_syncsafe(len(body)) + body
