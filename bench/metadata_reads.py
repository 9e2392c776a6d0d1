"""What the metadata pipeline reads of one file: long CBR MP3s with an ordinary ID3v2 tag in
front, in S3 (a moto server in its own process), analysed by
``smart_stream.services.pipeline.analyse_object`` in this process on the AWS backend.

Figures, for each size (1, 10 and 100 MB; ``--full``: 1 MB, 100 MB and 1 GB, issue 3's):
- storage reads (GETs) and bytes fetched, counted on the storage adapter (every
  ``open_range`` call and every byte it yields; the app's own ``RangedFile`` counters are
  kept beside them in the raw figures). Target: at most 3 reads and 512 KiB whatever the
  length (issue 3);
- against the naive way measured in the same run: one whole-object ``get_object`` to a
  temporary file, then ``mutagen.mp3.MP3`` on it (bytes = the file's size, 1 GET), the two
  times (median of N) and their ratio, and the two durations (they should agree); three bare
  boto3 ranged GETs of 64 KiB on the same object say how much of the time is moto's.

The objects are streamed into moto from a generated file object (``upload_fileobj``, no
file on disk). moto reads the whole object for every ranged GET, so on the big files the
ranged side's time is mostly moto's: the byte counts are the figure that carries over to S3.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from bench.common import (
    MB,
    MIB,
    Figure,
    Report,
    app_settings,
    aws_client,
    log,
    median,
    run_alone,
    start_moto,
    workspace,
)

NAME = "metadata_reads"
BUCKET = "bench-metadata"
MAX_REQUESTS = 3
MAX_BYTES = 512 * 1024
#: Issue 3's sizes (``--full``); by default and with ``--quick`` 1, 10 and 100 MB.
FULL_SIZES = {"1 MB": 1 * MB, "100 MB": 100 * MB, "1 GB": 1000 * MB}
SIZES = {"1 MB": 1 * MB, "10 MB": 10 * MB, "100 MB": 100 * MB}


class SyntheticMp3(io.RawIOBase):
    """A CBR MP3 of about ``size`` bytes made on the fly: an ID3v2 tag, then one short
    encode's frames repeated whole (lameenc writes no tag and no Info frame). Read once,
    front to back, in constant memory."""

    def __init__(self, size: int) -> None:
        super().__init__()
        from tests.audio import add_id3, make_mp3

        self.tag = add_id3(b"", title="A long story", artist="Bench", album="Bench")
        clip = make_mp3(5.0)
        repeats = max(1, (size - len(self.tag)) // len(clip))
        self.block = clip * max(1, min(repeats, (4 * MIB) // len(clip)))
        blocks, rest = divmod(repeats, len(self.block) // len(clip))
        self.tail = clip * rest
        self.size = len(self.tag) + blocks * len(self.block) + len(self.tail)
        self._parts: Iterator[bytes] = iter(
            [self.tag, *(self.block for _ in range(blocks)), self.tail]
        )
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._buffer + b"".join(self._parts)
        while len(self._buffer) < size:
            part = next(self._parts, None)
            if part is None:
                break
            self._buffer += part
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class CountingStorage:
    """The app's Storage, with every ranged read and every byte it yields counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests = 0
        self.bytes = 0

    def open_range(self, name: str, start: int = 0, end: int | None = None, **kwargs: Any) -> Any:
        stream = self.inner.open_range(name, start, end, **kwargs)
        self.requests += 1
        counter = self

        class Counted:
            info = stream.info

            def __iter__(self) -> Iterator[bytes]:
                for chunk in stream:
                    counter.bytes += len(chunk)
                    yield chunk

            def close(self) -> None:
                stream.close()

        return Counted()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def ranged(name: str, size: int, etag: str) -> dict[str, Any]:
    """One analysis through the app's own code: what it fetched, how long it took."""
    from smart_stream.bootstrap import services
    from smart_stream.services.pipeline import analyse_object

    storage = CountingStorage(services().storage)
    started = time.perf_counter()
    analysis, reader = analyse_object(storage, name, size, etag)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "requests": storage.requests,
        "bytes": storage.bytes,
        "rangedfile_requests": reader.requests,
        "rangedfile_bytes": reader.bytes_fetched,
        "duration": analysis.info.duration,
        "bitrate_mode": str(analysis.info.bitrate_mode),
    }


def full_download(s3: Any, name: str, tmp: Any) -> dict[str, Any]:
    """The naive way: the whole object (one GET) to a temporary file, then mutagen."""
    from mutagen.mp3 import MP3

    started = time.perf_counter()
    fetched = 0
    with tempfile.NamedTemporaryFile(dir=tmp, suffix=".mp3") as out:
        body = s3.get_object(Bucket=BUCKET, Key=name)["Body"]
        for chunk in body.iter_chunks(MIB):
            out.write(chunk)
            fetched += len(chunk)
        out.flush()
        info = MP3(out.name).info
        length = info.length if info is not None else 0.0
    return {"seconds": time.perf_counter() - started, "bytes": fetched, "duration": length}


def bare_ranges(s3: Any, name: str, size: int) -> dict[str, Any]:
    """moto's own floor: three bare 64 KiB ranged GETs (head, middle, tail) with boto3."""
    started = time.perf_counter()
    fetched = 0
    for start in (0, size // 2, size - 64 * 1024):
        span = f"bytes={start}-{start + 64 * 1024 - 1}"
        fetched += len(s3.get_object(Bucket=BUCKET, Key=name, Range=span)["Body"].read())
    return {"seconds": time.perf_counter() - started, "bytes": fetched}


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    sizes = FULL_SIZES if full else SIZES
    samples = 3 if quick else 5
    with workspace(NAME) as (tmp, procs):
        moto, endpoint = start_moto(procs, tmp)
        from tests.aws_fixtures import create_bucket

        s3 = aws_client("s3", endpoint)
        create_bucket(s3, BUCKET)
        objects: dict[str, tuple[str, int]] = {}
        for label, target in sizes.items():
            name = f"long-{label.replace(' ', '')}.mp3"
            source = SyntheticMp3(target)
            started = time.perf_counter()
            s3.upload_fileobj(source, BUCKET, name, ExtraArgs={"ContentType": "audio/mpeg"})
            log(f"{name}: {source.size:,} bytes into moto in {time.perf_counter() - started:.1f}s")
            objects[label] = (name, source.size)
        settings = {"S3_AUDIO_BUCKET": BUCKET, "AWS_ENDPOINT_URL": endpoint}
        settings.update(AUDIO_FILES_DIR=str(tmp / "audio"), DATA_DIR=str(tmp / "state"))
        results: dict[str, dict[str, Any]] = {}
        with app_settings(**settings):
            from smart_stream.bootstrap import services

            first = next(iter(objects.values()))[0]
            info = services().storage.head(first)
            ranged(first, info.size, info.etag)  # warm-up: imports, client, connections
            full_download(s3, first, tmp)
            for label, (name, size) in objects.items():
                info = services().storage.head(name)
                runs = [ranged(name, size, info.etag) for _ in range(samples)]
                bare = [bare_ranges(s3, name, size) for _ in range(samples)]
                naive = [full_download(s3, name, tmp) for _ in range(max(1, samples // 2))]
                results[label] = {"size": size, "ranged": runs, "bare": bare, "full": naive}
                log(
                    f"{label}: {runs[0]['requests']} reads, {runs[0]['bytes']:,} bytes, "
                    f"{median([r['seconds'] for r in runs]) * 1000:.0f} ms; full download + "
                    f"mutagen {median([r['seconds'] for r in naive]) * 1000:.0f} ms"
                )
        procs.stop(moto)
    report.raw.update(samples=samples, results=results)
    figures(report, results)
    return report


def figures(report: Report, results: dict[str, dict[str, Any]]) -> None:
    for label, result in results.items():
        runs, naive = result["ranged"], result["full"]
        requests = max(r["requests"] for r in runs)
        fetched = max(r["bytes"] for r in runs)
        size = result["size"]
        ok = requests <= MAX_REQUESTS and fetched <= MAX_BYTES
        report.add(
            Figure(
                f"metadata {label}: reads, bytes (analyse_object)",
                f"{requests} GETs, {fetched / 1024:,.0f} KiB",
                f"<= {MAX_REQUESTS}, <= {MAX_BYTES // 1024} KiB",
                "PASS" if ok else "MISS",
            )
        )
        report.add(
            Figure(
                f"metadata {label}: reads, bytes (download + mutagen)",
                f"1 GET, {size / 1024:,.0f} KiB",
                note="" if label != next(iter(results)) else "the naive way: bytes = file size",
            )
        )
        ranged_ms = median([r["seconds"] for r in runs]) * 1000
        bare_ms = median([r["seconds"] for r in result["bare"]]) * 1000
        full_ms = median([r["seconds"] for r in naive]) * 1000
        report.add(
            Figure(
                f"metadata {label}: time ranged/full",
                f"{ranged_ms:,.1f}/{full_ms:,.1f} ms = {ranged_ms / full_ms:.3f}x",
                note=f"3 bare boto3 ranged GETs on moto: {bare_ms:,.1f} ms (moto's floor)",
            )
        )
        ours, theirs = runs[0]["duration"], naive[0]["duration"]
        report.add(
            Figure(
                f"metadata {label}: duration ranged/mutagen",
                f"{ours:,.2f}/{theirs:,.2f} s",
                "equal within 0.1 s",
                "PASS" if abs(ours - theirs) <= 0.1 else "MISS",
            )
        )
    fetched = [max(r["bytes"] for r in res["ranged"]) for res in results.values()]
    sizes = [res["size"] for res in results.values()]
    report.add(
        Figure(
            "metadata: bytes fetched, largest/smallest file",
            f"{max(fetched) / min(fetched):.2f}x for {sizes[-1] / sizes[0]:,.0f}x the size",
            note="flat: the bytes read do not grow with the audio's length",
        )
    )


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
