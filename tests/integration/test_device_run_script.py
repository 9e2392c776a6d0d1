"""A device function as the Lambda Web Adapter starts it: ``run.sh`` (uvicorn on ``$PORT``,
its output a pipe, as Lambda's is), answering a device request whose metrics line and whose
log lines must reach the pipe while the process runs on (Lambda freezes it after the
response, and may end it without notice)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import APP_ENV, ROOT, TOKEN, _free_port

pytestmark = pytest.mark.integration

#: How long to wait for the server, or for a line it must print (never a measure of speed).
PATIENCE = 60.0


class Lines:
    """A process's output, line by line, read on a thread of its own."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, wanted) -> dict:
        """The first JSON line ``wanted`` accepts; fails after PATIENCE seconds without one."""
        while True:
            try:
                line = self.lines.get(timeout=PATIENCE)
            except queue.Empty:
                pytest.fail("never printed; the output was:\n" + "".join(self.seen))
            self.seen.append(line)
            if line.startswith("{"):
                record = json.loads(line)
                if wanted(record):
                    return record


@pytest.fixture
def device_function(tmp_path: Path) -> Iterator[tuple[str, Lines]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in APP_ENV}
    env.pop("PYTHONUNBUFFERED", None)  # run.sh must see to it itself
    env.update(
        {
            # The python3 run.sh runs is the project's; the layer is layers/shared.
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "PYTHONPATH": str(ROOT / "layers" / "shared"),
            "PORT": str(port),
            "API_TOKEN": TOKEN,
            "AUDIO_FILES_DIR": str(tmp_path / "audio"),
            "DATA_DIR": str(tmp_path / "state"),
            # What the template gives every function.
            "AWS_LAMBDA_FUNCTION_NAME": "smart-stream-dev-StreamAudioFunction",
            "POWERTOOLS_SERVICE_NAME": "smart-stream",
            "POWERTOOLS_METRICS_NAMESPACE": "SmartStream",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "STAGE": "dev",
        }
    )
    process = subprocess.Popen(
        ["bash", str(ROOT / "functions" / "stream_audio" / "run.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = Lines(process)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=PATIENCE) as client:
            for _ in range(int(PATIENCE / 0.1)):
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    threading.Event().wait(0.1)
            else:
                pytest.fail("run.sh's server did not answer its health check")
        yield base, lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_device_requests_metrics_reach_the_pipe_while_the_process_runs(device_function):
    base, lines = device_function
    secret = "bm90LWEtcmVhbC1jcmVkZW50aWFs"
    request_context = json.dumps({"request_id": "0f1e-invocation"})
    answer = httpx.get(
        f"{base}/api/audio/nobody.mp3?sig={secret}",
        headers={"x-amzn-lambda-context": request_context},
        timeout=PATIENCE,
    )
    assert answer.status_code in (403, 404)
    metrics = lines.wait_for(lambda record: "DeviceRequests" in record)
    assert metrics["outcome"] == str(answer.status_code)
    assert metrics["route"] == "file" and metrics["stage"] == "dev"
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SmartStream"
    assert all(secret not in line for line in lines.seen)
