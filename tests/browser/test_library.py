"""The library: rows that say what each file is, a preview that really plays, search,
paging, a new URL on demand, and deletes (a file in a queue is answered 409 first)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.audio import make_mp3
from tests.browser.conftest import PageServer, library_row, playing

XSS = "<img src=x onerror=alert(1)>.mp3"


def test_a_file_plays_in_its_row(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("eight-seconds.mp3", make_mp3(8.0, title="Eight", artist="Tone"))
    page.reload()
    row = library_row(page, "eight-seconds.mp3")
    expect(row).to_contain_text("Eight — Tone")
    expect(row).to_contain_text("0:08")

    row.get_by_role("button", name="Listen").click()

    expect(row.locator("audio")).to_be_visible()
    playing(page, "#library-list audio", 1.0)
    # Seeking works (the device route answers ranges)
    page.evaluate("document.querySelector('#library-list audio').currentTime = 6")
    playing(page, "#library-list audio", 6.2)
    # Listen again hides and pauses it
    row.get_by_role("button", name="Listen").click()
    expect(row.locator("audio")).to_be_hidden()
    assert page.evaluate("document.querySelector('#library-list audio').paused")


def test_revoke_url_gives_the_row_a_new_url(signed_in: Page, server: PageServer):
    page = signed_in
    old_url = server.upload("revoked.mp3", make_mp3(1.0))["url"]
    page.reload()
    row = library_row(page, "revoked.mp3")
    row.get_by_role("button", name="Listen").click()
    expect(row.locator("audio")).to_have_attribute("src", old_url)

    # From the keyboard: the button keeps the focus through its request
    row.get_by_role("button", name="Revoke URL").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_text("“revoked.mp3” has a new URL")).to_be_visible()
    expect(row.get_by_role("button", name="Revoke URL")).to_be_focused()
    new_url = server.metadata("revoked.mp3").json()["url"]
    assert new_url != old_url
    expect(row.locator("audio")).to_have_attribute("src", new_url)
    assert httpx.get(old_url).status_code == 403
    assert httpx.get(new_url).status_code == 200


def test_search_narrows_the_list_and_clearing_it_brings_the_list_back(
    signed_in: Page, server: PageServer
):
    page = signed_in
    server.upload("dragon-tale.mp3", make_mp3(1.0, title="The sleepy dragon"))
    server.upload("pirate-song.mp3", make_mp3(1.0))
    page.reload()
    expect(library_row(page, "pirate-song.mp3")).to_be_visible()

    page.get_by_label("Search").fill("sleepy")

    expect(library_row(page, "dragon-tale.mp3")).to_be_visible()
    expect(library_row(page, "pirate-song.mp3")).to_have_count(0)
    expect(page.locator("#library-count")).to_have_text("1 found")

    page.get_by_label("Search").fill("")
    expect(library_row(page, "pirate-song.mp3")).to_be_visible()
    expect(library_row(page, "dragon-tale.mp3")).to_be_visible()


def test_delete_asks_first(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("unwanted.mp3", make_mp3(0.5))
    page.reload()
    row = library_row(page, "unwanted.mp3")

    # Cancel leaves it
    row.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete “unwanted.mp3”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(row).to_be_visible()

    # Confirm deletes it, and the keyboard's focus moves on to the next row
    row.get_by_role("button", name="Delete", exact=True).click()
    dialog.get_by_role("button", name="Confirm").click()
    expect(row).to_have_count(0)
    expect(page.get_by_text("Deleted “unwanted.mp3”.")).to_be_visible()
    assert page.evaluate(
        "document.activeElement.closest('#library-list > li') !== null"
        " || document.activeElement.id === 'search'"
    )
    assert server.metadata("unwanted.mp3").status_code == 404


def test_a_file_in_a_queue_is_deleted_only_when_asked_again(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("shared-song.mp3", make_mp3(0.5))
    server.upload("other-song.mp3", make_mp3(0.5))
    server.save_queue("bedtime", ["shared-song.mp3", "other-song.mp3"])
    page.reload()
    row = library_row(page, "shared-song.mp3")

    row.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Confirm").click()

    # The API's 409 names the queue; the page offers Delete anyway
    expect(dialog).to_contain_text("bedtime")
    expect(dialog).to_contain_text("shared-song.mp3")
    dialog.get_by_role("button", name="Delete anyway").click()
    expect(row).to_have_count(0)
    assert server.metadata("shared-song.mp3").status_code == 404
    assert server.queue("bedtime")["files"] == ["other-song.mp3"]
    # The queue's row says so too
    queue_row = page.locator("#queue-list > li").filter(has_text="bedtime")
    expect(queue_row).to_contain_text("1 file ·")


def test_a_filename_full_of_markup_is_shown_as_text(signed_in: Page, server: PageServer):
    page = signed_in

    page.get_by_label("Upload audio").set_input_files(
        {"name": XSS, "mimeType": "audio/mpeg", "buffer": make_mp3(0.5)}
    )

    row = library_row(page, XSS)
    expect(row.locator(".filename")).to_have_text(XSS)
    expect(row.locator(".badge")).to_have_text("ready")
    assert page.locator("main img").count() == 0
    # The page fixture fails the test if an alert (or any dialog) opened
    assert server.metadata(XSS).status_code == 200
