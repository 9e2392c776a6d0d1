"""What an upload is, told by its content (PyAV, which binds FFmpeg's demuxers), never by
its name: one of the formats Smart Stream converts to the house MP3, or a refusal that says
which formats it takes. An MP3 that is MPEG-1 Layer III at 44.1 kHz with two channels is
house-compatible as it is and is kept byte for byte."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from smart_stream.audio.frames import parse_frame_header, skip_id3v2
from smart_stream.domain.errors import ConversionError, UnsupportedAudioError
from smart_stream.domain.names import UPLOAD_EXTENSIONS

if TYPE_CHECKING:
    from av.container import InputContainer

#: The names an upload may have: one list, the names' rules' (``domain.names``).
ACCEPTED_EXTENSIONS = frozenset(UPLOAD_EXTENSIONS)
ACCEPTED_FORMATS = (
    "MP3, MP4/M4A/M4B (AAC, ALAC), ADTS AAC, WAV, FLAC, Ogg (Vorbis, Opus), "
    "WebM/Matroska (Opus, Vorbis), AIFF"
)

#: FFmpeg's demuxer name -> the container word of ``source_format``.
_CONTAINERS = {
    "mp3": "mp3",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "aac": "aac",
    "wav": "wav",
    "aiff": "aiff",
    "flac": "flac",
    "ogg": "ogg",
    "matroska,webm": "webm",
}
#: FFmpeg's decoder name -> the codec word (any ``pcm_*`` is "pcm").
_CODECS = {
    "mp3": "mp3",
    "mp3float": "mp3",
    "aac": "aac",
    "aac_fixed": "aac",
    "alac": "alac",
    "flac": "flac",
    "vorbis": "vorbis",
    "libvorbis": "vorbis",
    "opus": "opus",
    "libopus": "opus",
}
_ACCEPTED = {
    "mp3": {"mp3"},
    "m4a": {"aac", "alac"},
    "aac": {"aac"},
    "wav": {"pcm"},
    "aiff": {"pcm"},
    "flac": {"flac"},
    "ogg": {"vorbis", "opus"},
    "webm": {"opus", "vorbis"},
}
#: Sample entries of encrypted audio in MP4 (iTunes FairPlay; Common Encryption).
_ENCRYPTED_TAGS = {"drms", "enca"}
#: Containers whose duration FFmpeg estimates (from the bitrate) rather than reads.
_ESTIMATED = {"aac"}
#: The most FFmpeg may allocate in one block (its own default is 2 GiB). FFmpeg takes some
#: sizes from a file's headers as they stand: a WAV's RIFF INFO entry is allocated, and
#: zeroed, at the size it states, checked only against its LIST chunk's stated size, so a
#: WAV of 63 bytes took 1.3 GB (bench/fuzz; the upload function has 512 MB). Files the app
#: takes need far less: the sample index of an eight-hour M4A is about 30 MB.
FFMPEG_MAX_ALLOC = 256 * 1024 * 1024


@dataclass(frozen=True)
class Probe:
    source_format: str  # "<container>/<codec>", e.g. "m4a/aac"
    duration: float | None  # None when the container does not say
    sample_rate: int
    channels: int
    is_house_mp3: bool  # MPEG-1 Layer III, 44.1 kHz, 2 channels: kept byte for byte
    title: str | None = None
    artist: str | None = None
    album: str | None = None


@dataclass(frozen=True)
class Found:
    """What a conversion needs to know of an open input: its probe, whether the duration is
    stated by the container (not estimated), and its audio and cover-art streams."""

    probe: Probe
    stated: bool
    audio: Any  # av.audio.stream.AudioStream
    cover: Any  # av.video.stream.VideoStream holding an attached picture, or None


def probe(source: BinaryIO) -> Probe:
    """What ``source`` (a seekable file object, read from its start) is. Raises
    ``UnsupportedAudioError`` (415) naming the accepted formats for anything else or a file
    with no audio, and ``ConversionError`` for a file in an accepted format that cannot be
    converted: corrupt (its header cannot be read), or an undecodable codec (DRM)."""
    try:
        with open_input(source) as container:
            found = describe(container)
            house = found.probe.source_format == "mp3/mp3" and _house_frame(container, found)
            return replace(found.probe, is_house_mp3=True) if house else found.probe
    except ConversionError as exc:
        if exc.kind == "no_audio":
            raise UnsupportedAudioError(
                f"{exc.reason} Accepted formats: {ACCEPTED_FORMATS}."
            ) from None
        if exc.kind == "unsupported_format":
            what = exc.reason.removeprefix("Unsupported codec: ")
            raise UnsupportedAudioError(what[:1].upper() + what[1:]) from None
        raise
    finally:
        with contextlib.suppress(OSError, ValueError):
            source.seek(0)


def _unsupported(what: str) -> ConversionError:
    return ConversionError(
        f"Unsupported codec: {what}. Accepted formats: {ACCEPTED_FORMATS}.",
        kind="unsupported_format",
    )


class _Anonymous(io.RawIOBase):
    """``source`` without its name: FFmpeg would let a file name's extension sway its guess
    of the format, and an upload is taken by its content only."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._source.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._source.seek(offset, whence)

    def tell(self) -> int:
        return self._source.tell()


@contextlib.contextmanager
def open_input(source: BinaryIO) -> Iterator[InputContainer]:
    """``source`` opened by FFmpeg, by content; ``ConversionError`` "corrupt" when it starts
    like an accepted format but FFmpeg cannot read it, "unsupported_format" otherwise."""
    import av

    limit_ffmpeg_allocations()
    source.seek(0)
    head = source.read(4096)
    source.seek(0)
    try:
        # Tags that are not UTF-8 (a damaged or foreign file) are read with U+FFFD in place
        # of the bad bytes: PyAV's default ("strict") would fail the whole upload.
        container = av.open(_Anonymous(source), "r", metadata_errors="replace")
    except av.error.FFmpegError:
        if _looks_like_ours(head):
            raise ConversionError(
                "The file is corrupt: its header cannot be read (cut short, or damaged).",
                kind="corrupt",
            ) from None
        raise _unsupported("this is not audio in a format Smart Stream takes") from None
    with container:
        yield container


@functools.cache
def limit_ffmpeg_allocations() -> bool:
    """Cap every FFmpeg allocation of this process at ``FFMPEG_MAX_ALLOC`` (``av_max_alloc``
    of the libavutil PyAV loaded, which PyAV does not expose); True when it is set. Where
    that library cannot be found (not Linux) FFmpeg keeps its own limit."""
    import ctypes  # with PyAV: only the functions that open files pay for it

    path = _loaded_library("libavutil")
    if path is None:
        return False
    try:
        setter = ctypes.CDLL(path).av_max_alloc
    except (OSError, AttributeError):
        return False
    setter.argtypes = [ctypes.c_size_t]
    setter.restype = None
    setter(FFMPEG_MAX_ALLOC)
    return True


def _loaded_library(stem: str) -> str | None:
    """The file of the shared library named ``stem``* that this process has mapped (PyAV's
    own copy, whatever its wheel named it), or None."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()  # the last field: the file, if any
                if path.rsplit("/", 1)[-1].startswith(stem):
                    return path
    except OSError:
        return None
    return None


def describe(container: InputContainer) -> Found:
    """The probe of an open input; ``ConversionError`` when it is not one of ours."""
    from av.stream import Disposition

    container_word = _CONTAINERS.get(container.format.name)
    audio = next(iter(container.streams.audio), None)
    if audio is None:
        raise ConversionError("The file has no audio.", kind="no_audio")
    context = audio.codec_context
    codec_word = _codec_word(context.name if context is not None else "")
    if container_word is None or codec_word not in _ACCEPTED[container_word]:
        codec = context.codec.long_name if context is not None else "an unknown codec"
        raise _unsupported(f"{codec} in {container.format.long_name} is not taken")
    if context.codec_tag in _ENCRYPTED_TAGS:
        raise ConversionError(
            "Unsupported codec: the audio is DRM-protected (encrypted) and cannot be converted.",
            kind="unsupported_codec",
        )
    covers = [s for s in container.streams.video if s.disposition & Disposition.attached_pic]
    duration, stated = _duration(container, audio, container_word)
    tags = _tags(container.metadata, audio.metadata)
    found = Probe(
        source_format=f"{container_word}/{codec_word}",
        duration=duration,
        sample_rate=context.sample_rate,
        channels=context.channels,
        is_house_mp3=False,
        title=tags["title"],
        artist=tags["artist"],
        album=tags["album"],
    )
    return Found(found, stated, audio, covers[0] if covers else None)


def id3_tag(found: Probe, cover: tuple[str, bytes] | None) -> bytes:
    """An ID3v2 tag with the source's title, artist, album and cover art; b"" for none."""
    from mutagen.id3 import APIC, ID3, TALB, TIT2, TPE1

    tag = ID3()
    for frame, text in ((TIT2, found.title), (TPE1, found.artist), (TALB, found.album)):
        if text:
            tag.add(frame(encoding=3, text=text))
    if cover is not None:
        mime, data = cover
        tag.add(APIC(encoding=3, mime=mime, type=3, desc="", data=data))
    if not tag:
        return b""
    out = io.BytesIO()
    tag.save(out, padding=lambda info: 0)
    return out.getvalue()


def _codec_word(decoder: str) -> str:
    return "pcm" if decoder.startswith("pcm_") else _CODECS.get(decoder, decoder)


def _duration(
    container: InputContainer, audio: Any, container_word: str
) -> tuple[float | None, bool]:
    """(seconds, stated): from the stream when it says, else the container; ``stated`` is
    False for a duration FFmpeg estimated from the bitrate (ADTS; an MP3 without a header)."""
    if audio.duration is not None and audio.time_base is not None:
        seconds = float(audio.duration * audio.time_base)
        return round(seconds, 3), container_word not in _ESTIMATED
    if container.duration is not None:
        return round(container.duration / 1_000_000, 3), container_word not in {"mp3", "aac"}
    return None, False


def _tags(*metadata: dict[str, str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {"title": None, "artist": None, "album": None}
    for tags in metadata:
        for key, value in tags.items():
            key = key.lower()
            if key in found and found[key] is None and value and value.strip():
                found[key] = value.strip()
    return found


def _house_frame(container: InputContainer, found: Found) -> bool:
    """Whether the first audio frame is MPEG-1 Layer III at 44.1 kHz with two channels."""
    import av

    try:
        for packet in container.demux(found.audio):
            header = parse_frame_header(bytes(packet)) if packet.size else None
            return header is not None and header.is_house
    except av.error.FFmpegError:
        return False
    return False


def _looks_like_ours(head: bytes) -> bool:
    """Whether ``head`` starts like one of the accepted containers."""
    start = skip_id3v2(head)
    if start and start >= len(head):
        return True  # an ID3 tag bigger than the head: an MP3 (or FLAC) behind it
    data = head[start:]
    if data[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return True
    if data[:4] in (b"OggS", b"fLaC", b"\x1a\x45\xdf\xa3"):
        return True
    if data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return True
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return True
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0:
        return True  # ADTS sync word
    header = parse_frame_header(data)
    return header is not None and header.layer == 3
