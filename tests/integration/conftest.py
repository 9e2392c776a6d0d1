"""Fixtures of the tests over real HTTP against the local server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.helpers import upload


@pytest.fixture
def client(live_server, request) -> Iterator[httpx.Client]:
    """A management client of the live server, with its token. A module that makes slow
    requests (speech, long queues) names its timeout in ``CLIENT_TIMEOUT``."""
    timeout = getattr(request.module, "CLIENT_TIMEOUT", httpx.Timeout(5.0))
    with httpx.Client(
        base_url=live_server.base_url, headers=live_server.auth(), timeout=timeout
    ) as c:
        yield c


@pytest.fixture
def story(client, mp3_bytes) -> dict:
    """One uploaded file, as the API answered its upload."""
    created = upload(client, "story.mp3", mp3_bytes)
    assert created.status_code == 201, created.text
    return created.json()
