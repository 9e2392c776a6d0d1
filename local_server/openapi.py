"""``python -m local_server.openapi``: write the API's OpenAPI document and its reference
page from the code (``make openapi``); ``--check`` says whether they are up to date.

The document is assembled from the ``router`` of every function that ``template.yaml``
routes HTTP API requests to, so a route cannot be served without being described. Deployed,
each function is packaged alone, so the document is made here and shipped with the
function that serves it (``functions/openapi/openapi.json``); a test makes it again and
compares.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from local_server import lambda_bridge
from local_server.api_reference import render
from local_server.template import read_template
from smart_stream.http.openapi import as_json, document
from smart_stream.http.resolver import Router

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "functions" / "openapi" / "openapi.json"
REFERENCE = ROOT / "docs" / "api.md"


def routers(template: Path = ROOT / "template.yaml") -> list[Router]:
    """Every management function's router, in the template's order, each once."""
    found: dict[str, Router] = {}
    for route in read_template(template).http_routes:
        module_name = route.function.handler.rpartition(".")[0]
        module = lambda_bridge.load_module(route.function, module_name)
        router = getattr(module, "router", None)
        if not isinstance(router, Router):
            raise TypeError(f"{route.function.logical_id} declares no router")
        found.setdefault(route.function.logical_id, router)
    return list(found.values())


def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def build() -> dict[str, Any]:
    return document(routers(), version=version())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    spec = build()
    wanted = {SPEC: as_json(spec), REFERENCE: render(spec)}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run make openapi", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
