"""A queue as one MP3 (``GET /api/streams/{name}/stream.mp3``) through the local server, on
the local backend and on S3 (S3 and DynamoDB in a moto server of their own).

500 small real MP3s (1 s, 44.1 kHz stereo 128 kbps CBR, each with its own ID3v2 tag) are
catalogued with the app's own ``Pipeline.object_created``; two sequential queues are made
through ``POST /api/streams/{name}/queue``: one of the first file, one of all 500.

Figures, for each backend:
- time to first byte (the first body byte, on a new connection, hung up after the first
  audio byte) of the 500-file queue over the 1-file queue, median of N interleaved GETs
  after a warm-up, each on an idle server. Target <= 1.2 (issue 4: the start never waits on
  the whole queue). The warm-up leaves each queue's record in the server's device cache
  (``DEVICE_CACHE_SECONDS``), as a player's run of requests does. The first byte is the
  title tag, sent from memory, so the time to the first audio byte (the first that storage
  gives) is reported too (information); then the 1-file queue's TTFB 20 ms after a hang-up
  on the 500-file queue, over its idle TTFB (issue 4: reads stop at once when the client
  goes; information);
- how long the server took to write the 500-file queue's pack (its stream stored whole, by
  the pack function the server calls on each queue change), from the queue's save until the
  pack is readable (information). Every figure after it is taken once the packs exist;
- throughput (MB/s, best of 5; 3 on S3) of the whole 500-file queue over the single-file stream
  (``GET /api/audio/{filename}``) of one file of about the same total size on the same
  backend, runs interleaved, with curl and the Python reader. Target >= 0.7. Then the same
  queue in shuffle order (``?play_mode=shuffle``: the same files and size, but no pack), read
  from the 500 files (information: what a queue plays at before its pack is written);
- the server's peak RSS growth during the queue streams over its RSS after a warm-up.
  Target < 32 MB;
- where the time goes, in this process without HTTP (information): the catalogue read and
  layout a request pays when its device cache has no record, and the storage reads alone
  (every file's span through ``read_spans``, as a queue without a pack is read) against one
  read of the single file;
- ``--full`` only, local backend: the same throughput ratio for 500 files of 30 s each
  (240 MB), where the cost per file weighs 30 times less.

1-s files are the worst case: read from the files, the stream's cost per file (an open and
a stat locally, a GET on S3) is paid every 16 KB. moto serves on the order of a hundred GETs
a second, so on S3 a queue read from its files is bound by moto's time per request (the
"storage reads alone" line says so in the same run), not by the server.
"""

from __future__ import annotations

import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    MB,
    MIB,
    TOKEN,
    Figure,
    Report,
    RssSampler,
    api_call,
    app_settings,
    aws_client,
    clients,
    download,
    log,
    median,
    run_alone,
    small_mp3s,
    start_local_server,
    start_moto,
    workspace,
    write_big_mp3,
)

NAME = "queue_stream"
FILES = 500
SINGLE = "bench-single.mp3"
LONG_SECONDS = 30.0
LONG_SINGLE = "bench-single-long.mp3"
BUCKET = "bench-queue"
TABLE = "bench-queue-catalog"
TTFB_TARGET = 1.2
RATIO_TARGET = 0.7
RSS_TARGET_MB = 32
WARMUP = 3
#: Pause after each TTFB sample (its connection hung up after the first byte), so that the
#: next one meets an idle server: what a hang-up leaves running is measured on its own.
SETTLE = {"local": 0.1, "s3": 0.5}
#: The gap between a hang-up on the 500-file queue and the 1-file request that follows it.
HANG_UP_GAP = 0.02
HANG_UP_SAMPLES = 6


def catalogue(names: list[str], workers: int = 1) -> None:
    """The metadata pipeline's own entry point, as the event for each object would call it."""
    from smart_stream.bootstrap import services

    root = services()
    storage = root.storage

    def one(name: str) -> None:
        record = root.pipeline.object_created(storage.head(name), sequencer=None)
        if record is None or record.audio_start is None:
            raise RuntimeError(f"{name} was not catalogued as playable audio")

    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(one, names):
            pass


def make_queue(base: str, name: str, files: list[str]) -> dict[str, Any]:
    body = {"files": files, "play_mode": "sequential", "title": name}
    status, queue = api_call(base, "POST", f"/api/streams/{name}/queue", json_body=body)
    if status not in (200, 201):
        raise RuntimeError(f"queue {name}: {status} {queue}")
    return dict(queue)


def wait_for_pack(settings: dict[str, str], name: str, limit: float = 300) -> float:
    """When (perf_counter) the queue's pack became readable, polled every 10 ms."""
    from smart_stream.services.packs import pack_key

    with app_settings(**settings) as root:
        record = root.queues.get(name)
        key = pack_key(name, root.layouts.finite(record, record.play_mode))
        storage = root.storage
        deadline = time.perf_counter() + limit
        while not storage.exists(key):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no pack for {name} after {limit:.0f} s")
            time.sleep(0.01)
        return time.perf_counter()


def first_byte(url: str) -> tuple[float, float, float]:
    """(seconds to the response's headers, to the first body byte, to the first audio byte:
    the one after the stream's title tag) on a new connection, which is then closed, as a
    player that hangs up would (the server stops reading: the rest of a 500-file queue is not
    waited for)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        headers = time.perf_counter() - started
        first = response.read(1)
        first_s = time.perf_counter() - started
        if response.status != 200 or not first:
            raise RuntimeError(f"{parts.path}: HTTP {response.status}")
        head = first + response.read(9)
        if head[:3] != b"ID3":
            raise RuntimeError(f"{parts.path}: no title tag: {head!r}")
        tag = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
        response.read(tag - len(head) + 1)
        audio_s = time.perf_counter() - started
        return headers, first_s, audio_s
    finally:
        conn.close()


def ttfb(report: Report, label: str, urls: dict[str, str], samples: int) -> None:
    settle = SETTLE.get(label, 0.5)
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in urls}
    for i in range(WARMUP + samples):
        for key, url in urls.items():
            sample = first_byte(url)
            time.sleep(settle)
            if i >= WARMUP:
                runs[key].append(sample)
    one, many = (median([s[1] for s in runs[k]]) * 1000 for k in urls)
    ratio = many / one
    # The first byte is the title tag, sent from memory; the first audio byte waits on
    # storage (the pack's first read, or the first file's).
    one_audio, many_audio = (median([s[2] for s in runs[k]]) * 1000 for k in urls)
    # What a hang-up leaves behind: the 1-file queue asked for just after a player hung up
    # on the 500-file one. Storage reads that stop at once leave it as fast as when idle.
    after: list[float] = []
    for _ in range(HANG_UP_SAMPLES):
        first_byte(urls["many"])
        time.sleep(HANG_UP_GAP)
        after.append(first_byte(urls["one"])[1])
        time.sleep(settle)
    after_ms = median(after) * 1000
    report.raw[f"{label}_ttfb_ms"] = {
        **{
            k: {
                "headers": [s[0] * 1000 for s in v],
                "first_byte": [s[1] * 1000 for s in v],
                "first_audio_byte": [s[2] * 1000 for s in v],
            }
            for k, v in runs.items()
        },
        "one_after_hang_up": [a * 1000 for a in after],
    }
    log(f"{label} TTFB: 1 file {one:.2f} ms, {FILES} files {many:.2f} ms")
    log(f"{label} TTFB of 1 file {HANG_UP_GAP * 1000:.0f} ms after a hang-up: {after_ms:.1f} ms")
    report.add(
        Figure.check(
            f"queue {label}: TTFB {FILES}-file/1-file queue",
            ratio,
            f"{many:.1f}/{one:.1f} ms = {{:.2f}}x",
            f"<= {TTFB_TARGET}x",
            ratio <= TTFB_TARGET,
        )
    )
    report.add(
        Figure(
            f"queue {label}: first audio byte, {FILES}-file/1-file queue",
            f"{many_audio:.1f}/{one_audio:.1f} ms = {many_audio / one_audio:.2f}x",
            note="the byte after the title tag: the first that storage had to give",
        )
    )
    report.add(
        Figure(
            f"queue {label}: 1-file TTFB after a hang-up/idle",
            f"{after_ms:.1f}/{one:.1f} ms = {after_ms / one:.2f}x",
            note=f"the request {HANG_UP_GAP * 1000:.0f} ms after a player hung up on the "
            f"{FILES}-file queue at its first byte: reads that go on after a hang-up slow it",
        )
    )


def throughput(
    report: Report,
    label: str,
    pid: int,
    queue_url: str,
    single_url: str,
    runs: int,
    files_url: str | None = None,
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    targets = {"queue": (queue_url, {}), "single": (single_url, auth)}
    if files_url:
        targets["files"] = (files_url, {})
    sizes: dict[str, int] = {}
    for key, (url, headers) in targets.items():  # warm-up, and the sizes
        result = download(url, headers)
        if result.status != 200:
            raise RuntimeError(f"{key}: HTTP {result.status}")
        sizes[key] = result.bytes
    sampler = RssSampler(pid)
    baseline = sampler.rss()
    speeds = {c: {key: [] for key in targets} for c in clients()}
    # The queue and the single file interleaved; then the unpacked order on its own, so that
    # what its 500 reads leave behind (a busy moto, garbage to collect) never lands on them.
    for keys in (["queue", "single"], ["files"] if "files" in targets else []):
        for _ in range(runs):
            for client in clients():
                for key in keys:
                    url, headers = targets[key]
                    if key != "single":
                        with sampler:
                            result = download(url, headers, client=client)
                    else:
                        result = download(url, headers, client=client)
                    if result.status != 200 or result.bytes != sizes[key]:
                        raise RuntimeError(f"{key}: HTTP {result.status}, {result.bytes} bytes")
                    speeds[client][key].append(result.mb_per_s)
    growth = (sampler.peak - baseline) / MB
    report.raw[f"{label}_throughput"] = {
        "bytes": sizes,
        "mb_s": speeds,
        "rss_baseline_mb": baseline / MB,
        "rss_growth_mb": growth,
    }
    for client in clients():
        queue, single = max(speeds[client]["queue"]), max(speeds[client]["single"])
        if "files" in targets:
            files = max(speeds[client]["files"])
            report.add(
                Figure(
                    f"queue {label}: MB/s {FILES} files, no pack/single file [{client}]",
                    f"{files:,.0f}/{single:,.0f} = {files / single:.2f}x",
                    note="the same queue in shuffle order, which has no pack: read file by file"
                    if client == clients()[0]
                    else "",
                )
            )
        ratio = queue / single
        log(f"{label} [{client}]: queue {queue:,.0f} MB/s, single file {single:,.0f} MB/s")
        report.add(
            Figure.check(
                f"queue {label}: MB/s {FILES}-file queue/single file [{client}]",
                ratio,
                f"{queue:,.0f}/{single:,.0f} = {{:.2f}}x",
                f">= {RATIO_TARGET}x",
                ratio >= RATIO_TARGET,
                note=""
                if client != clients()[0]
                else f"{sizes['queue'] / MB:.1f} MB queue, {sizes['single'] / MB:.1f} MB file",
            )
        )
    report.add(
        Figure.check(
            f"queue {label}: server RSS growth, queue stream",
            growth,
            "{:.1f} MB",
            f"< {RSS_TARGET_MB} MB",
            growth < RSS_TARGET_MB,
        )
    )


def in_process(report: Report, label: str, settings: dict[str, str], reads: int) -> None:
    """Where the time goes, without HTTP, in this process on the same backend and catalogue:
    the per-request work on the queue (catalogue read + layout), and the storage reads alone
    (every file's span through ``read_spans``, as a queue without a pack is read, against one
    read of the file)."""
    from smart_stream.domain.records import PlayMode

    with app_settings(**settings) as root:
        work: dict[str, float] = {}
        for name in ("bench-one", "bench-many"):
            samples = []
            for _ in range(WARMUP + 20):
                started = time.perf_counter()
                record = root.queues.get(name)
                layout = root.layouts.finite(record, PlayMode.SEQUENTIAL)
                samples.append(time.perf_counter() - started)
            work[name] = median(samples[WARMUP:]) * 1000
        storage = root.storage
        speeds: dict[str, list[float]] = {"pieces": [], "single": []}
        spans = layout.spans()
        for _ in range(reads):
            started = time.perf_counter()
            fetched = sum(len(chunk) for chunk in storage.read_spans(spans, chunk_size=MIB))
            speeds["pieces"].append(fetched / (time.perf_counter() - started) / MB)
            started = time.perf_counter()
            stream = storage.open_range(SINGLE, chunk_size=MIB)
            fetched = sum(len(chunk) for chunk in stream)
            stream.close()
            speeds["single"].append(fetched / (time.perf_counter() - started) / MB)
    one, many = work["bench-one"], work["bench-many"]
    pieces, single = max(speeds["pieces"]), max(speeds["single"])
    report.raw[f"{label}_in_process"] = {"queue_work_ms": work, "read_mb_s": speeds}
    log(f"{label} in process: queue work {one:.2f}/{many:.2f} ms")
    log(f"{label} in process: reads {pieces:,.0f}/{single:,.0f} MB/s")
    report.add(
        Figure(
            f"queue {label}: catalogue read + layout, 1/{FILES} files",
            f"{one:.2f}/{many:.2f} ms",
            note="in process, no HTTP: what every request on the queue pays before its first byte",
        )
    )
    report.add(
        Figure(
            f"queue {label}: storage reads alone, {FILES} spans/1 file",
            f"{pieces:,.0f}/{single:,.0f} MB/s = {pieces / single:.2f}x",
            note="in process, no HTTP: read_spans over every file, as a queue without a pack",
        )
    )


def measure(
    report: Report,
    label: str,
    proc_pid: int,
    base: str,
    names: list[str],
    quick: bool,
    settings: dict[str, str],
) -> None:
    one = make_queue(base, "bench-one", names[:1])
    many = make_queue(base, "bench-many", names)
    saved = time.perf_counter()
    packed = wait_for_pack(settings, "bench-many")
    seconds = packed - saved
    log(f"{label}: the {FILES}-file queue's pack was readable {seconds:.2f} s after its save")
    wait_for_pack(settings, "bench-one")
    report.add(
        Figure(
            f"queue {label}: {FILES}-file queue saved until its pack is readable",
            f"{seconds:.2f} s",
            note="the server writes it in the background; until then the files are read",
        )
    )
    urls = {"one": one["stream_url"], "many": many["stream_url"]}
    ttfb(report, label, urls, 10 if quick else 20)
    # On moto every S3 queue run is bound by its time per GET: 3 runs say as much as 5.
    runs = 3 if quick or label != "local" else 5
    single_url = f"{base}/api/audio/{SINGLE}"
    files_url = f"{urls['many']}&play_mode=shuffle"
    throughput(report, label, proc_pid, urls["many"], single_url, runs, files_url)
    in_process(report, label, settings, runs if label == "local" else 1)


def write_files(
    folder: Path, seconds: float = 1.0, prefix: str = "queue", single: str = SINGLE
) -> tuple[list[str], int]:
    """The 500 files, and the single file of about their total size."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    total = 0
    for name, data in small_mp3s(FILES, seconds, prefix):
        (folder / name).write_bytes(data)
        names.append(name)
        total += len(data)
    write_big_mp3(folder / single, total)
    return names, total


def local_backend(report: Report, tmp: Path, procs: Any, quick: bool, full: bool) -> None:
    audio_dir = tmp / "audio"
    names, total = write_files(audio_dir)
    # Reference (--full): the same count of songs of LONG_SECONDS, where the cost per file
    # is spread over 30 times the bytes.
    long_names: list[str] = []
    long_total = 0
    if full:
        long_names, long_total = write_files(audio_dir, LONG_SECONDS, "long", LONG_SINGLE)
    settings = {"AUDIO_FILES_DIR": str(audio_dir), "DATA_DIR": str(tmp / "state")}
    with app_settings(**settings):
        catalogue([*names, SINGLE, *long_names, *([LONG_SINGLE] if long_names else [])])
    log(f"local: {FILES} files ({total:,} bytes, {long_total:,} long) and singles catalogued")
    proc, base = start_local_server(procs, tmp, "server-local", **settings)
    measure(report, "local", proc.pid, base, names, quick, settings)
    if long_names:
        queue = make_queue(base, "bench-long", long_names)
        wait_for_pack(settings, "bench-long")
        label = f"local {LONG_SECONDS:.0f} s files"
        single_url = f"{base}/api/audio/{LONG_SINGLE}"
        throughput(report, label, proc.pid, queue["stream_url"], single_url, 3)
    else:
        log(f"the {LONG_SECONDS:.0f} s files reference runs with --full")
    procs.stop(proc)


def s3_backend(report: Report, tmp: Path, procs: Any, quick: bool) -> None:
    moto, endpoint = start_moto(procs, tmp)
    from tests.aws_fixtures import create_bucket, create_catalog_table

    s3 = aws_client("s3", endpoint)
    create_bucket(s3, BUCKET)
    create_catalog_table(aws_client("dynamodb", endpoint), TABLE)
    staging = tmp / "s3-staging"
    names, _ = write_files(staging)
    for name in [*names, SINGLE]:
        with open(staging / name, "rb") as body:
            s3.put_object(Bucket=BUCKET, Key=name, Body=body, ContentType="audio/mpeg")
    settings = {"S3_AUDIO_BUCKET": BUCKET, "CATALOG_TABLE": TABLE, "AWS_ENDPOINT_URL": endpoint}
    settings.update(AUDIO_FILES_DIR=str(tmp / "s3-audio"), DATA_DIR=str(tmp / "s3-state"))
    started = time.perf_counter()
    with app_settings(**settings):
        catalogue([*names, SINGLE], workers=8)
    log(f"s3: {FILES} objects catalogued in {time.perf_counter() - started:.0f}s")
    proc, base = start_local_server(procs, tmp, "server-s3", **settings)
    measure(report, "s3", proc.pid, base, names, quick, settings)
    procs.stop(proc)
    procs.stop(moto)


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    report.raw.update(files=FILES, clients=clients())
    with workspace(NAME) as (tmp, procs):
        local_backend(report, tmp, procs, quick, full)
        s3_backend(report, tmp, procs, quick)
    return report


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
