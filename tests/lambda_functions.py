"""The functions' handlers as Lambda calls them: each ``functions/<name>/app.py`` loaded from
its file (no sys.path), a Lambda context, and copies of the sample events in ``events/``.
Handlers ask ``bootstrap.services()`` on every call, so one load serves every test."""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tests.conftest import ROOT, TOKEN

EVENTS = ROOT / "events"
_modules: dict[str, ModuleType] = {}


def function_module(function_dir: str) -> ModuleType:
    """The function's app.py, loaded once, under a name of its own."""
    if function_dir not in _modules:
        path = ROOT / "functions" / function_dir / "app.py"
        spec = importlib.util.spec_from_file_location(f"fn_{function_dir}_{uuid.uuid4().hex}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[function_dir] = module
    return _modules[function_dir]


def handler(function_dir: str) -> Any:
    """The function's lambda_handler."""
    return function_module(function_dir).lambda_handler


@dataclass
class FakeContext:
    function_name: str = "smart-stream-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:smart-stream-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


def event(name: str, *, token: str | None = TOKEN, **changes: Any) -> dict[str, Any]:
    """A copy of a sample event, with the bearer token set (or removed) and fields changed."""
    data = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    data["headers"].pop("authorization", None)
    if token is not None:
        data["headers"]["authorization"] = f"Bearer {token}"
    data.update(changes)
    return data


def with_path(data: dict[str, Any], raw_path: str, **path_parameters: str) -> dict[str, Any]:
    data["rawPath"] = raw_path
    data["requestContext"]["http"]["path"] = raw_path
    data["pathParameters"] = path_parameters
    return data
