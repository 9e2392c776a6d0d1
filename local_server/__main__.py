"""``python -m local_server`` (what ``make dev`` runs): serve the whole app on one port."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import uvicorn

from local_server.app import create_app
from smart_stream.bootstrap import Services
from smart_stream.settings import Settings

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def main() -> int:
    settings = Settings.from_env()
    services = Services(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings.audio_files_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(TEMPLATE, services)
    token = services.secrets.api_token()
    base = f"http://{settings.host}:{settings.port}"
    token_source = "API_TOKEN" if settings.api_token else f"{settings.data_dir}/api-token"
    print(
        f"\nSmart Stream is running on {base}\n"
        f"  open (signs this browser in): {base}/#token={token}\n"
        f"  audio files: {settings.audio_files_dir.resolve()}\n"
        f"  token ({token_source}): {token}\n"
        f"  try: curl -H 'Authorization: Bearer {token}' {base}/api/audio/list\n"
        "  Ctrl-C stops it.\n",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,  # the app logs requests itself, without their credentials
        log_level="warning",
        timeout_graceful_shutdown=3,
        http="httptools",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
    )
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal it caught: a stop
    # asked for is a clean exit, not a traceback and a killed-by-signal status.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
