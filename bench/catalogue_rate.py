"""1,000 files catalogued end to end through the local server (``python -m local_server``,
local backend): small real MP3s (1 s, tagged) land in AUDIO_FILES_DIR and the metadata
pipeline (directory watcher -> S3-shaped event -> extract_metadata -> SQLite) makes them
appear in ``GET /api/audio/list?status=ready``.

Figures (files per second, information; issue 3 sets no number):
- live: the files copied into AUDIO_FILES_DIR while the server runs, from the first copy
  until all of them are listed (LOCAL_WATCH_SECONDS at its default: a copied file is judged
  once its size has held for two polls, so about 2 s of every figure is that wait; the time
  from the first file listed to the last is printed too);
- start-up: the server stopped, 1,000 more copied in, started again, from the process's
  launch (and from its first health answer) until all are listed (the reconcile path);
- baseline, same run: the same 1,000 files uploaded one after another through
  ``POST /api/audio/upload`` (multipart) into a fresh server, until all are listed.

The list is polled every POLL seconds (a bounded loop); that is the figures' resolution.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Figure,
    Report,
    count_listed,
    log,
    log_tail,
    multipart,
    run_alone,
    small_mp3s,
    start_local_server,
    workspace,
)

NAME = "catalogue_rate"
Server = tuple["subprocess.Popen[bytes]", Path, str]
POLL = 0.25
DEADLINE = 300.0


def wait_listed(
    base: str, want: int, started: float, server: Server | None = None
) -> dict[str, float]:
    """Poll the list until ``want`` files are ready: seconds (since ``started``) to the first
    one listed and to all of them. ``server`` (process, log dir, name): its log's tail when
    it stops answering."""
    first = 0.0
    deadline = time.perf_counter() + DEADLINE
    polls = 0
    while time.perf_counter() < deadline:
        try:
            listed = count_listed(base)
        except OSError as exc:
            if server is None:
                raise
            proc, log_dir, name = server
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "running"
            tail = log_tail(log_dir, name)
            raise RuntimeError(f"{name} stopped answering ({exc}; {state}):\n{tail}") from exc
        polls += 1
        now = time.perf_counter() - started
        if listed and not first:
            first = now
        if listed >= want:
            return {"first": first, "all": now, "polls": polls}
        time.sleep(POLL)
    raise RuntimeError(f"only {count_listed(base)} of {want} files listed after {DEADLINE:.0f}s")


def stage(tmp: Path, count: int, prefix: str) -> list[Path]:
    """The files, made before any clock starts (one encode, a tag each)."""
    folder = tmp / f"stage-{prefix}"
    folder.mkdir()
    paths = []
    for name, data in small_mp3s(count, 1.0, prefix):
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def copy_in(paths: list[Path], audio_dir: Path) -> float:
    started = time.perf_counter()
    for path in paths:
        shutil.copyfile(path, audio_dir / path.name)
    return time.perf_counter() - started


def upload_all(base: str, paths: list[Path]) -> None:
    """``POST /api/audio/upload`` for each file in turn, on one kept-alive connection."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        for path in paths:
            content_type, body = multipart({"filename": path.name}, path.name, path.read_bytes())
            headers = {"Authorization": "Bearer bench-token", "Content-Type": content_type}
            conn.request("POST", "/api/audio/upload", body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            if response.status != 201:
                raise RuntimeError(f"upload of {path.name}: {response.status} {answer[:300]!r}")
    finally:
        conn.close()


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    count = 300 if quick else 1_000
    raw: dict[str, Any] = {"files": count, "poll_s": POLL}
    with workspace(NAME) as (tmp, procs):
        first_batch = stage(tmp, count, "live")
        second_batch = stage(tmp, count, "restart")
        raw["file_bytes"] = first_batch[0].stat().st_size
        log(f"{2 * count:,} files of {raw['file_bytes']:,} bytes staged")

        # Baseline: uploads through the API into a server of its own.
        uploads = {"AUDIO_FILES_DIR": str(tmp / "uploaded"), "DATA_DIR": str(tmp / "up-state")}
        proc, base = start_local_server(procs, tmp, "server-upload", **uploads)
        upload_all(base, first_batch[:5])  # warm-up: handler imports, SQLite, signing key
        started = time.perf_counter()
        upload_all(base, first_batch[5:])
        uploaded = time.perf_counter() - started
        waited = wait_listed(base, count, started, (proc, tmp, "server-upload"))
        raw["upload"] = {"upload_s": uploaded, **waited}
        log(f"upload: {count - 5} in {uploaded:.1f}s, all listed at {waited['all']:.1f}s")
        procs.stop(proc)

        audio_dir, data_dir = tmp / "audio", tmp / "state"
        audio_dir.mkdir()
        settings = {"AUDIO_FILES_DIR": str(audio_dir), "DATA_DIR": str(data_dir)}
        proc, base = start_local_server(procs, tmp, "server-live", **settings)
        count_listed(base)  # warm-up: the list route
        started = time.perf_counter()
        copied = copy_in(first_batch, audio_dir)
        waited = wait_listed(base, count, started, (proc, tmp, "server-live"))
        raw["live"] = {"copy_s": copied, **waited}
        first, every = waited["first"], waited["all"]
        log(f"live: copied in {copied:.2f}s, first listed {first:.1f}s, all {every:.1f}s")
        procs.stop(proc)

        copy_in(second_batch, audio_dir)
        started = time.perf_counter()
        proc, base = start_local_server(procs, tmp, "server-restart", **settings)
        healthy = time.perf_counter() - started
        waited = wait_listed(base, 2 * count, started, (proc, tmp, "server-restart"))
        raw["startup"] = {"health_s": healthy, **waited}
        log(
            f"start-up: healthy at {healthy:.1f}s, all {2 * count:,} listed at {waited['all']:.1f}s"
        )
        procs.stop(proc)

    report.raw.update(raw)
    figures(report, raw, count)
    return report


def figures(report: Report, raw: dict[str, Any], count: int) -> None:
    up = raw["upload"]
    up_rate = (count - 5) / up["upload_s"]
    live, startup = raw["live"], raw["startup"]
    live_rate = count / live["all"]
    start_rate = count / startup["all"]
    after_health = count / (startup["all"] - startup["health_s"])
    n = f"{count:,}"
    report.add(Figure(f"catalogue {n}: POST /api/audio/upload, files/s", f"{up_rate:,.0f}"))
    report.add(
        Figure(
            f"catalogue {n}: copied in live, files/s",
            f"{live_rate:,.0f} = {live_rate / up_rate:.2f}x upload",
            note=(
                f"all listed {live['all']:.1f}s after the first copy (copying took "
                f"{live['copy_s']:.2f}s); first listed at {live['first']:.1f}s, so "
                f"{count / max(live['all'] - live['first'], 1e-3):,.0f} files/s once the "
                "watcher's settle wait was over"
            ),
        )
    )
    report.add(
        Figure(
            f"catalogue {n}: start-up reconcile, files/s",
            f"{start_rate:,.0f} = {start_rate / up_rate:.2f}x upload",
            note=(
                f"from launch; {after_health:,.0f} files/s from the first health answer "
                f"({startup['health_s']:.1f}s after launch), all listed at {startup['all']:.1f}s"
            ),
        )
    )


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
