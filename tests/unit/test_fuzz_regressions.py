"""What ``make fuzz`` (``bench/fuzz``) found, kept as fast examples: each input that once
made a parser raise what it must not (a 500 for the client) or answer wrongly, shortened by
hand, with the answer now given. Beside them, a few of the fuzzer's worst-case inputs at a
size CI runs quickly, so that the corpus holds what the parsers are built to survive.

Every input is written here or made deterministically (lameenc and PyAV encode a tone);
none depends on time: the fuzzer's linear-time check stays in ``bench/``.
"""

from __future__ import annotations

import base64
import io
import struct
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from smart_stream.audio.analysis import analyse_mp3, analyse_upload
from smart_stream.audio.formats import FFMPEG_MAX_ALLOC, limit_ffmpeg_allocations, probe
from smart_stream.audio.frames import (
    find_frame_run,
    parse_frame_header,
    skip_id3v2,
    whole_frames,
)
from smart_stream.audio.ranged_file import RangedFile
from smart_stream.audio.tags import WHOLE_TAG_LIMIT, read_tags
from smart_stream.bootstrap import services
from smart_stream.device.conditions import (
    Outcome,
    evaluate_preconditions,
    parse_etags,
    parse_range,
    select_range,
)
from smart_stream.domain.errors import (
    BadRequestError,
    ConversionError,
    InvalidQueryError,
    PreconditionFailedError,
)
from smart_stream.domain.records import AudioStatus
from smart_stream.http.multipart import parse_upload
from smart_stream.http.requests import decode_token, encode_token
from tests.audio import SOURCES, make_audio, make_mp3

ETAG = '"5d41402abc4b2a76b9719d911017c592"'
LAST_MODIFIED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
#: MPEG-1 Layer III, 128 kbps, 44.1 kHz, stereo, no CRC: 417-byte frames, 32 bytes of side
#: information after the header.
HOUSE_HEADER = b"\xff\xfb\x90\x00"


def syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3v2_frame(frame_id: bytes, data: bytes) -> bytes:
    return frame_id + syncsafe(len(data)) + b"\x00\x00" + data


def id3v2_tag(body: bytes) -> bytes:
    return b"ID3\x04\x00\x00" + syncsafe(len(body)) + body


# --- Range and conditional headers (device.conditions) ----------------------------------------

#: Dates with a field of more digits than a C long: parsedate_to_datetime raised
#: OverflowError, which escaped as a 500 from the device routes.
HUGE_DATES = [
    "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
    "Mon, 99999999999999999999 Jan 2024 00:00:00 GMT",
    "Mon, 01 Jan 2024 99999999999999999999:00:00 GMT",
    "Mon, 01 Jan 2024 00:00:00 +99999999999999999999",
    "Sunday, 93 Jan 4503599627370495 46:63:30 ",  # as the fuzzer first sent it
]


@pytest.mark.parametrize("date", HUGE_DATES)
@pytest.mark.parametrize("header", ["if-modified-since", "if-unmodified-since"])
def test_a_date_too_big_to_read_is_ignored(header, date):
    """Given a conditional date no clock can hold, the request proceeds as if it were absent
    (RFC 9110 13.1.3/13.1.4: an invalid date is ignored)."""
    assert evaluate_preconditions({header: date}, ETAG, LAST_MODIFIED) is Outcome.PROCEED


@pytest.mark.parametrize("date", HUGE_DATES)
def test_an_if_range_date_too_big_to_read_sends_the_whole_file(date):
    headers = {"range": "bytes=0-9", "if-range": date}
    assert select_range(headers, 100, ETAG, LAST_MODIFIED) is None


def test_a_range_number_longer_than_int_takes_is_ignored():
    assert parse_range("bytes=" + "1" * 100_000 + "-", 10**9) is None


def test_many_ranges_are_answered_whole():
    assert parse_range("bytes=" + "0-1," * 25_000 + "0-1", 10**9) is None


def test_a_long_if_none_match_list_still_matches_its_last_tag():
    header = '"abc", ' * 10_000 + ETAG
    assert evaluate_preconditions({"if-none-match": header}, ETAG, LAST_MODIFIED) is (
        Outcome.NOT_MODIFIED
    )


@pytest.mark.parametrize("header", ['"' + "a" * 100_000, "x," * 50_000, " " * 100_000 + "x"])
def test_a_long_malformed_tag_list_holds_no_tag(header):
    assert parse_etags(header) == []
    with pytest.raises(PreconditionFailedError):
        evaluate_preconditions({"if-match": header}, ETAG, LAST_MODIFIED)


# --- MPEG frames and ID3 tags (audio.frames, audio.tags) ---------------------------------------


def test_a_run_of_sync_bytes_is_not_audio_and_is_passed_on_whole():
    data = b"\xff" * 10_000
    assert find_frame_run(data) is None
    assert b"".join(whole_frames(iter([data[:4001], data[4001:]]))) == data


def test_headers_that_never_make_a_run_are_not_audio():
    assert parse_frame_header(HOUSE_HEADER) is not None
    assert find_frame_run(HOUSE_HEADER * 2_500) is None


def test_stacked_empty_id3v2_tags_are_all_skipped():
    empty = id3v2_tag(b"")
    assert skip_id3v2(empty * 1_000 + HOUSE_HEADER) == 10_000


def test_a_title_behind_thousands_of_tiny_frames_in_a_big_tag_is_found():
    filler = id3v2_frame(b"TXXX", b"") * (WHOLE_TAG_LIMIT // 10 + 1)
    tag = id3v2_tag(filler + id3v2_frame(b"TIT2", b"\x03Found"))
    data = tag + make_mp3(0.1)
    f = RangedFile(lambda start, end: data[start : end + 1], len(data))
    assert read_tags(f, len(tag), len(data)) == {"title": "Found"}


# --- What a file is (audio.analysis, audio.formats) --------------------------------------------


def three_frames() -> bytes:
    """Three whole house frames of a real encode (lameenc writes no header frame)."""
    data = make_mp3(0.2)
    end = 0
    for _ in range(3):
        header = parse_frame_header(data, end)
        assert header is not None and header.is_house
        end += header.length
    return data[:end]


def info_frame(frames: int, size: int, *, delay: int, padding: int) -> bytes:
    """An Info header frame as FFmpeg writes one (frame and byte counts, then a LAME-style
    extension naming "Lavc", whose delay and padding decoders trim), counts as given."""
    fields = b"Info" + struct.pack(">III", 0x3, frames, size)
    trim = bytes([delay >> 4, (delay & 0xF) << 4 | padding >> 8, padding & 0xFF])
    fields += b"Lavc60.31" + bytes(12) + trim
    return (HOUSE_HEADER + bytes(32) + fields).ljust(417, b"\x00")


def vbri_frame(frames: int, size: int) -> bytes:
    """A VBRI header frame (Fraunhofer's, at offset 36) with the counts given."""
    fields = struct.pack(">4sHHHIIHHHH", b"VBRI", 1, 0, 50, size, frames, 0, 1, 2, 1)
    return (HOUSE_HEADER + bytes(32) + fields).ljust(417, b"\x00")


def test_a_header_that_trims_more_than_its_stream_holds_is_not_trusted():
    """Given an Info frame whose encoder delay and padding (4095 + 4095 samples) exceed the
    3 frames it counts, the frames are counted instead: the duration was negative."""
    audio = three_frames()
    data = info_frame(3, len(audio), delay=4095, padding=4095) + audio
    result = analyse_upload(io.BytesIO(data))
    assert result.scanned
    assert result.info.duration == round(3 * 1152 / 44100, 3)


@pytest.mark.parametrize("size", [0, 1])
def test_a_vbri_header_with_an_absurd_byte_count_is_not_trusted(size):
    """Given a VBRI frame that says its 3 frames hold 0 or 1 byte, the frames are counted:
    the bitrate was 0 (or 102) bits per second, which four frames' tolerance let through."""
    audio = three_frames()
    result = analyse_upload(io.BytesIO(vbri_frame(3, size) + audio))
    assert result.scanned
    assert result.info.bitrate is not None and 120_000 <= result.info.bitrate <= 136_000
    assert result.info.duration == round(3 * 1152 / 44100, 3)


def test_a_stack_of_trailing_tags_is_walked_a_window_at_a_time():
    """Given 1,000 APE footers and 1,000 ID3v1 tags behind a second of audio, the audio ends
    where the tags begin, and the tail is read a 64 KiB window at a time (in 4 KiB blocks:
    3 requests with the head's), not a block per tag (10). Each tag also cost a copy of the
    whole window: 1 MB of such footers took 0.7 s to walk, now 0.13 s (bench/fuzz)."""
    audio = make_mp3(1.0)
    ape_footer = struct.pack("<8sIIII8s", b"APETAGEX", 2000, 32, 0, 0, bytes(8))
    data = audio + ape_footer * 1_000 + (b"TAG" + bytes(125)) * 1_000
    f = RangedFile(lambda start, end: data[start : end + 1], len(data), block_size=4096)
    result = analyse_mp3(f, lambda start, end: [data[start : end + 1]])
    assert (result.audio_start, result.audio_end) == (0, len(audio))
    assert f.requests <= 4


#: "Grandma Bär" with its "ä" written as two Latin-1 bytes (b"\xe4\xe4" in place of UTF-8's
#: b"\xc3\xa4", so every length in the file still holds): tags as old tools write them.
LATIN1_ARTIST = b"Grandma B\xe4\xe4r"
TAGGED = ["flac", "m4a", "wav", "aiff", "webm_opus", "mp3_22k_mono"]


def latin1_tagged(source: str) -> bytes:
    data = make_audio(replace(SOURCES[source], seconds=0.2))
    assert data.count("Grandma Bär".encode()) == 1
    return data.replace("Grandma Bär".encode(), LATIN1_ARTIST)


@pytest.mark.parametrize("source", TAGGED)
def test_a_tag_that_is_not_utf8_is_read_with_replacement_characters(source):
    """PyAV decoded tags strictly as UTF-8: its UnicodeDecodeError escaped the probe."""
    found = probe(io.BytesIO(latin1_tagged(source)))
    assert found.artist == "Grandma B\ufffd\ufffdr"
    assert found.title == "Grandma's story"


def test_an_mp3_title_frame_that_is_not_utf8_is_read_with_replacement_characters():
    title = id3v2_frame(b"TIT2", b"\x03Bad \xe4\xe4 title")  # says UTF-8, holds Latin-1
    data = id3v2_tag(title) + make_mp3(0.2, sample_rate=22050, channels=1, bitrate=32)
    assert probe(io.BytesIO(data)).title == "Bad \ufffd\ufffd title"


def test_an_upload_with_a_tag_that_is_not_utf8_is_taken(local_env):
    data = latin1_tagged("flac")
    record = services().library.upload(
        "Voice memo.flac", io.BytesIO(data), len(data), overwrite=False
    )
    assert record.filename == "Voice memo.mp3"
    assert record.status is AudioStatus.CONVERTING


def tiny_wav_claiming_gigabytes() -> bytes:
    """63 bytes: a WAV whose LIST chunk states 4 GB and whose INFO entry in it states
    1.3 GB, with no audio: FFmpeg allocated and zeroed the entry's stated size before finding
    that there was nothing to read (1.3 GB of memory for 63 bytes)."""
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 2, 44100, 44100 * 4, 4, 16)
    info = b"INFO" + b"IART" + struct.pack("<I", 0x5000_0000) + b"Grandma"
    body = b"WAVE" + fmt + b"LIST" + struct.pack("<I", 0xFFFF_FF00) + info
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_a_wav_that_claims_gigabytes_is_refused_without_taking_them():
    """The outcome was the same before (refused as corrupt), after FFmpeg had taken 1.3 GB:
    what shows the difference without taking it is that FFmpeg now refuses any allocation
    past the cap, once the app has opened a file."""
    import av

    if sys.platform != "linux":
        pytest.skip("the cap is set through /proc/self/maps, which only Linux has")
    with pytest.raises(ConversionError) as refused:
        probe(io.BytesIO(tiny_wav_claiming_gigabytes()))
    assert refused.value.kind == "corrupt"
    assert limit_ffmpeg_allocations()
    with pytest.raises(MemoryError):
        av.Packet(FFMPEG_MAX_ALLOC + 1)


# --- Multipart uploads (http.multipart) ---------------------------------------------------------

BOUNDARY = "----fuzzBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FILE_HEAD = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n'
FILE_TAIL = f"\r\n--{BOUNDARY}--\r\n"


def one_file(content: bytes) -> bytes:
    return FILE_HEAD.encode() + content + FILE_TAIL.encode()


@pytest.mark.parametrize(
    "content",
    [
        f"\r\n--{BOUNDARY[:-1]}".encode() * 2_500,  # delimiters that almost match
        b"\r\n" * 50_000,
        b"-" * 100_000,
    ],
)
def test_a_file_full_of_near_delimiters_arrives_whole(content):
    upload = parse_upload(CONTENT_TYPE, one_file(content))
    assert upload.filename == "a.mp3"
    assert upload.size == len(content)
    assert upload.source.read() == content


def test_a_file_after_thousands_of_small_fields_is_found():
    field = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
    upload = parse_upload(CONTENT_TYPE, field.encode() * 2_000 + one_file(b"audio"))
    assert (upload.filename, upload.source.read()) == ("a.mp3", b"audio")


def test_a_header_line_longer_than_the_parser_takes_is_400():
    body = f"--{BOUNDARY}\r\nX-Long: ".encode() + b"a" * 100_000 + b"\r\n" + one_file(b"x")[2:]
    with pytest.raises(BadRequestError):
        parse_upload(CONTENT_TYPE, body)


@pytest.mark.parametrize("cut", [len(FILE_HEAD) + 3, len(FILE_HEAD) + 5 + len(BOUNDARY)])
def test_a_body_cut_short_is_refused_not_stored_short(cut):
    with pytest.raises(BadRequestError):
        parse_upload(CONTENT_TYPE, one_file(b"abc")[:cut])


# --- The list's next_token (http.requests) ------------------------------------------------------


def token(document: bytes) -> str:
    return base64.urlsafe_b64encode(document).decode().rstrip("=")


def test_a_token_naming_a_lone_surrogate_is_400():
    """Fuzz finding: a lone surrogate, written as a JSON escape, was handed to the catalogue,
    which cannot encode it (a 500 from SQLite)."""
    forged = token(b'{"after": "\\udcb8"}')
    assert forged == "eyJhZnRlciI6ICJcdWRjYjgifQ"
    with pytest.raises(InvalidQueryError):
        decode_token(forged)


@pytest.mark.parametrize(
    "document",
    [b"[" * 100_000, b'{"after":' * 10_000, b'{"after": NaN}', b'{"after": ["a"]}', b"\xff"],
)
def test_a_forged_token_is_400(document):
    with pytest.raises(InvalidQueryError):
        decode_token(token(document))


@pytest.mark.parametrize("name", ["a" * 100_000, "é" * 10_000, "Grandma's story.mp3"])
def test_a_token_gives_back_the_name_it_was_made_from(name):
    assert decode_token(encode_token(name)) == name


def test_a_token_with_extra_keys_gives_its_name():
    document = '{"after": "a.mp3", ' + '"k": 1, ' * 10_000 + '"z": 0}'
    assert decode_token(token(document.encode())) == "a.mp3"
