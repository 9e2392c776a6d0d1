"""While a file is scanned frame by frame (a VBR file without a header), it shows as pending."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from smart_stream.domain.records import AudioStatus
from smart_stream.ports import ObjectInfo
from tests.audio import make_mp3


def _vbr_without_header() -> bytes:
    # Frames of two CBR encodes at different bitrates: a VBR stream with no Xing/VBRI frame.
    return make_mp3(2.0, bitrate=96) + make_mp3(2.0, bitrate=192)


def test_a_scanned_file_is_pending_until_its_record_is_ready(app_env, root, monkeypatch):
    data = _vbr_without_header()
    storage, catalog = root.storage, root.catalog
    info = storage.put("vbr.mp3", io.BytesIO(data))
    seen_during_scan = []
    real_open_range = storage.open_range

    def watching_open_range(name, start=0, end=None, **kwargs):
        # The scan reads in 1 MiB chunks; the ranged reads before it use small blocks.
        if kwargs.get("chunk_size") == 1024 * 1024:
            record = catalog.get_audio(name)
            seen_during_scan.append(None if record is None else (record.status, record.duration))
        return real_open_range(name, start, end, **kwargs)

    monkeypatch.setattr(storage, "open_range", watching_open_range)
    record = root.pipeline.object_created(
        ObjectInfo("vbr.mp3", info.size, info.etag, datetime.now(UTC)), sequencer="0A"
    )
    assert seen_during_scan == [(AudioStatus.PENDING, None)]
    assert record is not None and record.status is AudioStatus.READY
    assert record.bitrate_mode == "VBR"
    stored = catalog.get_audio("vbr.mp3")
    assert stored is not None and stored.status is AudioStatus.READY
    assert stored.duration == record.duration


def test_a_cbr_file_is_never_pending(app_env, root, monkeypatch):
    data = make_mp3(2.0)
    info = root.storage.put("cbr.mp3", io.BytesIO(data))
    statuses = []
    catalog = root.catalog
    real_put = catalog.put_audio

    def recording_put(record, **kwargs):
        statuses.append(record.status)
        return real_put(record, **kwargs)

    monkeypatch.setattr(catalog, "put_audio", recording_put)
    root.pipeline.object_created(
        ObjectInfo("cbr.mp3", info.size, info.etag, datetime.now(UTC)), sequencer="0B"
    )
    assert statuses == [AudioStatus.READY]
