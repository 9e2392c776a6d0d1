"""When things go wrong, the page says so in words: the server out of reach, the microphone
refused; and a file still converting in the list is followed until it is ready."""

from __future__ import annotations

import json

from playwright.sync_api import Page, Route, expect

from tests.audio import make_mp3
from tests.browser.conftest import PageServer, library_row


def test_a_server_out_of_reach_is_said_plainly(page: Page, server: PageServer):
    page.route("**/api/streams", lambda route: route.abort("connectionrefused"))

    page.goto(server.link())

    expect(page.locator("#queues-status")).to_have_text(
        "Cannot reach the server (network error). Is it running? Try again."
    )
    # The rest of the page works on
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_refused_microphone_is_explained(page: Page, server: PageServer):
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));"
    )
    page.goto(server.link())

    page.get_by_role("button", name="Record", exact=True).click()

    expect(page.locator("#record-status")).to_contain_text("The microphone was not allowed")
    expect(page.get_by_role("button", name="Record", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    expect(page.get_by_label("Recording name")).to_be_hidden()


def test_a_file_listed_as_converting_is_followed_until_ready(page: Page, server: PageServer):
    server.upload("half-done.mp3", make_mp3(1.0))

    # The list answers as it would mid-conversion; its metadata then answers as it is now
    def mid_conversion(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        for file in body["files"]:
            if file["filename"] == "half-done.mp3":
                file.update(status="converting", progress=0.3, duration=None)
        route.fulfill(response=answer, body=json.dumps(body))

    page.route("**/api/audio/list?*", mid_conversion)
    with page.expect_request("**/api/audio/half-done.mp3/metadata"):
        page.goto(server.link())
        row = library_row(page, "half-done.mp3")
        expect(row.locator(".badge")).to_have_text("converting 30%")
        expect(row.locator("progress")).to_have_attribute("value", "0.3")
        expect(row).to_contain_text("—")

    expect(row.locator(".badge")).to_have_text("ready")
    expect(row.locator("progress")).to_be_hidden()
    expect(row).to_contain_text("0:01")


def test_yoto_sign_in_without_a_client_id_says_what_to_set(page: Page, server: PageServer):
    page.goto(server.link())
    expect(page.locator("#yoto-state")).to_have_text("Not connected to a Yoto account yet.")
    expect(page.locator("#yoto-redirect")).to_have_text(f"{server.base_url}/api/yoto/callback")

    page.get_by_role("button", name="Sign in with Yoto").click()

    expect(page.locator("#yoto-status")).to_contain_text("YOTO_CLIENT_ID")
    expect(page.get_by_role("button", name="Sign in with Yoto")).to_be_enabled()
    expect(page).to_have_url(f"{server.base_url}/")
