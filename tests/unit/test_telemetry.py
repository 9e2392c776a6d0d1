"""What operators see: the EMF lines the handlers and the device apps print (read back and
checked for their names, units and dimensions), and the log lines of a Lambda environment
(JSON, at the configured level, with no credential in them)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from smart_stream import telemetry
from smart_stream.adapters.yoto_http import ATTEMPTS, YotoHttp
from smart_stream.bootstrap import Services, install, services
from smart_stream.device.file_route import create_stream_app
from smart_stream.device.queue_route import create_queue_stream_app
from smart_stream.domain.asks import QueueChange, Story
from smart_stream.domain.errors import UnprocessableError, YotoFailedError
from smart_stream.domain.records import PlayMode
from smart_stream.settings import Settings
from tests import fake_yoto as fakes
from tests.audio import make_mp3
from tests.conftest import ROOT
from tests.lambda_functions import EVENTS, FakeContext, handler
from tests.unit.test_conversions import m4a

BASE = "http://127.0.0.1:8080"
SERVICE = "smart-stream"
STAGE = "test"

_fake_yoto_server = fakes._fake_yoto_server
fake_yoto = fakes.fake_yoto


@dataclass(frozen=True)
class Emitted:
    """One metric of one EMF record."""

    name: str
    unit: str
    values: tuple[float, ...]
    dimensions: dict[str, str]
    namespace: str


def emitted(text: str) -> list[Emitted]:
    """Every metric of every EMF record in ``text`` (a process's standard output), checked to
    be well-formed EMF: one dimension set naming only keys the record carries."""
    found = []
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        (dimension_names,) = directive["Dimensions"]
        dimensions = {name: record[name] for name in dimension_names}
        assert all(isinstance(v, str) for v in dimensions.values())
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            values = tuple(value) if isinstance(value, list) else (value,)
            found.append(
                Emitted(metric["Name"], metric["Unit"], values, dimensions, directive["Namespace"])
            )
    return found


def named(metrics: list[Emitted], name: str) -> list[Emitted]:
    return [m for m in metrics if m.name == name]


def total(metrics: list[Emitted], name: str, **dimensions: str) -> float:
    return sum(
        sum(m.values)
        for m in named(metrics, name)
        if all(m.dimensions.get(k) == v for k, v in dimensions.items())
    )


@pytest.fixture
def metrics_on(monkeypatch) -> None:
    """The deployed functions' environment for metrics (template.yaml's Globals)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SmartStream")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
    monkeypatch.setenv("STAGE", STAGE)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def base_dimensions(metric: Emitted) -> dict[str, str]:
    return {k: v for k, v in metric.dimensions.items() if k in ("service", "stage")}


def assert_low_cardinality(metrics: list[Emitted], allowed: dict[str, set[str]]) -> None:
    """Every metric in the SmartStream namespace, with the service and stage, and no
    dimension beyond those named in ``allowed``, each with a value from its set."""
    assert metrics
    for metric in metrics:
        assert metric.namespace == "SmartStream"
        assert base_dimensions(metric) == {"service": SERVICE, "stage": STAGE}, metric
        extra = {k: v for k, v in metric.dimensions.items() if k not in ("service", "stage")}
        for key, value in extra.items():
            assert key in allowed and value in allowed[key], metric


# --- The device apps -------------------------------------------------------------------------


def device_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def file_client(app_env, metrics_on) -> Iterator[TestClient]:
    with TestClient(create_stream_app(lambda: services().device), base_url=BASE) as client:
        yield client


def test_each_device_request_is_counted_by_outcome_with_its_bytes(file_client, capsys):
    root = services()
    data = make_mp3(0.5, title="Owl")
    record = root.library.upload("owl.mp3", io.BytesIO(data), len(data), overwrite=False)
    url = device_path(root.urls.audio(record, BASE))
    name_only = urlsplit(url).path
    capsys.readouterr()

    whole = file_client.get(url)
    part = file_client.get(url, headers={"Range": "bytes=0-99"})
    same = file_client.get(url, headers={"If-None-Match": record.etag})
    refused = file_client.get(name_only + "?sig=not-a-credential")
    missing = file_client.get("/api/audio/nobody.mp3?sig=x")
    beyond = file_client.get(url, headers={"Range": f"bytes={len(data) * 2}-"})
    file_client.get("/api/health")  # the adapter's readiness check: not a device request
    statuses = [r.status_code for r in (whole, part, same, refused, missing, beyond)]
    assert statuses == [200, 206, 304, 403, 404, 416]

    metrics = emitted(capsys.readouterr().out)
    outcomes = {"200", "206", "304", "403", "404", "416"}
    assert_low_cardinality(metrics, {"route": {"file"}, "outcome": outcomes})
    # One record a request: written when its response ended.
    requests = named(metrics, telemetry.DEVICE_REQUESTS)
    assert sorted(m.dimensions["outcome"] for m in requests) == sorted(outcomes)
    assert all(m.unit == "Count" and m.values == (1.0,) for m in requests)
    sent = named(metrics, telemetry.BYTES_STREAMED)
    assert all(m.unit == "Bytes" and m.dimensions["route"] == "file" for m in sent)
    bodies = sum(len(r.content) for r in (whole, part, same, refused, missing, beyond))
    assert total(metrics, telemetry.BYTES_STREAMED) == bodies
    assert len(data) + 100 <= bodies


def test_without_a_namespace_nothing_is_printed(app_env, capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    with TestClient(create_stream_app(lambda: services().device), base_url=BASE) as client:
        assert client.get("/api/audio/nobody.mp3?sig=x").status_code == 404
    assert emitted(capsys.readouterr().out) == []


class SteppingClock:
    """Monotonic time that moves a minute at every reading: any deadline passes at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 60.0
        return self.now


def test_an_open_stream_ended_by_its_deadline_is_counted(app_env, metrics_on, capsys):
    root = Services(Settings.from_env(), clock=SteppingClock())
    install(root)
    for name in ("one.mp3", "two.mp3"):
        data = make_mp3(0.5)
        root.library.upload(name, io.BytesIO(data), len(data), overwrite=False)
    change = QueueChange(files=["one.mp3", "two.mp3"], play_mode=PlayMode("loop"))
    queue = root.queues.put("forever", change)[1]
    capsys.readouterr()
    app = create_queue_stream_app(lambda: services().device)
    with TestClient(app, base_url=BASE) as client:
        response = client.get(device_path(root.urls.queue(queue, BASE)))
    assert response.status_code == 200

    metrics = emitted(capsys.readouterr().out)
    assert_low_cardinality(
        metrics, {"route": {"queue"}, "outcome": {"200"}, "reason": {"deadline"}}
    )
    (ended,) = named(metrics, telemetry.STREAMS_ENDED)
    assert ended.dimensions["reason"] == "deadline" and ended.values == (1.0,)
    assert total(metrics, telemetry.BYTES_STREAMED, route="queue") == len(response.content)


def test_device_logs_are_json_and_carry_no_credential(app_env, log_output):
    """An unexpected error on a device route: logged as JSON by the Powertools logger,
    tagged with the Lambda request id the Web Adapter passes on, without the query string
    (which carries the URL's credential)."""
    secret = "c2VjcmV0LWNyZWRlbnRpYWw"

    def broken() -> Any:
        raise RuntimeError("the device context could not be built")

    context = json.dumps({"request_id": "8f5c-request", "deadline": 0})
    with TestClient(create_stream_app(broken), base_url=BASE, raise_server_exceptions=False) as c:
        answer = c.get(
            f"/api/audio/owl.mp3?sig={secret}", headers={"x-amzn-lambda-context": context}
        )
    assert answer.status_code == 500
    lines = json_lines(log_output)
    (error,) = [line for line in lines if line.get("message") == "unhandled error"]
    assert error["level"] == "ERROR"
    assert error["path"] == "/api/audio/owl.mp3"
    assert error["function_request_id"] == "8f5c-request"
    assert secret not in json.dumps(lines)


# --- The event functions, through their handlers ----------------------------------------------


def s3_event(sample: str, key: str, size: int, etag: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / sample).read_text())
    event["detail"]["object"].update({"key": key, "size": size, "etag": etag.strip('"')})
    return event


def test_metadata_events_are_counted_stored_invalid_and_stale(local_env, metrics_on, capsys):
    extract = handler("extract_metadata")
    root = services()
    root.migrate()
    local_env.audio_dir.mkdir(parents=True, exist_ok=True)
    (local_env.audio_dir / "song.mp3").write_bytes(make_mp3(0.4))
    (local_env.audio_dir / "notes.mp3").write_bytes(b"this is not audio" * 64)
    song, notes = root.storage.head("song.mp3"), root.storage.head("notes.mp3")
    capsys.readouterr()

    extract(s3_event("s3_put.json", "song.mp3", song.size, song.etag), FakeContext())
    extract(s3_event("s3_put.json", "notes.mp3", notes.size, notes.etag), FakeContext())
    # An event for a version already replaced: the object's etag is another now.
    extract(s3_event("s3_put.json", "song.mp3", song.size, '"0123456789abcdef"'), FakeContext())

    metrics = emitted(capsys.readouterr().out)
    assert_low_cardinality(metrics, {})
    assert total(metrics, telemetry.METADATA_STORED) == 1
    assert total(metrics, telemetry.METADATA_INVALID) == 1
    assert total(metrics, telemetry.METADATA_STALE) == 1
    assert {m.unit for m in metrics} == {"Count"}
    # Each invocation wrote its own record: three handlers, three lines.
    assert len(metrics) == 3


def test_conversions_are_counted_done_and_failed_with_their_seconds(
    local_env, metrics_on, monkeypatch, capsys
):
    convert = handler("convert_audio")
    root = services()
    root.migrate()
    short = m4a(1.0)
    good = root.library.upload("memo.m4a", io.BytesIO(short), len(short), overwrite=False)
    capsys.readouterr()
    info = root.storage.head(good.source_key)
    convert(s3_event("s3_incoming_put.json", info.name, info.size, info.etag), FakeContext())

    monkeypatch.setenv("CONVERT_MAX_SECONDS", "0.5")  # the next upload is too long for it
    install(None)
    root = services()
    long = m4a(2.0)
    waiting = root.library.upload("long.m4a", io.BytesIO(long), len(long), overwrite=False)
    info = root.storage.head(waiting.source_key)
    convert(s3_event("s3_incoming_put.json", info.name, info.size, info.etag), FakeContext())

    assert root.catalog.get_audio("memo.mp3").status.value == "ready"
    assert root.catalog.get_audio("long.mp3").status.value == "invalid"
    metrics = emitted(capsys.readouterr().out)
    assert_low_cardinality(metrics, {})
    assert total(metrics, telemetry.CONVERSIONS_DONE) == 1
    assert total(metrics, telemetry.CONVERSIONS_FAILED) == 1
    (seconds,) = named(metrics, telemetry.CONVERSION_SECONDS)
    assert seconds.unit == "Seconds" and seconds.values[0] > 0


def test_a_failing_service_still_writes_the_metrics_counted_so_far(
    local_env, metrics_on, monkeypatch, capsys
):
    """A handler that raises (for Lambda to retry) writes its metrics all the same."""
    extract = handler("extract_metadata")
    root = services()
    root.migrate()

    def outage(*args: Any, **kwargs: Any) -> bool:
        telemetry.count(telemetry.METADATA_STALE)
        raise RuntimeError("the catalogue is down")

    monkeypatch.setattr(root.pipeline, "object_removed", outage)
    with pytest.raises(RuntimeError):
        extract(json.loads((EVENTS / "s3_delete.json").read_text()), FakeContext())
    assert total(emitted(capsys.readouterr().out), telemetry.METADATA_STALE) == 1


def test_stories_are_counted_done_with_their_seconds(local_env, metrics_on, capsys):
    root = services()
    root.migrate()
    with telemetry.metered():
        root.stories.generate(Story(text="Once upon a time, an owl.", filename="owl.mp3"))
    metrics = emitted(capsys.readouterr().out)
    assert_low_cardinality(metrics, {})
    assert total(metrics, telemetry.STORIES_DONE) == 1
    (seconds,) = named(metrics, telemetry.STORY_SECONDS)
    assert seconds.unit == "Seconds" and seconds.values[0] > 0


def test_yoto_calls_are_counted_ok_retried_and_failed(fake_yoto, metrics_on, capsys):
    pauses: list[float] = []
    yoto = YotoHttp(timeout=5, sleep=pauses.append)
    url = f"{fake_yoto.base_url}/content/mine"
    with telemetry.metered():
        fake_yoto.fail_next(1, 503)
        yoto.request("DELETE", url)  # answered (401: no token) on its second attempt
        fake_yoto.fail_next(ATTEMPTS, 500)
        with pytest.raises(YotoFailedError):
            yoto.request("DELETE", url)
    metrics = emitted(capsys.readouterr().out)
    assert_low_cardinality(metrics, {})
    assert total(metrics, telemetry.YOTO_CALLS_OK) == 1
    assert total(metrics, telemetry.YOTO_CALLS_RETRIED) == 1 + (ATTEMPTS - 1)
    assert total(metrics, telemetry.YOTO_CALLS_FAILED) == 1
    assert len(pauses) == ATTEMPTS


# --- Logs in a Lambda environment ------------------------------------------------------------


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the Powertools logger writes (its handler holds the stream it was made with,
    so pytest's per-test capture does not see it)."""
    handler = telemetry.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    output = io.StringIO()
    previous = handler.setStream(output)
    yield output
    handler.setStream(previous)
    telemetry.logger.remove_keys(["function_request_id"])


def json_lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines() if line.strip()]


@pytest.fixture
def lambda_logging(monkeypatch, log_output) -> Iterator[io.StringIO]:
    """A Lambda environment's logging, set up for the test and put back afterwards."""
    saved = {}
    for name in telemetry.APP_LOGGERS:
        found = logging.getLogger(name)
        saved[name] = (found.level, list(found.handlers), found.propagate)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "smart-stream-test")
    monkeypatch.setattr(telemetry, "_configured", False)
    yield log_output
    for name, (level, handlers, propagate) in saved.items():
        found = logging.getLogger(name)
        found.setLevel(level)
        found.handlers = handlers
        found.propagate = propagate


def test_the_apps_standard_loggers_reach_the_json_logs_in_lambda(lambda_logging):
    """Lambda's root logger stays at WARNING: without this, ``smart_stream.*`` INFO lines
    (what the pipeline and the packs say) would never reach CloudWatch."""
    telemetry.configure_logging()
    logging.getLogger("smart_stream.packs").info("pack written", extra={"queue": "bedtime"})
    logging.getLogger("smart_stream.packs").debug("not at the configured level")
    (line,) = json_lines(lambda_logging)
    assert line["level"] == "INFO" and line["message"] == "pack written"
    assert line["name"] == "smart_stream.packs" and line["queue"] == "bedtime"
    assert line["service"] == telemetry.logger.service


def test_outside_lambda_the_standard_loggers_are_left_alone(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setattr(telemetry, "_configured", False)
    before = list(logging.getLogger("smart_stream").handlers)
    telemetry.configure_logging()
    assert logging.getLogger("smart_stream").handlers == before
    assert not telemetry._configured


# --- The template watches what the code writes ----------------------------------------------


def test_the_failure_alarm_watches_the_metrics_the_code_writes():
    """The alarm on failed conversions and stories names the namespace, the service and the
    metric names the code writes: a rename on either side would leave it watching nothing."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    alarm = template["Resources"]["FailedConversionsAndStoriesAlarm"]["Properties"]
    watched = {
        query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]["Metric"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    assert set(watched) == {telemetry.CONVERSIONS_FAILED, telemetry.STORIES_FAILED}
    for metric in watched.values():
        assert metric["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions == {
            "service": variables["POWERTOOLS_SERVICE_NAME"],
            "stage": variables["STAGE"],
        }
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_a_player_hanging_up_mid_stream_is_no_error_and_its_bytes_are_counted(
    app_env, metrics_on, monkeypatch, capsys, log_output
):
    """A card taken out mid-stream: under ASGI 2.4 Starlette raises ``ClientDisconnect``
    from the send that fails. That is how a response ends, not an error: nothing is logged,
    and the metrics count what reached the player."""
    monkeypatch.setenv("STREAM_CHUNK_BYTES", "4096")
    install(None)
    root = services()
    data = make_mp3(3.0)
    record = root.library.upload("long.mp3", io.BytesIO(data), len(data), overwrite=False)
    url = urlsplit(root.urls.audio(record, BASE))
    app = create_stream_app(lambda: services().device)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url.path,
        "raw_path": url.path.encode(),
        "query_string": url.query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    delivered: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if len(delivered) == 2:
                raise OSError("the player hung up")
            delivered.append(message["body"])

    capsys.readouterr()
    asyncio.run(app(scope, receive, send))

    assert len(delivered) == 2 and sum(map(len, delivered)) < len(data)
    metrics = emitted(capsys.readouterr().out)
    assert total(metrics, telemetry.DEVICE_REQUESTS, outcome="200") == 1
    assert total(metrics, telemetry.BYTES_STREAMED) == sum(map(len, delivered))
    assert [line for line in json_lines(log_output) if line["level"] != "INFO"] == []


class WallClock:
    """Wall-clock seconds only the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_background_work_given_up_on_is_counted_failed(local_env, metrics_on, capsys):
    """A long story whose job the speech engine refuses (a voice gone meanwhile), and, at
    the hourly sweep, a conversion and a story that stopped answering: each failed once."""
    from smart_stream.services.tts import Stories
    from tests.unit.test_tts import ToneEngine

    wall = WallClock()
    root = Services(Settings.from_env(), wall_clock=wall)
    root.migrate()
    install(root)
    stories = Stories(
        ToneEngine(max_request_chars=120),
        root.storage,
        root.catalog,
        root.versions,
        root.conversions,
        inline_max_chars=200,
    )
    long_text = "The little fox ran home through the snow. " * 10
    refused = stories.generate(Story(text=long_text, filename="gone.mp3", voice="Amy"))
    stalled_story = stories.generate(Story(text=long_text, filename="stalled.mp3"))
    upload = m4a(1.0)
    stalled_upload = root.library.upload(
        "memo.m4a", io.BytesIO(upload), len(upload), overwrite=False
    )
    capsys.readouterr()

    def voice_gone(voice: str | None, engine: str | None) -> Any:
        raise UnprocessableError(f"Unknown voice {voice!r}.")

    engine = stories.engine
    stories.engine = SimpleNamespace(  # type: ignore[assignment]
        max_request_chars=engine.max_request_chars, resolve_voice=voice_gone
    )
    with telemetry.metered():
        assert stories.speak_job(root.storage.head(refused.source_key)) is None
    assert root.catalog.get_audio("gone.mp3").status.value == "invalid"
    wall.now += 3600  # an hour without a heartbeat from either of the others
    with telemetry.metered():
        marked = root.upkeep.sweep()

    assert sorted(marked) == sorted([stalled_story.filename, stalled_upload.filename])
    metrics = emitted(capsys.readouterr().out)
    assert_low_cardinality(metrics, {})
    assert total(metrics, telemetry.STORIES_FAILED) == 2
    assert total(metrics, telemetry.CONVERSIONS_FAILED) == 1
    assert total(metrics, telemetry.STORIES_DONE) == total(metrics, telemetry.CONVERSIONS_DONE) == 0
