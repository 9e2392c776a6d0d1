"""The walk-through's first steps over real HTTP, on both backends."""

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_upload_then_list_and_stream(live_server, mp3_bytes):
    with httpx.Client(base_url=live_server.base_url, headers=live_server.auth()) as client:
        created = client.post("/api/audio/upload", files={"file": ("story.mp3", mp3_bytes)})
        assert created.status_code == 201, created.text
        listed = client.get("/api/audio/list").json()["files"]
        assert [f["filename"] for f in listed] == ["story.mp3"]
        url = listed[0]["url"]
    played = httpx.get(url, headers={"Range": "bytes=-1024"})
    assert played.status_code == 206
    assert played.content == mp3_bytes[-1024:]
