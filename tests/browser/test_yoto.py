"""Yoto from the page, end to end in the browser: **Sign in with Yoto** goes to Yoto's
consent page (the fake, with PKCE checked at its token endpoint), **Allow** comes back
signed in, a queue is put on a card (its id shown), taken off again, and **Disconnect
Yoto** signs out; **Deny** comes back saying so, with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests import fake_yoto as fakes
from tests.audio import make_mp3
from tests.browser.conftest import PageServer
from tests.fake_yoto import FakeYoto

#: A card needs a public https base for its stream URL; the player is not here to fetch it.
PUBLIC = "https://cards.example.test"

_fake_yoto_server = fakes._fake_yoto_server


@pytest.fixture(scope="module")
def server_env(_fake_yoto_server: FakeYoto) -> dict[str, str]:
    return {
        "YOTO_CLIENT_ID": _fake_yoto_server.client_id,
        "YOTO_API_BASE_URL": _fake_yoto_server.base_url,
        "YOTO_AUTH_BASE_URL": _fake_yoto_server.base_url,
        "YOTO_TIMEOUT_SECONDS": str(fakes.TIMEOUT_SECONDS),
        "PUBLIC_BASE_URL": PUBLIC,
    }


@pytest.fixture
def fake(_fake_yoto_server: FakeYoto, server: PageServer) -> Iterator[FakeYoto]:
    _fake_yoto_server._reset()
    # Registered in Yoto's dashboard, exactly: the page's own server, port included.
    _fake_yoto_server.callback_urls = [server.base_url + "/api/yoto/callback"]
    yield _fake_yoto_server
    server.client.delete("/api/yoto/login")
    _fake_yoto_server._reset()


def yoto_section(page: Page):
    return page.locator("#yoto")


def test_signing_in_with_yoto_then_putting_a_queue_on_a_card(
    signed_in: Page, server: PageServer, fake: FakeYoto
):
    page = signed_in
    server.upload("yoto-moon.mp3", make_mp3(1.0, title="Moon"))
    server.save_queue("bedtime", ["yoto-moon.mp3"])
    page.reload()

    section = yoto_section(page)
    expect(section.get_by_text(server.base_url + "/api/yoto/callback")).to_be_visible()
    page.get_by_role("button", name="Sign in with Yoto").click()
    # Yoto's consent page (the fake's), then back to the page through the callback.
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    assert page.url.startswith(fake.base_url + "/authorize?")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(server.base_url + "/")  # the fragment is read, then cleared
    expect(page.locator("#notice")).to_contain_text("Signed in to Yoto")
    expect(page.get_by_role("button", name="Disconnect Yoto")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with Yoto")).to_be_hidden()
    assert fake.grants() == ["authorization_code"]
    assert "#" not in page.url and "code=" not in page.url

    row = page.locator("#queue-list > li").filter(has=page.locator(".filename", has_text="bedtime"))
    row.get_by_role("button", name="Put on Yoto card").click()
    expect(row.locator(".on-card")).to_contain_text("On Yoto card ")
    (card_id,) = fake.cards
    expect(row.locator(".on-card")).to_have_text(f"On Yoto card {card_id}")
    assert server.queue("bedtime")["yoto_card_id"] == card_id
    card = fake.cards[card_id]
    (chapter,) = card["content"]["chapters"]
    assert chapter["tracks"][0]["trackUrl"].startswith(PUBLIC + "/api/streams/bedtime/")
    assert fake.dropped == [] and fake.rejected == []

    row.get_by_role("button", name="Take off card").click()
    expect(row.locator(".on-card")).to_be_hidden()
    assert fake.deleted_cards == [card_id]

    page.get_by_role("button", name="Disconnect Yoto").click()
    expect(page.get_by_role("button", name="Sign in with Yoto")).to_be_visible()
    assert server.client.get("/api/yoto/login").json()["signed_in"] is False


def test_saying_no_at_yoto_comes_back_saying_so(
    signed_in: Page, server: PageServer, fake: FakeYoto
):
    page = signed_in
    page.get_by_role("button", name="Sign in with Yoto").click()
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(server.base_url + "/")
    expect(page.locator("#notice")).to_contain_text("access_denied")
    expect(page.get_by_role("button", name="Sign in with Yoto")).to_be_visible()
    assert fake.grants() == []
    assert server.client.get("/api/yoto/login").json()["signed_in"] is False
