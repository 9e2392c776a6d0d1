"""What ``sam local`` needs of the project, checked offline: the example env file
(local-env.json) sets only variables the template declares for the functions it names,
every setting may be left empty to mean its default (the template declares them so), and
every sample event in events/ belongs to a function of the template and drives that
function's real handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_server.stream_events import matches as stream_matches
from local_server.template import LocalTemplate, read_template
from smart_stream.settings import Settings
from tests.conftest import ROOT
from tests.lambda_functions import EVENTS, FakeContext, event, handler
from tests.unit.test_event_routing import routed
from tests.unit.test_handlers import invoke, put_story

ENV_FILE = ROOT / "local-env.json"
#: The local server's own settings: not read by any function.
LOCAL_SERVER_ONLY = {"host", "port", "local_watch_seconds", "local_sweep_seconds"}
SAMPLES = sorted(path.name for path in EVENTS.glob("*.json"))


@pytest.fixture(scope="module")
def raw_template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return parsed


@pytest.fixture(scope="module")
def template() -> LocalTemplate:
    return read_template(ROOT / "template.yaml")


def functions_of(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in raw["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def declared(raw: dict[str, Any], function: str) -> set[str]:
    """The environment variables a function has: the Globals' and its own."""
    variables = set(raw["Globals"]["Function"]["Environment"]["Variables"])
    own = functions_of(raw)[function].get("Environment", {}).get("Variables", {})
    return variables | set(own)


# --- The settings and the env file ----------------------------------------------------------


def test_every_setting_a_function_reads_is_declared_for_every_function(raw_template):
    settings = {name.upper() for name in Settings.model_fields} - {
        name.upper() for name in LOCAL_SERVER_ONLY
    }
    for function in functions_of(raw_template):
        missing = settings - declared(raw_template, function)
        assert not missing, f"{function} does not declare {sorted(missing)}"


def test_the_local_server_settings_are_not_declared(raw_template):
    """(The device functions' own PORT is the Web Adapter's, not the local server's.)"""
    globals_ = set(raw_template["Globals"]["Function"]["Environment"]["Variables"])
    assert not {name.upper() for name in LOCAL_SERVER_ONLY} & globals_


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_an_empty_variable_is_the_default(name):
    """The template declares every setting, with "" where it means the default: each one
    accepts "" as unset."""
    assert Settings.from_env({name.upper(): ""}) == Settings.from_env({})


def test_the_env_file_sets_only_declared_variables_of_the_templates_functions(raw_template):
    env = json.loads(ENV_FILE.read_text())
    functions = functions_of(raw_template)
    for variable in env["Parameters"]:
        for function in functions:  # "Parameters" is for every function
            assert variable in declared(raw_template, function), (function, variable)
    for key, variables in env.items():
        if key == "Parameters":
            continue
        assert key in functions, f"{key} is not a function of the template"
        assert set(variables) <= declared(raw_template, key), key


def test_the_env_file_selects_local_adapters(tmp_path, monkeypatch):
    """With the file's values (and nothing else), a function would keep its audio and
    catalogue under /tmp, the only place a Lambda container may write, and speak offline."""
    parameters = json.loads(ENV_FILE.read_text())["Parameters"]
    settings = Settings.from_env(parameters)
    assert not settings.uses_s3 and not settings.uses_dynamodb
    assert settings.api_token_secret_arn is None and settings.signing_secret_arn is None
    assert settings.speech_engine == "local"
    assert settings.api_token
    for path in (settings.audio_files_dir, settings.data_dir):
        assert Path("/tmp") in path.parents


# --- Every sample event drives its function's handler ---------------------------------------


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def targets(name: str, template: LocalTemplate, rules: list[Any]) -> set[str]:
    """The template's functions a sample event reaches: an HTTP API event the function whose
    route its routeKey names; an S3 event (through EventBridge) the functions whose deployed
    rules match it; a scheduled event the functions with a schedule; a DynamoDB stream
    record the functions on the table's stream whose filter lets it through."""
    data = sample(name)
    if "routeKey" in data:
        method, path = data["routeKey"].split(" ", 1)
        return {
            r.function.logical_id
            for r in template.http_routes
            if (r.method, r.path) == (method, path)
        }
    if data.get("source") == "aws.s3":
        return routed(rules, data)
    if data.get("detail-type") == "Scheduled Event":
        return {function.logical_id for function in template.schedules}
    if data.get("Records", [{}])[0].get("eventSource") == "aws:dynamodb":
        return {
            subscription.function.logical_id
            for subscription in template.stream_subscriptions
            if all(
                any(stream_matches(p, record) for p in subscription.patterns)
                for record in data["Records"]
            )
        }
    return set()


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_event_reaches_a_function(name, template, deployed_rules):
    assert targets(name, template, deployed_rules), f"events/{name} reaches no function"


def code_dir(template: LocalTemplate, logical_id: str) -> str:
    """The function's directory under functions/ (its CodeUri)."""
    specs = [r.function for r in template.http_routes] + [r.function for r in template.event_rules]
    specs += template.schedules + [s.function for s in template.stream_subscriptions]
    (uri,) = {spec.code_uri for spec in specs if spec.logical_id == logical_id}
    return Path(uri).name


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_event_drives_its_functions_handler(
    name,
    template,
    deployed_rules,
    local_env,
):
    """Each sample, as it is, given to the real handler of every function it reaches (on the
    local adapters): the handler takes its shape and answers as for a real event (what each
    then does is the other modules' tests)."""
    for function in sorted(targets(name, template, deployed_rules)):
        folder = code_dir(template, function)
        if name.startswith("http_"):
            named = (sample(name).get("pathParameters") or {}).get("filename")
            if named:
                put_story(named)  # the file the sample names is there
            reply = invoke(folder, event(name))
            assert 200 <= reply.status < 300, (function, reply.status, reply.body)
            continue
        answer = handler(folder)(sample(name), FakeContext(function_name=function))
        assert isinstance(answer, dict), (function, answer)
        if name.startswith("s3_"):
            assert answer == {"handled": 1}, (function, answer)
        elif name == "schedule.json":
            assert answer == {"swept": True}, (function, answer)
        else:
            assert answer == {"batchItemFailures": []}, (function, answer)
