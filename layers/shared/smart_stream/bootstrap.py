"""The composition root: the one module that knows every piece.

``Services`` builds, from one ``Settings``, the adapters the settings choose (S3 or a
directory, DynamoDB or SQLite, Polly or eSpeak NG), the services over them and the caches
they share, each once and only when first used, so a cold start pays for nothing it does not
need. It also owns every cache of the process: the device records, forgotten through the
change feed when what they hold changes, the layouts and the pack misses.

Handlers and the local server ask ``services()`` for the process's instance; tests and
benchmarks build their own and ``install`` it.

Each builder imports the part it builds: a function's cold start loads only the parts its
requests use (the health function loads no service at all). Elsewhere, an import inside a
function is allowed only to defer a heavy library, so that a function that never uses it
does not pay for it at its cold start. These are all of them: boto3 and
botocore (the AWS adapters, imported by the builders here, and their clients), Powertools'
parameters (Secrets Manager), the speech engines (eSpeak NG's library; Polly's adapter),
PyAV and lameenc (``audio.house_format``, ``audio.formats``, ``audio.convert``: only in the
functions that carry the audio layer), mutagen (``audio``), httpx (the Yoto client),
cryptography (the Yoto token store) and python-multipart (``http.multipart``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from smart_stream.changes import ChangeFeed
from smart_stream.lazy import built
from smart_stream.settings import Settings

if TYPE_CHECKING:
    from smart_stream.adapters.local.uploads import LocalUploadForms
    from smart_stream.device.context import DeviceContext
    from smart_stream.ports import Catalog, Secrets, SpeechEngine, Storage, YotoApi
    from smart_stream.services.access import Access
    from smart_stream.services.conversions import Conversions
    from smart_stream.services.layouts import Layouts
    from smart_stream.services.library import Library
    from smart_stream.services.packs import Packs
    from smart_stream.services.pipeline import Pipeline
    from smart_stream.services.queues import Queues
    from smart_stream.services.tts import Stories
    from smart_stream.services.upkeep import Upkeep
    from smart_stream.services.urls import DeviceUrls
    from smart_stream.services.versions import Versions
    from smart_stream.services.yoto_cards import YotoCards
    from smart_stream.services.yoto_signin import YotoSignIn

T = TypeVar("T")

#: The SQLite catalogue's file in DATA_DIR.
SQLITE_FILENAME = "catalog.sqlite3"


class Services:
    """Everything the app is made of, for one ``Settings``."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        #: Monotonic seconds (deadlines, cache lifetimes) and wall-clock seconds (expiries
        #: stored in the catalogue); tests give their own.
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        #: What the adapters tell of the changes they make.
        self.changes = ChangeFeed()
        self._building = threading.RLock()
        self._clients: dict[str, Any] = {}
        self._migrated = False

    def client(self, service: str) -> Any:
        """The process's boto3 client of ``service`` (one each, thread-safe to share)."""
        with self._building:
            if service not in self._clients:
                from smart_stream.adapters.aws.clients import make_client

                self._clients[service] = make_client(service)
            return self._clients[service]

    # Ports ------------------------------------------------------------------------------------

    @built
    def storage(self) -> Storage:
        from smart_stream.adapters.local.directory import LocalDirectoryStorage

        settings = self.settings
        if settings.s3_audio_bucket:
            from smart_stream.adapters.aws.s3 import S3Storage

            return S3Storage(settings.s3_audio_bucket, self.client("s3"), self.changes)
        return LocalDirectoryStorage(
            settings.audio_files_dir,
            packs_root=settings.data_dir / "packs",
            incoming_root=settings.data_dir / "incoming",
            upload_signer=self.upload_forms.sign,
            changes=self.changes,
        )

    @built
    def catalog(self) -> Catalog:
        from smart_stream.adapters.local.sqlite import SqliteCatalog

        settings = self.settings
        if settings.catalog_table:
            from smart_stream.adapters.aws.dynamodb import DynamoCatalog

            return DynamoCatalog(settings.catalog_table, self.client("dynamodb"), self.changes)
        return SqliteCatalog(settings.data_dir / SQLITE_FILENAME, self.changes)

    def migrate(self) -> None:
        """Bring the catalogue's schema forward, once per process. Only where writes are
        expected calls it: the local server's start-up, and deployed the functions that
        write the catalogue anyway; never a read-only or public function."""
        with self._building:
            if not self._migrated:
                self.catalog.migrate()
                self._migrated = True

    @built
    def speech(self) -> SpeechEngine:
        if self.settings.speech_engine == "polly":
            from smart_stream.adapters.aws.polly import PollySpeech

            return PollySpeech(self.client("polly"))
        from smart_stream.adapters.local.espeak import EspeakSpeech

        return EspeakSpeech()

    @built
    def secrets(self) -> Secrets:
        from smart_stream.adapters.local.secrets import LocalSecrets

        settings = self.settings
        local = LocalSecrets(settings.data_dir, api_token=settings.api_token)
        if not (settings.api_token_secret_arn or settings.signing_secret_arn):
            return local
        from smart_stream.adapters.aws.secrets import ManagedSecrets

        return ManagedSecrets(
            self.client("secretsmanager"),
            api_token_arn=None if settings.api_token else settings.api_token_secret_arn,
            signing_secret_arn=settings.signing_secret_arn,
            max_age=settings.secret_cache_seconds,
            fallback=local,
        )

    @built
    def upload_forms(self) -> LocalUploadForms:
        from smart_stream.adapters.local.uploads import LocalUploadForms

        return LocalUploadForms(self.secrets, self.wall_clock)

    @built
    def yoto_api(self) -> YotoApi:
        from smart_stream.adapters.yoto_http import YotoHttp

        return YotoHttp(timeout=self.settings.yoto_timeout_seconds, sleep=self.sleep)

    # Services ---------------------------------------------------------------------------------

    @built
    def access(self) -> Access:
        from smart_stream.services.access import Access

        return Access(self.secrets)

    @built
    def urls(self) -> DeviceUrls:
        from smart_stream.services.urls import DeviceUrls

        settings = self.settings
        return DeviceUrls(
            self.access,
            public_base_url=settings.public_base_url,
            audio_base_url=settings.audio_stream_base_url,
            queue_base_url=settings.queue_stream_base_url,
        )

    @built
    def queues(self) -> Queues:
        from smart_stream.services.queues import Queues

        return Queues(self.catalog)

    @built
    def versions(self) -> Versions:
        from smart_stream.services.versions import Versions

        return Versions(self.storage, self.catalog, self.queues)

    @built
    def conversions(self) -> Conversions:
        from smart_stream.services.conversions import Conversions

        return Conversions(
            self.storage,
            self.catalog,
            self.versions,
            max_seconds=self.settings.convert_max_seconds,
            wall_clock=self.wall_clock,
            clock=self.clock,
        )

    @built
    def upkeep(self) -> Upkeep:
        from smart_stream.services.upkeep import Upkeep

        return Upkeep(self.conversions)

    @built
    def library(self) -> Library:
        from smart_stream.services.library import Library

        return Library(self.storage, self.catalog, self.versions, self.queues, self.conversions)

    @built
    def pipeline(self) -> Pipeline:
        from smart_stream.services.pipeline import Pipeline

        return Pipeline(self.storage, self.catalog, self.versions, self.queues)

    @built
    def stories(self) -> Stories:
        from smart_stream.services.tts import Stories

        return Stories(
            self.speech,
            self.storage,
            self.catalog,
            self.versions,
            self.conversions,
            inline_max_chars=self.settings.tts_inline_max_chars,
            clock=self.clock,
        )

    @built
    def layouts(self) -> Layouts:
        from smart_stream.services.layouts import Layouts

        return Layouts()

    @built
    def packs(self) -> Packs:
        from smart_stream.services.packs import PackMisses, Packs

        misses = PackMisses(self.settings.device_cache_seconds, self.clock)
        return Packs(self.storage, self.catalog, self.layouts, misses)

    @built
    def yoto_signin(self) -> YotoSignIn:
        from smart_stream.services.yoto_signin import YotoConfig, YotoSignIn

        settings = self.settings
        config = YotoConfig(
            client_id=settings.yoto_client_id,
            api_base_url=settings.yoto_api_base_url,
            auth_base_url=settings.yoto_auth_base_url,
            audience=settings.yoto_audience,
            scopes=settings.yoto_scopes,
            redirect_uri=settings.yoto_redirect_uri,
        )
        return YotoSignIn(config, self.yoto_api, self.catalog, self.secrets, self.wall_clock)

    @built
    def yoto_cards(self) -> YotoCards:
        from smart_stream.services.yoto_cards import YotoCards

        return YotoCards(self.queues, self.catalog, self.yoto_signin, self.layouts)

    # The device routes ------------------------------------------------------------------------

    @built
    def device(self) -> DeviceContext:
        from smart_stream.device.context import DeviceContext

        settings = self.settings
        return DeviceContext.build(
            access=self.access,
            storage=self.storage,
            catalog=self.catalog,
            changes=self.changes,
            layouts=self.layouts,
            packs=self.packs,
            cache_seconds=settings.device_cache_seconds,
            chunk_bytes=settings.stream_chunk_bytes,
            session_seconds=settings.stream_session_seconds,
            session_bytes=settings.stream_session_bytes,
            clock=self.clock,
        )


_lock = threading.Lock()
_current: Services | None = None


def services() -> Services:
    """The process's services, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Services(Settings.from_env())
        return _current


def install(replacement: Services | None) -> None:
    """Use ``replacement`` from now on (None: build afresh from the environment next time).
    Tests and benchmarks install the services they built."""
    global _current
    with _lock:
        _current = replacement
