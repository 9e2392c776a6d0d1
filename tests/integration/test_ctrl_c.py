"""``python -m local_server`` (what ``make dev`` runs) as its own process: it prints where
it is and the token, the token and device URLs survive a restart, state stays out of the
audio folder, and Ctrl-C stops it cleanly and quickly, even mid-stream."""

from __future__ import annotations

import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.audio import make_mp3
from tests.conftest import APP_ENV, ROOT, _free_port

pytestmark = pytest.mark.integration

STOP_WITHIN = 6.0  # seconds from SIGINT to exit (the server allows 3 s of grace)


@dataclass
class Running:
    process: subprocess.Popen
    base_url: str
    token: str
    output: list[str] = field(default_factory=list)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def interrupt(self) -> tuple[int, float]:
        """Ctrl-C: (exit code, seconds it took)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("the server did not stop within 30 s of Ctrl-C:\n" + self.log())
        return code, time.monotonic() - started

    def log(self) -> str:
        return "".join(self.output)


def server_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in APP_ENV}
    for name in ("API_TOKEN", "AUDIO_FILES_DIR", "DATA_DIR", "PORT", "HOST"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def start(env: dict[str, str], cwd: Path) -> Running:
    process = subprocess.Popen(
        [sys.executable, "-m", "local_server"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    base_url = token = None
    deadline = time.monotonic() + 60
    while token is None:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail("the server printed no URL and token:\n" + "".join(output))
        if found := re.search(r"running on (http://\S+)", line):
            base_url = found.group(1)
        if found := re.search(r"token \([^)]*\): (\S+)", line):
            token = found.group(1)
    assert base_url is not None, "".join(output)
    running = Running(process, base_url, token, output)
    while True:  # printed before uvicorn binds: wait until it answers
        try:
            if httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the server never answered /api/health:\n" + running.log())
        time.sleep(0.05)


@pytest.fixture
def processes():
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def test_token_restart_and_ctrl_c(tmp_path, processes):
    audio_dir, data_dir = tmp_path / "audio", tmp_path / "state"
    port = _free_port()
    env = server_env(PORT=str(port), AUDIO_FILES_DIR=str(audio_dir), DATA_DIR=str(data_dir))

    first = start(env, ROOT)
    processes.append(first)
    assert first.base_url == f"http://127.0.0.1:{port}"
    assert len(first.token) >= 32
    # The printed token works; nothing else does.
    listed = httpx.get(f"{first.base_url}/api/audio/list", headers=first.auth())
    assert listed.status_code == 200, listed.text
    assert listed.json()["files"] == []
    assert httpx.get(f"{first.base_url}/api/audio/list").status_code == 401
    wrong = {"Authorization": f"Bearer {first.token}x"}
    assert httpx.get(f"{first.base_url}/api/audio/list", headers=wrong).status_code == 401
    # It is kept in DATA_DIR, readable by its owner only.
    token_file = data_dir / "api-token"
    assert token_file.read_text().strip() == first.token
    assert stat.S_IMODE(token_file.stat().st_mode) & 0o077 == 0

    song = make_mp3(1.0, title="Kept")
    created = httpx.post(
        f"{first.base_url}/api/audio/upload",
        headers=first.auth(),
        files={"file": ("kept.mp3", song, "audio/mpeg")},
    )
    assert created.status_code == 201, created.text
    device_url = created.json()["url"]
    assert httpx.get(device_url).content == song

    # State is not among the audio, and only audio is listed.
    assert sorted(p.name for p in audio_dir.iterdir()) == ["kept.mp3"]
    assert not data_dir.resolve().is_relative_to(audio_dir.resolve())
    assert {p.name for p in data_dir.iterdir()} >= {"api-token"}
    listed = httpx.get(f"{first.base_url}/api/audio/list", headers=first.auth()).json()
    assert [f["filename"] for f in listed["files"]] == ["kept.mp3"]

    code, took = first.interrupt()
    assert code == 0, first.log()
    assert took < STOP_WITHIN, f"Ctrl-C took {took:.1f} s"
    assert "Traceback" not in first.log(), first.log()
    # Credentials are never logged (the start-up banner is the one place the token shows).
    after_banner = first.log().partition("Ctrl-C stops it.")[2]
    assert "GET /api/audio/list" in after_banner or "/api/" in after_banner, first.log()
    assert first.token not in after_banner, "the token was written to the log"
    assert device_url.rpartition("sig=")[2] not in first.log(), "a device credential was logged"

    # Restarted: the same token, the same files, and the card's URL still plays.
    second = start(env, ROOT)
    processes.append(second)
    assert second.token == first.token
    listed = httpx.get(f"{second.base_url}/api/audio/list", headers=second.auth())
    assert [f["filename"] for f in listed.json()["files"]] == ["kept.mp3"]
    replayed = httpx.get(device_url)
    assert replayed.status_code == 200, replayed.text
    assert replayed.content == song

    # Ctrl-C while a player is mid-stream still stops it promptly and cleanly.
    long_song = make_mp3(1.0) * 120  # about 2 MB: more than the socket buffers hold
    created = httpx.post(
        f"{second.base_url}/api/audio/upload",
        headers=second.auth(),
        files={"file": ("long.mp3", long_song, "audio/mpeg")},
    )
    assert created.status_code == 201, created.text
    with httpx.Client(timeout=30) as player, player.stream("GET", created.json()["url"]) as r:
        assert r.status_code == 200
        assert long_song.startswith(next(r.iter_raw()))
        code, took = second.interrupt()
    assert code == 0, second.log()
    assert took < STOP_WITHIN, f"Ctrl-C mid-stream took {took:.1f} s"
    assert sorted(p.name for p in audio_dir.iterdir()) == ["kept.mp3", "long.mp3"]


def test_default_folders_keep_state_apart_from_audio(tmp_path, processes):
    """With no AUDIO_FILES_DIR / DATA_DIR, the defaults are two separate folders."""
    running = start(server_env(PORT=str(_free_port())), tmp_path)
    processes.append(running)
    song = make_mp3(0.5)
    created = httpx.post(
        f"{running.base_url}/api/audio/upload",
        headers=running.auth(),
        files={"file": ("song.mp3", song, "audio/mpeg")},
    )
    assert created.status_code == 201, created.text
    audio_dir, data_dir = tmp_path / "audio_files", tmp_path / ".smart-stream"
    assert sorted(p.name for p in audio_dir.iterdir()) == ["song.mp3"]
    assert (data_dir / "api-token").read_text().strip() == running.token
    assert not data_dir.resolve().is_relative_to(audio_dir.resolve())
    # Files dropped by hand next to the audio are never served as state, nor state as audio.
    for name in ("api-token", "signing-secret", "catalog.sqlite3", ".smart-stream"):
        response = httpx.get(f"{running.base_url}/api/audio/{name}", headers=running.auth())
        assert response.status_code in (400, 404), (name, response.status_code)
        assert running.token.encode() not in response.content
    code, took = running.interrupt()
    assert code == 0, running.log()
    assert took < STOP_WITHIN


def test_api_token_from_the_environment_is_used_and_not_stored(tmp_path, processes):
    env = server_env(
        PORT=str(_free_port()),
        API_TOKEN="my-own-token-0123456789",
        AUDIO_FILES_DIR=str(tmp_path / "audio"),
        DATA_DIR=str(tmp_path / "state"),
    )
    running = start(env, ROOT)
    processes.append(running)
    assert running.token == "my-own-token-0123456789"
    listed = httpx.get(f"{running.base_url}/api/audio/list", headers=running.auth())
    assert listed.status_code == 200
    assert not (tmp_path / "state" / "api-token").exists()
    code, _ = running.interrupt()
    assert code == 0, running.log()


def test_an_m4a_uploaded_to_the_real_process_is_converted_by_its_worker(tmp_path, processes):
    """The local worker path as `make dev` runs it: the upload answers 202 at once, and the
    server's own conversion worker makes it a playable house MP3 (polled, up to 60 s)."""
    from tests.audio import audio_source

    env = server_env(
        PORT=str(_free_port()),
        API_TOKEN="worker-token-0123456789",
        AUDIO_FILES_DIR=str(tmp_path / "audio"),
        DATA_DIR=str(tmp_path / "state"),
    )
    running = start(env, ROOT)
    processes.append(running)
    data = audio_source("m4a")
    sent = httpx.post(
        f"{running.base_url}/api/audio/upload",
        headers=running.auth(),
        files={"file": ("Voice Memo.m4a", data, "audio/mp4")},
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["status"] == "converting"
    deadline = time.monotonic() + 60
    while True:
        meta = httpx.get(
            f"{running.base_url}/api/audio/Voice Memo.mp3/metadata", headers=running.auth()
        ).json()
        if meta["status"] != "converting" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert meta["status"] == "ready", (meta, running.log())
    assert meta["source_format"] == "m4a/aac"
    assert httpx.get(meta["url"], timeout=30).status_code == 200
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == ["Voice Memo.mp3"]
    code, _ = running.interrupt()
    assert code == 0, running.log()
