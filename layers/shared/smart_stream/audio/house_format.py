"""The house format: MPEG-1 Layer III, 44.1 kHz, stereo, 128 kbps CBR. What the app makes
itself is written in it, so a story can share a queue with ordinary songs."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from av import AudioFrame, AudioResampler

HOUSE_RATE = 44100
HOUSE_CHANNELS = 2
HOUSE_KBPS = 128
_FRAME_BYTES = 2 * HOUSE_CHANNELS  # one stereo sample of signed 16-bit PCM


class HouseEncoder:
    """One continuous MP3 from PCM fed in parts of any rate: parts go through one resampler
    (PyAV's, FFmpeg's swresample) for as long as their rate stays the same, and all through
    the same encoder (lameenc), so parts join without a gap or a second encoder delay."""

    def __init__(self, sink: BinaryIO) -> None:
        import lameenc

        self.sink = sink
        self.seconds = 0.0
        self._encoder = lameenc.Encoder()
        self._encoder.set_bit_rate(HOUSE_KBPS)
        self._encoder.set_in_sample_rate(HOUSE_RATE)
        self._encoder.set_out_sample_rate(HOUSE_RATE)
        self._encoder.set_channels(HOUSE_CHANNELS)
        self._encoder.set_quality(5)
        self._resampler: AudioResampler | None = None  # for the parts' (rate, channels)
        self._resampling: tuple[int, int] | None = None

    def add(self, samples: bytes, sample_rate: int, channels: int = 1) -> None:
        """Signed 16-bit little-endian PCM, channels interleaved."""
        count = len(samples) // (2 * channels)
        if not count:
            return
        if (sample_rate, channels) != self._resampling:
            self._drain()
            self._resampling = (sample_rate, channels)
            if self._resampling != (HOUSE_RATE, HOUSE_CHANNELS):
                self._start_resampler()
        if self._resampler is None:
            self._encode(samples)
            return
        import av

        # A second a frame: memory stays flat in the part's length (one frame of a whole part
        # cost the resampler about 1.3 MB a second of speech: +200 MB for a 150 s story).
        step = sample_rate
        for start in range(0, count, step):
            size = min(step, count - start)
            # "<n>c": FFmpeg's default layout for n channels (mono, stereo, ...).
            frame = av.AudioFrame(format="s16", layout=f"{channels}c", samples=size)
            frame.planes[0].update(samples[start * 2 * channels : (start + size) * 2 * channels])
            frame.sample_rate = sample_rate
            for out in self._resampler.resample(frame):
                self._encode_frame(out)

    def finish(self) -> None:
        self._drain()
        if not self.seconds:
            # lameenc refuses to flush an encoder that was never fed ("Not currently
            # encoding"): an engine that made no sound at all still gives a playable file.
            self._encode(bytes(_FRAME_BYTES * 1152))
        self.sink.write(bytes(self._encoder.flush()))

    def _start_resampler(self) -> None:
        import av

        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=HOUSE_RATE)

    def _drain(self) -> None:
        """The resampler's last samples (it holds a few back), before the rate changes."""
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._encode_frame(out)
        self._resampler = None
        self._resampling = None

    def _encode_frame(self, frame: AudioFrame) -> None:
        # A frame's plane may be larger than its samples (FFmpeg reuses buffers).
        self._encode(bytes(frame.planes[0])[: frame.samples * _FRAME_BYTES])

    def _encode(self, samples: bytes) -> None:
        self.seconds += len(samples) / (_FRAME_BYTES * HOUSE_RATE)
        self.sink.write(bytes(self._encoder.encode(samples)))
