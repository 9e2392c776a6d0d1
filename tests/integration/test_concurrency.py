"""Requests at once to the local server's management functions: each is answered as if it
were alone, as in Lambda, where a process runs one invocation at a time (a browser loads
the page's files in parallel; Powertools' resolver keeps the request it is answering in
class attributes that every resolver of a process shares)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.integration

ASSETS = {
    "/assets/style.css": "text/css",
    "/assets/app.js": "text/javascript",
    "/assets/api.js": "text/javascript",
    "/assets/icon.svg": "image/svg+xml",
    "/": "text/html",
    "/api/health": "application/json",  # another function at the same time
}


@pytest.mark.parametrize("live_server", ["local"], indirect=True)
def test_the_pages_files_loaded_at_once_each_get_their_own_answer(live_server):
    expected = {path: httpx.get(live_server.base_url + path).content for path in ASSETS}
    paths = list(ASSETS) * 50

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
