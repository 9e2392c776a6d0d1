"""Any audio in: probe (what an upload is, by its content) and convert (a house MP3 from it,
streamed), on files made in the tests by PyAV's own encoders in every accepted format, and
on truncated, corrupt and foreign ones."""

from __future__ import annotations

import io
import itertools
import math
import random
from typing import Any

import pytest

from smart_stream.audio.analysis import analyse_upload
from smart_stream.audio.convert import (
    ACCEPTED_EXTENSIONS,
    ACCEPTED_FORMATS,
    Converted,
    Probe,
    convert,
    probe,
)
from smart_stream.audio.frames import id3v2_size
from smart_stream.domain.errors import (
    ConversionError,
    ObjectChangedError,
    UnsupportedAudioError,
    UnsupportedMediaTypeError,
)
from tests.audio import (
    SOURCE_TAGS,
    SOURCES,
    audio_source,
    cover_png,
    decode_pcm,
    decode_with_pyav,
    make_mp3,
    pcm_tone,
    video_only_mp4,
)

# name -> (source_format, sample rate, channels, duration stated by the container)
ACCEPTED = {
    "m4a": ("m4a/aac", 48000, 2, 2.0),
    "m4a_cover": ("m4a/aac", 44100, 2, 2.0),
    "m4b": ("m4a/aac", 22050, 1, 2.0),
    "alac": ("m4a/alac", 44100, 2, 2.0),
    "adts": ("aac/aac", 32000, 2, 2.0),  # estimated from the bitrate
    "flac": ("flac/flac", 44100, 2, 2.0),
    "wav": ("wav/pcm", 44100, 2, 2.0),
    "wav_mono_16k": ("wav/pcm", 16000, 1, 2.0),
    "aiff": ("aiff/pcm", 44100, 2, 2.0),
    "ogg_vorbis": ("ogg/vorbis", 44100, 2, 2.0),
    "ogg_opus": ("ogg/opus", 48000, 1, 2.0),
    "webm_opus": ("webm/opus", 48000, 2, 2.0),
    "webm_opus_live": ("webm/opus", 48000, 2, None),
    "webm_vorbis": ("webm/vorbis", 44100, 2, 2.0),
    "mp3_22k_mono": ("mp3/mp3", 22050, 1, 2.0),
    "mp3_48k": ("mp3/mp3", 48000, 2, 2.0),
    "mp3_house": ("mp3/mp3", 44100, 2, 2.0),
}
UNTAGGED = {"adts"}
WITH_COVER = {"m4a_cover", "flac", "mp3_house"}
TONE_RMS = 6000 / math.sqrt(2)  # pcm_tone's sine


def run(data: bytes, max_seconds: float = 600.0, **kwargs: Any) -> tuple[Converted, bytes]:
    out = io.BytesIO()
    converted = convert(io.BytesIO(data), out, max_seconds=max_seconds, **kwargs)
    return converted, out.getvalue()


def seconds_decoded(data: bytes, format: str | None = None) -> float:
    decoded = decode_pcm(data, format=format)
    return decoded.num_frames / decoded.sample_rate


def channel(samples: Any, index: int, rate: int) -> list[int]:
    """One channel of interleaved stereo, without its first and last 0.2 s (edges)."""
    edge = int(0.2 * rate)
    return list(samples[index::2][edge:-edge])


def rms(values: list[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def frequency(values: list[int], rate: int) -> float:
    """Of a pure tone, from its upward zero crossings."""
    ups = [i for i in range(1, len(values)) if values[i - 1] < 0 <= values[i]]
    return rate * (len(ups) - 1) / (ups[-1] - ups[0])


# What arrived ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_probe_tells_each_accepted_format_by_its_content(name):
    source_format, rate, channels, duration = ACCEPTED[name]
    found = probe(io.BytesIO(audio_source(name)))
    assert found.source_format == source_format
    assert (found.sample_rate, found.channels) == (rate, channels)
    if duration is None:
        assert found.duration is None  # a streamed WebM says nothing of its length
    else:
        assert found.duration == pytest.approx(duration, abs=0.05)
    tags = (found.title, found.artist, found.album)
    if name in UNTAGGED:
        assert tags == (None, None, None)
    elif name == "aiff":
        assert found.title == SOURCE_TAGS["title"]
    else:
        assert tags == (SOURCE_TAGS["title"], SOURCE_TAGS["artist"], SOURCE_TAGS["album"])
    assert found.is_house_mp3 is (name == "mp3_house")


def test_probe_reads_from_the_start_and_leaves_the_source_there():
    source = io.BytesIO(audio_source("flac"))
    source.seek(1000)
    assert probe(source).source_format == "flac/flac"
    assert source.tell() == 0


@pytest.mark.parametrize(
    ("data", "house"),
    [
        pytest.param(make_mp3(1.0), True, id="cbr-no-header"),
        pytest.param(make_mp3(1.0, vbr_quality=4), True, id="vbr"),
        pytest.param(make_mp3(1.0, bitrate=320), True, id="320k"),
        pytest.param(make_mp3(1.0, channels=1), False, id="mpeg1-mono"),
        pytest.param(make_mp3(1.0, sample_rate=22050, channels=2, bitrate=64), False, id="mpeg2"),
        pytest.param(make_mp3(1.0, sample_rate=11025, channels=2, bitrate=32), False, id="mpeg2.5"),
        pytest.param(make_mp3(1.0, sample_rate=48000), False, id="48k"),
    ],
)
def test_house_mp3_is_mpeg1_layer3_44k_stereo(data, house):
    found = probe(io.BytesIO(data))
    assert found.source_format == "mp3/mp3"
    assert found.is_house_mp3 is house


def test_the_accepted_lists():
    assert {".m4a", ".m4b", ".opus", ".webm", ".aif", ".aiff", ".oga"} <= ACCEPTED_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in ACCEPTED_EXTENSIONS)
    for word in ("MP3", "M4B", "ALAC", "ADTS", "WAV", "FLAC", "Opus", "Vorbis", "WebM", "AIFF"):
        assert word in ACCEPTED_FORMATS


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("text", b"Once upon a time there was a file that was not audio at all.\n" * 50),
        ("empty", b""),
        ("video only", video_only_mp4()),
        ("wma", audio_source("wma")),
        ("random", random.Random(1).randbytes(20_000)),
    ],
)
def test_anything_else_is_refused_naming_the_accepted_formats(what, data, tmp_path):
    path = tmp_path / "Grandma's story.m4a"  # the name says M4A; the content decides
    path.write_bytes(data)
    with open(path, "rb") as source, pytest.raises(UnsupportedAudioError) as refused:
        probe(source)
    assert isinstance(refused.value, UnsupportedMediaTypeError)  # 415
    assert ACCEPTED_FORMATS in refused.value.message
    if what == "video only":
        assert "no audio" in refused.value.message


def test_conversion_of_anything_else_says_why():
    with pytest.raises(ConversionError) as no_audio:
        run(video_only_mp4())
    assert no_audio.value.kind == "no_audio"
    assert "no audio" in no_audio.value.reason
    with pytest.raises(ConversionError) as foreign:
        run(audio_source("wma"))
    assert "unsupported codec" in foreign.value.reason.lower()
    assert ACCEPTED_FORMATS in foreign.value.reason


def drm_protected(data: bytes) -> bytes:
    """The M4A with its audio sample entry marked FairPlay-encrypted ("drms")."""
    at = data.index(b"mp4a", data.index(b"stsd"))
    return data[:at] + b"drms" + data[at + 4 :]


def test_drm_protected_audio_is_an_unsupported_codec():
    data = drm_protected(audio_source("m4a"))
    for call in (lambda: probe(io.BytesIO(data)), lambda: run(data)):
        with pytest.raises(ConversionError) as refused:
            call()
        assert refused.value.kind == "unsupported_codec"
        assert "unsupported codec" in refused.value.reason.lower()
        assert "DRM" in refused.value.reason


# What comes out -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_accepted_format_becomes_a_house_mp3(name):
    data = audio_source(name)
    converted, mp3 = run(data)
    assert converted.source_format == ACCEPTED[name][0]

    # Plain MPEG frames after one ID3v2 tag: MPEG-1 Layer III, 44.1 kHz stereo, 128k CBR.
    analysis = analyse_upload(io.BytesIO(mp3))
    info = analysis.info
    assert (info.mpeg_version, info.sample_rate, info.channels) == ("1", 44100, 2)
    assert (info.bitrate, info.bitrate_mode) == (128000, "CBR")
    assert analysis.audio_start == id3v2_size(mp3)
    _, _, _, errors = decode_with_pyav(mp3)
    assert errors == []

    # As long as the source, as a decoder plays both.
    source_seconds = seconds_decoded(data)
    out = decode_pcm(mp3)
    assert (out.sample_rate, out.nchannels) == (44100, 2)
    assert out.num_frames / 44100 == pytest.approx(source_seconds, abs=0.05)
    assert converted.duration == pytest.approx(out.num_frames / 44100, abs=0.001)
    assert info.duration == pytest.approx(converted.duration, abs=0.001)

    # The tone still the tone, in both channels, at its level (mono copied at full level).
    for index in (0, 1):
        values = channel(out.samples, index, 44100)
        assert rms(values) == pytest.approx(TONE_RMS, rel=0.1)
        assert frequency(values, 44100) == pytest.approx(SOURCES[name].freq, rel=0.01)

    # The tags and the cover art carried over.
    expected = probe(io.BytesIO(data))
    assert (info.title, info.artist, info.album) == (
        expected.title,
        expected.artist,
        expected.album,
    )
    from mutagen.id3 import ID3

    pictures = ID3(io.BytesIO(mp3)).getall("APIC") if id3v2_size(mp3) else []
    if name in WITH_COVER:
        assert [(p.mime, p.type, p.data) for p in pictures] == [("image/png", 3, cover_png())]
    else:
        assert pictures == []


def test_an_untagged_source_makes_an_mp3_without_a_tag():
    _, mp3 = run(audio_source("adts"))
    assert id3v2_size(mp3) == 0
    assert analyse_upload(io.BytesIO(mp3)).audio_start == 0


@pytest.mark.parametrize("extra", [0, 1, 46, 47, 60, 98, 99, 500, 1151])
def test_never_more_than_50_ms_longer_than_the_source(extra):
    """LAME pads the end to a whole frame past its delay: the last frame is left out when
    the file would otherwise play more than 50 ms past its source (it then holds padding
    only, or less than 2 ms of the source's end)."""
    import av

    samples = 3 * 1152 * 20 + extra
    pcm = pcm_tone((samples + 1) / 44100)[: samples * 4]
    sink = io.BytesIO()
    with av.open(sink, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=44100, layout="stereo")
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(pcm)
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    _, mp3 = run(sink.getvalue())
    overshoot = decode_pcm(mp3).num_frames - samples
    assert 0 < overshoot <= 0.05 * 44100


def test_a_stream_whose_rate_changes_midway_is_converted_whole():
    """Two MP3s joined (44.1 kHz stereo, then 22.05 kHz mono): one resampler each."""
    first, second = make_mp3(2.0), make_mp3(1.0, sample_rate=22050, channels=1, bitrate=64)
    converted, mp3 = run(first + second)
    out = decode_pcm(mp3)
    assert out.num_frames / 44100 == pytest.approx(3.0, abs=0.2)
    assert converted.duration == pytest.approx(out.num_frames / 44100, abs=0.001)
    tail = list(out.samples[2 * int(2.3 * 44100) : 2 * int(2.8 * 44100)])
    assert rms(tail[0::2]) == pytest.approx(rms(tail[1::2]), rel=0.01)  # mono, on both sides
    assert rms(tail[0::2]) > 0.5 * TONE_RMS


# Progress and limits --------------------------------------------------------------------------


def ticking(step: float = 1.0) -> Any:
    """A clock that moves ``step`` seconds each time it is read."""
    counter = itertools.count()
    return lambda: next(counter) * step


def test_progress_rises_to_one_at_most_every_5_seconds_of_work():
    reports: list[float | None] = []
    run(audio_source("m4a"), progress=reports.append, clock=ticking())
    assert reports[0] == 0.0
    assert reports[-1] == 1.0
    assert len(reports) >= 4  # a clock read per packet: a report every 5 packets
    assert all(r is not None and 0 <= r <= 1 for r in reports)
    assert reports == sorted(reports)
    assert max(r for r in reports[:-1] if r is not None) < 1.0


def test_progress_is_none_while_the_duration_is_unknown():
    reports: list[float | None] = []
    run(audio_source("webm_opus_live"), progress=reports.append, clock=ticking())
    assert len(reports) >= 4
    assert reports[:-1] == [None] * (len(reports) - 1)
    assert reports[-1] == 1.0


def test_no_report_between_start_and_end_when_the_work_takes_under_5_seconds():
    reports: list[float | None] = []
    run(audio_source("flac"), progress=reports.append, clock=lambda: 100.0)
    assert reports == [0.0, 1.0]


def test_too_long_is_refused_before_any_work_when_the_container_says():
    out = io.BytesIO()
    reports: list[float | None] = []
    source = io.BytesIO(audio_source("m4a"))
    with pytest.raises(ConversionError) as refused:
        convert(source, out, max_seconds=1.5, progress=reports.append)
    assert refused.value.kind == "too_long"
    assert "too long" in refused.value.reason
    assert out.getvalue() == b""
    assert reports == []


@pytest.mark.parametrize("name", ["webm_opus_live", "adts"])
def test_too_long_is_found_while_decoding_when_the_container_does_not_say(name):
    with pytest.raises(ConversionError) as refused:
        run(audio_source(name), max_seconds=1.0)
    assert refused.value.kind == "too_long"
    assert "too long" in refused.value.reason


def test_an_input_as_long_as_the_limit_is_converted():
    converted, _ = run(audio_source("m4a"), max_seconds=2.0)
    assert converted.duration == pytest.approx(2.0, abs=0.1)


# Broken inputs --------------------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def corrupted(data: bytes) -> bytes:
    """A third of the file, from its middle on, overwritten with random bytes."""
    start, end = len(data) * 2 // 5, len(data) * 2 // 5 + len(data) // 3
    return data[:start] + random.Random(7).randbytes(end - start) + data[end:]


BROKEN = [
    ("m4a", truncated),  # the index (moov) is at the end, cut off
    ("alac", truncated),
    ("flac", truncated),
    ("webm_opus", truncated),
    ("mp3_48k", truncated),  # its Xing header states the whole length
    ("m4a", corrupted),
    ("ogg_vorbis", corrupted),
    ("mp3_48k", corrupted),
    ("alac", corrupted),
]


@pytest.mark.parametrize(
    ("name", "damage"), [pytest.param(n, d, id=f"{n}-{d.__name__}") for n, d in BROKEN]
)
def test_a_truncated_or_corrupt_file_is_corrupt_in_words(name, damage):
    data = damage(audio_source(name))
    with pytest.raises(ConversionError) as failed:
        run(data)
    assert failed.value.kind == "corrupt"
    assert failed.value.reason.startswith("The file is corrupt")


def test_a_truncated_header_is_corrupt_already_when_probed():
    with pytest.raises(ConversionError) as failed:
        probe(io.BytesIO(truncated(audio_source("m4a"))))
    assert failed.value.kind == "corrupt"


def test_errors_of_the_source_and_of_progress_go_through_as_they_are():
    """The storage says the upload changed (a newer one replaced it), or the progress
    callback says the record no longer waits: neither is a conversion failure."""
    data = audio_source("flac")

    class Changing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > len(data) // 2:
                raise ObjectChangedError("the upload changed")
            return super().read(size)

    with pytest.raises(ObjectChangedError):
        convert(Changing(data), io.BytesIO(), max_seconds=60)

    def superseded(fraction: float | None) -> None:
        if fraction:
            raise ConversionError("superseded")

    with pytest.raises(ConversionError) as stopped:
        run(audio_source("m4a"), progress=superseded, clock=ticking())
    assert stopped.value.reason == "superseded"


def test_probe_is_a_probe_value():
    found = probe(io.BytesIO(audio_source("ogg_opus")))
    assert isinstance(found, Probe)
    assert found == Probe("ogg/opus", found.duration, 48000, 1, False, *SOURCE_TAGS.values())
