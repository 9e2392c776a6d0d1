"""Real MP3s made in the tests: lameenc encodes a tone, tags are written by mutagen; PyAV
(FFmpeg's libmp3lame and mp3 muxer) makes files as FFmpeg writes them, header frame and all."""

from __future__ import annotations

import array
import fractions
import functools
import io
import math
import struct
from dataclasses import dataclass
from typing import Any

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
    vbr_quality: int | None = None,
    title: str | None = None,
    artist: str | None = None,
    album: str | None = None,
) -> bytes:
    """An MP3 of a sine tone, CBR (or LAME's VBR at ``vbr_quality``, -V), optionally with an
    ID3v2 tag. lameenc writes frames only: no Xing/Info header frame."""
    encoder = lameenc.Encoder()
    if vbr_quality is None:
        encoder.set_bit_rate(bitrate)
    else:
        encoder.set_vbr(4)  # vbr_mtrh, LAME's default VBR
        encoder.set_vbr_quality(vbr_quality)
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


class _Pipe:
    """A write-only sink that cannot seek, as a pipe is to an encoder."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def make_mp3_with_pyav(
    seconds: float = 3.0,
    *,
    sample_rate: int = 44100,
    channels: int = 2,
    mode: str = "cbr",
    bitrate: int = 128,
    quality: int = 4,
    seekable: bool = True,
) -> bytes:
    """An MP3 of a sine tone as FFmpeg makes one (PyAV: libmp3lame, then the mp3 muxer, which
    writes an ID3v2 tag and a Xing/Info frame). ``mode`` is "cbr" or "abr" at ``bitrate`` kbps,
    or "vbr" at LAME's ``quality`` (-V). The muxer fills the Xing/Info frame by seeking back
    at the end: into a sink that cannot seek (``seekable=False``, a pipe) it writes none."""
    import av

    sink: io.BytesIO | _Pipe = io.BytesIO() if seekable else _Pipe()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(sink, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sample_rate, layout=layout)
        context = stream.codec_context
        if mode == "vbr":
            context.qscale = True  # what `ffmpeg -q:a` sets: LAME's VBR at this quality
            context.global_quality = quality * 118  # FF_QP2LAMBDA
        elif mode in ("cbr", "abr"):
            context.bit_rate = bitrate * 1000
            if mode == "abr":
                context.options = {"abr": "1"}
        else:
            raise ValueError(f"mode {mode!r}")
        pcm = pcm_tone(seconds, sample_rate, channels)
        frame = av.AudioFrame(format="s16", layout=layout, samples=len(pcm) // (2 * channels))
        frame.planes[0].update(pcm)
        frame.sample_rate = sample_rate
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return sink.getvalue() if isinstance(sink, io.BytesIO) else b"".join(sink.chunks)


def decode_with_pyav(data: bytes) -> tuple[int, int, int, list[str]]:
    """FFmpeg's own MP3 decode of ``data`` (PyAV), strict: samples per channel, sample rate,
    channels, and every error FFmpeg reported (none for a clean stream)."""
    import av
    import av.logging

    errors: list[str] = []
    samples = 0
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs, av.open(io.BytesIO(data), "r", format="mp3") as src:
            stream = src.streams.audio[0]
            stream.codec_context.options = {"err_detect": "explode"}  # an error stops the decode
            try:
                for frame in src.decode(stream):
                    samples += frame.samples
            except av.error.FFmpegError as error:
                errors.append(str(error))
            rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    finally:
        av.logging.set_level(level)
    errors += [
        f"{name}: {message.strip()}" for lvl, name, message in logs if lvl <= av.logging.ERROR
    ]
    return samples, rate, channels, errors


@dataclass(frozen=True)
class Decoded:
    """PCM as a real decoder plays it: signed 16-bit samples, channels interleaved."""

    samples: array.array[int]
    sample_rate: int
    nchannels: int

    @property
    def num_frames(self) -> int:
        """Sample frames (samples per channel)."""
        return len(self.samples) // self.nchannels


def decode_pcm(data: bytes, format: str | None = "mp3") -> Decoded:
    """What FFmpeg's decoder (PyAV) plays from ``data``, at the stream's own rate and channels:
    gapless, as a player is (a LAME header's encoder delay and padding are not played).
    ``format=None`` lets FFmpeg probe the container."""
    import av

    samples: array.array[int] = array.array("h")
    with av.open(io.BytesIO(data), "r", format=format) as src:
        stream = src.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        to_s16 = av.AudioResampler(format="s16", layout=f"{channels}c", rate=rate)
        for frame in [*src.decode(stream), None]:
            for out in to_s16.resample(frame):
                # A frame's plane may be larger than its samples (FFmpeg reuses buffers).
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2 * channels])
    return Decoded(samples, rate, channels)


# Any audio in: files in every accepted format (and some that are not), made by PyAV's own
# encoders in the tests, never checked in. Each is made once per test session.

#: The tags every tagged source carries.
SOURCE_TAGS = {"title": "Grandma's story", "artist": "Grandma Bär", "album": "Voice memos"}


@dataclass(frozen=True)
class Source:
    """How to make a source file: a PyAV muxer and encoder, and a sine tone to encode."""

    container: str  # PyAV's muxer: "ipod", "mp4", "adts", "flac", "wav", "aiff", "ogg", ...
    codec: str
    sample_rate: int = 44100
    channels: int = 2
    seconds: float = 2.0
    freq: float = 440.0
    tagged: bool = True
    cover: bool = False
    seekable: bool = True  # False: written into a pipe, as a browser's MediaRecorder writes
    options: tuple[tuple[str, str], ...] = ()  # the encoder's
    container_options: tuple[tuple[str, str], ...] = ()  # the muxer's
    bit_rate: int | None = None


_EXPERIMENTAL = (("strict", "experimental"),)  # FFmpeg's own Vorbis encoder
SOURCES = {
    "m4a": Source("ipod", "aac", 48000),  # an iPhone voice memo
    "m4a_cover": Source("mp4", "aac", cover=True),
    "m4b": Source("ipod", "aac", 22050, 1, container_options=(("brand", "M4B "),)),
    "alac": Source("ipod", "alac"),
    "adts": Source("adts", "aac", 32000, tagged=False),
    "flac": Source("flac", "flac", cover=True),
    "wav": Source("wav", "pcm_s16le"),
    "wav_mono_16k": Source("wav", "pcm_s16le", 16000, 1),
    "aiff": Source("aiff", "pcm_s16be", container_options=(("write_id3v2", "1"),)),
    "ogg_vorbis": Source("ogg", "vorbis", options=_EXPERIMENTAL),
    "ogg_opus": Source("ogg", "libopus", 48000, 1),  # a WhatsApp voice note
    "webm_opus": Source("webm", "libopus", 48000),
    "webm_opus_live": Source("webm", "libopus", 48000, seekable=False),  # no duration
    "webm_vorbis": Source("webm", "vorbis", options=_EXPERIMENTAL),
    "mp3_22k_mono": Source("mp3", "libmp3lame", 22050, 1, bit_rate=64000),  # an audiobook
    "mp3_48k": Source("mp3", "libmp3lame", 48000, bit_rate=192000),
    "mp3_house": Source("mp3", "libmp3lame", cover=True, bit_rate=128000),
    "wma": Source("asf", "wmav2", bit_rate=128000),  # not accepted
}


@functools.cache
def audio_source(name: str) -> bytes:
    """The bytes of ``SOURCES[name]``, made once per session."""
    return make_audio(SOURCES[name])


def make_audio(source: Source) -> bytes:
    import av

    sink: io.BytesIO | _Pipe = io.BytesIO() if source.seekable else _Pipe()
    layout = "mono" if source.channels == 1 else "stereo"
    options = dict(source.container_options)
    with av.open(sink, "w", format=source.container, options=options) as container:
        if source.tagged:
            container.metadata.update(SOURCE_TAGS)
        stream = container.add_stream(source.codec, rate=source.sample_rate, layout=layout)
        context = stream.codec_context
        context.options = dict(source.options)
        if source.bit_rate:
            context.bit_rate = source.bit_rate
        if source.cover:
            _add_cover(container)
        pcm = pcm_tone(source.seconds, source.sample_rate, source.channels, source.freq)
        count = len(pcm) // (2 * source.channels)
        frame = av.AudioFrame(format="s16", layout=layout, samples=count)
        frame.planes[0].update(pcm)
        frame.sample_rate = source.sample_rate
        frame.pts = 0
        to_codec = av.AudioResampler(
            format=context.format.name, layout=layout, rate=source.sample_rate
        )
        for part in [*to_codec.resample(frame), *to_codec.resample(None), None]:
            for packet in stream.encode(part):
                container.mux(packet)
    return sink.getvalue() if isinstance(sink, io.BytesIO) else b"".join(sink.chunks)


def _add_cover(container: Any) -> None:
    """Cover art as FFmpeg muxers take it: a picture stream marked as attached, one packet."""
    import av

    stream = container.add_stream("png")
    stream.width = stream.height = 16
    stream.pix_fmt = "rgb24"
    stream.disposition = av.stream.Disposition.attached_pic
    packet = av.Packet(cover_png())
    packet.stream = stream
    packet.pts = packet.dts = 0
    container.mux(packet)


@functools.cache
def cover_png() -> bytes:
    """A 16x16 PNG (PyAV's png encoder): the cover art of the sources that have one."""
    import av

    context = av.CodecContext.create("png", "w")
    context.width = context.height = 16
    context.pix_fmt = "rgb24"
    context.time_base = fractions.Fraction(1, 1)
    frame = av.VideoFrame(16, 16, "rgb24")
    frame.planes[0].update(bytes([200, 40, 40]) * (frame.planes[0].buffer_size // 3))
    return b"".join(bytes(packet) for packet in [*context.encode(frame), *context.encode(None)])


@functools.cache
def video_only_mp4(seconds: float = 1.0) -> bytes:
    """An MP4 holding a video stream and no audio."""
    import av

    sink = io.BytesIO()
    with av.open(sink, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame(32, 32, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 20 % 256]) * plane.buffer_size)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return sink.getvalue()
