"""The local server's own parts: reading template.yaml, route order, API Gateway events,
and the bucket's events (as S3 sends them to EventBridge) for local writes."""

from __future__ import annotations

import base64
import io
import json
import textwrap
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from starlette.testclient import TestClient

from local_server import lambda_bridge, stream_events
from local_server.app import build_routes, create_app, starlette_path
from local_server.s3_events import S3EventDispatcher, Sequencer, s3_event
from local_server.stream_events import CatalogStreamDispatcher, matches, stream_record
from local_server.template import FunctionSpec, StreamSubscription, read_template
from smart_stream.adapters.catalog_rows import SCHEMA_VERSION
from smart_stream.changes import QueueChanged
from smart_stream.ports import ObjectInfo
from tests.conftest import ROOT, TOKEN, fresh_services


def test_template_routes_are_the_deployed_ones():
    template = read_template(ROOT / "template.yaml")
    http = {(r.method, r.path): r.function.logical_id for r in template.http_routes}
    assert http == {
        ("GET", "/"): "PageFunction",
        ("GET", "/assets/{file}"): "PageFunction",
        ("GET", "/api/health"): "HealthFunction",
        ("GET", "/api/openapi.json"): "OpenApiFunction",
        ("GET", "/api/audio/list"): "ListAudioFunction",
        ("GET", "/api/audio/search"): "SearchAudioFunction",
        ("GET", "/api/audio/{filename}/metadata"): "AudioMetadataFunction",
        ("DELETE", "/api/audio/{filename}"): "DeleteAudioFunction",
        ("POST", "/api/audio/upload"): "UploadAudioFunction",
        ("POST", "/api/audio/upload-url"): "UploadUrlFunction",
        ("POST", "/api/audio/generate-tts"): "GenerateTtsFunction",
        ("GET", "/api/streams"): "ListQueuesFunction",
        ("POST", "/api/streams/{name}/queue"): "PutQueueFunction",
        ("GET", "/api/streams/{name}/queue"): "GetQueueFunction",
        ("DELETE", "/api/streams/{name}"): "DeleteQueueFunction",
        ("GET", "/api/streams/{name}/yoto-card"): "YotoCardFunction",
        ("POST", "/api/streams/{name}/yoto-card"): "YotoCardFunction",
        ("DELETE", "/api/streams/{name}/yoto-card"): "YotoCardFunction",
        ("POST", "/api/yoto/login"): "YotoLoginFunction",
        ("GET", "/api/yoto/login"): "YotoLoginFunction",
        ("DELETE", "/api/yoto/login"): "YotoLoginFunction",
        ("POST", "/api/yoto/authorize"): "YotoLoginFunction",
        ("GET", "/api/yoto/callback"): "YotoCallbackFunction",
        ("GET", "/api/tts/voices"): "GenerateTtsFunction",
        ("POST", "/api/streams/{name}/revoke-url"): "RevokeUrlFunction",
        ("POST", "/api/audio/{filename}/revoke-url"): "RevokeUrlFunction",
    }
    devices = {
        (d.path, frozenset(d.methods)): d.function.logical_id for d in template.device_routes
    }
    assert devices == {
        ("/api/audio/{filename}", frozenset({"GET", "HEAD"})): "StreamAudioFunction",
        ("/api/streams/{name}/stream.mp3", frozenset({"GET", "HEAD"})): "QueueStreamFunction",
    }
    # The bucket's events reach functions through EventBridge rules (test_event_routing.py).
    subscribed = {rule.function.logical_id for rule in template.event_rules}
    assert subscribed == {"ExtractMetadataFunction", "ConvertAudioFunction"}
    # Every handler named in the template exists where the template says.
    for route in template.http_routes:
        module = route.function.handler.rpartition(".")[0]
        assert (route.function.code_uri / f"{module}.py").is_file()
        assert callable(lambda_bridge.load_handler(route.function))


def test_literal_routes_win_over_parameterised_ones():
    from smart_stream.device.app import register_name_convertor

    register_name_convertor()  # as create_app does before it builds the routes
    template = read_template(ROOT / "template.yaml")
    paths = [route.path for route in build_routes(template, fresh_services())]
    assert paths.index("/api/audio/list") < paths.index("/api/audio/{filename:name}")
    assert paths.index("/api/audio/{filename:name}/metadata") < paths.index(
        "/api/audio/{filename:name}"
    )
    assert starlette_path("/api/streams/{name}/queue") == "/api/streams/{name:name}/queue"


def _write_template(tmp_path: Path, handler_body: str) -> Path:
    """A one-function template with a rule for the bucket's "Object Created" events, whose
    handler records its events."""
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(handler_body))
    template = tmp_path / "template.yaml"
    template.write_text(
        textwrap.dedent(
            f"""
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Bucket:
                Type: AWS::S3::Bucket
              RecordFunction:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: {code.name}
                  Handler: app.lambda_handler
                  Events:
                    Created:
                      Type: EventBridgeRule
                      Properties:
                        Pattern:
                          source: [aws.s3]
                          detail-type: [Object Created]
                          detail:
                            bucket:
                              name: [!Ref Bucket]
            """
        )
    )
    return template


def test_local_writes_reach_subscribed_functions_as_s3_events(tmp_path, local_env):
    # Given a template whose rule sends a function "Object Created" only
    log = tmp_path / "events.jsonl"
    template = _write_template(
        tmp_path,
        f"""
        import json
        def lambda_handler(event, context):
            with open({str(log)!r}, "a") as out:
                out.write(json.dumps(event) + "\\n")
        """,
    )
    services = fresh_services()
    app = create_app(template, services, access_log=False)
    with TestClient(app):
        # When a file is written and then deleted through Storage
        services.storage.put("Gute Nacht + ü.mp3", io.BytesIO(b"\xff\xfb" * 100))
        services.storage.delete("Gute Nacht + ü.mp3")
        app.state.dispatcher.drain()
    # Then the function got exactly one real-shaped "Object Created" event (not the delete)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == 1
    (event,) = events
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert event["detail"]["object"]["key"] == "Gute Nacht + ü.mp3"
    assert event["detail"]["object"]["size"] == 200
    assert event["detail"]["object"]["sequencer"]
    assert event["detail"]["bucket"]["name"] == "local-audio"


def test_a_failing_subscriber_is_retried_then_left(tmp_path, local_env):
    count = tmp_path / "count"
    template = _write_template(
        tmp_path,
        f"""
        def lambda_handler(event, context):
            with open({str(count)!r}, "a") as out:
                out.write("x")
            raise RuntimeError("boom")
        """,
    )
    dispatcher = S3EventDispatcher(read_template(template).event_rules)
    dispatcher.start()
    info = ObjectInfo("a.mp3", 1, '"e"', None)  # type: ignore[arg-type]
    dispatcher("ObjectCreated", info)
    dispatcher.drain()
    dispatcher.stop()
    assert count.read_text() == "x" * (1 + S3EventDispatcher.RETRIES)


def test_sequencers_only_grow():
    sequencer = Sequencer()
    values = [sequencer.next() for _ in range(1000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)


def test_s3_event_keys_are_as_stored_as_in_eventbridge():
    """S3 URL-encodes keys in its own notifications, but not in its events to EventBridge."""
    info = ObjectInfo("a b+c ü.mp3", 5, '"abc"', None)  # type: ignore[arg-type]
    event = s3_event("ObjectCreated", info, "01")
    assert event["detail"]["object"] == {
        "key": "a b+c ü.mp3",
        "size": 5,
        "etag": "abc",
        "sequencer": "01",
    }
    deleted = s3_event("ObjectRemoved", info, "02")
    assert deleted["detail-type"] == "Object Deleted"
    assert deleted["detail"]["object"] == {"key": "a b+c ü.mp3", "sequencer": "02"}


def test_requests_become_api_gateway_v2_events(local_env):
    captured = {}

    def handler(event, context):
        captured.update(event)
        return {"statusCode": 201, "headers": {"x-test": "1"}, "body": "ok"}

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def endpoint(request: Request):
        body = await lambda_bridge.read_body(request)
        event = lambda_bridge.build_event(request, "POST /api/audio/{filename}", body)
        return lambda_bridge.to_response(handler(event, None))

    app = Starlette(routes=[Route("/api/audio/{filename:name}", endpoint, methods=["POST"])])
    with TestClient(app) as client:
        response = client.post(
            "/api/audio/a%20b.mp3?x=1&x=2",
            content=b"\x00\xff",
            headers={"Content-Type": "application/octet-stream"},
        )
    assert response.status_code == 201
    assert response.headers["x-test"] == "1"
    assert captured["version"] == "2.0"
    assert captured["rawPath"] == "/api/audio/a%20b.mp3"
    assert captured["pathParameters"] == {"filename": "a b.mp3"}
    assert captured["queryStringParameters"] == {"x": "1,2"}
    assert captured["isBase64Encoded"] is True
    assert base64.b64decode(captured["body"]) == b"\x00\xff"
    assert captured["requestContext"]["http"]["method"] == "POST"
    assert captured["requestContext"]["stage"] == "$default"


def test_bodies_over_the_lambda_payload_limit_are_refused(local_env):
    app = create_app(ROOT / "template.yaml", fresh_services(), access_log=False)
    with TestClient(app) as client:
        response = client.post(
            "/api/audio/upload",
            content=b"x" * (lambda_bridge.MAX_REQUEST_BYTES + 1),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "multipart/form-data"},
        )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert "upload-url" in response.json()["message"]


@pytest.mark.parametrize("path", ["/api/nothing", "/api/audio/list/extra"])
def test_unknown_paths_are_json_404s(local_env, path):
    app = create_app(ROOT / "template.yaml", fresh_services(), access_log=False)
    with TestClient(app) as client:
        response = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code in (400, 404)
    assert set(response.json()) == {"code", "message"}


def _stored_schema_version(env) -> int | None:
    """The schema version the store itself records (None: never migrated), read beside
    the app."""
    if env.backend == "local":
        import sqlite3

        from smart_stream.bootstrap import SQLITE_FILENAME

        path = env.data_dir / SQLITE_FILENAME
        if not path.exists():
            return None
        with sqlite3.connect(path) as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0]) or None
    import boto3

    from smart_stream.adapters.aws.dynamo_items import SCHEMA_KEY

    item = boto3.client("dynamodb").get_item(TableName=env.table, Key=SCHEMA_KEY).get("Item")
    return None if item is None else int(item["version"]["N"])


def test_the_server_migrates_the_catalogue_at_start_up(app_env):
    """The local server writes the catalogue: its schema comes forward when it starts,
    before any request, once."""
    services = fresh_services()
    migrations: list[str] = []
    migrate = services.catalog.migrate

    def counted() -> None:
        migrations.append("migrate")
        migrate()

    services.catalog.migrate = counted  # type: ignore[method-assign]
    app = create_app(ROOT / "template.yaml", services, access_log=False)
    assert app.state.services is services
    assert _stored_schema_version(app_env) is None, "made, not yet started: nothing written"
    assert migrations == []

    with TestClient(app):
        assert migrations == ["migrate"]
        assert _stored_schema_version(app_env) == SCHEMA_VERSION
        assert services.catalog.schema_version() == SCHEMA_VERSION

    assert migrations == ["migrate"]


def test_create_app_installs_the_services_it_is_given(local_env):
    from smart_stream.bootstrap import services as installed

    services = fresh_services()
    other = fresh_services()
    assert installed() is other
    create_app(ROOT / "template.yaml", services, access_log=False)
    assert installed() is services, "the functions' handlers use what the server was given"


# --- the catalogue's stream: queue changes as DynamoDB stream records ---------------------


def created(name: str = "bedtime") -> QueueChanged:
    return QueueChanged(name, existed=False, exists=True)


def replaced(name: str = "bedtime") -> QueueChanged:
    return QueueChanged(name, existed=True, exists=True)


def removed(name: str = "bedtime") -> QueueChanged:
    return QueueChanged(name, existed=True, exists=False)


def other_record(pk: str, sk: str) -> dict:
    """A stream record of a table item that is not a queue (a file's, a cursor's)."""
    return {
        "eventID": "other",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, "StreamViewType": "KEYS_ONLY"},
    }


def test_the_template_subscribes_the_pack_function_to_queue_records_only():
    subscriptions = read_template(ROOT / "template.yaml").stream_subscriptions
    assert [s.function.logical_id for s in subscriptions] == ["PackQueueFunction"]
    (subscription,) = subscriptions
    assert subscription.patterns, "the template filters the stream"
    assert callable(lambda_bridge.load_handler(subscription.function))

    def passes(record: dict) -> bool:
        return any(matches(pattern, record) for pattern in subscription.patterns)

    assert passes(stream_record(created(), 1))
    assert passes(stream_record(replaced(), 2))
    assert passes(stream_record(removed(), 3))
    assert passes(stream_record(created("ü-odd_name"), 4))
    assert not passes(other_record("AUDIO", "story.mp3"))
    assert not passes(other_record("CURSOR", "device-1#bedtime"))
    assert not passes({"eventName": "MODIFY", "dynamodb": {}})


def test_patterns_match_field_by_field_and_a_list_is_any_of():
    assert matches({"a": ["x", "y"]}, {"a": "y", "b": "ignored"})
    assert not matches({"a": ["x", "y"]}, {"a": "z"})
    assert not matches({"a": ["x"]}, {"b": "x"}), "a missing key fails"
    assert not matches({"a": ["x"]}, {})
    assert matches({"a": {"b": {"S": ["QUEUE"]}}}, {"a": {"b": {"S": "QUEUE"}, "c": 1}})
    assert not matches({"a": {"b": {"S": ["QUEUE"]}}}, {"a": {"b": {"N": "1"}}})
    assert not matches({"a": {"b": ["x"]}}, {"a": "not an object"})
    assert not matches({"a": {"b": ["x"]}}, {"a": ["x"]})
    assert matches({"a": "exact"}, {"a": "exact"})
    assert not matches({"a": "exact"}, {"a": "other"})
    assert matches({}, {"anything": 1}), "an empty pattern asks for nothing"


@pytest.mark.parametrize(
    ("change", "event_name"),
    [(created(), "INSERT"), (replaced(), "MODIFY"), (removed(), "REMOVE")],
)
def test_stream_records_name_the_queue_as_dynamodb_would(change, event_name):
    record = stream_record(change, 42)

    assert record["eventName"] == event_name
    assert record["eventSource"] == "aws:dynamodb"
    change = record["dynamodb"]
    assert change["StreamViewType"] == "KEYS_ONLY"
    assert "NewImage" not in change and "OldImage" not in change
    assert change["Keys"] == {"pk": {"S": "QUEUE"}, "sk": {"S": "bedtime"}}
    # What the function reads: Powertools' view of the record, deserialized.
    parsed = DynamoDBRecord(record)
    assert parsed.event_name is not None and parsed.event_name.name == event_name
    assert parsed.dynamodb is not None
    assert parsed.dynamodb.keys == {"pk": "QUEUE", "sk": "bedtime"}
    assert json.loads(json.dumps(record)) == record, "plain JSON, as Lambda receives it"


def test_the_template_stream_is_keys_only_as_the_local_records():
    from samtranslator.yaml_helper import yaml_parse

    table = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]["CatalogTable"]
    view = table["Properties"]["StreamSpecification"]["StreamViewType"]
    assert view == stream_record(created(), 1)["dynamodb"]["StreamViewType"]


def test_scheduled_functions_run_once_when_asked_on_the_same_worker(monkeypatch):
    template = read_template(ROOT / "template.yaml")
    scheduled = {f.logical_id: f for f in template.schedules}
    assert set(scheduled) == {"PackQueueFunction", "ConvertAudioFunction"}
    calls: list[dict] = []
    monkeypatch.setattr(
        stream_events, "load_handler", lambda function: lambda event, ctx: calls.append(event)
    )
    # (ConvertAudioFunction's schedule runs on its own bucket-event worker: test_event_routing.py)
    dispatcher = CatalogStreamDispatcher([_fake_subscription()], [scheduled["PackQueueFunction"]])
    dispatcher.start()
    try:
        dispatcher(created())
        dispatcher.run_schedules()
        dispatcher(replaced())
        dispatcher.drain()
    finally:
        dispatcher.stop()
    kinds = [e["Records"][0]["eventName"] if "Records" in e else e["detail-type"] for e in calls]
    assert kinds == ["INSERT", "Scheduled Event", "MODIFY"], "in order, one at a time"
    assert calls[1]["source"] == "aws.events"


def test_stream_records_are_numbered_in_order():
    records = [stream_record(created(), n) for n in (1, 2, 10, 11)]
    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert sequences == sorted(sequences)
    assert len({r["eventID"] for r in records}) == len(records)


def _fake_subscription(patterns: tuple = ()) -> StreamSubscription:
    spec = FunctionSpec(logical_id="FakeFunction", code_uri=Path("."), handler="app.handler")
    return StreamSubscription(spec, patterns)


def test_a_record_reported_failed_is_delivered_again_until_it_succeeds(monkeypatch):
    answers = [{"batchItemFailures": [{"itemIdentifier": "x"}]}] * 2 + [{}]
    calls: list[dict] = []

    def handler(event, context):
        calls.append(event)
        return answers[len(calls) - 1]

    monkeypatch.setattr(stream_events, "load_handler", lambda function: handler)
    dispatcher = CatalogStreamDispatcher([_fake_subscription()])
    dispatcher.start()
    try:
        dispatcher(created())
        dispatcher.drain()
    finally:
        dispatcher.stop()
    assert len(calls) == 1 + CatalogStreamDispatcher.RETRIES == 3
    assert all(len(event["Records"]) == 1 for event in calls)
    assert len({event["Records"][0]["eventID"] for event in calls}) == 1, "the same record"


def test_a_function_that_raises_is_retried_then_left_and_the_next_record_goes_on(monkeypatch):
    calls: list[str] = []

    def handler(event, context):
        record = event["Records"][0]
        calls.append(record["eventName"])
        if record["eventName"] == "INSERT":
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    monkeypatch.setattr(stream_events, "load_handler", lambda function: handler)
    dispatcher = CatalogStreamDispatcher([_fake_subscription()])
    dispatcher.start()
    try:
        dispatcher(created())
        dispatcher.drain()
        assert calls == ["INSERT"] * 3
        dispatcher(replaced())
        dispatcher.drain()
    finally:
        dispatcher.stop()
    assert calls == ["INSERT"] * 3 + ["MODIFY"]


def test_records_the_filters_refuse_never_reach_the_function(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(
        stream_events, "load_handler", lambda function: lambda event, ctx: calls.append(event)
    )
    patterns = read_template(ROOT / "template.yaml").stream_subscriptions[0].patterns
    dispatcher = CatalogStreamDispatcher([_fake_subscription(patterns)])
    dispatcher.start()
    try:
        dispatcher.put(other_record("AUDIO", "story.mp3"))
        dispatcher.put(other_record("CURSOR", "device-1#bedtime"))
        dispatcher(created())
        dispatcher.drain()
    finally:
        dispatcher.stop()
    assert [event["Records"][0]["eventName"] for event in calls] == ["INSERT"]


def test_without_subscribers_nothing_is_queued(monkeypatch):
    loaded: list[FunctionSpec] = []
    monkeypatch.setattr(stream_events, "load_handler", loaded.append)
    dispatcher = CatalogStreamDispatcher([])
    assert not dispatcher.active
    dispatcher.start()
    dispatcher(created())
    dispatcher.drain()  # returns at once: nothing was queued
    dispatcher.stop()
    assert loaded == []


_LOAD_AT_ONCE = """
import sys, threading
from pathlib import Path
from local_server.lambda_bridge import load_handler
from local_server.template import read_template

template = read_template(Path(sys.argv[1]))
functions = {s.function.logical_id: s.function for s in template.stream_subscriptions}
functions.update({r.function.logical_id: r.function for r in template.http_routes})
names = ["PackQueueFunction", "HealthFunction", "ListAudioFunction", "PutQueueFunction"]
start, errors = threading.Barrier(len(names)), []

def load(name):
    start.wait()
    try:
        load_handler(functions[name])
    except BaseException as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=load, args=(n,)) for n in names]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors)
"""


def test_handlers_loaded_at_once_by_several_threads_all_load():
    """At start-up the event workers and the first requests load their handlers at the same
    moment, in a fresh interpreter. Unserialised, about one start in four failed to import
    Powertools (a module lock deadlock, or a half-initialised module); six fresh starts."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'shared'}"}
    for _ in range(6):
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_AT_ONCE, str(ROOT / "template.yaml")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "[]", done.stdout
