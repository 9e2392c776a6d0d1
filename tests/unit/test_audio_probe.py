"""analyse_upload: what an upload is (stream parameters, duration, tags), or NotMp3Error (415)."""

from __future__ import annotations

import io
import os
import wave

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smart_stream.audio.analysis import HEAD_WINDOW as SYNC_WINDOW
from smart_stream.audio.analysis import analyse_upload
from smart_stream.domain.errors import NotMp3Error
from tests.audio import add_id3, decode_pcm, make_mp3, pcm_tone
from tests.examples import examples


def probe(data: bytes):
    return analyse_upload(io.BytesIO(data)).info


def decoded_seconds(data: bytes) -> float:
    decoded = decode_pcm(data)
    return decoded.num_frames / decoded.sample_rate


def test_a_tagged_house_format_file(mp3_bytes):
    """Given the house format (MPEG-1, 44.1 kHz stereo, 128k CBR) with ID3 tags, everything a
    parent sees in the library comes out right."""
    info = probe(mp3_bytes)
    assert (info.title, info.artist, info.album) == ("Bedtime Story", "Mum", "Evenings")
    assert info.mpeg_version == "1"
    assert info.sample_rate == 44100
    assert info.channels == 2
    assert info.bitrate == 128000
    assert info.bitrate_mode == "CBR"
    # Within one frame (1152 samples) of what a decoder plays, and near the 2 s encoded.
    assert info.duration == pytest.approx(decoded_seconds(mp3_bytes), abs=1152 / 44100)
    assert info.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    ("rate", "channels", "kbps", "version"),
    [(22050, 1, 64, "2"), (8000, 1, 16, "2.5"), (48000, 2, 320, "1"), (16000, 2, 32, "2")],
)
def test_other_mpeg_versions_and_layouts(rate, channels, kbps, version):
    data = make_mp3(1.5, sample_rate=rate, channels=channels, bitrate=kbps)
    info = probe(data)
    assert (info.mpeg_version, info.sample_rate, info.channels) == (version, rate, channels)
    assert info.bitrate == kbps * 1000
    assert info.bitrate_mode == "CBR"
    samples_per_frame = 1152 if version == "1" else 576
    assert info.duration == pytest.approx(decoded_seconds(data), abs=samples_per_frame / rate)
    assert (info.title, info.artist, info.album) == (None, None, None)


def test_unicode_tags_and_blank_tags():
    data = add_id3(make_mp3(0.5), title="  Gute Nacht, Bär 🐻  ", artist=" ", album="おやすみ")
    info = probe(data)
    assert info.title == "Gute Nacht, Bär 🐻"
    assert info.artist is None  # a blank tag is no tag
    assert info.album == "おやすみ"


def test_stacked_id3_tags_are_skipped():
    audio = make_mp3(1.0)
    data = add_id3(add_id3(audio, title="Inner"), title="Outer", artist="Mum")
    info = probe(data)
    assert info.duration == pytest.approx(decoded_seconds(audio), abs=1152 / 44100)
    assert info.mpeg_version == "1"


@pytest.mark.parametrize("junk_size", [1, 417, 4096, 30_000, SYNC_WINDOW - 1])
@pytest.mark.parametrize("kind", ["zeros", "text", "random"])
def test_garbage_before_the_first_frame_within_the_window_is_accepted(junk_size, kind):
    """Some encoders leave junk between the tags and the audio: up to SYNC_WINDOW bytes of
    it is accepted and does not change what the file is or how long it plays."""
    audio = make_mp3(1.0)
    junk = {
        "zeros": b"\x00" * junk_size,
        "text": (b"junk " * junk_size)[:junk_size],
        "random": os.urandom(junk_size),
    }[kind]
    tag = add_id3(b"", title="After junk")
    info = probe(tag + junk + audio)
    assert info.mpeg_version == "1"
    assert info.sample_rate == 44100
    assert info.title == "After junk"
    assert info.duration == pytest.approx(decoded_seconds(audio), abs=1152 / 44100)


def test_garbage_beyond_the_window_is_refused():
    with pytest.raises(NotMp3Error):
        probe(b"x" * (SYNC_WINDOW + 4096) + make_mp3(1.0))


def _wav(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(pcm_tone(seconds))
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00", id="one-byte"),
        pytest.param(b"Once upon a time there was a bear.\n" * 200, id="text"),
        pytest.param(_wav(), id="wav"),
        pytest.param(make_mp3(1.0)[:100], id="mp3-truncated-to-100-bytes"),
        pytest.param(add_id3(b"", title="Only a tag"), id="tag-without-audio"),
        pytest.param(b"\xff\xfb\x90\x00" + b"\x00" * 2000, id="one-frame-header-then-zeros"),
        pytest.param(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f", id="tag-claiming-256MB"),
        pytest.param(b"%PDF-1.7\n" + bytes(range(256)) * 40, id="pdf"),
        pytest.param(b"\xff\xfd\x90\x00" * 1000, id="mpeg1-layer2-headers"),
    ],
)
def test_things_that_are_not_mp3s_are_refused(data):
    with pytest.raises(NotMp3Error) as caught:
        probe(data)
    assert caught.value.code == "not_mp3"
    assert caught.value.message


def test_layer_two_audio_is_refused_with_a_clear_reason():
    """Real, joinable MPEG frames of layer II are still not an MP3."""
    frame = b"\xff\xfd\x80\x00"  # MPEG-1 layer II, 128 kbps, 44.1 kHz: 417 bytes a frame
    data = (frame + b"\x00" * 413) * 5
    with pytest.raises(NotMp3Error, match="layer 2"):
        probe(data)


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(min_size=0, max_size=8192))
@example(b"\xff\xfb" * 100)
@example(b"ID3" + b"\x00" * 50)
def test_random_bytes_are_refused(data):
    """Given random bytes (which mutagen alone sometimes takes for audio), analyse_upload refuses
    them with NotMp3Error and nothing else."""
    with pytest.raises(NotMp3Error):
        probe(data)
