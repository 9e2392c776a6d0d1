"""The parents' page as the server sends it: every file the page names is served with its
type, the security headers (a Content-Security-Policy naming the origins previews and large
uploads really use), no file outside the page's folder, and the whole page under 200 KB.
How it behaves in a browser is tests/browser's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from local_server.app import create_app
from smart_stream.bootstrap import install
from smart_stream.http.page import page_policy
from tests.conftest import ROOT, TOKEN, fresh_services

STATIC = ROOT / "functions" / "page" / "static"
BASE = "http://127.0.0.1:8080"


@pytest.fixture
def page(local_env, local_template) -> Iterator[TestClient]:
    with TestClient(create_app(local_template, fresh_services()), base_url=BASE) as client:
        yield client


def policy_of(answer) -> dict[str, list[str]]:
    directives = [d.strip().split() for d in answer.headers["content-security-policy"].split(";")]
    return {d[0]: d[1:] for d in directives if d}


class _Names(HTMLParser):
    """What the page's HTML names: the files it loads, inline scripts and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attribute in ("src", "href"):
            value = named.get(attribute) or ""
            if value.startswith("/"):
                self.files.append(value)
        if tag == "script" and "src" not in named:
            self._in_script = True
        for attribute in named:
            if attribute.startswith("on") or attribute == "style":
                self.inline.append(f"<{tag} {attribute}>")
        if tag == "style":
            self.inline.append("<style>")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> body")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def page_files() -> list[Path]:
    return sorted(path for path in STATIC.iterdir() if path.is_file())


def test_the_page_and_every_file_it_names_are_served_with_their_types(page):
    index = page.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    names = _Names()
    names.feed(index.text)
    assert names.inline == []  # the policy forbids inline script and style
    assert "/assets/app.js" in names.files and "/assets/style.css" in names.files
    # The modules the scripts import, followed from app.js.
    modules = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name not in modules:
            modules.add(name)
            source = (STATIC / name).read_text()
            todo += re.findall(r"""(?:from|import)\s*['"]\./([\w.-]+\.js)['"]""", source)
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for path in {*names.files, *(f"/assets/{m}" for m in modules)}:
        answer = page.get(path)
        assert answer.status_code == 200, path
        expected = types[Path(path).suffix]
        assert answer.headers["content-type"].split(";")[0] == expected, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    # Nothing in the folder is left unused, and nothing is used that is not there.
    served = {Path(p).name for p in names.files} | modules | {"index.html"}
    assert served == {p.name for p in page_files()}


def test_the_page_stays_small():
    total = sum(path.stat().st_size for path in page_files())
    assert total < 200 * 1024, f"the page is {total} bytes"


def test_the_security_headers(page):
    answer = page.get("/")
    policy = policy_of(answer)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    # Locally every preview and upload is on the page's own origin.
    assert policy["media-src"] == ["'self'", "blob:"]
    assert policy["connect-src"] == ["'self'"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    for path in ("/assets/app.js", "/assets/style.css"):
        assert (
            page.get(path).headers["content-security-policy"]
            == answer.headers["content-security-policy"]
        )


def test_previews_on_another_origin_are_allowed_by_name(monkeypatch, local_env, local_template):
    """PUBLIC_BASE_URL on another host or port: the policy names exactly that origin."""
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:8081/")
    install(None)
    with TestClient(create_app(local_template, fresh_services()), base_url=BASE) as client:
        policy = policy_of(client.get("/"))
    assert policy["media-src"] == ["'self'", "http://127.0.0.1:8081", "blob:"]
    assert policy["connect-src"] == ["'self'"]


def test_deployed_the_policy_names_the_function_urls_and_the_bucket(monkeypatch, aws_env):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("AUDIO_STREAM_BASE_URL", "https://abc.lambda-url.eu-west-2.on.aws/")
    monkeypatch.setenv("QUEUE_STREAM_BASE_URL", "https://def.lambda-url.eu-west-2.on.aws/")
    install(None)
    root = fresh_services()
    header = page_policy(root.urls, root.storage, "https://api.example.org")
    policy = {d.split()[0]: d.split()[1:] for d in header.split("; ")}
    assert policy["media-src"] == [
        "'self'",
        "https://abc.lambda-url.eu-west-2.on.aws",
        "https://def.lambda-url.eu-west-2.on.aws",
        "blob:",
    ]
    # The bucket's own regional address: where the browser's presigned POST goes.
    bucket = f"https://{aws_env.bucket}.s3.eu-west-2.amazonaws.com"
    assert policy["connect-src"] == ["'self'", bucket]
    form = root.storage.presigned_post(
        "incoming/0123456789abcdef0123456789abcdef/a.m4a",
        max_size=10,
        expires_in=60,
        base_url=BASE,
    )
    assert form.url.rstrip("/") == bucket


@pytest.mark.parametrize(
    "path",
    [
        "/assets/app.py",
        "/assets/..%2Fapp.py",
        "/assets/.hidden.js",
        "/assets/nothing.js",
        "/assets/index",
        "/index.html",
    ],
)
def test_nothing_but_the_pages_files_is_served(page, path):
    answer = page.get(path)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_an_unchanged_file_is_a_304(page):
    first = page.get("/assets/app.js")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = page.get("/assets/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["content-security-policy"]
    assert page.get("/assets/app.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_sign_in_link_is_printed(local_env, monkeypatch, capsys):
    """``make dev`` prints the link whose fragment signs the browser in (the fragment never
    reaches the server)."""
    import local_server.__main__ as main

    served = []
    monkeypatch.setattr(main.uvicorn.Server, "run", lambda self: served.append(self))
    monkeypatch.setenv("PORT", "8123")
    assert main.main() == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:8123/#token={TOKEN}\n" in out  # API_TOKEN, set for every test
    assert served


def test_deployed_the_page_function_reads_no_secret(aws_env, monkeypatch):
    """The page is open: its function never needs the token or the signing secret (the
    template grants it neither), so a cold start reads nothing it may not."""
    from tests.lambda_functions import FakeContext, handler
    from tests.unit.test_handlers import api_event

    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there"
    monkeypatch.setenv("SIGNING_SECRET_ARN", missing)
    monkeypatch.setenv("API_TOKEN_SECRET_ARN", missing)
    monkeypatch.delenv("API_TOKEN")
    monkeypatch.setenv("AUDIO_STREAM_BASE_URL", "https://abc.lambda-url.us-east-1.on.aws/")
    install(None)
    page_handler = handler("page")
    index = page_handler(api_event("GET", "/"), FakeContext())
    assert index["statusCode"] == 200
    assert index["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "https://abc.lambda-url.us-east-1.on.aws" in index["headers"]["Content-Security-Policy"]
    script = page_handler(api_event("GET", "/assets/app.js", file="app.js"), FakeContext())
    assert script["statusCode"] == 200 and "import" in script["body"]


def test_the_bucket_lets_the_page_post_uploads():
    """Deployed, large uploads are a presigned POST from the page (the management API's
    origin) straight to the bucket: its CORS must allow exactly that."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    rules = template["Resources"]["AudioBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    (posting,) = [rule for rule in rules if "POST" in rule["AllowedMethods"]]
    (origin,) = posting["AllowedOrigins"]
    assert origin == {
        "Fn::Sub": "https://${ManagementApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    outputs = template["Outputs"]
    assert outputs["ApiUrl"]["Value"] == origin  # the page's own address
