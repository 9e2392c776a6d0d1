"""What every bench shares: figures and their table, subprocesses that are always stopped,
free ports, the app's environment, a big MP3, HTTP clients and an RSS sampler.

Benches measure and print; nothing here asserts on a timing. A missed target is reported
as MISS (information); only a bench that breaks makes ``python -m bench`` exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smart_stream.bootstrap import Services

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
PYTHON = sys.executable
TOKEN = "bench-token"
MB = 1_000_000
MIB = 1024 * 1024
#: The app's own settings: a bench starts from none of the developer's.
APP_ENV = (
    "S3_AUDIO_BUCKET",
    "CATALOG_TABLE",
    "API_TOKEN_SECRET_ARN",
    "SIGNING_SECRET_ARN",
    "PUBLIC_BASE_URL",
    "AUDIO_STREAM_BASE_URL",
    "AWS_ENDPOINT_URL",
    "AUDIO_FILES_DIR",
    "DATA_DIR",
    "API_TOKEN",
    "STREAM_CHUNK_BYTES",
    "DEVICE_CACHE_SECONDS",
    "HOST",
    "PORT",
    "QUEUE_STREAM_BASE_URL",
    "STREAM_SESSION_SECONDS",
    "STREAM_SESSION_BYTES",
    "SECRET_CACHE_SECONDS",
    "TTS_ENGINE",
    "LOCAL_WATCH_SECONDS",
)
#: Fake credentials for moto: never a real account.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured figure, with its target when it has one."""

    name: str
    value: str
    target: str = ""
    #: PASS / MISS against the target, INFO without one, SKIP when it could not be measured.
    status: str = "INFO"
    note: str = ""

    @classmethod
    def check(
        cls, name: str, value: float, fmt: str, target: str, ok: bool, note: str = ""
    ) -> Figure:
        return cls(name, fmt.format(value), target, "PASS" if ok else "MISS", note)


@dataclass
class Report:
    bench: str
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def save(self) -> Path:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"{self.bench}.json"
        body = {
            "bench": self.bench,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "figures": [asdict(f) for f in self.figures],
            "raw": self.raw,
        }
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")
        return path


def print_table(figures: Sequence[Figure], title: str = "") -> None:
    rows = [("figure", "value", "target", "result")]
    rows += [(f.name, f.value, f.target or "-", f.status) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    if title:
        print(f"\n{title}")
    print(line)
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print(line)
    print(line)
    notes = [f for f in figures if f.note]
    for f in notes:
        print(f"  * {f.name}: {f.note}")
    sys.stdout.flush()


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


#: ``run(quick, full)`` of a bench: ``full`` adds the big sizes some benches keep opt-in
#: (the 1 GB metadata file, the queue of 30 s files); the others ignore it.
Run = Callable[[bool, bool], Report]


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, fewer samples")
    mode.add_argument(
        "--full",
        action="store_true",
        help="the big sizes too (1 GB metadata file, 30 s queue files)",
    )
    return parser.parse_args(argv)


def mode_label(args: argparse.Namespace) -> str:
    return " (quick)" if args.quick else " (full)" if args.full else ""


def run_alone(name: str, run: Run, description: str, argv: Sequence[str] | None = None) -> int:
    """``python -m bench.<name>``: run one bench and print its table."""
    args = parse_args(description, argv)
    report = run(args.quick, args.full)
    path = report.save()
    print_table(report.figures, f"{name}{mode_label(args)}")
    print(f"  raw figures: {path.relative_to(ROOT)}")
    return 0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Subprocesses a bench started; ``stop_all`` ends each of them (and only them), by id."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        log_dir: Path,
        cwd: Path = ROOT,
    ) -> subprocess.Popen[bytes]:
        out = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the process
        try:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: stopping it reaches its children
            )
        finally:
            out.close()
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        self._procs = [(n, p) for n, p in self._procs if p is not proc]
        _terminate(proc)

    def stop_all(self) -> None:
        while self._procs:
            _, proc = self._procs.pop()
            _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the group this bench made for it, nothing else
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def log_tail(log_dir: Path, name: str, lines: int = 20) -> str:
    path = log_dir / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_http(
    url: str,
    proc: subprocess.Popen[bytes],
    *,
    timeout: float = 60.0,
    log_dir: Path | None = None,
    name: str = "",
) -> None:
    """Wait until ``url`` answers at all (any HTTP status), or fail with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_tail(log_dir, name) if log_dir else ""
            raise RuntimeError(f"{name or url} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{name or url} did not answer within {timeout:.0f}s")


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[tuple[Path, Processes]]:
    """A temporary directory and a process list, both gone at the end whatever happens."""
    tmp = Path(tempfile.mkdtemp(prefix=f"smart-stream-bench-{prefix}-"))
    procs = Processes()
    try:
        yield tmp, procs
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- app env


def base_env(**settings: str) -> dict[str, str]:
    """The environment of a subprocess: this one's, minus any app setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in APP_ENV}
    env.update(AWS_ENV)
    env.update(settings)
    return env


@contextlib.contextmanager
def app_settings(**settings: str) -> Iterator[Services]:
    """Run the app's own code in this process with exactly these settings (services built
    from them, and installed), then restore."""
    from smart_stream.bootstrap import Services, install
    from smart_stream.settings import Settings

    saved = {k: os.environ.get(k) for k in (*APP_ENV, *AWS_ENV)}
    for name in APP_ENV:
        os.environ.pop(name, None)
    os.environ.update(AWS_ENV)
    os.environ.update(settings)
    built = Services(Settings.from_env())
    built.migrate()
    install(built)
    try:
        yield built
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        install(None)


def start_local_server(
    procs: Processes, log_dir: Path, name: str, **settings: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m local_server`` on a free loopback port; returns it and its base URL."""
    port = free_port()
    env = base_env(HOST="127.0.0.1", PORT=str(port), API_TOKEN=TOKEN, **settings)
    proc = procs.start(name, [PYTHON, "-m", "local_server"], env=env, log_dir=log_dir)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/health", proc, log_dir=log_dir, name=name)
    return proc, base


def start_moto(procs: Processes, log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A moto server in its own process (so that its memory is not the app's)."""
    port = free_port()
    argv = [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = procs.start("moto", argv, env=base_env(), log_dir=log_dir)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(f"{endpoint}/moto-api/", proc, log_dir=log_dir, name="moto")
    return proc, endpoint


def aws_client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(**_session_kwargs()).client(
        service, endpoint_url=endpoint, config=Config(max_pool_connections=16)
    )


def _session_kwargs() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": AWS_ENV["AWS_SESSION_TOKEN"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


# --------------------------------------------------------------------------- audio


def write_big_mp3(path: Path, size: int) -> int:
    """A real CBR MP3 of about ``size`` bytes (a short clip repeated whole, so the file ends
    on a frame boundary). Returns its exact size."""
    from tests.audio import make_mp3

    clip = make_mp3(5.0)
    block = clip * max(1, (8 * MIB) // len(clip))
    written = 0
    with open(path, "wb") as out:
        while written + len(block) <= size:
            out.write(block)
            written += len(block)
        while written + len(clip) <= size:
            out.write(clip)
            written += len(clip)
    return written


def catalogue_record(filename: str, size: int, etag: str) -> Any:
    from smart_stream.domain.records import AudioRecord, AudioStatus

    return AudioRecord(
        filename=filename,
        size=size,
        etag=etag,
        duration=round(size * 8 / 128_000, 3),
        bitrate=128_000,
        bitrate_mode="CBR",
        sample_rate=44100,
        channels=2,
        mpeg_version="1",
        title=filename.removesuffix(".mp3"),
        status=AudioStatus.READY,
    )


# --------------------------------------------------------------------------- clients


@dataclass
class Transfer:
    bytes: int
    seconds: float
    status: int

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / MB if self.seconds else 0.0


def download(
    url: str,
    headers: dict[str, str] | None = None,
    timeout: float = 600,
    client: str | None = None,
) -> Transfer:
    """Fetch ``url`` and drop the bytes with ``client`` ("curl" or "python"); by default
    curl when there is one, else the Python reader."""
    headers = headers or {}
    curl = shutil.which("curl") if client in (None, "curl") else None
    if client == "curl" and not curl:
        raise RuntimeError("curl is not installed")
    if curl:
        argv = [curl, "-s", "-o", "/dev/null", "--max-time", str(int(timeout))]
        argv += ["-w", "%{http_code} %{size_download} %{time_total} %{speed_download}"]
        for key, value in headers.items():
            argv += ["-H", f"{key}: {value}"]
        argv.append(url)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
        code, size, total, _speed = done.stdout.split()
        # speed_download is size / total time: the same figure as bytes / seconds here.
        return Transfer(int(size), float(total), int(code))
    return _python_download(url, headers, timeout)


def _python_download(url: str, headers: dict[str, str], timeout: float) -> Transfer:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), None, headers)
        response = conn.getresponse()
        buffer = bytearray(4 * MIB)
        view = memoryview(buffer)
        total = 0
        while n := response.readinto(view):
            total += n
        return Transfer(total, time.perf_counter() - started, response.status)
    finally:
        conn.close()


def clients() -> list[str]:
    """The HTTP clients a throughput bench uses: curl (when installed) and the Python reader
    (4 MiB reads), which is less of a bottleneck than curl's 100 KB buffer on loopback."""
    return ["curl", "python"] if shutil.which("curl") else ["python"]


class RssSampler:
    """Samples a process's resident set (its children's too) every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rss(self) -> int:
        import psutil

        total = 0
        with contextlib.suppress(psutil.Error):
            total += self._process.memory_info().rss
            for child in self._process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        # The peak carries over from one ``with`` block to the next (several transfers).
        self.peak = max(self.peak, self.rss())
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.peak = max(self.peak, self.rss())


def http_get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str]
) -> tuple[float, int, bytes]:
    """One GET on a kept-alive connection: (seconds to the response's headers, status, body)."""
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    ttfb = time.perf_counter() - started
    body = response.read()
    return ttfb, response.status, body


# --------------------------------------------------------------------------- the app's API


def api_call(
    base: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, Any]:
    """One request to the management API with the bench's token: (status, parsed JSON)."""
    all_headers = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{base}{path}", data=body, method=method)
    for key, value in all_headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[str, bytes]:
    """A ``multipart/form-data`` body: ``fields``, then ``data`` as the field ``file``."""
    boundary = f"bench-{os.urandom(8).hex()}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: audio/mpeg\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def count_listed(base: str, status: str = "ready", max_pages: int = 100) -> int:
    """How many files ``GET /api/audio/list?status=...`` shows, every page walked."""
    from urllib.parse import quote

    total = 0
    token = ""
    for _ in range(max_pages):
        path = f"/api/audio/list?limit=1000&status={status}"
        if token:
            path += f"&next_token={quote(token)}"
        code, page = api_call(base, "GET", path)
        if code != 200:
            raise RuntimeError(f"list answered {code}: {page}")
        total += len(page["files"])
        token = page.get("next_token") or ""
        if not token:
            break
    return total


def small_mp3s(count: int, seconds: float, prefix: str) -> Iterator[tuple[str, bytes]]:
    """``count`` real, tagged CBR MP3s of ``seconds`` each (one encode, a title each)."""
    from tests.audio import add_id3, make_mp3

    clip = make_mp3(seconds)
    for i in range(count):
        name = f"{prefix}-{i:05d}.mp3"
        yield name, add_id3(clip, title=f"{prefix} {i}", artist="Bench", album="Bench")
