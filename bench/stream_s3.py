"""The same big file from S3, where S3 (and DynamoDB) is a moto server in its own process and
the local server runs on the AWS backend against it.

Figures:
- the local server's peak RSS growth while streaming the whole file, over its RSS after a
  warm-up (target < 32 MB); the throughput is printed for information (moto bounds it);
- time to first byte (the response's headers) of ``Range: bytes=-1024`` on the device
  route, median of N after a warm-up, against a bare boto3 ``get_object(Range=...)`` on
  the same moto server (target ratio <= 1.5). Warm: DEVICE_CACHE_SECONDS at its default
  (the catalogue record is cached, so one S3 GET per request); cold: DEVICE_CACHE_SECONDS=0
  (one DynamoDB read and one S3 GET per request). Samples are interleaved with the
  baseline's so that drift hits both alike. moto reads the whole object for any ranged GET,
  so the same pair is also measured on a 1 MiB object, where the server's own part shows.
"""

from __future__ import annotations

import http.client
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    MIB,
    TOKEN,
    Figure,
    Report,
    RssSampler,
    app_settings,
    aws_client,
    catalogue_record,
    download,
    http_get,
    log,
    median,
    run_alone,
    start_local_server,
    start_moto,
    workspace,
    write_big_mp3,
)

NAME = "stream_s3"
FILENAME = "bench-big.mp3"
#: A small object for reference: what the server adds when moto's own cost is small.
SMALL = "bench-small.mp3"
BUCKET = "bench-audio"
TABLE = "bench-catalog"
TAIL = "bytes=-1024"
RSS_TARGET_MB = 32
RATIO_TARGET = 1.5
WARMUP = 3


def create_resources(endpoint: str) -> None:
    from tests.aws_fixtures import create_bucket, create_catalog_table

    create_bucket(aws_client("s3", endpoint), BUCKET)
    create_catalog_table(aws_client("dynamodb", endpoint), TABLE)


def upload(endpoint: str, name: str, path: Path, size: int) -> None:
    """Put the object with boto3 (one PUT) and catalogue it with the app's own code."""
    s3 = aws_client("s3", endpoint)
    started = time.perf_counter()
    with open(path, "rb") as body:
        s3.put_object(Bucket=BUCKET, Key=name, Body=body, ContentType="audio/mpeg")
    etag: str = s3.head_object(Bucket=BUCKET, Key=name)["ETag"]
    log(f"put {name} ({size:,} bytes) into moto in {time.perf_counter() - started:.1f}s")
    with app_settings(**aws_settings(endpoint)):
        from smart_stream.bootstrap import services

        services().catalog.put_audio(catalogue_record(name, size, etag))
    path.unlink()  # the bytes live in moto now


def aws_settings(endpoint: str, tmp: Path | None = None) -> dict[str, str]:
    settings = {"S3_AUDIO_BUCKET": BUCKET, "CATALOG_TABLE": TABLE, "AWS_ENDPOINT_URL": endpoint}
    if tmp is not None:
        settings.update(AUDIO_FILES_DIR=str(tmp / "audio"), DATA_DIR=str(tmp / "state"))
    return settings


def ttfb_pairs(
    base: str, s3: Any, name: str, size: int, samples: int
) -> tuple[list[float], list[float]]:
    """Interleaved samples: (server's TTFB, boto3's TTFB), in seconds."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Authorization": f"Bearer {TOKEN}", "Range": TAIL}
    path = f"/api/audio/{name}"
    server: list[float] = []
    bare: list[float] = []
    try:
        for i in range(WARMUP + samples):
            seconds, status, body = http_get(conn, path, headers)
            if status != 206 or len(body) != 1024:
                raise RuntimeError(f"server answered {status} with {len(body)} bytes")
            started = time.perf_counter()
            response = s3.get_object(Bucket=BUCKET, Key=name, Range=TAIL)
            boto_seconds = time.perf_counter() - started
            data = response["Body"].read()
            if len(data) != 1024 or not response["ContentRange"].endswith(f"/{size}"):
                raise RuntimeError("boto3 got the wrong tail")
            if i >= WARMUP:
                server.append(seconds)
                bare.append(boto_seconds)
    finally:
        conn.close()
    return server, bare


def ttfb(
    report: Report, label: str, base: str, s3: Any, files: dict[str, int], samples: int
) -> None:
    """The target figure on the big file, and the same on the small one for reference."""
    for i, (name, size) in enumerate(files.items()):
        server, bare = ttfb_pairs(base, s3, name, size, samples)
        server_ms, bare_ms = median(server) * 1000, median(bare) * 1000
        ratio = server_ms / bare_ms
        what = f"{size / MIB:,.0f} MiB"
        report.raw[f"ttfb_{label}_{name}"] = {
            "size": size,
            "server_ms": [s * 1000 for s in server],
            "boto3_ms": [s * 1000 for s in bare],
            "server_median_ms": server_ms,
            "boto3_median_ms": bare_ms,
            "ratio": ratio,
        }
        value = f"{server_ms:.1f}/{bare_ms:.1f} ms = {{:.2f}}x"
        name_ = f"s3 {label}: TTFB {TAIL}, {what}, server/boto3"
        if i == 0:
            note = CACHE_NOTES[label]
            ok = ratio <= RATIO_TARGET
            report.add(Figure.check(name_, ratio, value, f"<= {RATIO_TARGET}x", ok, note))
        else:
            report.add(Figure(name_, value.format(ratio)))
        log(f"{label} TTFB {what}: server {server_ms:.1f} ms, boto3 {bare_ms:.1f} ms")


CACHE_NOTES = {
    "warm": "DEVICE_CACHE_SECONDS default (5 s): record cached, one S3 GET a request",
    "cold": "DEVICE_CACHE_SECONDS=0: one DynamoDB GetItem + one S3 GET a request",
}


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    big = (64 if quick else 512) * MIB
    samples = 15 if quick else 30
    with workspace(NAME) as (tmp, procs):
        moto, endpoint = start_moto(procs, tmp)
        create_resources(endpoint)
        files = {}
        for name, target in ((FILENAME, big), (SMALL, MIB)):
            files[name] = write_big_mp3(tmp / name, target)
            upload(endpoint, name, tmp / name, files[name])
        report.raw.update(files=files, samples=samples, warmup=WARMUP)
        s3 = aws_client("s3", endpoint)

        # Warm: DEVICE_CACHE_SECONDS at its default. Memory first, over the whole file.
        proc, base = start_local_server(procs, tmp, "server-warm", **aws_settings(endpoint, tmp))
        stream_memory(report, proc.pid, base, files[FILENAME])
        ttfb(report, "warm", base, s3, files, samples)
        procs.stop(proc)

        # Cold: no record cache, so every request reads DynamoDB, then S3.
        proc, base = start_local_server(
            procs, tmp, "server-cold", DEVICE_CACHE_SECONDS="0", **aws_settings(endpoint, tmp)
        )
        ttfb(report, "cold", base, s3, files, samples)
        procs.stop(proc)
        procs.stop(moto)
    return report


def stream_memory(report: Report, pid: int, base: str, size: int) -> None:
    url = f"{base}/api/audio/{FILENAME}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(WARMUP):  # imports, boto3 client, connection pool, record cache
        download(url, {**headers, "Range": "bytes=0-1048575"})
    sampler = RssSampler(pid)
    baseline = sampler.rss()
    with sampler:
        result = download(url, headers)
    if result.status != 200 or result.bytes != size:
        raise RuntimeError(f"got HTTP {result.status} and {result.bytes} bytes of {size}")
    growth = (sampler.peak - baseline) / MB
    log(f"full stream from moto: {result.mb_per_s:,.0f} MB/s, RSS +{growth:.1f} MB")
    report.raw["full_stream"] = {
        "mb_s": result.mb_per_s,
        "seconds": result.seconds,
        "rss_baseline_mb": baseline / MB,
        "rss_growth_mb": growth,
        "rss_samples": sampler.samples,
    }
    report.add(Figure("s3: full stream through server MB/s", f"{result.mb_per_s:,.0f}"))
    report.add(
        Figure.check(
            "s3: server RSS growth, full stream",
            growth,
            "{:.1f} MB",
            f"< {RSS_TARGET_MB} MB",
            growth < RSS_TARGET_MB,
        )
    )


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
