"""Real MP3s made in the tests: lameenc encodes a tone, tags are written by mutagen; PyAV
(FFmpeg's libmp3lame and mp3 muxer) makes files as FFmpeg writes them, header frame and all."""

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
