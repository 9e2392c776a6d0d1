"""Fixtures: an isolated app environment per test, on the local backend (a temporary
directory and SQLite) or the AWS one (S3 and DynamoDB in moto), and a live local server."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

import tests.examples  # noqa: F401 - loads the Hypothesis profile (HYPOTHESIS_PROFILE)
from smart_stream.bootstrap import Services, install
from smart_stream.settings import Settings
from tests.audio import make_mp3
from tests.aws_fixtures import create_bucket, create_catalog_table

if TYPE_CHECKING:
    from local_server.template import LocalTemplate

TOKEN = "test-token"
ROOT = Path(__file__).resolve().parent.parent
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
APP_ENV = (
    "S3_AUDIO_BUCKET",
    "CATALOG_TABLE",
    "API_TOKEN_SECRET_ARN",
    "SIGNING_SECRET_ARN",
    "PUBLIC_BASE_URL",
    "AUDIO_STREAM_BASE_URL",
    "AWS_ENDPOINT_URL",
)


def fresh_services() -> Services:
    """Services built from the environment as it is now, installed as the process's: what
    the handlers under test (and ``bootstrap.services()``) use from here on."""
    built = Services(Settings.from_env())
    install(built)
    return built


@dataclass
class AppEnv:
    backend: str
    audio_dir: Path
    data_dir: Path
    bucket: str | None = None
    table: str | None = None


def isolate(env: pytest.MonkeyPatch, folder: Path) -> None:
    """An app environment of its own: none of the developer's settings, fake AWS
    credentials, the test token, and audio and state under ``folder``."""
    for name in APP_ENV:
        env.delenv(name, raising=False)
    for name, value in AWS_ENV.items():
        env.setenv(name, value)
    env.setenv("API_TOKEN", TOKEN)
    env.setenv("AUDIO_FILES_DIR", str(folder / "audio"))
    env.setenv("DATA_DIR", str(folder / "state"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's environment, audio or state."""
    isolate(monkeypatch, tmp_path)
    install(None)  # built from this environment on first use
    yield
    install(None)


@pytest.fixture
def local_env(tmp_path: Path) -> AppEnv:
    return AppEnv("local", tmp_path / "audio", tmp_path / "state")


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppEnv]:
    """S3 and DynamoDB in moto's in-process mock."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        env = AppEnv("aws", tmp_path / "audio", tmp_path / "state", "audio-test", "catalog-test")
        create_bucket(boto3.client("s3"), env.bucket)
        create_catalog_table(boto3.client("dynamodb"), env.table)
        monkeypatch.setenv("S3_AUDIO_BUCKET", env.bucket)
        monkeypatch.setenv("CATALOG_TABLE", env.table)
        install(None)
        yield env


@pytest.fixture(params=["local", "aws"])
def app_env(request: pytest.FixtureRequest) -> AppEnv:
    """Every backend in turn: the same behaviour is expected of each."""
    return request.getfixturevalue(f"{request.param}_env")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3/DynamoDB endpoint on loopback (moto's server), for tests over HTTP."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_server_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> AppEnv:
    import boto3

    suffix = uuid.uuid4().hex[:12]
    env = AppEnv("aws", tmp_path / "audio", tmp_path / "state", f"audio-{suffix}", f"cat-{suffix}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    create_bucket(boto3.client("s3", endpoint_url=moto_endpoint), env.bucket)
    create_catalog_table(boto3.client("dynamodb", endpoint_url=moto_endpoint), env.table)
    monkeypatch.setenv("S3_AUDIO_BUCKET", env.bucket)
    monkeypatch.setenv("CATALOG_TABLE", env.table)
    install(None)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    env: AppEnv
    app: object

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def local_template() -> LocalTemplate:
    """``template.yaml`` as the local server reads it: parsed once for the whole run."""
    from local_server.template import read_template

    return read_template(ROOT / "template.yaml")


def serve(
    app: Any, port: int, *, lifespan: Literal["on", "off"] = "on", **options: Any
) -> tuple[Any, threading.Thread]:
    """``app`` under real uvicorn on loopback ``port``, in a thread, once it has started:
    (the uvicorn server, its thread). ``options``: more of uvicorn's ``Config``. Stop it
    with ``should_exit`` and a join."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20  # a bound on a hang, not a measure of speed
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture(params=["local", "aws"])
def live_server(
    request: pytest.FixtureRequest, local_template: LocalTemplate
) -> Iterator[LiveServer]:
    """The local server (real uvicorn, real sockets) on a free port, on each backend;
    the AWS backend is a moto server on loopback."""
    from local_server.app import create_app

    env_fixture = "local_env" if request.param == "local" else "moto_server_env"
    env: AppEnv = request.getfixturevalue(env_fixture)
    app = create_app(local_template, fresh_services(), access_log=False)
    port = _free_port()
    server, thread = serve(app, port)
    yield LiveServer(f"http://127.0.0.1:{port}", env, app)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def root() -> Services:
    """The services of the test's environment (``app_env`` and friends set it up first)."""
    from smart_stream.bootstrap import services

    return services()


@pytest.fixture(scope="session")
def mp3_bytes() -> bytes:
    """Two seconds of 44.1 kHz stereo 128 kbps CBR, tagged."""
    return make_mp3(2.0, title="Bedtime Story", artist="Mum", album="Evenings")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault suite's figures (``tests/faults.py``): what each test injected into the
    app's AWS calls, what those calls finally did, and what the app answered."""
    from tests.faults import summarise

    reports = [
        (report.nodeid, value)
        for kind in ("passed", "failed", "xfailed", "xpassed")
        for report in terminalreporter.stats.get(kind, [])
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "faults"
    ]
    if reports:
        terminalreporter.section("faults injected")
        for line in summarise(sorted(reports)):
            terminalreporter.write_line(line)
