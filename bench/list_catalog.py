"""Listing a big library: N catalogued files (records written with the app's own
``Catalog.put_audio``, a tiny object for each in S3) on the AWS backend, S3 and
DynamoDB in a moto server of their own.

Figures: the time to list every file through ``Library.page`` pages of
1000 (what the list function does, device URLs included) against the naive way
(``list_objects_v2`` pages + one ``head_object`` per object), and their ratio; and the same
``list_audio`` walk on the local backend (SQLite) for reference.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import (
    Figure,
    Report,
    app_settings,
    aws_client,
    catalogue_record,
    log,
    run_alone,
    start_moto,
    workspace,
)

NAME = "list_catalog"
BUCKET = "bench-list"
TABLE = "bench-list-catalog"
PAGE = "1000"
TINY = b"\xff\xfb\x90\x64" + bytes(413)  # one frame's worth of bytes: the object's size only
WRITERS = 8


def names(count: int) -> list[str]:
    return [f"track-{i:05d}.mp3" for i in range(count)]


def fill(count: int, put_object: Callable[[str], str] | None) -> None:
    """Catalogue ``count`` files (and store each tiny object first, when ``put_object``)."""
    from smart_stream.bootstrap import services

    catalog = services().catalog

    def one(name: str) -> None:
        etag = put_object(name) if put_object else '"0123456789abcdef0123456789abcdef"'
        catalog.put_audio(catalogue_record(name, len(TINY), etag))

    with ThreadPoolExecutor(WRITERS) as pool:
        for _ in pool.map(one, names(count)):
            pass


def list_all() -> tuple[float, int, int]:
    """(seconds, files, pages) of walking every page of the list function's logic."""
    from smart_stream.bootstrap import services
    from smart_stream.http.requests import decode_token, encode_token
    from smart_stream.http.views import Views

    root = services()
    views = Views(root.urls, "http://127.0.0.1:8080")
    started = time.perf_counter()
    token: str | None = None
    files = pages = 0
    while True:
        # What ListAudioFunction does: the token parsed, a page read, the JSON made.
        page = root.library.page(limit=PAGE, after=decode_token(token) if token else None)
        answer = views.audio_list(page, encode_token(page.after) if page.after else None)
        files += len(answer.files)
        pages += 1
        token = answer.next_token
        if not token or pages > 10_000:
            break
    return time.perf_counter() - started, files, pages


def naive_list(s3: Any) -> tuple[float, int]:
    """What a catalogue saves: list the bucket, then ask S3 about each object."""
    started = time.perf_counter()
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            s3.head_object(Bucket=BUCKET, Key=item["Key"])
            found += 1
    return time.perf_counter() - started, found


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    count = 1_000 if quick else 10_000
    report.raw["files"] = count
    with workspace(NAME) as (tmp, procs):
        moto, endpoint = start_moto(procs, tmp)
        from tests.aws_fixtures import create_bucket, create_catalog_table

        s3 = aws_client("s3", endpoint)
        create_bucket(s3, BUCKET)
        create_catalog_table(aws_client("dynamodb", endpoint), TABLE)

        def put_object(name: str) -> str:
            return str(s3.put_object(Bucket=BUCKET, Key=name, Body=TINY)["ETag"])

        aws = {"S3_AUDIO_BUCKET": BUCKET, "CATALOG_TABLE": TABLE, "AWS_ENDPOINT_URL": endpoint}
        aws.update(AUDIO_FILES_DIR=str(tmp / "audio"), DATA_DIR=str(tmp / "aws-state"))
        with app_settings(**aws):
            started = time.perf_counter()
            fill(count, put_object)
            log(f"AWS backend: {count:,} objects + records in {time.perf_counter() - started:.0f}s")
            list_all()  # warm-up: clients, connections, the signing key
            seconds, files, pages = list_all()
        if files != count:
            raise RuntimeError(f"list_audio returned {files} files, want {count}")
        log(f"list_audio: {seconds:.2f}s for {files:,} files in {pages} pages")
        naive_seconds, found = naive_list(s3)
        if found != count:
            raise RuntimeError(f"the bucket listed {found} objects, want {count}")
        log(f"list_objects_v2 + head_object: {naive_seconds:.2f}s")
        procs.stop(moto)

        local = {"AUDIO_FILES_DIR": str(tmp / "audio"), "DATA_DIR": str(tmp / "state")}
        with app_settings(**local):
            fill(count, None)
            list_all()
            local_seconds, local_files, _ = list_all()
        if local_files != count:
            raise RuntimeError(f"SQLite list_audio returned {local_files} files, want {count}")

    ratio = naive_seconds / seconds
    report.raw.update(
        aws_list_audio_s=seconds,
        aws_pages=pages,
        naive_s=naive_seconds,
        speedup=ratio,
        local_list_audio_s=local_seconds,
    )
    report.add(Figure(f"list {count:,}: list_audio pages (DynamoDB)", f"{seconds:.2f} s"))
    report.add(Figure(f"list {count:,}: list_objects_v2 + head_object", f"{naive_seconds:.2f} s"))
    report.add(
        Figure(
            f"list {count:,}: naive / list_audio",
            f"{ratio:.1f}x",
            note="how many times faster the catalogue lists than asking S3 about each object",
        )
    )
    report.add(Figure(f"list {count:,}: list_audio pages (SQLite)", f"{local_seconds:.2f} s"))
    return report


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
