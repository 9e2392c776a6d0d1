"""The API attacked with its own spec: schemathesis generates requests for every operation of
the OpenAPI document made from the code and sends them to the local server's ASGI app,
in-process, with the management token. Every answer must be the server's own: no 5xx (the
Yoto settings point at the fake, so nothing reaches for the network, and no dependency
failure is injected here, so a 502 or 503 is a failure too), a status and body the spec
documents, the right content type, and nothing half-stored after a refused request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import positive_data_acceptance

from smart_stream.bootstrap import Services
from smart_stream.domain.records import AudioStatus
from smart_stream.settings import Settings
from tests import fake_yoto as fakes
from tests.audio import make_mp3
from tests.conftest import ROOT, TOKEN

_fake_yoto_server = fakes._fake_yoto_server
fake_yoto = fakes.fake_yoto

#: Schema-valid is not the same as accepted here, by the spec's intent: a filename is any
#: string to the schema, but the API takes only library names (and audio by its content),
#: which no JSON Schema says whole (255 bytes of UTF-8, no control characters, .mp3).
NOT_CHECKED = [positive_data_acceptance]
#: Examples per operation: about 30 operations, so well over 1,000 requests a run.
EXAMPLES = 40
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Requests sent to each operation in this run.
SENT: dict[str, int] = {}


@pytest.fixture
def app(local_env, fake_yoto, monkeypatch, local_template) -> Iterator[Any]:
    """The whole local server, its library holding a file and a queue to find, open-ended
    streams ending after a moment."""
    from starlette.testclient import TestClient

    from local_server.app import create_app

    monkeypatch.setenv("STREAM_SESSION_SECONDS", "0.2")
    monkeypatch.setenv("LOCAL_WATCH_SECONDS", "0")
    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", "0")
    services = Services(Settings.from_env())
    created = create_app(local_template, services, access_log=False)
    with TestClient(created) as client:  # start-up: migrate, catch up
        song = {"file": ("moon.mp3", make_mp3(1.0, title="Moon"))}
        assert client.post("/api/audio/upload", headers=AUTH, files=song).status_code == 201
        queue = {"files": ["moon.mp3"]}
        made = client.post("/api/streams/bedtime/queue", headers=AUTH, json=queue)
        assert made.status_code == 201
        created.state.services = services
        yield created


SPEC = json.loads((ROOT / "functions" / "openapi" / "openapi.json").read_text())
OPERATIONS = [f"{method.upper()} {path}" for path, item in SPEC["paths"].items() for method in item]


def stored_and_catalogued(app: Any) -> tuple[set[str], set[str]]:
    root = app.state.services
    stored = {info.name for info in root.storage.iter_objects()}
    every = tuple(AudioStatus)
    page = root.catalog.list_audio(limit=10_000, after=None, statuses=every)
    return stored, {record.filename for record in page.records}


@pytest.mark.parametrize("label", OPERATIONS)
def test_the_api_answers_as_its_spec_says(app, label):
    # The document the server serves (test_openapi.py: the same); loaded from a dict so
    # that its own operation is attacked too (a schema loaded from a URL leaves it out).
    schema = schemathesis.openapi.from_dict(SPEC)
    schema.app = app
    (operation,) = [
        result.ok() for result in schema.get_all_operations() if result.ok().label == label
    ]
    sent = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def attack(case):
        before = stored_and_catalogued(app)
        response = case.call_and_validate(headers=AUTH, excluded_checks=NOT_CHECKED)
        sent.append(response.status_code)
        if response.status_code >= 400:
            assert stored_and_catalogued(app) == before, "a refused request changed what is stored"

    attack()
    assert sent, label
    SENT[label] = len(sent)


def test_made_things_are_used_then_removed(app):
    """Stateful: the spec's links say what to do with a queue or a file once made (get,
    stream, its card, a new URL, delete); sequences of such steps hold to the same checks."""
    schema = schemathesis.openapi.from_dict(SPEC)
    schema.app = app
    # No literals harvested from the app's source here: with them, what the state machine
    # draws changed with unrelated edits of the code, until Hypothesis found its own
    # generation inconsistent between runs of one test (FlakyStrategyDefinition).
    schema.config.analysis.constants.enabled = False
    steps: list[int] = []

    class WithToken(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            return {"headers": AUTH}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            steps.append(response.status_code)
            case.validate_response(response, excluded_checks=NOT_CHECKED)

    run_state_machine_as_test(
        WithToken,
        settings=settings(
            max_examples=15,
            stateful_step_count=5,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
    assert steps
    SENT["stateful"] = len(steps)


def test_over_a_thousand_requests_were_sent():
    """Run after the attacks above (a module stays on one worker, in order): the count."""
    assert len(SENT) == len(OPERATIONS) + 1
    total = sum(SENT.values())
    print(f"schemathesis sent {total} requests over {len(SENT)} operations")
    assert total >= 1000, SENT
