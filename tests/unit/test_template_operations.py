"""The stack as it would run, read from template.yaml as SAM translates it: every function
logs to a group of the stack's own with a retention, for either stage; every alarm tells
someone; prod keeps both secrets and protects its table; and a public function (a function
URL without auth, or an open route of the HTTP API) writes only the catalogue items it must,
under a condition, and nothing in the bucket. Also, what the public functions really ask of
DynamoDB is what their roles allow."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from local_server.template import read_template
from smart_stream.adapters.aws.dynamo_items import CURSOR_PK, SCHEMA_KEY, VALUE_PK
from smart_stream.bootstrap import install, services
from smart_stream.device.queue_route import create_queue_stream_app
from tests.conftest import ROOT
from tests.fake_yoto import FakeYoto, _fake_yoto_server, fake_yoto  # noqa: F401
from tests.lambda_functions import FakeContext, event, handler, with_path
from tests.unit.test_openapi import operations, spec  # noqa: F401
from tests.unit.test_queue_stream import BASE, device_path, make_queue, store, track

DYNAMODB_WRITES = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
S3_WRITES = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:RestoreObject",
)
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
#: What the template's public functions may write in the catalogue, by partition key.
PUBLIC_WRITES = {
    "QueueStreamFunction": {CURSOR_PK},  # stream cursors
    "YotoCallbackFunction": {VALUE_PK, SCHEMA_KEY["pk"]["S"]},  # the sign-in; the schema
}


def resolved(value: Any, *, prod: bool) -> Any:
    """``value`` with every ``Fn::If`` on IsProd decided (a prod or a dev stack)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"} and value["Fn::If"][0] == "IsProd":
        _, when_prod, otherwise = value["Fn::If"]
        return resolved(when_prod if prod else otherwise, prod=prod)
    if isinstance(value, dict):
        return {key: resolved(sub, prod=prod) for key, sub in value.items()}
    if isinstance(value, list):
        return [resolved(item, prod=prod) for item in value]
    return value


def of_type(translated: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in translated["Resources"].items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- Logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prod", [False, True], ids=["dev", "prod"])
def test_every_function_logs_to_a_group_of_its_own_with_a_retention(translated, prod):
    groups = of_type(translated, "AWS::Logs::LogGroup")
    functions = of_type(translated, "AWS::Lambda::Function")
    assert len(functions) >= 20
    used = []
    for name, function in functions.items():
        config = function["Properties"].get("LoggingConfig", {})
        assert set(config.get("LogGroup", {})) == {"Ref"}, f"{name} names no log group"
        group = groups[config["LogGroup"]["Ref"]]["Properties"]
        assert resolved(group["RetentionInDays"], prod=prod) == (90 if prod else 14), name
        # Not /aws/lambda/<name>: Lambda made those on stacks deployed before.
        assert group["LogGroupName"]["Fn::Sub"].startswith("/smart-stream/${Stage}/"), name
        used.append(config["LogGroup"]["Ref"])
    assert len(set(used)) == len(used), "a log group shared by two functions"


@pytest.mark.parametrize("prod", [False, True], ids=["dev", "prod"])
def test_the_http_api_has_an_access_log_without_query_strings(translated, prod):
    groups = of_type(translated, "AWS::Logs::LogGroup")
    (stage,) = of_type(translated, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    group = groups[settings["DestinationArn"]["Fn::GetAtt"][0]]["Properties"]
    assert resolved(group["RetentionInDays"], prod=prod) == (90 if prod else 14)
    line = json.loads(settings["Format"].replace("$context.", "context."))
    assert {"requestId", "routeKey", "status", "integrationErrorMessage"} <= set(line)
    # Yoto's callback carries a one-time code in its query: only the route's key is logged.
    for leak in ("$context.path", "rawQueryString", "querystring", "$context.requestUri"):
        assert leak.lower() not in settings["Format"].lower()


# --- Alarms ---------------------------------------------------------------------------------


def test_every_alarm_notifies_the_alarm_topic(translated):
    alarms = of_type(translated, "AWS::CloudWatch::Alarm")
    topics = of_type(translated, "AWS::SNS::Topic")
    assert len(alarms) >= 6
    for name, alarm in alarms.items():
        actions = alarm["Properties"].get("AlarmActions", [])
        assert actions, f"{name} tells nobody"
        for action in actions:
            assert action["Ref"] in topics, (name, action)
    (subscription,) = of_type(translated, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert translated["Parameters"]["AlarmEmail"]["Default"] == ""


def test_the_api_errors_alarm(translated):
    api = of_type(translated, "AWS::CloudWatch::Alarm")["ApiErrorsAlarm"]["Properties"]
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert api["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "ManagementApi"}}]
    assert (api["Statistic"], api["Threshold"]) == ("Sum", 0)


def test_the_failed_conversions_and_stories_alarm(translated):
    """The app's own metrics (EMF), with the dimensions the code emits, summed."""
    alarms = of_type(translated, "AWS::CloudWatch::Alarm")
    failed = alarms["FailedConversionsAndStoriesAlarm"]["Properties"]
    queries = {q["Id"]: q for q in failed["Metrics"]}
    returned = [q for q in failed["Metrics"] if q.get("ReturnData", True)]
    assert len(returned) == 1 and "Expression" in returned[0]
    names = set()
    for query in queries.values():
        if "MetricStat" not in query:
            continue
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == "SmartStream"
        assert metric["Dimensions"] == [
            {"Name": "service", "Value": "smart-stream"},
            {"Name": "stage", "Value": {"Ref": "Stage"}},
        ]
        assert query["MetricStat"]["Stat"] == "Sum"
        assert query["Id"] in returned[0]["Expression"]
        names.add(metric["MetricName"])
    assert names == {"ConversionsFailed", "StoriesFailed"}
    assert failed["TreatMissingData"] == "notBreaching"


# --- Data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prod", [False, True], ids=["dev", "prod"])
def test_prod_keeps_both_secrets_and_protects_its_table(translated, prod):
    resources = translated["Resources"]
    kept = "Retain" if prod else "Delete"
    for name in ("ApiTokenSecret", "SigningSecret"):
        secret = resources[name]
        assert resources[name]["Type"] == "AWS::SecretsManager::Secret"
        assert resolved(secret["DeletionPolicy"], prod=prod) == kept, name
        assert resolved(secret["UpdateReplacePolicy"], prod=prod) == kept, name
    table = resources["CatalogTable"]
    assert resolved(table["Properties"]["DeletionProtectionEnabled"], prod=prod) is prod
    assert resolved(table["DeletionPolicy"], prod=prod) == kept


# --- Least privilege ------------------------------------------------------------------------


def role_of(translated: dict[str, Any], function: str) -> dict[str, Any]:
    arn = translated["Resources"][function]["Properties"]["Role"]
    role: dict[str, Any] = translated["Resources"][arn["Fn::GetAtt"][0]]["Properties"]
    return role


def statements(translated: dict[str, Any], function: str) -> Iterator[dict[str, Any]]:
    for policy in role_of(translated, function).get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if statement.get("Effect") == "Allow":
                yield statement


def grants(statement: dict[str, Any], actions: tuple[str, ...]) -> list[str]:
    """Which of ``actions`` the statement allows (its actions may have wildcards)."""
    patterns = [a.lower() for a in as_list(statement.get("Action", []))]
    return [a for a in actions if any(fnmatch.fnmatchcase(a.lower(), p) for p in patterns)]


def leading_keys(statement: dict[str, Any]) -> set[str] | None:
    """The partition keys a statement is limited to; None when it is not."""
    keys = statement.get("Condition", {}).get("ForAllValues:StringEquals", {})
    return set(keys["dynamodb:LeadingKeys"]) if "dynamodb:LeadingKeys" in keys else None


@pytest.fixture(scope="module")
def public_functions(translated, spec) -> set[str]:  # noqa: F811
    """Functions anyone may call: behind a function URL with no auth, or serving a route the
    API's document leaves open (``security: []``, as test_openapi checks against the code)."""
    resources = translated["Resources"]
    public = {
        r["Properties"]["TargetFunctionArn"]["Ref"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Url" and r["Properties"]["AuthType"] == "NONE"
    }
    open_routes = {(m.upper(), p) for m, p, op in operations(spec) if op.get("security") == []}
    for route in read_template(ROOT / "template.yaml").http_routes:
        if (route.method, route.path) in open_routes:
            public.add(route.function.logical_id)
    return public


def test_the_public_functions_are_those_anyone_may_call(public_functions):
    assert public_functions == {
        "PageFunction",
        "HealthFunction",
        "OpenApiFunction",
        "YotoCallbackFunction",
        "StreamAudioFunction",
        "QueueStreamFunction",
    }


def test_every_catalogue_write_of_a_public_function_is_conditioned(translated, public_functions):
    for function in sorted(public_functions):
        assert set(as_list(role_of(translated, function).get("ManagedPolicyArns", []))) <= {
            BASIC_EXECUTION
        }, function
        written: set[str] = set()
        for statement in statements(translated, function):
            if not grants(statement, DYNAMODB_WRITES):
                continue
            keys = leading_keys(statement)
            assert keys is not None, (function, statement)
            written |= keys
        assert written <= PUBLIC_WRITES.get(function, set()), function


def test_no_public_function_writes_the_bucket(translated, public_functions):
    for function in sorted(public_functions):
        for statement in statements(translated, function):
            assert not grants(statement, S3_WRITES), (function, statement)


def failure_queues(translated: dict[str, Any]) -> dict[str, set[str]]:
    """Each function's on-failure SQS queues: its asynchronous invokes' and its streams'."""
    found: dict[str, set[str]] = {}
    for r in translated["Resources"].values():
        if r["Type"] not in ("AWS::Lambda::EventInvokeConfig", "AWS::Lambda::EventSourceMapping"):
            continue
        props = r["Properties"]
        function = props["FunctionName"]["Ref"]
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            found.setdefault(function, set()).add(destination["Fn::GetAtt"][0])
    return found


def test_each_function_may_send_to_its_failure_queues_once(translated):
    """SAM grants sqs:SendMessage for an on-failure destination; the template adds no second
    grant of its own."""
    queues = failure_queues(translated)
    assert set(queues) >= {"ExtractMetadataFunction", "ConvertAudioFunction", "PackQueueFunction"}
    for function, names in queues.items():
        for queue in names:
            granted = [
                s
                for s in statements(translated, function)
                if grants(s, ("sqs:SendMessage",))
                and {"Fn::GetAtt": [queue, "Arn"]} in as_list(s["Resource"])
            ]
            assert len(granted) == 1, (function, queue, granted)


def test_every_rule_target_has_a_dead_letter_queue_eventbridge_may_write(translated):
    resources = translated["Resources"]
    policies = of_type(translated, "AWS::SQS::QueuePolicy").values()
    alarmed = {
        json.dumps(d["Value"])
        for a in of_type(translated, "AWS::CloudWatch::Alarm").values()
        for d in a["Properties"].get("Dimensions", [])
    }
    rules = of_type(translated, "AWS::Events::Rule")
    assert len(rules) >= 4
    for rule, resource in rules.items():
        for target in resource["Properties"]["Targets"]:
            queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True
            assert json.dumps({"Fn::GetAtt": [queue, "QueueName"]}) in alarmed, queue
            allowed = [
                s
                for p in policies
                if {"Ref": queue} in p["Properties"]["Queues"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]
                if s["Principal"] == {"Service": "events.amazonaws.com"}
                and s["Action"] == "sqs:SendMessage"
                and {"Fn::GetAtt": [rule, "Arn"]}
                in as_list(s["Condition"]["ArnEquals"]["aws:SourceArn"])
            ]
            assert allowed, f"EventBridge may not put {rule}'s events in {queue}"


def test_device_concurrency_is_reserved_unless_zero(translated):
    parameter = translated["Parameters"]["DeviceReservedConcurrency"]
    assert (parameter["Default"], parameter["MinValue"]) == (10, 0)
    for function in ("StreamAudioFunction", "QueueStreamFunction"):
        reserved = translated["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]
        condition, when, otherwise = reserved["Fn::If"]
        assert (when, otherwise) == ({"Ref": "DeviceReservedConcurrency"}, {"Ref": "AWS::NoValue"})
        assert translated["Conditions"][condition] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": "DeviceReservedConcurrency"}, "0"]}]
        }


# --- What the public functions really ask of DynamoDB ---------------------------------------


class DynamoCalls:
    """The DynamoDB operations the process's client makes, with the partition key each
    touches (the one a policy's dynamodb:LeadingKeys condition sees)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        services().client("dynamodb").meta.events.register(
            "provide-client-params.dynamodb.*", self._record
        )

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        item = params.get("Key") or params.get("Item") or {}
        pk = item.get("pk", {}).get("S")
        if pk is None:
            pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S")
        self.calls.append((f"dynamodb:{model.name}", pk))


def allowed(translated: dict[str, Any], function: str, action: str, pk: str | None) -> bool:
    for statement in statements(translated, function):
        if grants(statement, (action,)):
            keys = leading_keys(statement)
            if keys is None or pk in keys:
                return True
    return False


def test_the_queue_device_route_needs_nothing_its_role_denies(
    translated,
    aws_env,
    monkeypatch,
):
    """Given a looping queue on S3 and DynamoDB, when a player plays two sessions of it
    (the second carries on from the cursor the first wrote), then every catalogue call the
    route made is one QueueStreamFunction's role allows."""
    monkeypatch.setenv("STREAM_SESSION_BYTES", "15000")
    install(None)
    tracks = (track("one.mp3", 0.8), track("two.mp3", 1.1))
    store(*tracks)
    queue = make_queue("forever", tracks, "loop")
    recorded = DynamoCalls()
    with TestClient(create_queue_stream_app(lambda: services().device), base_url=BASE) as client:
        for _ in range(2):
            assert client.get(device_path(queue)).status_code == 200
    assert ("dynamodb:PutItem", CURSOR_PK) in recorded.calls
    for action, pk in recorded.calls:
        assert allowed(translated, "QueueStreamFunction", action, pk), (action, pk)


def test_the_yoto_callback_needs_nothing_its_role_denies(
    translated,
    aws_env,
    fake_yoto,  # noqa: F811
):
    """Given a sign-in started on a new table, when Yoto sends the browser back and the
    callback function handles it (bringing the schema forward first), then the parent is
    signed in and every catalogue call was one YotoCallbackFunction's role allows."""
    fake: FakeYoto = fake_yoto
    authorize_url = services().yoto_signin.authorize(BASE)
    back = urlsplit(fake.consent(authorize_url))
    install(None)  # the callback function's own process
    recorded = DynamoCalls()
    data = with_path(event("http_list_audio.json", token=None), "/api/yoto/callback")
    data["routeKey"] = data["requestContext"]["routeKey"] = "GET /api/yoto/callback"
    data["pathParameters"] = None
    data["rawQueryString"] = back.query
    data["queryStringParameters"] = {k: v[-1] for k, v in parse_qs(back.query).items()}
    answer = handler("yoto_callback")(data, FakeContext(function_name="YotoCallbackFunction"))
    assert answer["statusCode"] == 302
    assert answer["headers"]["Location"].endswith("#yoto=signed-in")
    written = {(a, pk) for a, pk in recorded.calls if a in DYNAMODB_WRITES}
    assert ("dynamodb:PutItem", SCHEMA_KEY["pk"]["S"]) in written  # a new table: migrated
    assert ("dynamodb:PutItem", VALUE_PK) in written  # the tokens
    for action, pk in recorded.calls:
        assert allowed(translated, "YotoCallbackFunction", action, pk), (action, pk)
