"""The building blocks of MP3-like inputs: real files made in this process (lameenc, PyAV),
and the structures the parsers look for (frame headers, ID3v2 tags and frames, Xing/Info,
VBRI, ID3v1, APEv2, Lyrics3v2), each with fields that may lie: sizes far past the end of
the file, counts that disagree with the bytes, flags nobody sets.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import replace

from hypothesis import strategies as st

from smart_stream.audio.frames import parse_frame_header

#: MPEG-1 Layer III, 128 kbps, 44.1 kHz, stereo, no CRC: the house format's commonest frame.
HOUSE_HEADER = b"\xff\xfb\x90\x00"


def syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3v2_header(size: int, major: int = 4, flags: int = 0, raw: bool = False) -> bytes:
    """An ID3v2 header claiming ``size`` bytes of body (``raw``: the size not syncsafe)."""
    size_bytes = (size & 0xFFFFFFFF).to_bytes(4, "big") if raw else syncsafe(size)
    return b"ID3" + bytes([major & 0xFF, 0, flags & 0xFF]) + size_bytes


def id3v2_frame(frame_id: bytes, data: bytes, major: int = 4, length: int | None = None) -> bytes:
    """One ID3v2.3/2.4 frame; ``length`` may lie about the data that follows."""
    n = len(data) if length is None else length
    size = syncsafe(n) if major == 4 else (n & 0xFFFFFFFF).to_bytes(4, "big")
    return frame_id[:4].ljust(4, b"\x00") + size + b"\x00\x00" + data


def frame(header: bytes, fill: bytes = b"\x00") -> bytes:
    """A whole frame behind ``header`` (filled with ``fill``), or the header alone if it is
    not one."""
    parsed = parse_frame_header(header)
    if parsed is None:
        return header
    body = (fill or b"\x00") * (parsed.length // max(1, len(fill)) + 1)
    return header + body[: parsed.length - 4]


def xing_frame(
    header: bytes,
    marker: bytes = b"Info",
    flags: int = 0x0F,
    frames: int = 0,
    size: int = 0,
    encoder: bytes = b"LAME3.100",
    delay: int = 576,
    padding: int = 0,
) -> bytes:
    """A Xing/Info header frame with the counts given (true or not) and a LAME-style
    extension naming ``encoder``, with its delay and padding fields."""
    parsed = parse_frame_header(header)
    if parsed is None:
        return header
    side = 4 + (2 if parsed.protected else 0) + parsed.side_info_size
    body = bytearray(max(parsed.length, side + 160))
    body[:4] = header
    fields = struct.pack(">4sI", marker, flags & 0xFFFFFFFF)
    if flags & 1:
        fields += struct.pack(">I", frames & 0xFFFFFFFF)
    if flags & 2:
        fields += struct.pack(">I", size & 0xFFFFFFFF)
    if flags & 4:
        fields += bytes(range(100))
    if flags & 8:
        fields += struct.pack(">I", 50)
    ext = encoder[:9].ljust(9, b" ") + bytes(12)
    ext += bytes(
        [(delay >> 4) & 0xFF, ((delay & 0xF) << 4) | ((padding >> 8) & 0xF), padding & 0xFF]
    )
    fields += ext
    body[side : side + len(fields)] = fields
    return bytes(body[: max(parsed.length, 4)])


def vbri_frame(header: bytes, frames: int, size: int, entries: int = 0, scale: int = 1) -> bytes:
    """A VBRI header frame (Fraunhofer's) at its fixed offset 36, with counts as given."""
    parsed = parse_frame_header(header)
    length = parsed.length if parsed is not None else 4
    body = bytearray(max(length, 36 + 26 + 2 * entries))
    body[:4] = header
    body[36:62] = struct.pack(
        ">4sHHHIIHHHH",
        b"VBRI",
        1,
        0,
        50,
        size & 0xFFFFFFFF,
        frames & 0xFFFFFFFF,
        entries & 0xFFFF,
        scale & 0xFFFF,
        2,
        1,
    )
    return bytes(body[: max(length, 62)])


def id3v1(title: bytes = b"Title") -> bytes:
    return b"TAG" + title[:30].ljust(30, b"\x00") + bytes(95)


def ape_footer(size: int, has_header: bool = False) -> bytes:
    flags = 0x80000000 if has_header else 0
    return struct.pack("<8sIIII8s", b"APETAGEX", 2000, size & 0xFFFFFFFF, 0, flags, bytes(8))


def lyrics3(size: int) -> bytes:
    return f"{size % 1_000_000:06d}".encode() + b"LYRICS200"


def id3v2_footer(size: int) -> bytes:
    return b"3DI\x04\x00\x10" + syncsafe(size)


# --------------------------------------------------------------------------- strategies


def frame_headers() -> st.SearchStrategy[bytes]:
    """Four bytes that start with a sync word: mostly valid headers, some not."""
    return st.one_of(
        st.just(HOUSE_HEADER),
        st.builds(
            lambda b1, b2, b3: bytes([0xFF, 0xE0 | b1, b2, b3]),
            st.integers(0, 31),
            st.integers(0, 255),
            st.integers(0, 255),
        ),
    )


_TEXT_IDS = [b"TIT2", b"TPE1", b"TALB", b"TXXX", b"APIC", b"COMM", b"TIT1", b"\x00\x00\x00\x00"]


def id3v2_frames() -> st.SearchStrategy[bytes]:
    text = st.builds(
        lambda encoding, body: bytes([encoding]) + body,
        st.integers(0, 5),
        st.one_of(
            st.binary(max_size=24),
            st.sampled_from(
                [b"T\x00i\x00", b"\xff\xfeT\x00\x00\xd8", b"\xfe\xff\xd8\x00", b"\xc3"]
            ),
        ),
    )
    return st.builds(
        id3v2_frame,
        st.one_of(st.sampled_from(_TEXT_IDS), st.binary(min_size=4, max_size=4)),
        text,
        st.sampled_from([3, 4]),
        st.one_of(st.none(), st.integers(0, 2**28), st.integers(0, 40)),
    )


def id3v2_tags() -> st.SearchStrategy[bytes]:
    """An ID3v2 tag whose header may lie about its size, with a few frames."""
    body = st.lists(id3v2_frames(), max_size=4).map(b"".join)

    def build(major: int, flags: int, size: int | None, raw: bool, frames: bytes) -> bytes:
        return id3v2_header(len(frames) if size is None else size, major, flags, raw) + frames

    return st.builds(
        build,
        st.sampled_from([2, 3, 4, 4, 0, 5, 0xFF]),
        st.one_of(st.just(0), st.sampled_from([0x10, 0x40, 0x80, 0xC0, 0xFF])),
        st.one_of(st.none(), st.integers(0, 2**28 - 1), st.integers(0, 64), st.just(300_000)),
        st.booleans(),
        body,
    )


def header_frames() -> st.SearchStrategy[bytes]:
    """Xing/Info and VBRI frames whose counts may lie."""
    counts = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 100), st.integers(0, 50_000))
    xing = st.builds(
        xing_frame,
        frame_headers(),
        st.sampled_from([b"Info", b"Xing"]),
        st.integers(0, 15) | st.integers(0, 2**32 - 1),
        counts,
        counts,
        st.sampled_from([b"LAME3.100", b"Lavc60.31", b"Lavf58.76", b"L3.99r", b"\x00" * 9, b"abc"]),
        st.integers(0, 4095),
        st.integers(0, 4095),
    )
    vbri = st.builds(vbri_frame, frame_headers(), counts, counts, st.integers(0, 40), counts)
    return xing | vbri


def trailing_tags() -> st.SearchStrategy[bytes]:
    sizes = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 300))
    return st.one_of(
        st.builds(id3v1, st.binary(max_size=30)),
        st.builds(ape_footer, sizes, st.booleans()),
        st.builds(lyrics3, sizes),
        st.builds(id3v2_footer, st.integers(0, 2**28 - 1) | st.integers(0, 300)),
    )


def frame_runs() -> st.SearchStrategy[bytes]:
    """The same whole frame one to five times: what makes a run."""
    return st.builds(
        lambda header, fill, times: frame(header, fill) * times,
        frame_headers(),
        st.binary(max_size=3),
        st.integers(1, 5),
    )


# --------------------------------------------------------------------------- real files


@functools.cache
def seeds() -> dict[str, bytes]:
    """Short real files, made once per run: MP3s as lameenc and FFmpeg (PyAV) write them,
    tagged and not, CBR, VBR and ABR, MPEG-1, 2 and 2.5; and every other format the upload
    route takes (and one it does not), as FFmpeg's muxers write them."""
    from tests.audio import SOURCES, add_id3, make_audio, make_mp3, make_mp3_with_pyav

    made = {
        "lame-cbr-tagged": make_mp3(0.3, title="Title", artist="Artist", album="Album"),
        "lame-vbr": make_mp3(0.3, vbr_quality=2),
        "lame-22k-mono": make_mp3(0.3, sample_rate=22050, channels=1, bitrate=32),
        "lame-8k-mono": make_mp3(0.3, sample_rate=8000, channels=1, bitrate=16),
        "lame-48k": make_mp3(0.2, sample_rate=48000, bitrate=160),
        "ffmpeg-cbr": make_mp3_with_pyav(0.3),
        "ffmpeg-vbr": make_mp3_with_pyav(0.3, mode="vbr"),
        "ffmpeg-abr": make_mp3_with_pyav(0.3, mode="abr"),
        "ffmpeg-pipe": make_mp3_with_pyav(0.3, seekable=False),
    }
    cbr = make_mp3(0.2)
    made["trailing-tags"] = add_id3(cbr, title="T") + ape_footer(32) + lyrics3(0) + id3v1()
    for name in ("m4a", "adts", "flac", "wav", "aiff", "ogg_vorbis", "ogg_opus", "webm_opus"):
        made[name] = make_audio(replace(SOURCES[name], seconds=0.1))
    made["wma"] = make_audio(replace(SOURCES["wma"], seconds=0.1))
    return made


@functools.cache
def clip() -> bytes:
    """A short CBR stream of house frames, no tags: what the worst-case shapes repeat."""
    from tests.audio import make_mp3

    return make_mp3(0.5)


@functools.cache
def vbr_clip() -> bytes:
    from tests.audio import make_mp3

    return make_mp3(0.5, vbr_quality=2)


def repeat_to(block: bytes, n: int) -> bytes:
    """``block`` repeated whole to about ``n`` bytes (at least once)."""
    return block * max(1, n // len(block))
