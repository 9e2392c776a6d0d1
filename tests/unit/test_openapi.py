"""The OpenAPI document made from the code: it is current (and so is docs/api.md), it is
valid OpenAPI 3.1, it describes exactly the routes template.yaml serves, every error any
route answers has the contract's body, and the server hands it out openly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from local_server import openapi as generator
from local_server.api_reference import render
from local_server.app import create_app
from local_server.template import read_template
from smart_stream.http.openapi import ERROR_REF
from tests.conftest import ROOT, fresh_services

OPEN = {
    ("get", "/"),
    ("get", "/assets/{file}"),
    ("get", "/api/health"),
    ("get", "/api/openapi.json"),
    ("get", "/api/yoto/callback"),
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return generator.build()


def operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_the_committed_document_and_reference_are_the_codes(spec):
    assert json.loads(generator.SPEC.read_text()) == spec, "run make openapi"
    assert generator.REFERENCE.read_text() == render(spec), "run make openapi"
    assert generator.main(["--check"]) == 0


def test_it_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_it_describes_exactly_the_routes_the_template_serves(spec):
    template = read_template(ROOT / "template.yaml")
    served = {(r.method.lower(), r.path) for r in template.http_routes}
    for device in template.device_routes:
        served |= {(method.lower(), device.path) for method in device.methods}
    described = {(method, path) for method, path, _ in operations(spec)}
    assert described == served


def test_who_may_call_what(spec):
    for method, path, operation in operations(spec):
        if (method, path) in OPEN:
            assert operation["security"] == [], (method, path)
            assert "401" not in operation["responses"], (method, path)
        elif path in ("/api/audio/{filename}", "/api/streams/{name}/stream.mp3") and method in (
            "get",
            "head",
        ):
            # A device URL's own credential, or the token.
            assert operation["security"] == [{}, {"bearer": []}]
            assert "403" in operation["responses"]
        else:
            assert "security" not in operation, (method, path)  # the document's: bearer
            assert "401" in operation["responses"], (method, path)
    assert spec["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_error_answer_is_the_contracts_error_body(spec):
    for method, path, operation in operations(spec):
        assert operation.get("summary"), (method, path)
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message"}


def test_the_bodies_are_described(spec):
    paths = spec["paths"]
    upload = paths["/api/audio/upload"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    for path in ("/api/audio/upload-url", "/api/streams/{name}/queue", "/api/audio/generate-tts"):
        body = paths[path]["post"]["requestBody"]
        assert body["required"] is True
        assert "$ref" in body["content"]["application/json"]["schema"], path
    listed = paths["/api/audio/list"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {"limit", "next_token", "status"}
    ranged = paths["/api/audio/{filename}"]["get"]
    assert {p["name"] for p in ranged["parameters"]} >= {
        "sig",
        "Range",
        "If-Range",
        "If-None-Match",
    }
    assert set(ranged["responses"]) == {"200", "206", "304", "400", "403", "404", "416", "503"}


def test_the_server_hands_it_out_openly(local_env, local_template):
    with TestClient(create_app(local_template, fresh_services())) as client:
        answer = client.get("/api/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == json.loads(generator.SPEC.read_text())
