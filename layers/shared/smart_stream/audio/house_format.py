"""The house format: MPEG-1 Layer III, 44.1 kHz, stereo, 128 kbps CBR. What the app makes
itself is written in it, so a story can share a queue with ordinary songs."""

from __future__ import annotations

from typing import BinaryIO

HOUSE_RATE = 44100
HOUSE_CHANNELS = 2
HOUSE_KBPS = 128


class HouseEncoder:
    """One continuous MP3 from PCM fed in parts of any rate: each part is resampled
    (miniaudio) and goes through the same encoder (lameenc), so parts join without a gap
    or a second encoder delay."""

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

    def add(self, samples: bytes, sample_rate: int, channels: int = 1) -> None:
        """Signed 16-bit little-endian PCM."""
        import miniaudio

        if not samples:
            return
        if (sample_rate, channels) != (HOUSE_RATE, HOUSE_CHANNELS):
            converted = miniaudio.convert_frames(
                miniaudio.SampleFormat.SIGNED16,
                channels,
                sample_rate,
                samples,
                miniaudio.SampleFormat.SIGNED16,
                HOUSE_CHANNELS,
                HOUSE_RATE,
            )
            samples = bytes(converted)
        self.seconds += len(samples) / (2 * HOUSE_CHANNELS * HOUSE_RATE)
        self.sink.write(bytes(self._encoder.encode(samples)))

    def finish(self) -> None:
        if not self.seconds:
            # lameenc refuses to flush an encoder that was never fed ("Not currently
            # encoding"): an engine that made no sound at all still gives a playable file.
            self.add(bytes(2 * HOUSE_CHANNELS * 1152), HOUSE_RATE, HOUSE_CHANNELS)
        self.sink.write(bytes(self._encoder.flush()))
