"""MPEG audio frame headers and ID3v2 sizes, checked on real MP3s made by lameenc and decoded
by FFmpeg (PyAV): if these are wrong, queues are joined off a frame boundary and durations lie."""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smart_stream.audio.frames import (
    FrameHeader,
    find_frame_run,
    id3v2_size,
    parse_frame_header,
    skip_id3v2,
)
from tests.audio import add_id3, decode_pcm, make_mp3

# (MPEG version, sample rate, bitrates in kbps that version allows for layer III)
STREAMS = [
    ("1", 32000, (32, 128, 320)),
    ("1", 44100, (64, 128, 256)),
    ("1", 48000, (96, 192)),
    ("2", 16000, (8, 64, 160)),
    ("2", 22050, (32, 96)),
    ("2", 24000, (48, 128)),
    ("2.5", 8000, (8, 32)),
    ("2.5", 11025, (16, 48)),
    ("2.5", 12000, (24, 64)),
]
CASES = [
    pytest.param(version, rate, channels, kbps, id=f"mpeg{version}-{rate}-{channels}ch-{kbps}k")
    for version, rate, bitrates in STREAMS
    for channels in (1, 2)
    for kbps in bitrates
]


def walk_frames(data: bytes, start: int = 0) -> tuple[list[FrameHeader], int]:
    """Every frame from ``start`` by its length; returns the frames and where the walk ended."""
    frames = []
    pos = start
    while pos < len(data):
        header = parse_frame_header(data, pos)
        if header is None:
            break
        frames.append(header)
        pos += header.length
    return frames, pos


@pytest.mark.parametrize(("version", "rate", "channels", "kbps"), CASES)
def test_real_files_of_every_mpeg_version(version, rate, channels, kbps):
    """Given a real CBR file of this version, rate, channel count and bitrate, when its frames
    are found and walked, then they start at 0, describe the stream correctly, end exactly at
    the end of the file, and add up to the duration a real decoder plays."""
    data = make_mp3(0.6, sample_rate=rate, channels=channels, bitrate=kbps)

    found = find_frame_run(data)

    assert found is not None
    offset, first = found
    assert offset == 0
    assert (first.version, first.layer, first.sample_rate, first.channels) == (
        version,
        3,
        rate,
        channels,
    )
    assert first.bitrate == kbps * 1000
    assert first.samples == (1152 if version == "1" else 576)

    frames, end = walk_frames(data)
    assert end == len(data), "walking by frame length must land exactly on the end"
    assert all(frame.same_stream(first) for frame in frames)
    assert {frame.bitrate for frame in frames} == {kbps * 1000}

    decoded = decode_pcm(data)
    assert (decoded.sample_rate, decoded.nchannels) == (rate, channels)
    ours = sum(frame.samples for frame in frames) / rate
    theirs = decoded.num_frames / rate
    assert abs(ours - theirs) <= first.samples / rate


@pytest.mark.parametrize(("version", "rate", "channels", "kbps"), CASES[::4])
def test_the_run_is_found_after_tags_and_junk(version, rate, channels, kbps):
    audio = make_mp3(0.3, sample_rate=rate, channels=channels, bitrate=kbps)
    tag = add_id3(b"", title="Story")
    junk = b"\x00junk\xff\xfb\x90\x00" * 50  # sync-looking headers that lead nowhere
    data = tag + junk + audio
    start = skip_id3v2(data)
    assert start == len(tag)
    found = find_frame_run(data, start)
    assert found is not None
    assert found[0] == len(tag) + len(junk), "the run starts at the first real frame"


def test_frame_lengths_of_known_headers():
    # MPEG-1 layer III, 128 kbps, 44.1 kHz, no padding, stereo: the classic 417-byte frame.
    header = parse_frame_header(b"\xff\xfb\x90\x00")
    assert header == FrameHeader("1", 3, 128000, 44100, False, 2, 417, 1152)
    # The same with the padding bit: one byte more.
    assert parse_frame_header(b"\xff\xfb\x92\x00").length == 418
    # Mono (channel mode 3).
    assert parse_frame_header(b"\xff\xfb\x90\xc0").channels == 1
    # MPEG-2 layer III, 64 kbps, 22.05 kHz: 72 * 64000 // 22050 = 208.
    assert parse_frame_header(b"\xff\xf3\x80\x00") == FrameHeader(
        "2", 3, 64000, 22050, False, 2, 208, 576
    )
    # MPEG-2.5 layer III, 8 kbps, 8 kHz: 72 bytes.
    assert parse_frame_header(b"\xff\xe3\x18\x00").length == 72


@pytest.mark.parametrize(
    "header",
    [
        b"\xff\xfb\x00\x00",  # free format: length unknown
        b"\xff\xfb\xf0\x00",  # bitrate index 15 is invalid
        b"\xff\xfb\x9c\x00",  # sample rate index 3 is reserved
        b"\xff\xeb\x90\x00",  # MPEG version 1 (binary 01) is reserved
        b"\xff\xf9\x90\x00",  # layer 0 is reserved
        b"\xff\xfb\x90\x02",  # emphasis 2 is reserved
        b"\xfe\xfb\x90\x00",  # no sync
        b"\xff\xdb\x90\x00",  # 11 sync bits are not all set
        b"\xff\xfb\x90",  # too short
        b"",
    ],
)
def test_invalid_headers_are_refused(header):
    assert parse_frame_header(header) is None


@given(st.binary(max_size=4096), st.integers(min_value=-8, max_value=4100))
@example(b"\xff\xfb\x90\x00", 0)
@example(b"\xff\xfb\x90\x00" * 3, 1)
def test_random_bytes_never_crash_the_header_parser(data, offset):
    header = parse_frame_header(data, offset)
    if header is not None:
        assert 0 <= offset <= len(data) - 4
        assert data[offset] == 0xFF
        assert header.length > 4
        assert header.layer in (1, 2, 3)
        assert header.version in ("1", "2", "2.5")


_REAL = make_mp3(0.3, sample_rate=22050, channels=1, bitrate=32)
# Pieces of a real file (whole frames, headers, arbitrary slices) among random bytes, so that
# the finder meets near-misses and not only noise.
_pieces = st.one_of(
    st.binary(max_size=300),
    st.integers(0, len(_REAL) - 1).flatmap(
        lambda a: st.integers(a, len(_REAL)).map(lambda b: _REAL[a:b])
    ),
    st.just(_REAL[:4]),
)
mixed_bytes = st.lists(_pieces, max_size=8).map(b"".join)


@given(st.binary(max_size=4096) | mixed_bytes, st.integers(min_value=0, max_value=4096))
@example(_REAL, 0)
@example(b"\x00" * 7 + _REAL[:600], 3)
def test_random_bytes_never_crash_the_run_finder(data, start):
    """Whatever it finds is a real run: the header there parses, and the next frame (unless
    the data ends exactly there) belongs to the same stream."""
    found = find_frame_run(data, start)
    if found is None:
        return
    pos, header = found
    assert pos >= start
    assert parse_frame_header(data, pos) == header
    following = pos + header.length
    assert following <= len(data)
    if following < len(data):
        assert header.same_stream(parse_frame_header(data, following))


def test_a_lone_frame_header_in_noise_is_not_a_run():
    noise = bytes(range(256)) * 4
    data = noise[:100] + b"\xff\xfb\x90\x00" + noise[:500]
    assert find_frame_run(data) is None
    assert find_frame_run(data, run=1) == (100, parse_frame_header(b"\xff\xfb\x90\x00"))


def test_a_run_cut_short_by_the_end_of_the_data_counts_when_it_ends_on_a_frame():
    audio = make_mp3(0.2)
    first = parse_frame_header(audio)
    assert find_frame_run(audio[: first.length]) == (0, first)
    # Cut in the middle of the second frame: no whole frames follow, so no run.
    assert find_frame_run(audio[: first.length + 10]) is None


# --- ID3v2 ------------------------------------------------------------------------------------


def _syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


@given(st.integers(min_value=0, max_value=2**28 - 1), st.sampled_from([2, 3, 4]))
def test_id3v2_size_reads_syncsafe_sizes(body, major):
    header = b"ID3" + bytes([major, 0, 0]) + _syncsafe(body)
    assert id3v2_size(header) == 10 + body
    assert id3v2_size(b"xx" + header, 2) == 10 + body


def test_id3v2_footer_is_counted_in_version_4_only():
    body = b"\x00" * 20
    v24 = b"ID3\x04\x00\x10" + _syncsafe(len(body)) + body + b"3DI\x04\x00\x10" + _syncsafe(20)
    assert id3v2_size(v24) == 10 + 20 + 10
    # In ID3v2.3 that flag bit means nothing: no footer.
    v23 = b"ID3\x03\x00\x10" + _syncsafe(len(body)) + body
    assert id3v2_size(v23) == 10 + 20
    audio = make_mp3(0.2)
    assert skip_id3v2(v24 + audio) == len(v24)
    assert find_frame_run(v24 + audio, skip_id3v2(v24 + audio))[0] == len(v24)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"ID3",
        b"ID3\x04\x00\x00\x00\x00",  # shorter than a header
        b"ID3\x04\x00\x00\x00\x00\x00\x80",  # a size byte with the top bit: not syncsafe
        b"ID3\xff\x00\x00\x00\x00\x00\x10",  # major version 0xFF is invalid
        b"TAG" + b"\x00" * 125,  # ID3v1 lives at the end, not here
        b"\xff\xfb\x90\x00" * 4,
    ],
)
def test_not_an_id3v2_tag(data):
    assert id3v2_size(data) == 0
    assert skip_id3v2(data) == 0


def test_stacked_tags_written_by_mutagen_are_all_skipped():
    """Some tools prepend a second tag instead of editing the first: both must go."""
    audio = make_mp3(0.3)
    once = add_id3(audio, title="Inner", artist="Someone")
    twice = add_id3(once, title="Outer", album="Collected")
    thrice = add_id3(twice, artist="Again")
    for data in (once, twice, thrice):
        assert skip_id3v2(data) == len(data) - len(audio)
        assert find_frame_run(data, skip_id3v2(data))[0] == len(data) - len(audio)
    first = id3v2_size(thrice)
    assert first == len(thrice) - len(twice)
    assert skip_id3v2(thrice, first) == len(thrice) - len(audio)


def test_mutagen_tag_with_a_footer():
    """A v2.4 tag with the footer flag (written by mutagen, footer appended by hand as mutagen
    does not write footers): the footer's 10 bytes are skipped too."""
    from mutagen.id3 import ID3, TIT2

    tag = ID3()
    tag.add(TIT2(encoding=3, text="With footer"))
    out = io.BytesIO()
    tag.save(out, v2_version=4, padding=lambda info: 0)
    raw = out.getvalue()
    flagged = raw[:5] + bytes([raw[5] | 0x10]) + raw[6:]
    footer = b"3DI" + flagged[3:10]
    audio = make_mp3(0.2)
    data = flagged + footer + audio
    assert id3v2_size(data) == len(flagged) + 10
    assert skip_id3v2(data) == len(data) - len(audio)


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=210))
def test_random_bytes_never_crash_the_tag_skipper(data, offset):
    end = skip_id3v2(data, offset)
    assert end >= offset
    assert id3v2_size(data, offset) >= 0
