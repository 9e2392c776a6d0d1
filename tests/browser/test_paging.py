"""The library in pages: 50 files at first, then the next pages appended as asked for (a
library of thousands stays quick), never a file twice."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, Route, expect

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


def test_a_fast_scroll_never_stalls_the_paging(page: Page, server: PageServer):
    # A library of 1,000 files (pages made up here: the page cannot tell)
    total = 1000

    def fake_page(route: Route) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        start = int(query.get("next_token", ["0"])[0])
        files = [fake_file(server, i) for i in range(start, min(start + 50, total))]
        next_token = str(start + 50) if start + 50 < total else None
        route.fulfill(json={"files": files, "next_token": next_token})

    page.route("**/api/audio/list?*", fake_page)
    page.goto(server.link())
    expect(page.locator("#library-count")).to_have_text("50 shown")

    # Scrolled to the end of the list every few milliseconds, faster than pages arrive
    # (the observer of "Load more" then sees no change of visibility between two pages)
    page.evaluate(
        """() => new Promise((done) => {
            const more = document.querySelector('#load-more');
            const started = performance.now();
            const tick = () => {
                if (more.hidden || performance.now() - started > 15000) return done();
                more.scrollIntoView({ block: 'end' });
                setTimeout(tick, 5);
            };
            tick();
        })"""
    )

    expect(page.locator("#library-count")).to_have_text(f"{total} files")
    assert page.locator("#library-list > li").count() == total


def fake_file(server: PageServer, i: int) -> dict[str, object]:
    return {
        "filename": f"made-up-{i:04}.mp3",
        "size": 1_000_000 + i,
        "duration": 60.0 + i,
        "status": "ready",
        "title": f"Story {i}",
        "artist": None,
        "progress": None,
        "status_reason": None,
        "url": f"{server.base_url}/api/audio/made-up-{i:04}.mp3",
    }
