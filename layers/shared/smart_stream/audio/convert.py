"""Any audio in: an upload in an accepted format (``formats``) becomes a house MP3 (MPEG-1
Layer III, 44.1 kHz, stereo, 128 kbps CBR) as a stream, at a flat memory footprint: PyAV
demuxes, decodes and resamples (swresample), lameenc encodes (bench/convert: about 3x faster
than PyAV's libmp3lame), and frames go out as they come, after an ID3v2 tag (title, artist,
album, cover art). What goes wrong is a ``ConversionError`` whose reason says so in words:
corrupt, no audio, unsupported codec, too long, or the conversion failed."""

from __future__ import annotations

import array
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from smart_stream.audio.formats import (
    ACCEPTED_EXTENSIONS,
    ACCEPTED_FORMATS,
    Found,
    Probe,
    describe,
    id3_tag,
    open_input,
    probe,
)
from smart_stream.audio.frames import parse_frame_header
from smart_stream.audio.house_format import HOUSE_KBPS, HOUSE_RATE
from smart_stream.domain.errors import ConversionError

if TYPE_CHECKING:
    from av import AudioFrame, AudioResampler, Packet
    from av.container import InputContainer

__all__ = ["ACCEPTED_EXTENSIONS", "ACCEPTED_FORMATS", "Converted", "Probe", "convert", "probe"]

#: Progress is reported at most this often (seconds of work, on the injected clock).
PROGRESS_SECONDS = 5.0
#: Decoding may run this far past ``max_seconds`` (priming and padding samples), no further.
DECODE_SLACK = 0.25
#: Audio that ends this much (or this share) before its stated duration was cut short.
SHORT_SECONDS, SHORT_SHARE = 0.2, 0.01
#: Packets that fail to decode are skipped; more than this many, and this share, is corrupt.
BAD_PACKETS, BAD_SHARE = 3, 0.01
#: Cover art larger than this is left out of the tag.
COVER_LIMIT = 4 * 1024 * 1024
_COVER_TYPES = {"mjpeg": "image/jpeg", "png": "image/png"}
_STEREO_BYTES = 4  # one stereo sample of signed 16-bit PCM
_FRAME_SAMPLES = 1152
#: LAME's encoder delay plus a decoder's (where the first input sample is played); how much
#: longer than its source a file may play (50 ms); how many of the source's last samples may
#: be given up to stay within that.
_CODEC_DELAY, _MAX_OVERSHOOT, _MAX_TRIM = 576 + 529, int(0.05 * HOUSE_RATE), 64


@dataclass(frozen=True)
class Converted:
    duration: float  # seconds of the MP3 written (its frames), as a player or analysis sees it
    source_format: str


def convert(
    source: BinaryIO,
    out: BinaryIO,
    *,
    max_seconds: float,
    progress: Callable[[float | None], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Converted:
    """Convert ``source`` (a seekable file object) into a house MP3 written to ``out``.

    ``progress(fraction)`` is called at the start, at most every ``PROGRESS_SECONDS`` of
    ``clock`` while converting, and with 1.0 at the end; the fraction is None while the
    duration is unknown. An input longer than ``max_seconds`` is refused before any work when
    its container states its duration, else once decoding passes the limit. Exceptions
    raised by ``progress`` or by ``source`` go through as they are."""
    import av

    with open_input(source) as container:
        found = describe(container)
        duration = found.probe.duration
        if found.stated and duration is not None and duration > max_seconds:
            raise _too_long(duration, max_seconds)
        job = _Conversion(found, out, max_seconds, progress, clock)
        try:
            frames = job.run(container)
        except (av.error.FFmpegError, ValueError) as exc:
            raise ConversionError(f"The conversion failed: {exc}.") from None
    seconds = frames * _FRAME_SAMPLES / HOUSE_RATE
    return Converted(round(seconds, 3), found.probe.source_format)


def _too_long(seconds: float | None, limit: float) -> ConversionError:
    """``seconds``: the length the container states, or None when decoding passed the limit."""

    def span(s: float) -> str:
        return f"{s / 60:.0f} minutes" if s >= 120 else f"{s:.3g} s"

    length = f"{span(seconds)} long" if seconds is not None else f"longer than {span(limit)}"
    reason = f"The audio is too long: it is {length}, and at most {span(limit)} is converted."
    return ConversionError(reason, kind="too_long")


def _corrupt(detail: str) -> ConversionError:
    return ConversionError(f"The file is corrupt: {detail}.", kind="corrupt")


class _Conversion:
    def __init__(
        self,
        found: Found,
        out: BinaryIO,
        max_seconds: float,
        progress: Callable[[float | None], None] | None,
        clock: Callable[[], float],
    ) -> None:
        self.found = found
        self.writer = _Mp3Writer(out)
        self.limit = max_seconds
        self.progress = progress
        self.clock = clock
        self.last_report = clock() if progress else 0.0
        self.cover: tuple[str, bytes] | None = None
        self.packets = self.bad = 0
        self._resampler: AudioResampler | None = None
        self._resampling: tuple[str, str, int] | None = None
        self._mono = False

    def run(self, container: InputContainer) -> int:
        """Convert every packet; the number of MP3 frames written."""
        import av

        audio = self.found.audio
        streams = [s for s in (audio, self.found.cover) if s is not None]
        self._report(self._fraction())
        try:
            for packet in container.demux(*streams):
                if packet.stream_index != audio.index:
                    self._take_cover(packet)
                    continue
                self._decode(packet)
        except av.error.FFmpegError:
            raise _corrupt(f"it cannot be read past {self._seconds():.1f} s") from None
        self._resample(None)
        self._check_whole()
        frames = self.writer.finish()
        self._report(1.0)
        return frames

    def _decode(self, packet: Packet) -> None:
        import av

        if packet.size:
            self.packets += 1
            self.writer.start(lambda: id3_tag(self.found.probe, self.cover))
        try:
            decoded = packet.decode()
        except av.error.FFmpegError:
            self.bad += 1
            if self.bad > BAD_PACKETS and self.bad > BAD_SHARE * self.packets:
                damaged = f"{self.bad} of its first {self.packets} audio packets are damaged"
                raise _corrupt(damaged) from None
            return
        for frame in decoded:
            self._resample(cast("AudioFrame", frame))
        if self.progress is not None and self.clock() - self.last_report >= PROGRESS_SECONDS:
            self._report(self._fraction())

    def _resample(self, frame: AudioFrame | None) -> None:
        """Into the house rate as signed 16-bit, through one resampler for as long as the
        input's format stays the same (an MP3 or ADTS stream may change it midway)."""
        import av

        if frame is not None:
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != self._resampling:
                self._resample(None)
                # Mono is copied to both channels at full level (swresample would mix it
                # 3 dB down into each); anything wider is mixed down to stereo.
                self._mono = frame.layout.nb_channels == 1
                layout = "mono" if self._mono else "stereo"
                self._resampler = av.AudioResampler(format="s16", layout=layout, rate=HOUSE_RATE)
                self._resampling = key
            frame.pts = None
        elif self._resampler is None:
            return
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            self.writer.add(_stereo_pcm(out, self._mono))
        if frame is None:
            self._resampler, self._resampling = None, None
        if self._seconds() > self.limit + DECODE_SLACK:
            raise _too_long(None, self.limit)

    def _take_cover(self, packet: Packet) -> None:
        mime = _COVER_TYPES.get(packet.stream.codec_context.name)
        if self.cover is None and mime and 0 < packet.size <= COVER_LIMIT:
            self.cover = (mime, bytes(packet))

    def _check_whole(self) -> None:
        seconds = self._seconds()
        if not self.writer.samples:
            raise _corrupt("no audio could be decoded from it")
        stated = self.found.probe.duration if self.found.stated else None
        if stated and seconds + max(SHORT_SECONDS, SHORT_SHARE * stated) < stated:
            raise _corrupt(f"it ends after {seconds:.1f} s of the {stated:.1f} s it states")

    def _seconds(self) -> float:
        return self.writer.samples / HOUSE_RATE

    def _fraction(self) -> float | None:
        duration = self.found.probe.duration
        return min(0.99, self._seconds() / duration) if duration else None

    def _report(self, fraction: float | None) -> None:
        if self.progress is not None:
            self.last_report = self.clock()
            self.progress(fraction)


def _stereo_pcm(frame: AudioFrame, mono: bool) -> bytes:
    # A frame's plane may be larger than its samples (FFmpeg reuses buffers).
    count = frame.samples
    if not mono:
        return bytes(memoryview(frame.planes[0])[: count * _STEREO_BYTES])
    samples = array.array("h", bytes(memoryview(frame.planes[0])[: count * 2]))
    both = array.array("h", bytes(count * _STEREO_BYTES))
    both[0::2] = samples
    both[1::2] = samples
    return both.tobytes()


class _Mp3Writer:
    """lameenc's frames into ``out`` as they come, after the tag. The last frame is held
    back: when it holds nothing but the encoder's padding (the file would play more than 50
    ms past its source), it is left out."""

    def __init__(self, out: BinaryIO) -> None:
        import lameenc

        self.out = out
        self.samples = 0  # stereo samples fed
        self.frames = 0  # frames written
        self._started = False
        self._pending = b""  # from a frame boundary: the last whole frame, and any part
        self._lengths: dict[bytes, int] = {}  # a frame header's first 3 bytes -> its length
        self._encoder: Any = lameenc.Encoder()
        self._encoder.set_bit_rate(HOUSE_KBPS)
        self._encoder.set_in_sample_rate(HOUSE_RATE)
        self._encoder.set_out_sample_rate(HOUSE_RATE)
        self._encoder.set_channels(2)
        self._encoder.set_quality(5)

    def start(self, tag: Callable[[], bytes]) -> None:
        if not self._started:
            self._started = True
            self.out.write(tag())

    def add(self, pcm: bytes) -> None:
        if not pcm:
            return
        self.samples += len(pcm) // _STEREO_BYTES
        self._pending += bytes(self._encoder.encode(pcm))
        starts, _ = self._frame_starts(self._pending)
        if len(starts) > 1:
            self.frames += len(starts) - 1
            self.out.write(self._pending[: starts[-1]])
            self._pending = self._pending[starts[-1] :]

    def finish(self) -> int:
        """Flush the encoder; the number of frames written in all."""
        tail = self._pending + bytes(self._encoder.flush())
        starts, end = self._frame_starts(tail)
        total = self.frames + len(starts)
        overshoot = total * _FRAME_SAMPLES - self.samples
        cut = self.samples + _CODEC_DELAY - (total - 1) * _FRAME_SAMPLES
        if len(starts) and overshoot > _MAX_OVERSHOOT and cut <= _MAX_TRIM:
            end = starts[-1]
            total -= 1
        self.out.write(tail[:end])
        self.frames = total
        return total

    def _frame_starts(self, data: bytes) -> tuple[list[int], int]:
        """Offsets of the whole frames at the start of ``data``, and where the last ends. A
        frame's length follows from its header's first three bytes (version, layer, bitrate,
        rate, padding), and the encoder writes few different ones: each is parsed once."""
        starts: list[int] = []
        pos = 0
        while pos + 4 <= len(data):
            key = data[pos : pos + 3]
            length = self._lengths.get(key)
            if length is None:
                header = parse_frame_header(data, pos)
                if header is None:
                    break
                length = self._lengths[key] = header.length
            if pos + length > len(data):
                break
            starts.append(pos)
            pos += length
        return starts, pos
