"""The fault layer (``tests/faults.py``) itself, and the metadata pipeline, conversions and
queue packs converging with S3 and DynamoDB failing 10 % of their attempts.

The app runs on S3 and DynamoDB in moto's server, with its own clients (standard retries,
five attempts a call) and its own functions' handlers. The events reach those handlers the
way the template has them delivered: S3 sends EventBridge an event for each write S3 carried
out (whether or not the app heard the answer), the table's stream a record for each queue
item written, and Lambda invokes the function again while it fails, ``MaximumRetryAttempts``
times, before the event goes to the function's failure queue. botocore's backoff is asked
for and not slept, so nothing here waits on time.

The faults are drawn from ``FAULTS_SEED`` (default 7): ``FAULTS_SEED=n`` replays, or explores,
another run.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_server.lambda_bridge import LocalLambdaContext, load_handler
from local_server.patterns import matches
from local_server.s3_events import Sequencer, s3_event
from local_server.stream_events import scheduled_event, stream_record
from local_server.template import FunctionSpec, LocalTemplate
from smart_stream.bootstrap import Services, install
from smart_stream.changes import QueueChanged
from smart_stream.device.queue_route import finite_pieces
from smart_stream.domain.asks import QueueChange
from smart_stream.domain.errors import (
    AudioExistsError,
    ConflictError,
    ObjectChangedError,
    ServiceUnavailableError,
    SmartStreamError,
)
from smart_stream.domain.names import incoming_key
from smart_stream.domain.records import AudioRecord, AudioStatus, PlayMode
from smart_stream.ports import ObjectInfo
from smart_stream.services.packs import pack_key
from smart_stream.services.upkeep import STALE_SECONDS
from smart_stream.settings import Settings
from tests.audio import audio_source, make_mp3
from tests.conftest import ROOT
from tests.faults import ERRORS, KINDS, Faults, Write, add_figures, instant_backoff
from tests.lambda_functions import FakeContext, handler
from tests.unit.test_handlers import multipart, upload_event

SEED = int(os.environ.get("FAULTS_SEED", "7"))
RATE = 0.10
#: Every attempt botocore's standard retries make of a call (``max_attempts`` 4 retries).
ATTEMPTS = 5
#: Lambda's own retries of an asynchronous invoke, where the template sets none.
LAMBDA_DEFAULT_RETRIES = 2


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return instant_backoff(monkeypatch)


class WallClock:
    """The app's wall clock: the real one, moved forward when a test says so."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


def plain_client(service: str) -> Any:
    """A client of moto's server with no faults: what a test reads the truth with."""
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]


@dataclass
class App:
    """The app's services on moto's server, with the fault layer on its S3 and DynamoDB."""

    root: Services
    faults: Faults
    clock: WallClock
    bucket: str


def faulted_app(rate: float, kinds: tuple[str, ...] = KINDS, seed: int = SEED) -> App:
    clock = WallClock()
    root = Services(Settings.from_env(), wall_clock=clock)
    install(root)
    faults = Faults(rate, kinds, seed)
    for service in ("s3", "dynamodb"):
        faults.install(root.client(service))
    with faults.paused():
        root.migrate()
    faults.calls.clear()
    faults.attempts.clear()
    bucket = root.settings.s3_audio_bucket
    assert bucket is not None
    return App(root, faults, clock, bucket)


def outage(app: App, *operations: str, kind: str = "503", first_attempt: bool = False) -> None:
    """From now on every call of ``operations`` fails at every attempt (or, with
    ``first_attempt``, at its first only: botocore's retry gets through)."""
    app.faults.rate, app.faults.kinds = 1.0, (kind,)
    app.faults.operations = frozenset(operations)
    app.faults.per_call = 1 if first_attempt else None


def recovered(app: App) -> None:
    app.faults.rate = 0.0


# --- The layer ---------------------------------------------------------------------------


def head_many(app: App, names: list[str]) -> list[str]:
    """HEAD each name through the app's storage: what each answered."""
    answers = []
    for name in names:
        try:
            app.root.storage.head(name)
            answers.append("ok")
        except SmartStreamError as exc:
            answers.append(exc.code)
    return answers


def test_the_same_seed_injects_the_same_faults_and_another_seed_others(moto_server_env):
    plain_client("s3").put_object(Bucket=moto_server_env.bucket, Key="a.mp3", Body=b"x")
    names = ["a.mp3"] * 30 + [f"n{i}.mp3" for i in range(30)]
    runs = []
    for seed in (1, 1, 2):
        app = faulted_app(0.5, seed=seed)
        answers = head_many(app, names)
        runs.append((answers, app.faults.figures()["injected"]))
    assert runs[0] == runs[1]
    assert runs[0][1] != runs[2][1]
    injected = sum(runs[0][1].values())
    # Half of the attempts, give or take: each call is tried again after a fault.
    assert 0.3 < injected / app.faults.attempts["s3"] < 0.7


def test_no_faults_at_rate_zero(moto_server_env):
    app = faulted_app(0.0)
    assert head_many(app, ["x.mp3"] * 20) == ["audio_not_found"] * 20
    assert app.faults.total() == 0 and app.faults.calls[("s3", "clean")] == 20


@pytest.mark.parametrize("kind", ["500", "503", "throttle", "timeout", "reset", "unreachable"])
def test_each_fault_is_retried_by_botocore_then_a_503_from_the_adapters(
    moto_server_env, no_backoff, kind
):
    """Every call of the app's S3 and DynamoDB adapters, failing at every attempt: botocore
    tries it five times, and the adapter answers a domain error (503), never SDK text."""
    plain_client("s3").put_object(Bucket=moto_server_env.bucket, Key="a.mp3", Body=b"x" * 100)
    app = faulted_app(1.0, (kind,))
    calls: dict[str, Callable[[], object]] = {
        "head": lambda: app.root.storage.head("a.mp3"),
        "read": lambda: b"".join(app.root.storage.open_range("a.mp3")),
        "put": lambda: app.root.storage.put("b.mp3", io.BytesIO(b"y" * 10)),
        "catalogue": lambda: app.root.catalog.get_audio("a.mp3"),
        "list": lambda: app.root.catalog.list_audio(limit=5, after=None, statuses=()),
    }
    for name, call in calls.items():
        with pytest.raises(ServiceUnavailableError) as caught:
            call()
        assert "An error occurred" not in caught.value.message, name
    assert app.faults.figures()["injected"] == {
        f"dynamodb {kind}": 2 * ATTEMPTS,
        f"s3 {kind}": 3 * ATTEMPTS,
    }
    assert app.faults.calls == Counter({("s3", "failed"): 3, ("dynamodb", "failed"): 2})
    assert len(no_backoff) == 5 * (ATTEMPTS - 1) and all(d > 0 for d in no_backoff)
    # A time-out's request reached S3, which stored the object: S3 sends its event.
    stored = "b.mp3" in {
        o["Key"] for o in plain_client("s3").list_objects_v2(Bucket=app.bucket).get("Contents", [])
    }
    assert stored is (kind == "timeout")


def test_each_service_answers_its_own_error_codes(moto_server_env):
    for service, kinds in ERRORS.items():
        for kind, (status, code) in kinds.items():
            faults = Faults(1.0, (kind,), operations=None)
            client = faults.install(
                boto3.client(  # type: ignore[call-overload]
                    service,
                    endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                    config=Config(retries={"max_attempts": 0}),
                )
            )
            call = {
                "s3": lambda c: c.list_objects_v2(Bucket="any"),
                "dynamodb": lambda c: c.list_tables(),
                "polly": lambda c: c.describe_voices(),
            }[service]
            with pytest.raises(ClientError) as caught:
                call(client)
            error = caught.value.response
            assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (
                status,
                code,
            ), (service, kind)


def test_a_reset_mid_body_breaks_a_ranged_read_part_way(moto_server_env):
    data = bytes(range(256)) * 400
    plain_client("s3").put_object(Bucket=moto_server_env.bucket, Key="a.mp3", Body=data)
    app = faulted_app(1.0, ("body-reset",))
    stream = app.root.storage.open_range("a.mp3", 100, None, chunk_size=4096)
    got = b""
    with pytest.raises(ServiceUnavailableError):
        for chunk in stream:
            got += chunk
    assert 0 <= len(got) < len(data) - 100 and data[100 : 100 + len(got)] == got
    assert app.faults.figures()["injected"] == {"s3 body-reset": 1}
    assert app.faults.calls == Counter({("s3", "body cut"): 1})
    # Not retried by botocore (the call had succeeded): the app's code sees it.
    assert app.faults.attempts["s3"] == 1


def test_the_layer_needs_a_real_endpoint(aws_env):
    with pytest.raises(RuntimeError, match="moto's server"):
        Faults(0.1).install(boto3.client("s3"))


def test_a_local_file_that_shrinks_while_it_is_read_fails_the_read(local_env):
    """The local twin of a reset mid-body: a file cut short while a ranged read is under
    way (rewritten in place) fails that read, as ``read_spans`` does, rather than end early
    as if the bytes so far were the whole (the pipeline would analyse a short file, a
    response would end clean but short)."""
    root = Services(Settings.from_env())
    data = make_mp3(1.0)
    root.storage.put("owl.mp3", io.BytesIO(data))
    stream = root.storage.open_range("owl.mp3", 100, None, chunk_size=1024)
    got = next(iter(stream))
    with open(local_env.audio_dir / "owl.mp3", "r+b") as handle:
        handle.truncate(len(data) // 2)
    with pytest.raises(ObjectChangedError):
        for chunk in stream:
            got += chunk
    assert data[100:].startswith(got) and len(got) < len(data) - 100


# --- The template's retries ------------------------------------------------------------------


def template_retries() -> dict[str, int]:
    """Each function's retries of a failed event, as the template sets them: its
    asynchronous invokes' (``EventInvokeConfig``) and, as ``<name>:stream``, its stream's."""
    from samtranslator.yaml_helper import yaml_parse

    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    found: dict[str, int] = {}
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        invoke = props.get("EventInvokeConfig") or {}
        found[name] = int(invoke.get("MaximumRetryAttempts", LAMBDA_DEFAULT_RETRIES))
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "DynamoDB":
                found[f"{name}:stream"] = int(event["Properties"]["MaximumRetryAttempts"])
    return found


def test_the_local_server_retries_events_as_the_template_says():
    """What this module models is what the local server does: the template's retries."""
    from local_server.events import EventDispatcher

    retries = template_retries()
    for function in ("ExtractMetadataFunction", "ConvertAudioFunction", "PackQueueFunction:stream"):
        assert retries[function] == EventDispatcher.RETRIES == 2, function


@dataclass
class Lambdas:
    """The functions subscribed to the bucket's events (EventBridge rules) and the table's
    stream, invoked as Lambda does: again while the function fails (raises, or reports the
    record failed), as many times as the template says, then the event goes to the
    function's failure queue (``failed``). Events are those of the writes the services
    carried out (``Faults.on_write``), whatever the app heard back."""

    template: LocalTemplate
    retries: dict[str, int]
    s3: Any
    bucket: str
    pending: deque[tuple[FunctionSpec, str, dict[str, Any]]] = field(default_factory=deque)
    sequencer: Sequencer = field(default_factory=Sequencer)
    invocations: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)

    def wrote(self, write: Write) -> None:
        if write.service == "s3":
            self.s3_event(write.key, removed=write.operation == "DeleteObject")
        elif write.key.startswith("QUEUE/"):
            name = write.key.removeprefix("QUEUE/")
            record = stream_record(QueueChanged(name, True, True), int(self.sequencer.next(), 16))
            for subscription in self.template.stream_subscriptions:
                if not subscription.patterns or any(
                    matches(p, record) for p in subscription.patterns
                ):
                    self.pending.append((subscription.function, "stream", {"Records": [record]}))

    def s3_event(self, key: str, *, removed: bool = False) -> None:
        """S3's event for ``key`` (as it is now) to every function whose rule matches it."""
        if removed:
            info = ObjectInfo(key, 0, '""', datetime.now(UTC))
        else:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
            info = ObjectInfo(key, head["ContentLength"], head["ETag"], head["LastModified"])
        kind = "ObjectRemoved" if removed else "ObjectCreated"
        event = s3_event(kind, info, self.sequencer.next())
        for rule in self.template.event_rules:
            if matches(rule.pattern, event):
                self.pending.append((rule.function, "async", deepcopy(event)))

    def schedule(self, function_id: str) -> None:
        function = next(f for f in self.template.schedules if f.logical_id == function_id)
        self.pending.append((function, "async", scheduled_event(function)))

    def run(self) -> None:
        """Deliver every event, and every event those lead to, until none is left."""
        while self.pending:
            function, via, event = self.pending.popleft()
            self._invoke(function, via, event)

    def _invoke(self, function: FunctionSpec, via: str, event: dict[str, Any]) -> None:
        name = function.logical_id
        handler = load_handler(function)
        retries = self.retries[f"{name}:stream" if via == "stream" else name]
        for _ in range(1 + retries):
            self.invocations[name] += 1
            try:
                answer = handler(event, LocalLambdaContext(name, 900))
            except Exception as exc:
                self.errors[f"{name} {type(exc).__name__}"] += 1
                continue
            if not (answer or {}).get("batchItemFailures"):
                return
            self.errors[f"{name} batch item failure"] += 1
        self.failed.append(f"{name}: {_what(event)}")


def _what(event: dict[str, Any]) -> str:
    if "Records" in event:
        return f"queue {event['Records'][0]['dynamodb']['Keys']['sk']['S']}"
    key = event.get("detail", {}).get("object", {}).get("key")
    return f"{event.get('detail-type')} {key}"


@pytest.fixture
def lambdas(local_template: LocalTemplate) -> Iterator[Callable[[App], Lambdas]]:
    def attach(app: App) -> Lambdas:
        made = Lambdas(local_template, template_retries(), plain_client("s3"), bucket=app.bucket)
        app.faults.on_write.append(made.wrote)
        return made

    yield attach


# --- What is stored, catalogued and answered -------------------------------------------


def upload(app: App, name: str, data: bytes, answers: Counter[str]) -> AudioRecord | None:
    """Upload as a parent does: a 503 is tried again (at most five times)."""
    for _ in range(5):
        try:
            record = app.root.library.upload(name, io.BytesIO(data), len(data), overwrite=False)
        except ServiceUnavailableError:
            answers["503, tried again"] += 1
            continue
        except AudioExistsError:
            answers["409"] += 1
            return None
        answers["202" if record.status is AudioStatus.CONVERTING else "201"] += 1
        return record
    answers["503 five times"] += 1
    return None


def save_queue(app: App, name: str, files: list[str], mode: PlayMode, answers: Counter[str]):
    for _ in range(5):
        try:
            app.root.queues.put(name, QueueChange(files=files, play_mode=mode, title=name))
            answers["queue saved"] += 1
            return
        except (ServiceUnavailableError, ConflictError) as exc:
            answers[f"queue {exc.code}, tried again"] += 1
    pytest.fail(f"the queue {name!r} could not be saved five times over")


def stored_objects(app: App) -> dict[str, dict[str, Any]]:
    listing = plain_client("s3").list_objects_v2(Bucket=app.bucket)
    return {item["Key"]: item for item in listing.get("Contents", [])}


def stored(app: App, key: str) -> bytes:
    return plain_client("s3").get_object(Bucket=app.bucket, Key=key)["Body"].read()


def every_record(app: App) -> list[AudioRecord]:
    everything = (
        AudioStatus.PENDING,
        AudioStatus.CONVERTING,
        AudioStatus.READY,
        AudioStatus.INVALID,
    )
    return list(app.root.catalog.list_audio(limit=1000, after=None, statuses=everything).records)


def half_done(app: App) -> list[str]:
    """What is stored without its record, or catalogued without its object: every library
    object has a record of that very version; every ready (or pending) record its object;
    every converting record the upload it waits for; every upload a record waiting for it.
    (An invalid record is the record of a refused file: it has no object.)"""
    with app.faults.paused():
        objects = stored_objects(app)
        records = {r.filename: r for r in every_record(app)}
    problems = []
    waited_for = {r.source_key for r in records.values() if r.source_key}
    for key, item in objects.items():
        if key.startswith("incoming/"):
            if key not in waited_for:
                problems.append(f"{key}: an upload no record waits for")
        elif not key.startswith("packs/"):
            record = records.get(key)
            if record is None:
                problems.append(f"{key}: stored, not catalogued")
            elif record.etag != item["ETag"]:
                problems.append(f"{key}: catalogued as another version ({record.status.value})")
    for name, record in records.items():
        if record.status in (AudioStatus.READY, AudioStatus.PENDING) and name not in objects:
            problems.append(f"{name}: {record.status.value}, not stored")
        if record.source_key and record.source_key not in objects:
            problems.append(f"{name}: waits for {record.source_key}, which is gone")
    return problems


def api_upload(name: str, data: bytes, *, overwrite: bool) -> tuple[int, dict[str, Any]]:
    """POST /api/audio/upload, through the upload function's handler, as HTTP API sends it."""
    content_type, body = multipart([("file", name, data)])
    query = {"overwrite": "true"} if overwrite else None
    answer = handler("upload_audio")(upload_event(content_type, body, query=query), FakeContext())
    return answer["statusCode"], json.loads(answer["body"] or "{}")


def song(seconds: float, title: str) -> bytes:
    return make_mp3(seconds, title=title)


# --- At 10 %: the pipeline, conversions and packs converge ----------------------------------


#: Files a parent uploads: house MP3s kept as they are (one VBR without a header, read whole),
#: and audio that is converted.
HOUSE = {
    **{f"song {i}.mp3": (0.4 + 0.1 * i, f"Song {i}") for i in range(6)},
}
CONVERTED = {
    "memo.m4a": "m4a",
    "tune.flac": "flac",
    "take.wav": "wav",
    "note.ogg": "ogg_opus",
    "audiobook.mp3": "mp3_22k_mono",
}


def test_at_ten_percent_faults_every_file_ends_ready_or_invalid_and_queues_play_right(
    moto_server_env, lambdas, record_property
):
    app = faulted_app(RATE)
    delivery = lambdas(app)
    answers: Counter[str] = Counter()
    s3 = plain_client("s3")

    # Given uploads of every kind, a file copied into the bucket by hand (a non-house MP3,
    # converted in place by the sweep), and through an upload URL a house MP3 and a file
    # that is not audio.
    for name, (seconds, title) in HOUSE.items():
        upload(app, name, make_mp3(seconds, title=title), answers)
    upload(app, "long walk.mp3", make_mp3(1.5, vbr_quality=4), answers)
    for name, source in CONVERTED.items():
        upload(app, name, audio_source(source), answers)
    for key, data in {
        "copied by hand.mp3": audio_source("mp3_48k"),
        incoming_key("0" * 32, "sent.mp3"): make_mp3(0.6, title="Sent"),
        incoming_key("1" * 32, "not audio.mp3"): b"<html>not audio</html>" * 50,
    }.items():
        s3.put_object(Bucket=app.bucket, Key=key, Body=data)  # as a form post or `aws s3 cp`
        delivery.s3_event(key)

    # When the events are delivered as the template has them retried, the hourly sweeps run
    # (an hour on, past the staleness window), and what they start is delivered too.
    delivery.run()
    app.clock.ahead = STALE_SECONDS + 3600
    delivery.schedule("ConvertAudioFunction")
    delivery.run()

    # And queues are saved, their packs written from the table's stream, and (an hour on)
    # by the pack sweep, which catches up with what changes missed.
    ready = [*sorted(HOUSE), "memo.mp3", "tune.mp3"]
    save_queue(app, "evening", ready, PlayMode.SEQUENTIAL, answers)
    save_queue(app, "mixed", list(reversed(ready)), PlayMode.SHUFFLE, answers)
    delivery.run()
    delivery.schedule("PackQueueFunction")
    delivery.run()

    figures = add_figures({}, app.faults)
    figures["outcomes"] = {
        **answers,
        **{f"invocations {k}": n for k, n in delivery.invocations.items()},
        **{f"failed attempt {k}": n for k, n in delivery.errors.items()},
        "events to a failure queue": len(delivery.failed),
    }
    record_property("faults", figures)

    with app.faults.paused():
        records = {r.filename: r for r in every_record(app)}
        objects = stored_objects(app)
        expected_ready = [
            *HOUSE,
            "long walk.mp3",
            *(n.rsplit(".", 1)[0] + ".mp3" for n in CONVERTED),
            "copied by hand.mp3",
            "sent.mp3",
        ]
        # Then every file is ready (or invalid, for the one that is not audio); none is left
        # pending or converting; every record describes the object stored under its name.
        statuses = {name: records[name].status for name in records}
        assert {n: statuses.get(n) for n in expected_ready} == dict.fromkeys(
            expected_ready, AudioStatus.READY
        ), (figures, delivery.failed)
        assert statuses.get("not audio.mp3") is AudioStatus.INVALID
        assert set(statuses) == {*expected_ready, "not audio.mp3"}
        for name in expected_ready:
            record = records[name]
            assert (record.etag, record.size) == (objects[name]["ETag"], objects[name]["Size"])
            assert (record.mpeg_version, record.sample_rate, record.channels) == ("1", 44100, 2)
        assert not [k for k in objects if k.startswith("incoming/")], "uploads left behind"
        # Only a queue's pack may have been given up on: the queue then plays without it.
        assert [f for f in delivery.failed if not f.startswith("PackQueueFunction")] == []
        # Every upload was answered as it should be (a 503 at worst, then tried again).
        assert answers["201"] + answers["202"] == len(HOUSE) + 1 + len(CONVERTED), answers
        assert answers["queue saved"] == 2, answers

        # And each queue streams its files' audio, in its order; from its pack, when it
        # has one, which holds exactly those bytes.
        packed = 0
        for name in ("evening", "mixed"):
            queue = app.root.queues.get(name)
            layout = app.root.layouts.finite(queue, queue.play_mode)
            expected = layout.prefix + b"".join(
                stored(app, s.name)[s.first : s.last + 1] for s in layout.spans()
            )
            if pack_key(name, layout) in objects:
                packed += 1
                assert stored(app, pack_key(name, layout)) == expected
            streamed = b"".join(finite_pieces(app.root.device, name, layout, 0, layout.size - 1))
            assert streamed == expected
        figures["outcomes"]["queues with their pack"] = packed
        assert app.faults.total() > 0


# END


# --- A lost answer ---------------------------------------------------------------------------


def lost_answers(operation: str) -> App:
    """The app, with the first attempt of every ``operation`` call timing out after the
    service carried it out: botocore's retry then meets what that attempt did."""
    app = faulted_app(0.0)
    outage(app, operation, kind="timeout", first_attempt=True)
    return app


@pytest.mark.parametrize(
    ("name", "make", "status"),
    [
        ("bedtime.mp3", lambda: song(0.5, "Bedtime"), AudioStatus.READY),
        ("memo.m4a", lambda: audio_source("m4a"), AudioStatus.CONVERTING),
    ],
)
def test_an_upload_whose_put_answer_was_lost_is_stored_not_a_409(
    moto_server_env, name, make, status
):
    """S3 stored the file and the answer never came; botocore's retry of the conditional
    write (``If-None-Match: *``) is answered 412: that is the upload's own write, not a file
    that was there before."""
    app = lost_answers("PutObject")
    data = make()
    record = app.root.library.upload(name, io.BytesIO(data), len(data), overwrite=False)
    assert record.status is status
    assert app.faults.figures()["injected"] == {"s3 timeout": 1}
    with app.faults.paused():
        assert app.root.catalog.get_audio(record.filename) == record
        # And a second upload of that name is still refused.
        with pytest.raises(AudioExistsError):
            app.root.library.upload(name, io.BytesIO(data), len(data), overwrite=False)


def test_a_queue_write_whose_answer_was_lost_is_saved_not_a_409(moto_server_env):
    app = faulted_app(0.0)
    for name, seconds in (("moon.mp3", 0.4), ("stars.mp3", 0.3)):
        data = make_mp3(seconds)
        app.root.library.upload(name, io.BytesIO(data), len(data), overwrite=False)
    app = lost_answers("PutItem")
    created, first = app.root.queues.put(
        "bedtime", QueueChange(files=["moon.mp3"], play_mode=PlayMode.SEQUENTIAL)
    )
    replaced, second = app.root.queues.put(
        "bedtime", QueueChange(files=["moon.mp3", "stars.mp3"], play_mode=PlayMode.SEQUENTIAL)
    )
    assert (created, replaced) == (True, False)
    assert app.faults.total("timeout") == 2
    with app.faults.paused():
        assert app.root.queues.get("bedtime") == second
        assert second.version == first.version + 1


def test_an_event_whose_catalogue_write_answer_was_lost_still_updates_the_queues(
    moto_server_env, lambdas
):
    """The metadata function's conditional write (newer sequencer only) is carried out and
    its answer lost; botocore's retry is refused, the sequencer being its own: the write is
    still this event's, so the queues that play the file follow it (a new version's span;
    a removed file leaves them)."""
    app = faulted_app(0.0)
    delivery = lambdas(app)
    for name in ("moon.mp3", "stars.mp3"):
        upload(app, name, make_mp3(0.4, title=name), Counter())
    app.root.queues.put(
        "bedtime", QueueChange(files=["moon.mp3", "stars.mp3"], play_mode=PlayMode.SEQUENTIAL)
    )
    delivery.run()
    outage(app, "UpdateItem", kind="timeout", first_attempt=True)
    s3 = plain_client("s3")

    # A new version of moon.mp3 copied in by hand: its event.
    s3.put_object(Bucket=app.bucket, Key="moon.mp3", Body=make_mp3(0.7, title="New moon"))
    delivery.s3_event("moon.mp3")
    delivery.run()
    with app.faults.paused():
        record = app.root.catalog.get_audio("moon.mp3")
        assert record is not None and record.title == "New moon"
        entries = {e.filename: e.etag for e in app.root.queues.get("bedtime").entries}
        assert entries["moon.mp3"] == record.etag

    # stars.mp3 removed by hand: its event.
    s3.delete_object(Bucket=app.bucket, Key="stars.mp3")
    delivery.s3_event("stars.mp3", removed=True)
    delivery.run()
    with app.faults.paused():
        assert app.root.catalog.get_audio("stars.mp3") is None
        assert app.root.queues.get("bedtime").files == ["moon.mp3"]
    assert app.faults.total("timeout") >= 2 and delivery.failed == []


# --- Uploads leave nothing half-done -------------------------------------------------------


#: (name, file, overwrite): a parent's uploads, new names and replacements, kept as they are
#: and converted, one over a file still converting.
UPLOADS = [
    ("bedtime.mp3", lambda: song(0.5, "Bedtime"), False),
    ("memo.m4a", lambda: audio_source("m4a"), False),
    ("bedtime.mp3", lambda: song(0.6, "Bedtime again"), False),
    ("bedtime.mp3", lambda: song(0.6, "Bedtime again"), True),
    ("memo.mp3", lambda: song(0.3, "Memo, spoken again"), True),
    ("tune.flac", lambda: audio_source("flac"), False),
    ("tune.wav", lambda: audio_source("wav"), True),
    ("audiobook.mp3", lambda: audio_source("mp3_22k_mono"), False),
    *((f"song {i}.mp3", lambda i=i: song(0.3 + 0.05 * i, f"Song {i}"), False) for i in range(8)),
    *((f"song {i}.mp3", lambda i=i: song(0.2, f"Song {i}, remade"), True) for i in range(0, 8, 3)),
    ("note.ogg", lambda: audio_source("ogg_opus"), False),
    ("note.opus", lambda: audio_source("webm_opus"), True),
]


def test_at_ten_percent_faults_each_upload_leaves_nothing_half_done(
    moto_server_env, lambdas, record_property
):
    """After each request, and the events its writes sent (retried as the template says),
    nothing is stored without its record nor catalogued without its object; and each answer
    is the one the name called for: 201/202 for a new name or a replacement, 409 for a name
    taken, or 503 (the parent tries again)."""
    app = faulted_app(RATE)
    delivery = lambdas(app)
    answers: Counter[str] = Counter()
    taken: set[str] = set()
    for name, make, overwrite in UPLOADS:
        data = make()
        target = name.rsplit(".", 1)[0] + ".mp3"
        for _ in range(5):
            status, body = api_upload(name, data, overwrite=overwrite)
            answers[str(status)] += 1
            delivery.run()
            assert half_done(app) == [], (name, status, body, app.faults.figures())
            if status != 503:
                break
        expected = {409} if target in taken and not overwrite else {201, 202}
        assert status in expected, (name, status, body)
        if status in (201, 202):
            taken.add(target)
    figures = add_figures({}, app.faults)
    figures["outcomes"] = {
        **{f"answered {k}": n for k, n in answers.items()},
        "events to a failure queue": len(delivery.failed),
    }
    record_property("faults", figures)
    assert app.faults.total() > 0 and delivery.failed == []


@pytest.mark.parametrize(
    ("failing", "name", "make", "left"),
    [
        # The catalogue fails after the object is stored: a new name's object is removed.
        (("UpdateItem",), "new.mp3", lambda: song(0.4, "New"), set()),
        # ... and when removing it fails too, its event catalogues it.
        (("UpdateItem", "DeleteObject"), "new.mp3", lambda: song(0.4, "New"), {"new.mp3"}),
        # A replacement stays (the old bytes are gone), and its event catalogues it.
        (("UpdateItem",), "old.mp3", lambda: song(0.7, "Newer"), {"old.mp3"}),
        # An upload to convert that cannot be stored: the name is as it was.
        (("PutObject",), "memo.m4a", lambda: audio_source("m4a"), set()),
        (("PutObject",), "old.m4a", lambda: audio_source("m4a"), {"old.mp3"}),
    ],
)
def test_an_upload_failing_beyond_the_retries_is_rolled_back_as_documented(
    moto_server_env, lambdas, failing, name, make, left
):
    """``Versions.store``'s rollback rule, and ``Conversions.accept``'s: a 503, and once
    the events of what was stored are handled, nothing half-done."""
    app = faulted_app(0.0)
    delivery = lambdas(app)
    old = song(0.5, "Old")
    assert api_upload("old.mp3", old, overwrite=False)[0] == 201
    delivery.run()
    before = {r.filename: r for r in every_record(app)}
    overwrite = name.startswith("old")
    outage(app, *failing)
    status, body = api_upload(name, make(), overwrite=overwrite)
    assert status == 503 and body["code"] == "service_unavailable", body
    recovered(app)
    delivery.run()
    assert half_done(app) == []
    after = {r.filename: r for r in every_record(app)}
    assert set(after) == {"old.mp3"} | left
    if "old.mp3" not in left:
        assert after["old.mp3"] == before["old.mp3"]
    assert set(stored_objects(app)) == set(after)


def test_a_replacement_to_convert_whose_catalogue_fails_keeps_the_file_it_replaces(
    moto_server_env, lambdas
):
    """The catalogue fails for good while a replacement that needs converting is accepted:
    its upload cannot be stored, nor the name put back as it was (the record that waits
    for the upload was written first). The conversion sweep later gives the waiting record
    up; the file it was to replace is still stored, and is catalogued again as it was: the
    request said 503, and the name plays what it played before."""
    app = faulted_app(0.0)
    delivery = lambdas(app)
    assert api_upload("memo.mp3", song(0.5, "Memo"), overwrite=False)[0] == 201
    delivery.run()
    earlier = app.root.catalog.get_audio("memo.mp3")
    assert earlier is not None
    # The record waiting for the upload is written; the upload, and undoing that, fail.
    outage(app, "PutObject")
    written = {"n": 0}

    def catalogue_fails_after_the_first_write(write: Write) -> None:
        if write.service == "dynamodb":
            written["n"] += 1
            outage(app, "PutObject", "UpdateItem", "DeleteItem")

    app.faults.on_write.append(catalogue_fails_after_the_first_write)
    status, _ = api_upload("memo.m4a", audio_source("m4a"), overwrite=True)
    assert status == 503 and written["n"] == 1
    recovered(app)
    app.clock.ahead = STALE_SECONDS + 3600
    delivery.schedule("ConvertAudioFunction")
    delivery.run()
    assert half_done(app) == []
    record = app.root.catalog.get_audio("memo.mp3")
    assert record is not None and record.status is AudioStatus.READY
    assert (record.etag, record.audio_start, record.audio_end, record.title) == (
        earlier.etag,
        earlier.audio_start,
        earlier.audio_end,
        "Memo",
    )
    assert record.credential_version == earlier.credential_version, "its device URL still plays"
    assert record.source_key is None and record.source_format is None
    assert set(stored_objects(app)) == {"memo.mp3"}
