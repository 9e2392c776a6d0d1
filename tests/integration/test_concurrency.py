"""Requests at once to one function of the local server: each is answered as if it were
alone, as in Lambda, where an execution environment runs one invocation at a time (a
browser loads the page's files in parallel; a handler keeps the request it is answering in
its module's resolver)."""

from __future__ import annotations

import threading
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


def test_each_invocation_at_once_gets_an_environment_of_its_own():
    """Two invocations of one function at once run in two environments (two imports of its
    module, as two Lambda instances), and an environment is used again once it is free."""
    template = read_template(ROOT / "template.yaml")
    page = next(r.function for r in template.http_routes if r.function.logical_id == "PageFunction")
    pool = lambda_bridge.Environments(page)
    inside = threading.Event()
    release = threading.Event()
    modules: list[object] = []

    def first() -> None:
        module = pool._take()
        modules.append(module)
        inside.set()
        release.wait(30)
        with pool._lock:
            pool._idle.append(module)

    worker = threading.Thread(target=first)
    worker.start()
    assert inside.wait(30)
    second = pool._take()  # the first is busy: a new environment
    assert second is not modules[0] and pool.made == 2
    assert second.router is not modules[0].router  # type: ignore[attr-defined]
    release.set()
    worker.join(30)
    with pool._lock:
        pool._idle.append(second)
    assert pool._take() in (modules[0], second) and pool.made == 2  # reused, none made
