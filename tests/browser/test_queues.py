"""Queues from the page: found and added, reordered from the keyboard and by dragging,
saved, then played as one stream; edited; refused names and missing files said plainly."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.audio import make_mp3
from tests.browser.conftest import PageServer, playing, posts


def chosen(page: Page) -> Locator:
    return page.locator("#queue-files .filename")


def queue_row(page: Page, name: str) -> Locator:
    return page.locator("#queue-list > li").filter(has=page.locator(".filename", has_text=name))


def add_from_picker(page: Page, query: str, names: list[str]) -> None:
    page.get_by_label("Find files to add").fill(query)
    results = page.locator("#queue-results > li")
    for name in names:
        result = results.filter(has=page.locator(".filename", has_text=name))
        result.get_by_role("button", name="Add to queue").click()


def test_a_queue_made_reordered_saved_and_played(signed_in: Page, server: PageServer):
    page = signed_in
    for name, seconds in [("q-first.mp3", 2.0), ("q-second.mp3", 3.0), ("q-third.mp3", 4.0)]:
        server.upload(name, make_mp3(seconds))
    page.reload()

    page.get_by_role("button", name="New queue").click()
    expect(page.get_by_label("Queue name")).to_be_focused()
    page.get_by_label("Queue name").fill("bedtime_mix")
    page.get_by_label("Queue title").fill("Bedtime mix")
    page.get_by_label("Play mode").select_option("sequential")
    add_from_picker(page, "q-", ["q-first.mp3", "q-second.mp3", "q-third.mp3"])
    expect(chosen(page)).to_have_text(["q-first.mp3", "q-second.mp3", "q-third.mp3"])
    expect(page.locator("#queue-total")).to_have_text("3 files · 0:09")

    # From the keyboard: the focus stays with the file that moves
    items = page.locator("#queue-files > li")
    items.nth(0).get_by_role("button", name="Move down").focus()
    page.keyboard.press("Enter")
    expect(chosen(page)).to_have_text(["q-second.mp3", "q-first.mp3", "q-third.mp3"])
    expect(items.nth(1).get_by_role("button", name="Move down")).to_be_focused()
    page.keyboard.press("Enter")
    expect(chosen(page)).to_have_text(["q-second.mp3", "q-third.mp3", "q-first.mp3"])
    # At the bottom "Move down" is disabled: the focus went to "Move up" of the same file
    expect(items.nth(2).get_by_role("button", name="Move up")).to_be_focused()
    page.keyboard.press("Space")
    expect(chosen(page)).to_have_text(["q-second.mp3", "q-first.mp3", "q-third.mp3"])
    expect(page.locator("#queue-editor-status")).to_have_text(
        "Moved “q-first.mp3” to place 2 of 3."
    )

    # By dragging: the third file dropped on the first takes its place
    items.nth(2).drag_to(items.nth(0))
    expect(chosen(page)).to_have_text(["q-third.mp3", "q-second.mp3", "q-first.mp3"])

    page.get_by_role("button", name="Save queue").click()

    row = queue_row(page, "bedtime_mix")
    expect(row).to_contain_text("Bedtime mix")
    expect(row).to_contain_text("3 files · 0:09")
    expect(page.locator("#queue-editor")).to_be_hidden()
    saved = server.queue("bedtime_mix")
    assert saved["files"] == ["q-third.mp3", "q-second.mp3", "q-first.mp3"]
    assert saved["title"] == "Bedtime mix"
    assert saved["play_mode"] == "sequential"

    # Its stream plays in the page
    row.get_by_role("button", name="Listen").click()
    playing(page, "#queue-list audio", 1.0)


def test_a_queue_edited_keeps_its_name(signed_in: Page, server: PageServer):
    page = signed_in
    for name in ("e-one.mp3", "e-two.mp3"):
        server.upload(name, make_mp3(1.0))
    server.save_queue("to_edit", ["e-one.mp3", "e-two.mp3"])
    page.reload()

    queue_row(page, "to_edit").get_by_role("button", name="Edit").click()

    expect(page.get_by_label("Queue name")).to_have_value("to_edit")
    expect(page.get_by_label("Queue name")).not_to_be_editable()
    expect(chosen(page)).to_have_text(["e-one.mp3", "e-two.mp3"])
    expect(page.locator("#queue-total")).to_have_text("2 files · 0:02")
    page.locator("#queue-files > li").nth(0).get_by_role("button", name="Remove").click()
    page.get_by_label("Play mode").select_option("loop")
    page.get_by_role("button", name="Save queue").click()

    expect(queue_row(page, "to_edit")).to_contain_text("Loop · 1 file · 0:01")
    saved = server.queue("to_edit")
    assert saved["files"] == ["e-two.mp3"]
    assert saved["play_mode"] == "loop"


def test_a_bad_queue_name_is_refused_before_anything_is_sent(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("n-one.mp3", make_mp3(0.5))
    page.reload()
    sent = posts(page)
    page.get_by_role("button", name="New queue").click()
    add_from_picker(page, "n-one", ["n-one.mp3"])

    page.get_by_label("Queue name").fill("bed time!")
    page.get_by_role("button", name="Save queue").click()

    expect(page.locator("#queue-editor-status")).to_contain_text("letters, digits, - and _")
    expect(page.get_by_label("Queue name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Queue name")).to_be_focused()
    assert not sent


def test_a_file_gone_meanwhile_is_named_by_the_answer(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("gone-soon.mp3", make_mp3(0.5))
    page.reload()
    page.get_by_role("button", name="New queue").click()
    page.get_by_label("Queue name").fill("missing")
    add_from_picker(page, "gone-soon", ["gone-soon.mp3"])
    assert server.client.delete("/api/audio/gone-soon.mp3").status_code == 204

    page.get_by_role("button", name="Save queue").click()

    expect(page.locator("#queue-editor-status")).to_contain_text("gone-soon.mp3")
    assert server.client.get("/api/streams/missing/queue").status_code == 404


def test_a_queue_is_deleted_after_confirming(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("d-one.mp3", make_mp3(0.5))
    server.save_queue("short_lived", ["d-one.mp3"])
    page.reload()
    row = queue_row(page, "short_lived")

    row.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()

    expect(row).to_have_count(0)
    assert server.client.get("/api/streams/short_lived/queue").status_code == 404
