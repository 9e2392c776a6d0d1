"""Settings, parsed once from the environment into one pydantic model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Every knob the app has. Each field is one environment variable of the same name,
    upper-case. (A plain model over ``os.environ``: pydantic-settings would add a good part
    of boto3's import time to every cold start, for nothing these settings use.)"""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Storage: S3 when a bucket is named, else a local directory.
    s3_audio_bucket: str | None = None
    audio_files_dir: Path = Path("./audio_files")
    # Catalog: DynamoDB when a table is named, else SQLite in DATA_DIR.
    catalog_table: str | None = None
    data_dir: Path = Path("./.smart-stream")

    # Management token: API_TOKEN directly (local), else read from Secrets Manager.
    api_token: str | None = Field(default=None, repr=False)
    api_token_secret_arn: str | None = None
    # Key for device-URL credentials: from Secrets Manager deployed, else a file in DATA_DIR.
    signing_secret_arn: str | None = None
    secret_cache_seconds: int = 300

    # Base of the absolute URLs handed out (device URLs). Empty: the request's own base.
    public_base_url: str | None = None
    # Deployed: the device function's URL (a function URL is a host of its own).
    audio_stream_base_url: str | None = None
    queue_stream_base_url: str | None = None

    # Streaming.
    stream_chunk_bytes: int = Field(default=1024 * 1024, ge=4096)
    #: An open-ended stream (loop, endless-shuffle) ends cleanly, on a frame boundary, after
    #: this long (Lambda stops an invocation at 900 s) or this many bytes (a streamed
    #: response is capped at 200 MB); the player's next request carries on.
    stream_session_seconds: float = Field(default=840.0, gt=0)
    stream_session_bytes: int = Field(default=190 * 1024 * 1024, gt=0)
    #: How long a device route may trust a catalogue record it read (revocation delay).
    device_cache_seconds: float = Field(default=5.0, ge=0)

    #: The longest input converted to the house format (seconds). A conversion runs at 65x
    #: real time on one x86 core (issue 11's measurement); the function may run 900 s, so
    #: 8 hours leaves a 2x margin. Longer inputs end ``invalid`` ("too long").
    convert_max_seconds: float = Field(default=8 * 3600.0, gt=0)

    #: The longest story (characters) spoken within its request (201); a longer one is
    #: spoken in the background (202, ``converting``), out of reach of HTTP API's 30 s.
    tts_inline_max_chars: int = Field(default=3000, ge=1)

    # Text to speech: Polly, or eSpeak NG offline. Default: Polly where the audio is in S3.
    tts_engine: Literal["polly", "local"] | None = None

    # Yoto: the client id a Yoto developer account issues, and where Yoto's API and sign-in
    # live (tests point them at a fake).
    yoto_client_id: str | None = None
    yoto_api_base_url: str = "https://api.yotoplay.com"
    yoto_auth_base_url: str = "https://login.yotoplay.com"
    yoto_timeout_seconds: float = Field(default=10.0, gt=0)
    #: What the sign-in asks for (each must also be ticked in Yoto's developer dashboard):
    #: refresh tokens, and writing cards.
    yoto_scopes: str = "offline_access user:content:manage"
    #: The API the tokens are for: Yoto's, whatever YOTO_API_BASE_URL says.
    yoto_audience: str = "https://api.yotoplay.com"
    #: The sign-in's callback, exactly as registered with Yoto. Empty: the management API's
    #: own base (the page's) + /api/yoto/callback.
    yoto_redirect_uri: str | None = None

    # Local server.
    host: str = "127.0.0.1"
    port: int = 8080
    #: How often the local server looks for files copied into AUDIO_FILES_DIR (0: never).
    local_watch_seconds: float = Field(default=1.0, ge=0)
    #: How often the local server runs the conversion's sweep (deployed: hourly), which
    #: marks conversions that stopped answering invalid (0: at start-up only).
    local_sweep_seconds: float = Field(default=60.0, ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment gives (``os.environ`` unless told otherwise). An
        empty variable is an unset one, whatever the setting: a template parameter left
        empty arrives as "", and the template declares every setting (for ``sam local``'s
        --env-vars) with "" where it means the default."""
        environ = os.environ if environ is None else environ
        return cls.model_validate(
            {name: environ[name.upper()] for name in cls.model_fields if environ.get(name.upper())}
        )

    @property
    def speech_engine(self) -> str:
        return self.tts_engine or ("polly" if self.s3_audio_bucket else "local")

    @property
    def uses_s3(self) -> bool:
        return self.s3_audio_bucket is not None

    @property
    def uses_dynamodb(self) -> bool:
        return self.catalog_table is not None
