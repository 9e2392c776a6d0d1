"""How the bucket's events reach the functions. Deployed, S3 sends them to EventBridge, whose
rules (template.yaml, as SAM translates it) send each key to exactly its function: library
files to ExtractMetadataFunction, ``incoming/`` uploads to ConvertAudioFunction, packs to
neither. Locally the server matches the same rules, with a worker per function, so a long
conversion holds up nothing else. And ConvertAudioFunction's handler takes EventBridge's S3
events and its schedule."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from local_server import s3_events
from local_server.app import create_app
from local_server.lambda_bridge import LocalLambdaContext
from local_server.patterns import check, matches
from local_server.s3_events import S3EventDispatcher, s3_event
from local_server.template import LOCAL_BUCKET, read_template
from smart_stream.domain.errors import ServiceUnavailableError
from smart_stream.ports import ObjectInfo
from tests.conftest import ROOT, fresh_services
from tests.unit.test_metadata_pipeline import load_handler

EVENTS = ROOT / "events"
#: What a dev stack in account 123456789012 calls its bucket (tests/template.py's STACK; the
#: sample events' bucket).
BUCKET = "yoto-audio-dev-123456789012"

LIBRARY = "Bedtime Story ü.mp3"
UPLOAD = "incoming/" + "3f2b6c1d9e8a4b7c8d6e5f4a3b2c1d0e" + "/Grandma's story.m4a"
PACK = "packs/bedtime/" + "0" * 32 + ".mp3"
METADATA, CONVERT = "ExtractMetadataFunction", "ConvertAudioFunction"

#: (what happened, key, the functions it must reach and no other)
ROUTES = [
    ("ObjectCreated", LIBRARY, {METADATA}),
    ("ObjectRemoved", LIBRARY, {METADATA}),
    ("ObjectCreated", "a+b=c.mp3", {METADATA}),
    ("ObjectCreated", "incoming.mp3", {METADATA}),  # a library name, not the prefix
    ("ObjectCreated", "packs.mp3", {METADATA}),
    ("ObjectCreated", UPLOAD, {CONVERT}),
    ("ObjectCreated", "incoming/" + "1" * 32 + "/story.mp3", {CONVERT}),
    ("ObjectRemoved", UPLOAD, set()),  # the source, removed once converted
    ("ObjectCreated", PACK, set()),
    ("ObjectRemoved", PACK, set()),
]


def info(key: str, size: int = 3) -> ObjectInfo:
    return ObjectInfo(key, size, '"0123abcd"', datetime(2026, 1, 1, tzinfo=UTC))


# --- Deployed: the rules SAM makes of the template ----------------------------------------


def routed(rules: list[tuple[str, dict[str, Any]]], event: dict[str, Any]) -> set[str]:
    return {function for function, pattern in rules if matches(pattern, event)}


@pytest.mark.parametrize(("kind", "key", "functions"), ROUTES)
def test_the_deployed_rules_route_each_key_to_exactly_its_function(
    deployed_rules, kind, key, functions
):
    assert routed(deployed_rules, s3_event(kind, info(key), "01", bucket=BUCKET)) == functions


def test_the_deployed_rules_take_the_sample_events_and_this_bucket_only(deployed_rules):
    samples = {
        name: json.loads((EVENTS / name).read_text())
        for name in ("s3_put.json", "s3_delete.json", "s3_incoming_put.json")
    }
    assert routed(deployed_rules, samples["s3_put.json"]) == {METADATA}
    assert routed(deployed_rules, samples["s3_delete.json"]) == {METADATA}
    assert routed(deployed_rules, samples["s3_incoming_put.json"]) == {CONVERT}
    for kind, key, _ in ROUTES:
        elsewhere = s3_event(kind, info(key), "01", bucket="someone-elses-bucket")
        assert routed(deployed_rules, elsewhere) == set()
    # Every pattern uses only what the local server implements.
    for _, pattern in deployed_rules:
        check(pattern)


def test_the_bucket_notifies_eventbridge_and_no_function_directly(translated):
    resources = translated["Resources"]
    bucket = resources["AudioBucket"]["Properties"]
    assert bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    allowed = {
        json.dumps(r["Properties"]["FunctionName"]): r["Properties"]["Principal"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
    }
    assert "s3.amazonaws.com" not in allowed.values()
    for function in (METADATA, CONVERT):
        assert allowed[json.dumps({"Ref": function})] == "events.amazonaws.com"


def test_conversions_get_a_vcpu_fifteen_minutes_a_schedule_and_a_failure_queue(translated):
    resources = translated["Resources"]
    function = resources[CONVERT]["Properties"]
    assert (function["MemorySize"], function["Timeout"]) == (1769, 900)
    schedules = [
        r["Properties"]["ScheduleExpression"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [CONVERT, "Arn"]}
        and "ScheduleExpression" in r["Properties"]
    ]
    assert schedules == ["rate(1 hour)"]
    (invoke,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
        and r["Properties"]["FunctionName"] == {"Ref": CONVERT}
    ]
    queue = invoke["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert queue != invoke_queue(resources, METADATA), "a failure queue of its own"
    alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        # (A metric-math alarm has no Dimensions of its own.)
        and r["Properties"].get("Dimensions", [{}])[0].get("Value")
        == {"Fn::GetAtt": [queue, "QueueName"]}
    ]
    assert len(alarms) == 1 and alarms[0]["Threshold"] == 0


def invoke_queue(resources: dict[str, Any], function: str) -> str:
    for r in resources.values():
        props = r["Properties"]
        if r["Type"] == "AWS::Lambda::EventInvokeConfig" and props["FunctionName"] == {
            "Ref": function
        }:
            return str(props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0])
    raise AssertionError(f"{function} has no on-failure destination")


# --- Locally: the same rules, a worker per function ----------------------------------------


@pytest.fixture(scope="module")
def local_rules():
    return read_template(ROOT / "template.yaml").event_rules


@pytest.mark.parametrize(("kind", "key", "functions"), ROUTES)
def test_the_local_rules_route_as_the_deployed_ones(local_rules, kind, key, functions):
    event = s3_event(kind, info(key), "01")  # the local bucket
    assert {r.function.logical_id for r in local_rules if matches(r.pattern, event)} == functions
    assert event["detail"]["bucket"]["name"] == LOCAL_BUCKET


Handler = Any


def _fake_handlers(monkeypatch, handlers: dict[str, Handler]) -> None:
    """The functions' handlers, as the local server loads them, replaced by ``handlers``."""
    monkeypatch.setattr(s3_events, "load_handler", lambda function: handlers[function.logical_id])


@pytest.fixture
def dispatcher(local_rules):
    template = read_template(ROOT / "template.yaml")
    events = S3EventDispatcher(local_rules, template.schedules)
    events.start()
    yield events
    events.stop()


def test_the_local_dispatcher_delivers_each_change_to_its_function_only(monkeypatch, dispatcher):
    calls: list[tuple[str, str, str]] = []

    def recorder(function: str) -> Handler:
        def handler(event, context):
            detail = event["detail"]
            calls.append((function, event["detail-type"], detail["object"]["key"]))
            assert context.function_name == function

        return handler

    _fake_handlers(monkeypatch, {METADATA: recorder(METADATA), CONVERT: recorder(CONVERT)})
    for kind, key, _ in ROUTES:
        dispatcher(kind, info(key))
    dispatcher.drain()
    names = {"ObjectCreated": "Object Created", "ObjectRemoved": "Object Deleted"}
    expected = [(f, names[kind], key) for kind, key, functions in ROUTES for f in functions]
    assert sorted(calls) == sorted(expected)


def test_a_long_conversion_holds_up_no_other_function(monkeypatch, dispatcher):
    """Given a conversion under way (its handler blocked until released), when a library
    file's event comes, then the metadata function handles it meanwhile, and the write that
    announced it was not held up either."""
    converting, release, catalogued = threading.Event(), threading.Event(), threading.Event()

    def convert(event, context):
        converting.set()
        release.wait()

    _fake_handlers(monkeypatch, {CONVERT: convert, METADATA: lambda e, c: catalogued.set()})
    try:
        dispatcher("ObjectCreated", info(UPLOAD))
        assert converting.wait(timeout=30)
        dispatcher("ObjectCreated", info(LIBRARY))  # returns: the writer only queues
        assert catalogued.wait(timeout=30), "the metadata waited for the conversion"
        assert not release.is_set()
    finally:
        release.set()
    dispatcher.drain()


def test_drain_waits_for_the_events_a_handled_event_led_to(monkeypatch, dispatcher):
    """A conversion writes its MP3 into the library (storage announces it): draining waits
    for that file's metadata too."""
    catalogued: list[str] = []

    def convert(event, context):
        dispatcher("ObjectCreated", info("Grandma's story.mp3"))  # as storage's change feed

    def extract(event, context):
        catalogued.append(event["detail"]["object"]["key"])

    _fake_handlers(monkeypatch, {CONVERT: convert, METADATA: extract})
    dispatcher("ObjectCreated", info(UPLOAD))
    dispatcher.drain()
    assert catalogued == ["Grandma's story.mp3"]


def test_a_failing_function_is_retried_as_lambda_does_and_the_others_go_on(monkeypatch, dispatcher):
    calls: list[str] = []

    def convert(event, context):
        calls.append(event["detail"]["object"]["key"])
        raise RuntimeError("boom")

    _fake_handlers(monkeypatch, {CONVERT: convert, METADATA: lambda e, c: calls.append("meta")})
    dispatcher("ObjectCreated", info(UPLOAD))
    dispatcher("ObjectCreated", info(LIBRARY))
    dispatcher.drain()
    second = "incoming/" + "2" * 32 + "/b.wav"
    dispatcher("ObjectCreated", info(second))
    dispatcher.drain()
    assert calls.count(UPLOAD) == 1 + S3EventDispatcher.RETRIES == 3
    assert calls.count("meta") == 1
    assert calls.count(second) == 3, "the next event is delivered all the same"


def test_the_conversion_schedule_runs_on_its_worker_and_the_pack_one_on_the_stream(
    monkeypatch, local_env
):
    app = create_app(ROOT / "template.yaml", fresh_services(), access_log=False)
    assert [f.logical_id for f in app.state.dispatcher.schedules] == [CONVERT]
    assert [f.logical_id for f in app.state.streams.schedules] == ["PackQueueFunction"]
    swept = threading.Event()
    _fake_handlers(monkeypatch, {CONVERT: lambda event, context: swept.set()})
    app.state.dispatcher.start()
    try:
        app.state.dispatcher.run_schedules()
        app.state.dispatcher.drain()
    finally:
        app.state.dispatcher.stop()
    assert swept.is_set()


# --- ConvertAudioFunction's handler -------------------------------------------------------


class FakeConversions:
    """Stands in for ``Services.conversions`` (and ``Services.upkeep``): records what the
    handler asks of them."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.converted: list[ObjectInfo] = []
        self.sweeps = 0
        self.fail = fail

    def convert_incoming(self, upload: ObjectInfo) -> None:
        self.converted.append(upload)
        if self.fail is not None:
            raise self.fail

    def sweep(self) -> None:
        self.sweeps += 1


@pytest.fixture
def conversions(local_env) -> FakeConversions:
    root = fresh_services()
    fake = FakeConversions()
    root.conversions = fake  # the handler asks bootstrap.services() for it
    root.upkeep = fake
    return fake


@pytest.fixture(scope="module")
def convert_handler():
    return load_handler("convert_audio")


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def context() -> LocalLambdaContext:
    return LocalLambdaContext(CONVERT, 900)


def test_an_upload_event_is_converted_with_its_object(conversions, convert_handler):
    event = sample("s3_incoming_put.json")
    assert convert_handler(event, context()) == {"handled": 1}
    (upload,) = conversions.converted
    assert upload == ObjectInfo(
        name="incoming/3f2b6c1d9e8a4b7c8d6e5f4a3b2c1d0e/Grandma's story.m4a",  # as stored
        size=2345678,
        etag='"5d41402abc4b2a76b9719d911017c592"',
        last_modified=datetime(2026, 1, 1, 0, 10, 12, tzinfo=UTC),
    )
    assert conversions.sweeps == 0


def test_the_schedule_sweeps(conversions, convert_handler):
    assert convert_handler(sample("schedule.json"), context()) == {"swept": True}
    assert (conversions.sweeps, conversions.converted) == (1, [])


@pytest.mark.parametrize(
    "event",
    [
        sample("s3_put.json"),  # a library file: the metadata function's
        sample("s3_delete.json"),
        {**sample("s3_incoming_put.json"), "detail-type": "Object Deleted"},
    ],
    ids=["library file", "library delete", "upload removed"],
)
def test_events_that_are_not_new_uploads_are_left_alone(conversions, convert_handler, event):
    assert convert_handler(event, context()) == {"handled": 0}
    assert (conversions.sweeps, conversions.converted) == (0, [])


def test_a_failing_service_raises_for_lambda_to_retry(conversions, convert_handler):
    conversions.fail = ServiceUnavailableError("the catalogue is away")
    with pytest.raises(ServiceUnavailableError):
        convert_handler(sample("s3_incoming_put.json"), context())
