"""The library in pages: 50 files at first, then the next pages appended as asked for (a
library of thousands stays quick), never a file twice."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.audio import make_mp3
from tests.browser.conftest import PageServer


def test_pages_are_appended_without_repeats(signed_in: Page, server: PageServer):
    page = signed_in
    tiny = make_mp3(0.2)
    for i in range(55):
        server.upload(f"page-{i:02}.mp3", tiny)
    total = len(server.client.get("/api/audio/list", params={"limit": 1000}).json()["files"])
    assert total > 50
    page.reload()
    expect(page.locator("#library-count")).to_have_text("50 shown")

    # Scrolling down to the end of what is shown loads the next page (as would a click)
    page.get_by_role("button", name="Load more").scroll_into_view_if_needed()

    expect(page.locator("#library-count")).to_have_text(f"{total} files")
    names = page.locator("#library-list .filename").all_text_contents()
    assert len(names) == len(set(names)) == total
    assert names == sorted(names)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
