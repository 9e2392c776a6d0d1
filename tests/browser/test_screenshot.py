"""The README's picture of the library (docs/screenshot-library.png), rewritten only with
``UPDATE_SCREENSHOT=1``; otherwise made in a temporary folder, so the page it shows is
checked on every run."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.audio import add_id3, make_mp3
from tests.browser.conftest import DOCS, PageServer, library_row, update_screenshots

LIBRARY = [
    ("bedtime-owl.mp3", 788, "The owl who could not sleep", "Mum"),
    ("dragon-tale.mp3", 326, "The sleepy dragon", "Grandpa"),
    ("goodnight-from-grandma.mp3", 74, "Goodnight from Grandma", "Grandma"),
    ("morning-song.mp3", 99, None, None),
    ("pirate-adventure.mp3", 912, "Captain Bea and the lost map", "Dad"),
]


def test_the_library_as_a_parent_sees_it(signed_in: Page, server: PageServer, tmp_path: Path):
    page = signed_in
    one_second = make_mp3(1.0, bitrate=32)  # repeated: long files, small and quick to make
    for name, seconds, title, artist in LIBRARY:
        server.upload(name, add_id3(one_second * seconds, title=title, artist=artist))
    server.save_queue("bedtime", ["bedtime-owl.mp3", "dragon-tale.mp3"])
    page.reload()
    for name, *_ in LIBRARY:
        expect(library_row(page, name).locator(".badge")).to_have_text("ready")
    row = library_row(page, "dragon-tale.mp3")
    row.get_by_role("button", name="Listen").click()
    expect(row.locator("audio")).to_be_visible()
    page.evaluate("document.querySelector('#library-list audio').pause()")
    page.mouse.move(0, 0)

    target = DOCS / "screenshot-library.png" if update_screenshots() else tmp_path / "library.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=target)

    assert target.stat().st_size > 10_000
