"""Is it an MP3, and what kind: real frames found by ``mp3``, duration and tags by mutagen."""

from __future__ import annotations

from typing import Any, BinaryIO

from smart_stream.errors import NotMp3Error
from smart_stream.models import AudioInfo
from smart_stream.mp3 import ID3V2_HEADER_SIZE, find_frame_run, id3v2_size

#: How far past the tags the first frame may sit (some encoders leave junk in front).
SYNC_WINDOW = 64 * 1024
#: Longest MPEG audio frame the header parser admits (layer II, 160 kbps, 8 kHz): a run of
#: frames that starts inside the window needs this much room past it to be seen whole.
_LONGEST_FRAME = 2881
_RUN = 3


def _audio_offset(source: BinaryIO) -> int:
    """Offset just past the ID3v2 tags stacked at the start, reading only their headers."""
    offset = 0
    while True:
        source.seek(offset)
        size = id3v2_size(source.read(ID3V2_HEADER_SIZE))
        if size == 0:
            return offset
        offset += size


def probe_mp3(source: BinaryIO) -> AudioInfo:
    """Read an MP3's stream parameters, duration and ID3 tags from a seekable file object.

    Raises ``NotMp3Error`` unless MPEG-1/2/2.5 Layer III frames follow one another near the
    start: mutagen alone accepts about one random file in three hundred.
    """
    from mutagen import MutagenError
    from mutagen.mp3 import BitrateMode, EasyMP3

    offset = _audio_offset(source)
    source.seek(offset)
    found = find_frame_run(source.read(SYNC_WINDOW + _RUN * _LONGEST_FRAME), run=_RUN)
    if found is None or found[0] >= SYNC_WINDOW:
        raise NotMp3Error("This is not an MP3: no MPEG audio frames were found.")
    header = found[1]
    if header.layer != 3:
        raise NotMp3Error(f"This is MPEG layer {header.layer} audio, not MP3 (layer 3).")
    source.seek(0)
    try:
        audio = EasyMP3(source)
    except (MutagenError, ValueError, EOFError) as exc:
        raise NotMp3Error(f"This MP3 cannot be read: {exc}.") from exc
    info = audio.info
    if info is None:
        raise NotMp3Error("This MP3 has no readable audio stream.")
    tags: Any = audio.tags or {}

    def tag(key: str) -> str | None:
        values = tags.get(key) or []
        return str(values[0]).strip() or None if values else None

    # mutagen reports UNKNOWN for a file without a Xing/VBRI header: that is a CBR stream.
    mode = "VBR" if info.bitrate_mode in (BitrateMode.VBR, BitrateMode.ABR) else "CBR"
    return AudioInfo(
        duration=round(float(info.length), 3),
        bitrate=int(info.bitrate),
        bitrate_mode=mode,
        sample_rate=int(info.sample_rate),
        channels=int(info.channels),
        mpeg_version=header.version,
        title=tag("title"),
        artist=tag("artist"),
        album=tag("album"),
    )
