"""Previews from another origin: with PUBLIC_BASE_URL on a second port (as deployed, where
device URLs are function URLs), a file and a queue's stream still play in the page, whose
policy names that origin for media and nothing more."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.audio import make_mp3
from tests.browser.conftest import PageServer, library_row, playing, posts, requests_made, wav_bytes

DEVICE_ON_OTHER_PORT = True


def test_the_page_allows_media_from_the_device_origin_only(server: PageServer):
    policy = httpx.get(server.base_url + "/").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert server.device_url is not None
    assert server.device_url in directives["media-src"].split()
    assert server.device_url not in directives["connect-src"].split()
    assert directives["default-src"] == "'self'"


def test_a_file_and_a_stream_play_from_the_device_origin(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("far-away.mp3", make_mp3(4.0))
    server.save_queue("far_queue", ["far-away.mp3"])
    page.reload()
    media = requests_made(page, lambda request: request.resource_type == "media")

    row = library_row(page, "far-away.mp3")
    row.get_by_role("button", name="Listen").click()
    playing(page, "#library-list audio", 1.0)
    queue = page.locator("#queue-list > li").filter(has_text="far_queue")
    queue.get_by_role("button", name="Listen").click()
    playing(page, "#queue-list audio", 1.0)

    assert server.device_url is not None
    assert media and all(url.startswith(server.device_url + "/") for url in media), media
    expect(row.locator("audio")).to_have_attribute(
        "src", server.metadata("far-away.mp3").json()["url"]
    )


def test_a_big_upload_still_goes_to_the_page_origin(signed_in: Page, server: PageServer):
    page = signed_in
    sent = posts(page)
    page.get_by_label("Upload audio").set_input_files(
        {"name": "far-big.wav", "mimeType": "audio/wav", "buffer": wav_bytes(25)}
    )

    expect(library_row(page, "far-big.mp3").locator(".badge")).to_have_text("ready")
    assert all(url.startswith(server.base_url + "/") for url in sent), sent
