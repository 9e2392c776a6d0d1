"""Requests at once to one function of the local server: each is answered as if it were
alone, as in Lambda, where an execution environment runs one invocation at a time (a
browser loads the page's files in parallel; a handler keeps the request it is answering in
its module's resolver)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from local_server import lambda_bridge
from local_server.template import read_template
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

ASSETS = {
    "/assets/style.css": "text/css",
    "/assets/app.js": "text/javascript",
    "/assets/api.js": "text/javascript",
    "/assets/icon.svg": "image/svg+xml",
    "/": "text/html",
}


@pytest.mark.parametrize("live_server", ["local"], indirect=True)
def test_the_pages_files_loaded_at_once_each_get_their_own_answer(live_server):
    expected = {path: httpx.get(live_server.base_url + path).content for path in ASSETS}
    paths = list(ASSETS) * 30

    def fetch(path: str) -> tuple[str, int, str, bytes]:
        answer = httpx.get(live_server.base_url + path, timeout=30)
        return path, answer.status_code, answer.headers["content-type"], answer.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(fetch, paths))
    wrong = [
        (path, status, content_type)
        for path, status, content_type, body in answers
        if status != 200 or not content_type.startswith(ASSETS[path]) or body != expected[path]
    ]
    assert wrong == []


def test_a_function_runs_one_invocation_at_a_time():
    """The handler the local server calls holds its function's lock while it runs, so a
    second request to the same function waits (another function's does not)."""
    template = read_template(ROOT / "template.yaml")
    page = next(r.function for r in template.http_routes if r.function.logical_id == "PageFunction")
    health = next(
        r.function for r in template.http_routes if r.function.logical_id == "HealthFunction"
    )
    seen: list[tuple[bool, bool]] = []
    module = lambda_bridge.load_module(page, "app")
    real = module.lambda_handler

    def looking(event, context):
        seen.append(
            (
                lambda_bridge.function_lock(page).locked(),
                lambda_bridge.function_lock(health).locked(),
            )
        )
        return {"statusCode": 204}

    module.lambda_handler = looking
    try:
        handler = lambda_bridge.load_handler(page)
        assert handler({}, None) == {"statusCode": 204}
    finally:
        module.lambda_handler = real
    assert seen == [(True, False)]
    assert not lambda_bridge.function_lock(page).locked()
