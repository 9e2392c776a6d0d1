"""What the local server needs from ``template.yaml``: routes, handlers, and the functions
subscribed to the bucket's events (EventBridge rules), to the catalogue's stream and to a
schedule.

Reading the template (rather than a route list of its own) keeps the local server from
drifting away from what ``sam deploy`` builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_server.patterns import check as check_pattern

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str  # "module.attribute" for Lambda handlers
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRoute:
    """A route of the HTTP API, served by calling the function's Lambda handler."""

    method: str
    path: str  # API Gateway syntax: /api/audio/{filename}
    function: FunctionSpec


@dataclass(frozen=True)
class DeviceRoute:
    """A function-URL route, served by mounting the function's ASGI app."""

    methods: tuple[str, ...]
    path: str
    function: FunctionSpec
    asgi_app: str  # "module:attribute"


#: What the template's bucket is called locally, in the events the local server sends.
LOCAL_BUCKET = "local-audio"


@dataclass(frozen=True)
class EventRule:
    """A function's ``EventBridgeRule`` event: its pattern, where the template names the
    bucket (``!Ref`` or its ``BucketName``) naming ``LOCAL_BUCKET`` instead."""

    name: str  # the event's name in the template
    function: FunctionSpec
    pattern: dict[str, Any]


@dataclass(frozen=True)
class StreamSubscription:
    """A function on the catalogue table's DynamoDB stream, with its event filter patterns
    (none: every record)."""

    function: FunctionSpec
    patterns: tuple[dict[str, Any], ...]


@dataclass
class LocalTemplate:
    http_routes: list[HttpRoute]
    device_routes: list[DeviceRoute]
    event_rules: list[EventRule]
    stream_subscriptions: list[StreamSubscription] = field(default_factory=list)
    #: Functions with a ``Schedule`` event: the local server runs each once at start-up.
    schedules: list[FunctionSpec] = field(default_factory=list)


def _load(path: Path) -> dict[str, Any]:
    # The template uses CloudFormation short tags (!Ref, !Sub ...): plain yaml.safe_load
    # rejects them; SAM's own parser reads them.
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(path.read_text())
    return parsed


def read_template(path: Path) -> LocalTemplate:
    root = path.parent
    template = _load(path)
    resources: dict[str, Any] = template.get("Resources", {})
    buckets = _bucket_names(resources)
    http_routes: list[HttpRoute] = []
    device_routes: list[DeviceRoute] = []
    rules: list[EventRule] = []
    streams: list[StreamSubscription] = []
    schedules: list[FunctionSpec] = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=root / props["CodeUri"],
            handler=props.get("Handler", ""),
        )
        metadata = resource.get("Metadata", {})
        for local_route in metadata.get("LocalRoutes", []):
            device_routes.append(
                DeviceRoute(
                    methods=tuple(m.upper() for m in local_route["Methods"]),
                    path=local_route["Path"],
                    function=spec,
                    asgi_app=metadata.get("LocalAsgiApp", "app:app"),
                )
            )
        for event_name, event in (props.get("Events") or {}).items():
            kind, event_props = event.get("Type"), event.get("Properties", {})
            if kind == "HttpApi":
                method = str(event_props.get("Method", "ANY")).upper()
                methods = sorted(HTTP_METHODS) if method == "ANY" else [method]
                for one in methods:
                    http_routes.append(HttpRoute(one, event_props["Path"], spec))
            elif kind == "EventBridgeRule":
                pattern = _localised(event_props["Pattern"], buckets)
                check_pattern(pattern)
                rules.append(EventRule(event_name, spec, pattern))
            elif kind == "DynamoDB":
                filters = (event_props.get("FilterCriteria") or {}).get("Filters", [])
                patterns = tuple(json.loads(f["Pattern"]) for f in filters)
                streams.append(StreamSubscription(spec, patterns))
            elif kind == "Schedule":
                schedules.append(spec)
    return LocalTemplate(http_routes, device_routes, rules, streams, schedules)


def _bucket_names(resources: dict[str, Any]) -> list[Any]:
    """How the template may name its buckets in a pattern: ``!Ref`` and ``BucketName``."""
    names: list[Any] = []
    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::S3::Bucket":
            names.append({"Ref": logical_id})
            if "BucketName" in resource.get("Properties", {}):
                names.append(resource["Properties"]["BucketName"])
    return names


def _localised(value: Any, buckets: list[Any]) -> Any:
    if value in buckets:
        return LOCAL_BUCKET
    if isinstance(value, dict):
        return {key: _localised(sub, buckets) for key, sub in value.items()}
    if isinstance(value, list):
        return [_localised(item, buckets) for item in value]
    return value
