"""analyse_mp3 on real MP3s made here (lameenc; PyAV for files as FFmpeg writes them), with
every tag and header frame an MP3 can carry: the duration a parent sees is what a decoder
(FFmpeg, through PyAV) plays, to within one frame; the audio byte span that queues join on is
exactly the audio frames, nothing else; tags are read; and it is done with a few small reads,
whatever the file's length."""

from __future__ import annotations

import functools
import io
import random
import struct
import tracemalloc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_stream.audio.analysis import AudioAnalysis, analyse_file, analyse_mp3
from smart_stream.audio.frames import FrameHeader, parse_frame_header
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.domain.errors import NotMp3Error
from tests.audio import decode_pcm, make_mp3, make_mp3_with_pyav

KIB = 1024
MIB = 1024 * KIB
MARKERS = (b"ID3", b"3DI", b"TAG", b"APETAGEX", b"LYRICS", b"Xing", b"Info", b"VBRI")


# --- Making MP3s -------------------------------------------------------------------------


@functools.cache
def encode(seconds: float = 1.0, rate: int = 44100, channels: int = 2, kbps: int = 128) -> bytes:
    """A bare lameenc encode (frames only, no tags, no header frame), made once per test run."""
    return make_mp3(seconds, sample_rate=rate, channels=channels, bitrate=kbps)


def frames(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, FrameHeader]]:
    """(offset, header) of each whole frame walked from ``start`` by frame length."""
    end = len(data) if end is None else end
    found = []
    pos = start
    while pos < end:
        header = parse_frame_header(data, pos)
        if header is None or pos + header.length > end:
            break
        found.append((pos, header))
        pos += header.length
    return found


def vbr(rate: int = 44100, channels: int = 2, bitrates: Iterable[int] = (), seconds=0.3) -> bytes:
    """VBR without any header: whole encodes at different bitrates, one after the other (each
    starts without a bit reservoir, so every frame decodes)."""
    return b"".join(encode(seconds, rate, channels, kbps) for kbps in bitrates)


HOUSE_VBR_RATES = (64, 160, 96, 256, 128, 192, 80, 224)


def header_frame(
    audio: bytes, kind: str, *, frame_count: int, byte_count: int | None, vbr_scale: bool = True
) -> bytes:
    """A silent frame of ``audio``'s stream carrying an encoder's header: "Xing"/"Info" after
    the side information (flags, frame count, byte count, quality), or "VBRI" at offset 36
    (version 1, delay, quality, bytes, frames, an empty TOC)."""
    first = parse_frame_header(audio, 0)
    assert first is not None and not first.protected
    raw = bytearray(audio[:4])
    raw[2] &= ~0x02  # no padding: the frame's length is the header's plain length
    length = parse_frame_header(bytes(raw) + b"\x00" * 4, 0).length
    frame = bytearray(length)
    frame[:4] = raw
    if kind in ("Xing", "Info"):
        flags = 0x1 | (0x2 if byte_count is not None else 0) | (0x8 if vbr_scale else 0)
        payload = kind.encode() + struct.pack(">II", flags, frame_count)
        if byte_count is not None:
            payload += struct.pack(">I", byte_count)
        if vbr_scale:
            payload += struct.pack(">I", 60)
        at = 4 + first.side_info_size
    else:
        payload = b"VBRI" + struct.pack(
            ">HHHIIHHHH", 1, 0x7FFF, 75, byte_count or 0, frame_count, 0, 1, 2, 1
        )
        at = 36
    assert at + len(payload) <= length, "the stream's frames are too small for this header"
    frame[at : at + len(payload)] = payload
    return bytes(frame)


def lame_header_frame(audio: bytes, kind: str, *, delay: int, padding: int, method: int) -> bytes:
    """A Xing/Info frame as LAME writes it: frames, bytes, TOC and quality, then the LAME
    extension with the VBR method and the encoder delay and padding (gapless playback)."""
    frame = bytearray(header_frame(audio, kind, frame_count=0, byte_count=0))
    count = len(frames(audio))
    fields = struct.pack(">III", 0xF, count, len(frame) + len(audio))  # after the marker
    fields += bytes(range(100)) + struct.pack(">I", 57)
    lame = b"LAME3.100" + bytes([method, 0]) + bytes(9) + bytes([128])
    lame += bytes([delay >> 4, ((delay & 0xF) << 4) | (padding >> 8), padding & 0xFF]) + bytes(12)
    at = 4 + parse_frame_header(audio, 0).side_info_size + 4
    assert at + len(fields) + len(lame) <= len(frame)
    frame[at : at + len(fields) + len(lame)] = fields + lame
    return bytes(frame)


def id3v2(version: int = 4, **tags: str) -> bytes:
    """An ID3v2 tag alone (mutagen writes it, with its usual padding)."""
    from mutagen.easyid3 import EasyID3

    easy = EasyID3()
    for key, value in tags.items():
        easy[key] = value
    out = io.BytesIO()
    easy.save(out, v2_version=version)
    return out.getvalue()


def id3v24_with_footer(title: str) -> bytes:
    """An ID3v2.4 tag with a footer ("3DI"), as appended at the end of a file."""
    text = b"\x03" + title.encode()
    frame = b"TIT2" + _syncsafe(len(text)) + b"\x00\x00" + text
    size = _syncsafe(len(frame))
    return b"ID3\x04\x00\x10" + size + frame + b"3DI\x04\x00\x10" + size


def _syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3v1(title: str = "", artist: str = "", album: str = "") -> bytes:
    def pad(text: str, n: int) -> bytes:
        return text.encode("latin-1")[:n].ljust(n, b"\x00")

    return (
        b"TAG" + pad(title, 30) + pad(artist, 30) + pad(album, 30) + b"2024" + pad("", 30) + b"\x0c"
    )


def apev2(items: dict[str, bytes], *, header: bool) -> bytes:
    """An APEv2 tag: optional header, items, footer (sizes little-endian, footer counted)."""
    body = b"".join(
        struct.pack("<II", len(value), 0) + key.encode() + b"\x00" + value
        for key, value in items.items()
    )
    size = len(body) + 32

    def block(is_header: bool) -> bytes:
        flags = (0x80000000 if header else 0) | (0x20000000 if is_header else 0)
        return b"APETAGEX" + struct.pack("<IIII", 2000, size, len(items), flags) + b"\x00" * 8

    return (block(True) if header else b"") + body + block(False)


def lyrics3v2(lyrics: str) -> bytes:
    body = b"LYRICSBEGIN" + b"IND00002" + b"10" + b"LYR" + f"{len(lyrics):05d}".encode()
    body += lyrics.encode("latin-1")
    return body + f"{len(body):06d}".encode() + b"LYRICS200"


# --- Looking at results ------------------------------------------------------------------


@dataclass
class Reads:
    """What one analysis cost: the ranged file's counts and every scan asked for."""

    file: RangedFile
    scans: list[tuple[int, int]] = field(default_factory=list)


def analyse(data: bytes, *, chunk: int = 64 * KIB) -> tuple[AudioAnalysis, Reads]:
    """analyse_mp3 over ranged reads of ``data``, as the pipeline does over S3."""
    f = RangedFile(lambda start, end: data[start : end + 1], len(data))
    reads = Reads(f)

    def scan(start: int, end: int) -> Iterator[bytes]:
        reads.scans.append((start, end))
        for at in range(start, end + 1, chunk):
            yield data[at : min(at + chunk, end + 1)]

    return analyse_mp3(f, scan), reads


def decoded_samples(data: bytes) -> int:
    """Sample frames (per channel) a real decoder plays from these bytes."""
    return decode_pcm(data).num_frames


def one_frame(first: FrameHeader) -> float:
    # A frame's duration, plus the rounding of the stored duration to milliseconds.
    return first.samples / first.sample_rate + 0.0005


def assert_plays_as_decoded(data: bytes, result: AudioAnalysis) -> None:
    """The duration is what a decoder plays from the whole file, within one frame."""
    played = decoded_samples(data) / result.frame.sample_rate
    assert abs(result.info.duration - played) <= one_frame(result.frame), (
        f"duration {result.info.duration} s, a decoder plays {played:.4f} s"
    )


def assert_span(data: bytes, result: AudioAnalysis, audio: bytes, start: int) -> None:
    """The audio span is exactly the audio frames: it starts on a frame header at ``start``,
    holds no tag or header frame at either end, and decodes to the same samples."""
    span = data[result.audio_start : result.audio_end]
    assert (result.audio_start, result.audio_end) == (start, start + len(audio))
    assert parse_frame_header(span, 0) is not None
    for marker in MARKERS:
        assert marker not in span[:64], f"{marker!r} at the start of the span"
        assert marker not in span[-256:], f"{marker!r} at the end of the span"
    assert frames(span)[-1][0] + frames(span)[-1][1].length == len(span), "ends on a frame"
    assert decoded_samples(span) == decoded_samples(audio)
    assert span == audio


def true_seconds(audio: bytes) -> float:
    walked = frames(audio)
    first = walked[0][1]
    return len(walked) * first.samples / first.sample_rate


# --- CBR at every MPEG version, rate and channel count -----------------------------------

STREAMS = [
    # (rate, MPEG version, kbps)
    (8000, "2.5", 16),
    (11025, "2.5", 32),
    (12000, "2.5", 32),
    (16000, "2", 48),
    (22050, "2", 64),
    (24000, "2", 64),
    (32000, "1", 96),
    (44100, "1", 128),
    (48000, "1", 160),
]


@pytest.mark.parametrize("channels", [1, 2], ids=["mono", "stereo"])
@pytest.mark.parametrize(("rate", "version", "kbps"), STREAMS, ids=[f"{s[0]}Hz" for s in STREAMS])
def test_cbr_at_every_rate_and_mpeg_version(rate, version, kbps, channels):
    """Given a plain CBR file of this rate, version and layout, when it is analysed through
    ranged reads, then what it is, how long it plays and where its frames lie are right,
    without a scan."""
    audio = encode(1.0, rate, channels, kbps)

    result, reads = analyse(audio)

    info = result.info
    assert (info.mpeg_version, info.sample_rate, info.channels) == (version, rate, channels)
    assert (info.bitrate, info.bitrate_mode) == (kbps * 1000, "CBR")
    assert_plays_as_decoded(audio, result)
    assert abs(info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert_span(audio, result, audio, 0)
    assert (info.title, info.artist, info.album) == (None, None, None)
    assert not result.scanned and reads.scans == []


@pytest.mark.parametrize(
    ("rate", "channels"), [(44100, 2), (22050, 1), (11025, 2), (48000, 1)], ids=str
)
def test_vbr_without_a_header_is_scanned_once_and_exact(rate, channels):
    """Given a VBR stream with no Xing/VBRI frame, when analysed, then its frames are scanned
    in one sequential pass and the duration is exact (a CBR guess would be far off)."""
    allowed = (32, 64, 96, 128, 160) if rate < 32000 else HOUSE_VBR_RATES
    audio = vbr(rate, channels, allowed * 2)
    rates = {h.bitrate for _, h in frames(audio)}
    assert len(rates) > 1

    result, reads = analyse(audio)

    assert result.scanned
    assert reads.scans == [(0, len(audio) - 1)]
    assert result.info.bitrate_mode == "VBR"
    assert min(rates) < result.info.bitrate < max(rates)
    assert_plays_as_decoded(audio, result)
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert_span(audio, result, audio, 0)


# --- Xing, Info and VBRI header frames ---------------------------------------------------

HEADER_STREAMS = [(44100, 2, 128), (44100, 1, 64), (22050, 1, 32), (8000, 2, 16), (48000, 2, 160)]


@pytest.mark.parametrize(("rate", "channels", "kbps"), HEADER_STREAMS, ids=str)
def test_info_frame_of_a_cbr_file(rate, channels, kbps):
    """Given a CBR file that starts with LAME's Info frame, then the Info frame is left out
    of the span, and the duration is the audio's."""
    audio = encode(1.0, rate, channels, kbps)
    info_frame = header_frame(
        audio, "Info", frame_count=len(frames(audio)), byte_count=None, vbr_scale=False
    )
    info_frame = header_frame(
        audio,
        "Info",
        frame_count=len(frames(audio)),
        byte_count=len(info_frame) + len(audio),
        vbr_scale=False,
    )
    data = info_frame + audio

    result, reads = analyse(data)

    assert result.info.bitrate_mode == "CBR"
    assert result.info.bitrate == pytest.approx(kbps * 1000, rel=0.01)
    assert (result.info.sample_rate, result.info.channels) == (rate, channels)
    assert_plays_as_decoded(data, result)
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert_span(data, result, audio, len(info_frame))
    assert reads.scans == []


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (44100, 1), (22050, 2)], ids=str)
def test_xing_frame_of_a_vbr_file(rate, channels):
    """Given a VBR file with a Xing header frame, then the duration comes from the header
    (no scan), matches the decoder, and the Xing frame is outside the span."""
    allowed = (32, 64, 96, 128, 160) if rate < 32000 else HOUSE_VBR_RATES
    audio = vbr(rate, channels, allowed)
    count = len(frames(audio))
    probe = header_frame(audio, "Xing", frame_count=count, byte_count=0)
    xing = header_frame(audio, "Xing", frame_count=count, byte_count=len(probe) + len(audio))
    data = xing + audio

    result, reads = analyse(data)

    assert result.info.bitrate_mode == "VBR"
    assert not result.scanned and reads.scans == []
    assert_plays_as_decoded(data, result)
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert_span(data, result, audio, len(xing))


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1), (8000, 1)], ids=str)
def test_vbri_frame_of_a_vbr_file(rate, channels):
    """Given a VBR file with Fraunhofer's VBRI header frame, then the duration comes from the
    header, and the VBRI frame (which decoders play as a frame of silence) is not audio."""
    allowed = (16, 32, 64) if rate < 16000 else (32, 64, 96, 128, 160)
    if rate == 44100:
        allowed = HOUSE_VBR_RATES
    audio = vbr(rate, channels, allowed)
    vbri = header_frame(audio, "VBRI", frame_count=len(frames(audio)), byte_count=len(audio))
    data = vbri + audio

    result, reads = analyse(data)

    assert result.info.bitrate_mode == "VBR"
    assert not result.scanned and reads.scans == []
    assert_plays_as_decoded(data, result)
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert_span(data, result, audio, len(vbri))


@pytest.mark.parametrize(
    ("kind", "method", "mode"), [("Info", 1, "CBR"), ("Xing", 4, "VBR")], ids=["cbr", "vbr"]
)
def test_a_lame_header_with_encoder_delay_and_padding(kind, method, mode):
    """Given LAME's header with its gapless fields (encoder delay and padding), then the
    duration is what a gapless decoder plays (the padding is not counted), and the span is
    still every audio frame (a joined stream keeps them all)."""
    audio = encode(1.0) if mode == "CBR" else vbr(44100, 2, HOUSE_VBR_RATES)
    lame = lame_header_frame(audio, kind, delay=576, padding=1000, method=method)
    data = lame + audio

    result, reads = analyse(data)

    assert result.info.bitrate_mode == mode
    played = decoded_samples(data)
    assert played == len(frames(audio)) * 1152 - 576 - 1000, "FFmpeg plays it gapless"
    assert_plays_as_decoded(data, result)
    assert_span(data, result, audio, len(lame))
    assert reads.scans == []


# --- Tags before and after the audio -----------------------------------------------------

HOUSE = (44100, 2, 128)
TAGS = {"title": "Bedtime Story", "artist": "Mum", "album": "Evenings"}
V1_TAGS = {"title": "Old Title", "artist": "Old Artist", "album": "Old Album"}
APE_ITEMS = {"Title": b"Ape Title", "Artist": b"Ape", "Cover Art (Front)": bytes(range(256)) * 40}


def _case(lead: bytes, tail: bytes, tags: dict[str, str]):
    return lead, tail, tags


TAG_CASES = {
    "none": _case(b"", b"", {}),
    "id3v2.4": _case(id3v2(4, **TAGS), b"", TAGS),
    "id3v2.3": _case(id3v2(3, **TAGS), b"", TAGS),
    "stacked-id3v2": _case(id3v2(4, **TAGS) + id3v2(3, title="Second"), b"", TAGS),
    "id3v1": _case(b"", id3v1(**V1_TAGS), V1_TAGS),
    "id3v2+id3v1": _case(id3v2(4, **TAGS), id3v1(**V1_TAGS), TAGS),
    "apev2-with-header": _case(b"", apev2(APE_ITEMS, header=True), {}),
    "apev2-without-header": _case(b"", apev2(APE_ITEMS, header=False), {}),
    "apev2+id3v1": _case(b"", apev2(APE_ITEMS, header=True) + id3v1(**V1_TAGS), V1_TAGS),
    "lyrics3v2+id3v1": _case(b"", lyrics3v2("Twinkle twinkle") + id3v1(**V1_TAGS), V1_TAGS),
    "apev2+lyrics3v2+id3v1": _case(
        id3v2(4, **TAGS),
        apev2(APE_ITEMS, header=False) + lyrics3v2("La la") + id3v1(**V1_TAGS),
        TAGS,
    ),
    "appended-id3v2.4-footer": _case(b"", id3v24_with_footer("At The End"), {}),
    "apev2-300KB-cover+id3v1": _case(
        b"",
        apev2({"Title": b"Big", "Cover Art (Front)": bytes(300 * KIB)}, header=True)
        + id3v1(**V1_TAGS),
        V1_TAGS,
    ),
    "id3v2-both-ends+apev2": _case(
        id3v2(4, **TAGS), id3v24_with_footer("Tail") + apev2(APE_ITEMS, header=True), TAGS
    ),
    "leading-id3v2.4-with-footer": _case(id3v24_with_footer("Front"), b"", {"title": "Front"}),
}


@pytest.mark.parametrize(("lead", "tail", "tags"), TAG_CASES.values(), ids=TAG_CASES.keys())
def test_tags_around_the_audio(lead, tail, tags):
    """Given an MP3 wrapped in these tags, then the span is exactly the audio frames between
    them, the duration is the audio's, and title/artist/album come from ID3v2, else ID3v1."""
    audio = encode(1.0, *HOUSE)
    data = lead + audio + tail

    result, reads = analyse(data)

    assert_span(data, result, audio, len(lead))
    assert_plays_as_decoded(audio, result)
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert result.info.bitrate_mode == "CBR" and result.info.bitrate == 128000
    found = {k: getattr(result.info, k) for k in ("title", "artist", "album")}
    assert found == {k: tags.get(k) for k in ("title", "artist", "album")}
    assert reads.scans == []


def test_everything_at_once_on_an_mpeg2_mono_vbr_file():
    """Stacked ID3v2, a Xing frame, VBR audio, APEv2, Lyrics3v2 and ID3v1, on MPEG-2 mono."""
    audio = vbr(22050, 1, (32, 64, 96, 128, 160))
    count = len(frames(audio))
    xing = header_frame(audio, "Xing", frame_count=count, byte_count=0)
    xing = header_frame(audio, "Xing", frame_count=count, byte_count=len(xing) + len(audio))
    lead = id3v2(4, **TAGS) + id3v2(3, title="Other")
    tail = apev2(APE_ITEMS, header=True) + lyrics3v2("Hush") + id3v1(**V1_TAGS)
    data = lead + xing + audio + tail

    result, _ = analyse(data)

    assert_span(data, result, audio, len(lead) + len(xing))
    assert (result.info.mpeg_version, result.info.sample_rate, result.info.channels) == (
        "2",
        22050,
        1,
    )
    assert result.info.bitrate_mode == "VBR"
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert (result.info.title, result.info.artist, result.info.album) == tuple(TAGS.values())


def test_analyse_file_agrees_with_ranged_reads():
    """The upload check (a local file object) and the pipeline (ranged reads) agree."""
    audio = vbr(44100, 2, HOUSE_VBR_RATES)
    data = id3v2(4, **TAGS) + audio + id3v1(**V1_TAGS)
    assert analyse_file(io.BytesIO(data), len(data)) == analyse(data)[0]


# --- Files made by real encoders: FFmpeg's (PyAV) and LAME's own (lameenc) ----------------

TONE = 3.0  # seconds of tone in each file

PYAV_FILES = [
    # (mode, rate, channels, kbps, MPEG version, header frame)
    ("cbr", 44100, 2, 128, "1", "Info"),
    ("cbr", 48000, 2, 160, "1", "Info"),
    ("cbr", 22050, 1, 64, "2", "Info"),
    ("vbr", 44100, 2, None, "1", "Xing"),
    ("vbr", 48000, 1, None, "1", "Xing"),
    ("vbr", 22050, 1, None, "2", "Xing"),
    ("abr", 44100, 2, 96, "1", "Xing"),
    ("abr", 24000, 2, 48, "2", "Xing"),
]


def id3v2_end(data: bytes) -> int:
    """Where the audio part of a file with one leading ID3v2 tag (no footer) starts."""
    assert data[:3] == b"ID3" and not data[5] & 0x10
    size = 0
    for b in data[6:10]:  # syncsafe: 7 bits a byte
        size = (size << 7) | b
    return 10 + size


@pytest.mark.parametrize(
    ("mode", "rate", "channels", "kbps", "version", "kind"),
    PYAV_FILES,
    ids=[f"{m}-{r}Hz-{'mono' if c == 1 else 'stereo'}" for m, r, c, *_ in PYAV_FILES],
)
def test_files_made_by_ffmpeg_into_a_file(mode, rate, channels, kbps, version, kind):
    """Given a file as FFmpeg writes one into a file (an ID3v2 tag, its Xing/Info frame filled
    in by seeking back at the end, libmp3lame's frames), when analysed, then the header frame
    is trusted (no scan) and left out of the span, the duration is the tone's (the encoder's
    delay and padding trimmed, as a decoder does) and what a decoder plays, and the mode,
    rate and layout are the encoder's."""
    data = make_mp3_with_pyav(
        TONE, sample_rate=rate, channels=channels, mode=mode, bitrate=kbps or 128
    )
    lead = id3v2_end(data)
    header = parse_frame_header(data, lead)
    assert header is not None
    at = lead + 4 + header.side_info_size
    assert data[at : at + 4] == kind.encode()
    assert int.from_bytes(data[at + 8 : at + 12], "big") > 0, "the header's frame count is filled"

    result, reads = analyse(data)

    info = result.info
    assert not result.scanned and reads.scans == []
    assert (info.mpeg_version, info.sample_rate, info.channels) == (version, rate, channels)
    assert info.bitrate_mode == ("CBR" if mode == "cbr" else "VBR")
    if mode == "cbr":
        assert info.bitrate == pytest.approx(kbps * 1000, rel=0.001)
    assert info.duration == pytest.approx(TONE, abs=0.002)
    assert_plays_as_decoded(data, result)
    assert_span(data, result, data[lead + header.length :], lead + header.length)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1)], ids=str)
def test_a_vbr_file_ffmpeg_writes_into_a_pipe_has_no_header_and_is_scanned(rate, channels):
    """Given a VBR file as FFmpeg writes one into a pipe (it cannot seek back to fill a Xing
    frame in, so it writes none), when analysed, then the frames are scanned once and the
    duration is every frame's, what a decoder plays."""
    data = make_mp3_with_pyav(TONE, sample_rate=rate, channels=channels, mode="vbr", seekable=False)
    lead = id3v2_end(data)
    for marker in (b"Xing", b"Info", b"VBRI"):
        assert marker not in data[lead:]
    assert len({h.bitrate for _, h in frames(data, lead)}) > 1

    result, reads = analyse(data)

    assert result.scanned and reads.scans == [(lead, len(data) - 1)]
    assert (result.info.sample_rate, result.info.channels) == (rate, channels)
    assert result.info.bitrate_mode == "VBR"
    assert_plays_as_decoded(data, result)
    assert abs(result.info.duration - true_seconds(data[lead:])) <= one_frame(result.frame)
    # The tone, and the encoder's delay and end padding (under two MPEG-1 frames' samples).
    assert TONE < result.info.duration <= TONE + 2 * 1152 / rate
    assert_span(data, result, data[lead:], lead)


def lame_placeholder(rate: int, channels: int) -> bytes:
    """The frame LAME reserves for its Xing/LAME header, as written before the end of the
    encode: a frame header (128 kbps on MPEG-1, 64 on MPEG-2, 32 on MPEG-2.5), then zeros.
    LAME fills it in by seeking back at the end, which it cannot do on a pipe."""
    kbps = 128 if rate >= 32000 else 64 if rate >= 16000 else 32
    raw = bytearray(encode(1.0, rate, channels, kbps)[:4])
    raw[2] &= ~0x02  # no padding
    length = parse_frame_header(bytes(raw) + bytes(4), 0).length
    return bytes(raw) + bytes(length - 4)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1)], ids=str)
def test_a_vbr_file_lame_writes_into_a_pipe_keeps_an_empty_header_and_is_scanned(rate, channels):
    """Given a VBR file as lame writes one into a pipe (LAME's VBR frames behind the header
    frame it could not go back to fill in: present, but empty), when analysed, then the
    frames are scanned, the empty frame counted as the silence it decodes to, and the
    duration is what a decoder plays."""
    audio = make_mp3(TONE, sample_rate=rate, channels=channels, vbr_quality=4)
    empty = lame_placeholder(rate, channels)
    data = empty + audio
    header = parse_frame_header(data, 0)
    assert header is not None and header.length == len(empty)
    assert not any(data[4 : header.length]), "no Xing marker, no counts"
    assert len({h.bitrate for _, h in frames(audio)}) > 1

    result, reads = analyse(data)

    assert result.scanned and reads.scans == [(0, len(data) - 1)]
    assert (result.info.sample_rate, result.info.channels) == (rate, channels)
    assert result.info.bitrate_mode == "VBR"
    assert_plays_as_decoded(data, result)
    assert abs(result.info.duration - true_seconds(data)) <= one_frame(result.frame)
    # The tone, LAME's delay and end padding (under two MPEG-1 frames' samples), the empty frame.
    assert TONE < result.info.duration <= TONE + (2 * 1152 + header.samples) / rate
    assert_span(data, result, data, 0)


# --- What it costs -----------------------------------------------------------------------


def long_cbr(size: int, rate: int = 44100) -> bytes:
    """A CBR stream of about ``size`` bytes: one short encode's frames, over and over."""
    piece = encode(3.0, rate, 2, 128)
    return piece * (size // len(piece) + 1)


@pytest.mark.parametrize(
    ("size", "rate"), [(8 * MIB, 44100), (100 * MIB, 48000)], ids=["8MB", "100MB"]
)
def test_a_long_cbr_file_costs_three_reads_whatever_its_length(size, rate):
    """Given a long CBR file with ordinary ID3 tags at both ends, when analysed through
    ranged reads, then at most 3 requests and 512 KiB are fetched, nothing is scanned, and
    the duration is still right to the frame."""
    audio = long_cbr(size, rate)
    lead = id3v2(4, **TAGS)
    data = lead + audio + id3v1(**V1_TAGS)

    result, reads = analyse(data)

    assert reads.file.requests <= 3, f"{reads.file.requests} requests"
    assert reads.file.bytes_fetched <= 512 * KIB
    assert reads.scans == []
    assert (result.audio_start, result.audio_end) == (len(lead), len(lead) + len(audio))
    piece = encode(3.0, rate, 2, 128)
    samples = len(audio) // len(piece) * len(frames(piece)) * 1152
    assert abs(result.info.duration - samples / rate) <= one_frame(result.frame)
    assert (result.info.title, result.info.album) == ("Bedtime Story", "Evenings")


def test_a_long_vbr_file_with_a_xing_header_is_not_scanned():
    audio = vbr(44100, 2, HOUSE_VBR_RATES) * 60  # about 8 MB
    count = len(frames(audio))
    xing = header_frame(audio, "Xing", frame_count=count, byte_count=0)
    xing = header_frame(audio, "Xing", frame_count=count, byte_count=len(xing) + len(audio))
    data = id3v2(4, **TAGS) + xing + audio

    result, reads = analyse(data)

    assert reads.scans == [] and not result.scanned
    assert reads.file.requests <= 3
    assert reads.file.bytes_fetched <= 512 * KIB
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)


def test_a_long_vbr_file_without_a_header_is_scanned_once_in_constant_memory():
    """Given 10 MB of VBR without a header, then it is scanned once, sequentially, and the
    analysis holds a small, fixed amount of memory, not the file."""
    audio = vbr(44100, 2, HOUSE_VBR_RATES) * 200
    data = id3v2(4, **TAGS) + audio + id3v1(**V1_TAGS)
    assert len(data) > 9 * MIB

    tracemalloc.start()
    try:
        result, reads = analyse(data, chunk=256 * KIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert reads.scans == [(len(data) - len(audio) - 128, len(data) - 128 - 1)]
    assert result.scanned and result.info.bitrate_mode == "VBR"
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)
    assert peak < 2 * MIB, f"analysis peaked at {peak / MIB:.1f} MiB"
    assert reads.file.bytes_fetched <= 512 * KIB, "the scan is the only long read"


def _cover_art_tag(size: int, *, version: int = 4, album: bool = False) -> bytes:
    from mutagen.id3 import APIC, ID3, TALB, TIT2, TPE1

    tag = ID3()
    tag.add(TIT2(encoding=3, text="Big Book"))
    tag.add(TPE1(encoding=3, text="Dad"))
    picture = b"\xff\xd8\xff\xe0" + random.Random(7).randbytes(size)
    tag.add(APIC(encoding=0, mime="image/jpeg", type=3, desc="cover", data=picture))
    if album:
        tag.add(TALB(encoding=3, text="After The Art"))
    out = io.BytesIO()
    tag.save(out, v2_version=version)
    return out.getvalue()


@pytest.mark.parametrize("version", [3, 4])
def test_cover_art_of_many_megabytes_is_skipped_not_read(version):
    """Given a 5 MB cover picture in the ID3 tag after the title and artist, then the title
    is read, the picture is not (bytes fetched stay far below its size), and the audio and
    its duration are found behind it."""
    tag = _cover_art_tag(5 * MIB, version=version)
    audio = encode(2.0)
    data = tag + audio

    result, reads = analyse(data)

    assert (result.info.title, result.info.artist) == ("Big Book", "Dad")
    assert reads.file.bytes_fetched <= 512 * KIB
    assert reads.file.requests <= 4
    assert_span(data, result, audio, len(tag))
    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame)


def test_a_frame_wanted_after_the_cover_art_is_still_read():
    tag = _cover_art_tag(2 * MIB, album=True)
    data = tag + encode(1.0)
    result, reads = analyse(data)
    assert (result.info.title, result.info.album) == ("Big Book", "After The Art")
    assert reads.file.bytes_fetched <= 512 * KIB


# --- Bad files ---------------------------------------------------------------------------


def test_garbage_before_the_first_frame_is_not_audio():
    junk = random.Random(1).randbytes(5000) + b"\xff\xfb\x90\x64" + b"\x00" * 100
    audio = encode(1.0)
    lead = id3v2(4, **TAGS)
    data = lead + junk + audio

    result, _ = analyse(data)

    assert_span(data, result, audio, len(lead) + len(junk))
    assert result.info.title == "Bedtime Story"


@pytest.mark.parametrize("cut", [1, 100, 300, 416])
def test_a_file_cut_mid_frame_ends_at_its_last_whole_frame(cut):
    """Given an upload cut short inside its last frame, then it is still audio: the span and
    the duration stop at the last whole frame."""
    audio = encode(1.0)
    data = id3v2(4, **TAGS) + audio[:-cut]
    lead = len(data) - len(audio) + cut
    whole = frames(data, lead)
    end = whole[-1][0] + whole[-1][1].length
    assert end < len(data)

    result, _ = analyse(data)

    assert (result.audio_start, result.audio_end) == (lead, end)
    seconds = len(whole) * 1152 / 44100
    assert abs(result.info.duration - seconds) <= one_frame(result.frame)
    assert decoded_samples(data[result.audio_start : result.audio_end]) == len(whole) * 1152


def test_a_vbr_file_cut_mid_frame():
    audio = vbr(44100, 2, HOUSE_VBR_RATES)
    data = audio[:-150]
    whole = frames(data)
    result, reads = analyse(data)
    assert result.scanned and len(reads.scans) == 1
    assert result.audio_end == whole[-1][0] + whole[-1][1].length
    assert result.info.duration == pytest.approx(len(whole) * 1152 / 44100, abs=0.001)


def _lying(kind: str, audio: bytes, factor: float, *, with_bytes: bool) -> bytes:
    count = int(len(frames(audio)) * factor)
    probe = header_frame(audio, kind, frame_count=count, byte_count=0, vbr_scale=kind == "Xing")
    byte_count = len(probe) + len(audio) if with_bytes else None
    return header_frame(
        audio, kind, frame_count=count, byte_count=byte_count, vbr_scale=kind == "Xing"
    )


_UNDETECTABLE = pytest.mark.xfail(
    strict=True,
    reason="a VBR header whose byte count is right and whose frame count gives an average "
    "bitrate MPEG allows is trusted: only a full scan, which the read budget of a Xing/VBRI "
    "file forbids, could tell",
)
LIES = [
    pytest.param(kind, with_bytes, factor, id=f"{name}-x{factor}", marks=marks)
    for kind, with_bytes, name in [
        ("Xing", False, "xing-frames"),
        ("Xing", True, "xing-frames+bytes"),
        ("Info", False, "info-frames"),
        ("Info", True, "info-frames+bytes"),
        ("VBRI", True, "vbri"),
    ]
    for factor in (0.5, 3.0, 40.0)
    for marks in [[_UNDETECTABLE] if with_bytes and kind != "Info" and factor < 40 else []]
]


@pytest.mark.parametrize(("kind", "with_bytes", "factor"), LIES)
def test_a_header_that_lies_about_the_frame_count(kind, with_bytes, factor):
    """Given a header frame whose frame count is wrong (by a factor), then the duration is
    still the true one (the frames are counted instead), and the header frame is still not
    audio. (x40 gives an average bitrate no MPEG stream has.)"""
    audio = vbr(44100, 2, HOUSE_VBR_RATES) if kind != "Info" else encode(2.0)
    liar = _lying(kind, audio, factor, with_bytes=with_bytes)
    data = liar + audio

    result, _ = analyse(data)

    assert abs(result.info.duration - true_seconds(audio)) <= one_frame(result.frame), (
        f"reported {result.info.duration} s for {true_seconds(audio):.3f} s of audio"
    )
    assert_span(data, result, audio, len(liar))


def test_a_xing_header_of_the_whole_file_on_a_cut_file():
    """Given a file cut in half after encoding (its header counts frames and bytes that are
    gone), then the duration is what is left."""
    full = vbr(44100, 2, HOUSE_VBR_RATES)
    count = len(frames(full))
    xing = header_frame(full, "Xing", frame_count=count, byte_count=0)
    xing = header_frame(full, "Xing", frame_count=count, byte_count=len(xing) + len(full))
    left = full[: frames(full)[count // 2][0]]
    data = xing + left
    result, _ = analyse(data)
    assert abs(result.info.duration - true_seconds(left)) <= one_frame(result.frame)


def test_two_files_joined_by_cat_keep_the_first_header():
    """`cat a.mp3 b.mp3`: the first file's Info frame counts only its own frames."""
    a, b = encode(1.0), encode(2.0)
    info = header_frame(a, "Info", frame_count=len(frames(a)), byte_count=0, vbr_scale=False)
    info = header_frame(
        a, "Info", frame_count=len(frames(a)), byte_count=len(info) + len(a), vbr_scale=False
    )
    data = info + a + b
    result, _ = analyse(data)
    assert abs(result.info.duration - true_seconds(a + b)) <= one_frame(result.frame)
    assert_span(data, result, a + b, len(info))


NOT_MP3 = {
    "empty": (b"", "empty"),
    "text": (b"Once upon a time there was a little mp3 that was not.\n" * 200, "not an mp3"),
    "random": (random.Random(3).randbytes(200_000), "not an mp3"),
    "wav": (b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(20_000), "not an mp3"),
    "png": (b"\x89PNG\r\n\x1a\n" + random.Random(4).randbytes(10_000), "not an mp3"),
    "only-id3v2": (id3v2(4, **TAGS), "no audio"),
    "only-stacked-id3v2": (id3v2(4, **TAGS) + id3v2(3, title="x"), "no audio"),
    "id3v2-larger-than-the-file": (b"ID3\x04\x00\x00\x00\x01\x00\x00" + bytes(500), "no audio"),
    "only-id3v1": (id3v1(**V1_TAGS), "not an mp3"),
    "only-tags-both-ends": (id3v2(4, **TAGS) + id3v1(**V1_TAGS), "not an mp3"),
    "junk-longer-than-the-sync-window": (bytes(70 * KIB) + encode(1.0), "not an mp3"),
}


@pytest.mark.parametrize(("data", "says"), NOT_MP3.values(), ids=NOT_MP3.keys())
def test_what_is_not_an_mp3_says_why(data, says):
    with pytest.raises(NotMp3Error) as caught:
        analyse(data)
    assert says in caught.value.message.lower()


def test_a_file_of_one_or_two_frames_is_audio():
    audio = encode(0.02)
    for n in (1, 2):
        piece = b"".join(audio[pos : pos + h.length] for pos, h in frames(audio)[:n])
        result, _ = analyse(piece)
        assert (result.audio_start, result.audio_end) == (0, len(piece))
        assert result.info.duration == pytest.approx(n * 1152 / 44100, abs=0.001)


_SEED_FILES = {
    "tagged-cbr": lambda: id3v2(4, **TAGS) + encode(0.5) + id3v1(**V1_TAGS),
    "xing-vbr": lambda: (
        header_frame(vbr(22050, 1, (32, 96)), "Xing", frame_count=40, byte_count=9000)
        + vbr(22050, 1, (32, 96))
    ),
    "ape-lyrics": lambda: encode(0.5, 8000, 1, 16) + apev2(APE_ITEMS, header=True) + lyrics3v2("x"),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(_SEED_FILES)),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["overwrite", "insert", "delete", "truncate"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=64),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_a_damaged_file_is_audio_or_not_never_a_crash(seed, edits):
    """Given a real MP3 damaged anywhere (bytes overwritten, inserted, removed, cut), then
    analysis either says why it is not an MP3 or describes audio that is really there: a
    span inside the file that starts on a frame header, and a positive duration."""
    data = bytearray(_SEED_FILES[seed]())
    for op, where, junk in edits:
        at = int(where * len(data))
        if op == "overwrite":
            data[at : at + len(junk)] = junk
        elif op == "insert":
            data[at:at] = junk
        elif op == "delete":
            del data[at : at + len(junk)]
        else:
            del data[at:]
    data = bytes(data)
    try:
        result, _ = analyse(data)
    except NotMp3Error as exc:
        assert exc.message
        return
    assert 0 <= result.audio_start < result.audio_end <= len(data)
    assert parse_frame_header(data, result.audio_start) is not None
    assert result.info.duration > 0
    assert result.info.bitrate > 0
