"""Is it an MP3, and what kind: the upload function's check before anything is stored."""

from __future__ import annotations

import os
from typing import BinaryIO

from smart_stream.audio.analysis import HEAD_WINDOW, AudioAnalysis, analyse_file
from smart_stream.domain.records import AudioInfo


def analyse_upload(source: BinaryIO) -> AudioAnalysis:
    """Analyse a seekable upload; ``NotMp3Error`` says why it is not an MP3."""
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    return analyse_file(source, size)


def probe_mp3(source: BinaryIO) -> AudioInfo:
    """Stream parameters, exact duration and ID3 tags of an MP3 (see ``audio_analysis``)."""
    return analyse_upload(source).info


#: How far past the leading tags the first frame may sit.
SYNC_WINDOW = HEAD_WINDOW
