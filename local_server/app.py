"""The local server: every function of ``template.yaml`` in one process, no AWS needed.

Management routes go through the real Lambda handlers (API-Gateway-shaped events); device
routes are the functions' own ASGI apps; local writes become the events S3 sends EventBridge,
routed by the template's rules.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from python_multipart import create_form_parser
from python_multipart.exceptions import FormParserError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_server import lambda_bridge
from local_server.s3_events import S3EventDispatcher
from local_server.stream_events import CatalogStreamDispatcher
from local_server.template import DeviceRoute, HttpRoute, LocalTemplate, read_template
from local_server.watcher import DirectoryWatcher
from smart_stream.adapters.local.directory import LocalDirectoryStorage
from smart_stream.adapters.local.uploads import LOCAL_UPLOAD_PATH
from smart_stream.bootstrap import Services, install
from smart_stream.changes import ObjectChanged, QueueChanged
from smart_stream.device.app import install_error_handlers, register_name_convertor
from smart_stream.domain.errors import BadRequestError, PayloadTooLargeError
from smart_stream.domain.names import incoming_key

logger = logging.getLogger("local_server")
_PARAM = re.compile(r"\{(\w+)\+?\}")


def starlette_path(api_path: str) -> str:
    # ":name" (smart_stream.device.app) lets a name with an encoded "/" or line break reach the
    # handler's validation (a clear 400) instead of failing to match.
    return _PARAM.sub(r"{\1:name}", api_path)


def _route_order(path: str) -> tuple[int, int]:
    # Literal paths before parameterised ones, longer literals first: "/api/audio/list"
    # and ".../metadata" must win over "/api/audio/{filename}".
    literal = len(_PARAM.sub("", path))
    return (1 if _PARAM.search(path) else 0, -literal)


def _lambda_endpoint(route: HttpRoute) -> Callable[[Request], Awaitable[Response]]:
    route_key = f"{route.method} {route.path}"

    async def endpoint(request: Request) -> Response:
        body = await lambda_bridge.read_body(request)
        if body is None:
            return lambda_bridge.too_large()
        event = lambda_bridge.build_event(request, route_key, body)
        handler = lambda_bridge.load_handler(route.function)
        context = lambda_bridge.LocalLambdaContext(route.function.logical_id)
        result = await run_in_threadpool(lambda_bridge.invoke_management, handler, event, context)
        return lambda_bridge.to_response(result)

    return endpoint


def _device_app(route: DeviceRoute) -> ASGIApp:
    module_name, _, attribute = route.asgi_app.partition(":")
    app: ASGIApp = getattr(lambda_bridge.load_module(route.function, module_name), attribute)
    return app


def _local_upload(services: Services) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await local_upload(request, services)

    return endpoint


async def local_upload(request: Request, services: Services) -> Response:
    """The local twin of S3's presigned POST: checks the signed policy, streams the file to
    a temporary file (never all in memory), then stores it like any write."""
    forms = services.upload_forms
    fields: dict[str, str] = {}
    files: dict[str, Any] = {}
    received = 0
    limit: int | None = None

    def on_field(field: Any) -> None:
        fields[field.field_name.decode()] = (field.value or b"").decode("utf-8", "replace")

    def on_file(file: Any) -> None:
        files[file.field_name.decode()] = file

    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequestError("Send the form as multipart/form-data: its fields, then the file.")
    # python-multipart looks the header up by its canonical name only.
    parser = create_form_parser(
        {"Content-Type": content_type.encode("latin-1")},
        on_field,
        on_file,
        config={"MAX_MEMORY_FILE_SIZE": 1024 * 1024},
    )
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if limit is None and "policy" in fields and "signature" in fields:
                # S3 wants the file last, so the policy is known before the bytes arrive.
                _, limit = forms.verify(fields)
            if limit is not None and received > limit + 64 * 1024:
                raise PayloadTooLargeError(f"The file is larger than the {limit} bytes allowed.")
            await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise BadRequestError(f"The form cannot be read: {exc}.") from None
    name, limit = forms.verify(fields)
    upload = files.get("file")
    if upload is None or upload.size == 0:
        raise BadRequestError("The form has no file (a field named 'file', sent last).")
    if upload.size > limit:
        raise PayloadTooLargeError(f"The file is {upload.size} bytes; the form allows {limit}.")
    source = upload.file_object
    source.seek(0)
    await run_in_threadpool(services.storage.put, name, source)
    source.close()
    return Response(status_code=204)


class AccessLog:
    """One line a request, without the query string: device credentials ride in it.
    Plain ASGI (not BaseHTTPMiddleware) so streamed bodies pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def logging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            logger.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed)


def build_routes(template: LocalTemplate, services: Services) -> list[BaseRoute]:
    register_name_convertor()  # the routes' ":name" parameters
    entries: list[tuple[str, BaseRoute]] = []
    for http in template.http_routes:
        path = starlette_path(http.path)
        entries.append((http.path, Route(path, _lambda_endpoint(http), methods=[http.method])))
    for device in template.device_routes:
        path = starlette_path(device.path)
        route = Route(path, _device_app(device), methods=list(device.methods))
        entries.append((device.path, route))
    upload = Route(LOCAL_UPLOAD_PATH, _local_upload(services), methods=["POST"])
    entries.append((LOCAL_UPLOAD_PATH, upload))
    entries.sort(key=lambda item: _route_order(item[0]))
    return [route for _, route in entries]


def catch_up(
    streams: CatalogStreamDispatcher,
    services: Services,
    bucket_events: S3EventDispatcher | None = None,
) -> None:
    """At start-up: half-written packs a stop left behind are removed, then the scheduled
    functions run once, each on its worker (the pack sweep writes what changes missed and
    removes stale packs; the conversion sweep what its schedule does deployed)."""
    storage = services.storage
    if isinstance(storage, LocalDirectoryStorage) and storage.packs_root.is_dir():
        for leftover in storage.packs_root.glob("*/.incoming-*"):
            leftover.unlink(missing_ok=True)
    streams.run_schedules()
    if bucket_events is not None:
        bucket_events.run_schedules()
        # Conversions stopped with the last run of the server: their events again.
        for waiting in services.upkeep.interrupted():
            services.changes.publish(ObjectChanged("ObjectCreated", waiting))


def adopter(services: Services) -> Callable[[Path], None]:
    """What becomes of an audio file of another format copied into the audio folder by hand
    (``story.m4a``): it goes where uploads wait for their conversion, and leaves the folder;
    its conversion makes ``story.mp3``, as for an upload through the upload URL."""

    def adopt(path: Path) -> None:
        key = incoming_key(uuid.uuid4().hex, path.name)
        try:
            with open(path, "rb") as copied:
                services.storage.put(key, copied, overwrite=False)
        except FileNotFoundError:
            return  # removed again meanwhile
        path.unlink(missing_ok=True)

    return adopt


class Every:
    """Calls ``task`` every ``seconds`` on a thread of its own until stopped (the local
    stand-in for a function's schedule)."""

    def __init__(self, seconds: float, task: Callable[[], None]) -> None:
        self.seconds = seconds
        self.task = task
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedule", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.task()
            except Exception:  # one failed run must not end the schedule
                logger.exception("a scheduled run failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def create_app(
    template: Path | LocalTemplate, services: Services, *, access_log: bool = True
) -> Starlette:
    """The whole app of ``template`` (its path, or what ``read_template`` made of it) on one
    port, over ``services`` (installed as the process's, so that the functions' handlers,
    which ask ``bootstrap.services()``, use them too)."""
    install(services)
    register_name_convertor()
    if not isinstance(template, LocalTemplate):
        template = read_template(template)
    # Each function the bucket's rules invoke has a worker of its own, where its schedule
    # runs too; the other scheduled functions run on the catalogue stream's worker.
    dispatcher = S3EventDispatcher(template.event_rules, template.schedules)
    others = [f for f in template.schedules if f not in dispatcher.schedules]
    streams = CatalogStreamDispatcher(template.stream_subscriptions, others)

    storage = services.storage
    changes = services.changes
    watcher: DirectoryWatcher | None = None
    interval = services.settings.local_watch_seconds
    if isinstance(storage, LocalDirectoryStorage) and dispatcher.active and interval:
        watcher = DirectoryWatcher(
            storage.root, dispatcher, interval=interval, adopt=adopter(services)
        )

    sweep_every = services.settings.local_sweep_seconds
    schedule = Every(sweep_every, dispatcher.run_schedules) if sweep_every else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        changes.subscribe(ObjectChanged, dispatcher.on_change)
        dispatcher.start()
        changes.subscribe(QueueChanged, streams)
        streams.start()
        try:  # a start-up that fails stops what it started: no thread outlives the server
            # The local server writes the catalogue: its schema comes forward first.
            await run_in_threadpool(services.migrate)
            if watcher is not None:
                changes.subscribe(ObjectChanged, watcher.observe_change)
                # What changed while the server was stopped, then what changes while it runs.
                await run_in_threadpool(watcher.reconcile, services.catalog)
                watcher.start()
            await run_in_threadpool(catch_up, streams, services, dispatcher)
            if schedule is not None:
                schedule.start()
            yield
        finally:
            if schedule is not None:
                schedule.stop()
            if watcher is not None:
                watcher.stop()
                changes.unsubscribe(ObjectChanged, watcher.observe_change)
            changes.unsubscribe(ObjectChanged, dispatcher.on_change)
            dispatcher.stop()
            changes.unsubscribe(QueueChanged, streams)
            streams.stop()

    middleware = [Middleware(AccessLog)] if access_log else []
    app = Starlette(
        routes=build_routes(template, services), middleware=middleware, lifespan=lifespan
    )
    install_error_handlers(app)
    app.state.dispatcher = dispatcher
    app.state.streams = streams
    app.state.watcher = watcher
    app.state.template = template
    app.state.services = services
    return app
