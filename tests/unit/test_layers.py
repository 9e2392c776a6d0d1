"""The functions are glue: each imports the composition root, the HTTP glue, the device
apps, the domain's values and telemetry (its entry point and logger), never a service or an
adapter (import-linter checks the shared layer itself, in ``make lint``; the functions are
files, not a package, so this test does)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

ALLOWED = ("bootstrap", "http", "device", "domain", "ports", "telemetry")
FUNCTIONS = sorted(ROOT.glob("functions/*/app.py"))


def smart_stream_imports(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.split(".")[0] == "smart_stream"]


def test_every_function_is_found():
    assert len(FUNCTIONS) >= 19


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.parent.name)
def test_a_function_imports_only_the_root_http_device_and_domain(path):
    imports = smart_stream_imports(path)
    assert "smart_stream.bootstrap" in imports
    wrong = [
        name for name in imports if name == "smart_stream" or name.split(".")[1] not in ALLOWED
    ]
    assert wrong == [], f"{path.parent.name} imports {wrong}"
