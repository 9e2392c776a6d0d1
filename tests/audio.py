"""Real MP3s made in the tests: lameenc encodes a tone, tags are written by mutagen."""

from __future__ import annotations

import io
import math
import struct

import lameenc


def pcm_tone(
    seconds: float, sample_rate: int = 44100, channels: int = 2, freq: float = 440.0
) -> bytes:
    frames = int(seconds * sample_rate)
    step = 2 * math.pi * freq / sample_rate
    samples = (int(6000 * math.sin(i * step)) for i in range(frames))
    one = struct.Struct("<h")
    if channels == 1:
        return b"".join(one.pack(s) for s in samples)
    two = struct.Struct("<hh")
    return b"".join(two.pack(s, s) for s in samples)


def make_mp3(
    seconds: float = 1.0,
    *,
    sample_rate: int = 44100,
    channels: int = 2,
    bitrate: int = 128,
    title: str | None = None,
    artist: str | None = None,
    album: str | None = None,
) -> bytes:
    """An MP3 of a sine tone, CBR, optionally with an ID3v2 tag."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    encoder.set_channels(channels)
    encoder.set_quality(7)
    data = bytes(encoder.encode(pcm_tone(seconds, sample_rate, channels)) + encoder.flush())
    if title or artist or album:
        data = add_id3(data, title=title, artist=artist, album=album)
    return data


def add_id3(data: bytes, **tags: str | None) -> bytes:
    from mutagen.easyid3 import EasyID3

    easy = EasyID3()
    for key, value in tags.items():
        if value:
            easy[key] = value
    out = io.BytesIO()
    easy.save(out)
    return out.getvalue() + data
