"""How the page holds up: nothing overflows sideways on a 360 px phone, the keyboard's
focus is always visible, and no control's name contains one of the names the contract
reserves (so ``get_by_role(name=...)`` finds exactly the control meant)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.audio import add_id3, make_mp3
from tests.browser.conftest import PHONE, PageServer, library_row, upload_item

LONG_NAME = "the-longest-bedtime-story-name-anyone-ever-typed-without-a-single-space-" * 2 + ".mp3"
LONG_QUEUE = "q" * 64
FIELDS = [
    "Upload audio",
    "Search",
    "Story text",
    "Story name",
    "Voice",
    "Recording name",
    "Queue name",
    "Queue title",
    "Play mode",
    "Find files to add",
]
BUTTONS = [
    "Generate story",
    "Record",
    "Stop",
    "Save recording",
    "New queue",
    "Save queue",
    "Add to queue",
    "Move up",
    "Move down",
    "Remove",
    "Delete",
    "Delete anyway",
    "Replace",
    "Revoke URL",
    "Sign in with Yoto",
    "Disconnect Yoto",
    "Put on Yoto card",
    "Sign out",
]
RESERVED = FIELDS + BUTTONS


def fill_library(server: PageServer) -> None:
    if server.metadata(LONG_NAME).status_code == 200:
        return
    for name, seconds, title, artist in [
        ("bedtime-story.mp3", 754.0, "The owl who could not sleep", "Mum"),
        ("dragon-tale.mp3", 312.0, "The sleepy dragon", "Grandpa"),
        ("morning-song.mp3", 95.0, None, None),
        (LONG_NAME, 3.0, "A title just as long, " * 6, "Someone with a long name " * 3),
    ]:
        # One second's frames repeated (32 kbps keeps a long file small), then its tag
        frames = make_mp3(1.0, bitrate=32) * int(seconds)
        server.upload(name, add_id3(frames, title=title, artist=artist))
    server.save_queue(LONG_QUEUE, ["bedtime-story.mp3", LONG_NAME])
    server.save_queue("evenings", ["dragon-tale.mp3", "morning-song.mp3", "bedtime-story.mp3"])


def no_sideways_overflow(page: Page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{where}: the page is {width}px wide"


def test_nothing_overflows_sideways_at_360_wide(
    signed_in: Page, server: PageServer, tmp_path: Path
):
    page = signed_in
    fill_library(server)
    page.set_viewport_size(PHONE)
    page.reload()
    expect(library_row(page, LONG_NAME)).to_be_visible()
    expect(page.locator("#queue-list > li")).to_have_count(2)
    no_sideways_overflow(page, "the library")

    # An upload refused, with its Replace button
    page.get_by_label("Upload audio").set_input_files(
        {"name": "bedtime-story.mp3", "mimeType": "audio/mpeg", "buffer": make_mp3(0.5)}
    )
    expect(upload_item(page, "#upload-list", "bedtime-story.mp3")).to_contain_text("exists")
    no_sideways_overflow(page, "an upload refused")

    # The queue editor with files in it, and a player open
    long_queue = page.locator("#queue-list > li").filter(has_text=LONG_QUEUE)
    long_queue.get_by_role("button", name="Edit").click()
    expect(page.locator("#queue-files > li")).to_have_count(2)
    library_row(page, LONG_NAME).get_by_role("button", name="Listen").click()
    no_sideways_overflow(page, "the queue editor")
    page.screenshot(path=tmp_path / "phone.png", full_page=True)

    # The question dialog
    library_row(page, LONG_NAME).get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("dialog")).to_be_visible()
    no_sideways_overflow(page, "the dialog")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert server.metadata(LONG_NAME).status_code == 200


def test_the_keyboard_focus_is_always_visible(signed_in: Page, server: PageServer):
    page = signed_in
    fill_library(server)
    page.reload()
    expect(library_row(page, LONG_NAME)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with Yoto")).to_be_visible()
    seen: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el || el === document.body) return null;  // past the last control
                const style = getComputedStyle(el);
                const label = el.textContent.trim() || el.id || el.tagName;
                const what = el.tagName + ' ' + label.slice(0, 40);
                return [what, style.outlineStyle, style.outlineWidth];
            }"""
        )
        if focused is None:
            break
        what, style, width = focused
        assert style != "none" and width != "0px", f"{what} has no visible focus"
        seen.append(what)
    # Every part of the page was reached, in the order it reads
    parts = ["Sign out", "Listen", "upload-input", "Generate story", "New queue", "Sign in with"]
    reached = [next(i for i, what in enumerate(seen) if part in what) for part in parts]
    assert reached == sorted(reached), seen


def accessible_controls(page: Page) -> list[tuple[str, str]]:
    """(role, name) of every control in the accessibility tree, as Playwright sees it."""
    snapshot = page.locator("body").aria_snapshot()
    controls = []
    for role, name in re.findall(r'- (\w+) "((?:[^"\\]|\\.)*)"', snapshot):
        if role in {"button", "textbox", "searchbox", "combobox", "checkbox", "link", "slider"}:
            controls.append((role, name))
    return controls


def test_no_control_name_contains_a_reserved_one(signed_in: Page, server: PageServer):
    page = signed_in
    fill_library(server)
    page.reload()
    expect(library_row(page, LONG_NAME)).to_be_visible()
    # Many controls on screen at once: rows, queues, the editor with files, a refused upload
    page.get_by_role("button", name="New queue").click()
    page.get_by_label("Find files to add").fill("dragon")
    expect(page.locator("#queue-results > li")).to_have_count(1)
    page.get_by_role("button", name="Add to queue").click()
    page.get_by_label("Upload audio").set_input_files(
        {"name": "dragon-tale.mp3", "mimeType": "audio/mpeg", "buffer": make_mp3(0.5)}
    )
    expect(page.get_by_role("button", name="Replace")).to_be_visible()

    controls = accessible_controls(page)
    names = {name for _, name in controls}
    for reserved in ["Search", "Upload audio", "Queue name", "Move up", "Replace", "Sign out"]:
        assert reserved in names, f"{reserved!r} is not on the page"
    clashes = [
        (role, name, reserved)
        for role, name in controls
        if name not in RESERVED
        for reserved in RESERVED
        if reserved.lower() in name.lower()
    ]
    assert not clashes
    # Each field is found by its label, and each reserved field name finds one field
    for field in FIELDS:
        expect(page.get_by_label(field, exact=True)).to_have_count(1)
