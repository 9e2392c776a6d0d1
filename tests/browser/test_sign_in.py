"""Signing the page in and out: the sign-in link's token is kept in localStorage, leaves the
address bar and travels only in Authorization headers; a wrong one is said to be wrong."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import PageServer
from tests.conftest import TOKEN

STORED = "() => localStorage.getItem('smart-stream-token')"


def test_the_sign_in_link_signs_in_and_leaves_the_address_bar(page: Page, server: PageServer):
    # Given every request the page makes is watched
    urls: list[str] = []
    bearer: list[str | None] = []

    def on_request(request) -> None:
        urls.append(request.url)
        if "/api/" in request.url:
            bearer.append(request.headers.get("authorization"))

    page.on("request", on_request)

    # When the link `make dev` prints is opened
    page.goto(server.link())

    # Then the page is signed in, the token is kept, and the address has no fragment left
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Library")).to_be_visible()
    assert page.evaluate(STORED) == TOKEN
    expect(page).to_have_url(f"{server.base_url}/")
    # The token went in Authorization headers only, never in an address
    expect(page.locator("#library-count")).not_to_be_empty()
    assert bearer and all(value == f"Bearer {TOKEN}" for value in bearer)
    assert not [url for url in urls if TOKEN in url]

    # And a reload stays signed in without the link
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_wrong_token_says_so_and_is_not_kept(page: Page, server: PageServer):
    page.goto(server.link("not-the-token"))

    expect(page.get_by_text("That sign-in link is not valid (wrong or old token)")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("heading", name="Library")).to_be_hidden()
    assert page.evaluate(STORED) is None
    expect(page).to_have_url(f"{server.base_url}/")


def test_without_a_token_the_page_says_how_to_get_the_link(page: Page, server: PageServer):
    page.goto(server.base_url)

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("make dev", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()


def test_the_link_pasted_into_an_open_page_signs_it_in(page: Page, server: PageServer):
    # Given the page open and signed out
    page.goto(server.base_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # When the link is pasted into the same tab (only the fragment changes: no new load)
    page.goto(server.link())

    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page).to_have_url(f"{server.base_url}/")


def test_sign_out_forgets_the_token(page: Page, server: PageServer):
    page.goto(server.link())
    expect(page.get_by_role("heading", name="Library")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_text("Signed out.")).to_be_visible()
    expect(page.get_by_role("heading", name="Library")).to_be_hidden()
    assert page.evaluate(STORED) is None
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_yoto_sign_in_answers_are_shown_and_cleared(page: Page, server: PageServer):
    page.goto(server.link())
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # Yoto's sign-in sends the browser back with its answer in the fragment (a new load)
    page.goto("about:blank")
    page.goto(f"{server.base_url}/#yoto=error&reason=access_denied")
    expect(page.get_by_text("Yoto sign-in failed: access_denied")).to_be_visible()
    expect(page).to_have_url(f"{server.base_url}/")

    page.goto("about:blank")
    page.goto(f"{server.base_url}/#yoto=signed-in")
    expect(page.get_by_text("Signed in to Yoto")).to_be_visible()
    expect(page).to_have_url(f"{server.base_url}/")
