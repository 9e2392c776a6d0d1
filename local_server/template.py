"""What the local server needs from ``template.yaml``: routes, handlers, and the functions
subscribed to the bucket's events, to the catalogue's stream and to a schedule.

Reading the template (rather than a route list of its own) keeps the local server from
drifting away from what ``sam deploy`` builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class S3Subscription:
    function: FunctionSpec
    events: tuple[str, ...]  # "s3:ObjectCreated:*" ...


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
    s3_subscriptions: list[S3Subscription]
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
    http_routes: list[HttpRoute] = []
    device_routes: list[DeviceRoute] = []
    subscriptions: list[S3Subscription] = []
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
        for event in (props.get("Events") or {}).values():
            kind, event_props = event.get("Type"), event.get("Properties", {})
            if kind == "HttpApi":
                method = str(event_props.get("Method", "ANY")).upper()
                methods = sorted(HTTP_METHODS) if method == "ANY" else [method]
                for one in methods:
                    http_routes.append(HttpRoute(one, event_props["Path"], spec))
            elif kind == "S3":
                names = event_props.get("Events", [])
                names = [names] if isinstance(names, str) else names
                subscriptions.append(S3Subscription(spec, tuple(names)))
            elif kind == "DynamoDB":
                filters = (event_props.get("FilterCriteria") or {}).get("Filters", [])
                patterns = tuple(json.loads(f["Pattern"]) for f in filters)
                streams.append(StreamSubscription(spec, patterns))
            elif kind == "Schedule":
                schedules.append(spec)
    return LocalTemplate(http_routes, device_routes, subscriptions, streams, schedules)
