"""Audio made in the page: a recording from the microphone (Chromium's fake device) and a
story spoken by the server's engine (eSpeak NG locally), each ending up in the library."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PageServer, library_row, posts, upload_item

# Stories over 300 characters are spoken in the background (202, converting)
SERVER_ENV = {"TTS_INLINE_MAX_CHARS": "300"}


def test_a_three_second_recording_ends_up_in_the_library(signed_in: Page, server: PageServer):
    page = signed_in
    record = page.get_by_role("button", name="Record", exact=True)
    stop = page.get_by_role("button", name="Stop", exact=True)
    expect(stop).to_be_disabled()

    record.click()

    expect(stop).to_be_enabled()
    expect(record).to_be_disabled()
    # The elapsed seconds count up while it records; stopped once they say 3 s
    expect(page.locator("#record-elapsed")).to_have_text("3 s", timeout=10_000)
    stop.click()

    expect(record).to_be_enabled()
    expect(stop).to_be_disabled()
    name = page.get_by_label("Recording name")
    expect(name).to_be_focused()
    expect(name).to_have_value(re.compile(r"^recording-\d{4}-\d\d-\d\d-\d{6}$"))
    name.fill("Grandma says goodnight")
    page.get_by_role("button", name="Save recording").click()

    item = upload_item(page, "#record-list", "Grandma says goodnight.webm")
    expect(item).to_contain_text("becomes Grandma says goodnight.mp3")
    expect(item.locator(".badge")).to_have_text("ready")
    row = library_row(page, "Grandma says goodnight.mp3")
    expect(row.locator(".badge")).to_have_text("ready")
    stored = server.metadata("Grandma says goodnight.mp3").json()
    assert stored["source_format"] == "webm/opus"
    assert 2.5 < stored["duration"] < 5.0
    expect(row).to_contain_text(re.compile(r"0:0[345]"))


def test_a_story_is_spoken_into_the_library(signed_in: Page, server: PageServer):
    page = signed_in
    voice = page.get_by_label("Voice")
    expect(voice.locator("option").first).to_have_text("Default voice")
    expect(voice.locator("option[value='en']")).to_have_count(1)

    page.get_by_label("Story text").fill("Once upon a time a small dragon could not sleep.")
    voice.select_option("en")
    page.get_by_label("Story name").fill("Sleepy dragon")
    page.get_by_role("button", name="Generate story").click()

    expect(page.locator("#story-status")).to_contain_text("Story ready: “Sleepy dragon.mp3”")
    row = library_row(page, "Sleepy dragon.mp3")
    expect(row.locator(".badge")).to_have_text("ready")
    assert server.metadata("Sleepy dragon.mp3").json()["duration"] > 1


def test_a_long_story_is_spoken_in_the_background_with_its_progress(
    signed_in: Page, server: PageServer
):
    page = signed_in
    story = " ".join(["The little boat sailed on and on across the quiet sea."] * 12)
    assert len(story) > 300
    page.get_by_label("Story text").fill(story)
    page.get_by_label("Story name").fill("boat.mp3")

    with page.expect_response(lambda r: r.url.endswith("/api/audio/generate-tts")) as answer:
        page.get_by_role("button", name="Generate story").click()

    # Answered 202 converting: the page follows the conversion, then says it is ready
    expect(page.locator("#story-status")).to_contain_text("Speaking “boat.mp3”")
    expect(page.locator("#story-progress")).to_be_visible()
    expect(page.locator("#story-status")).to_contain_text("Story ready: “boat.mp3”")
    expect(page.locator("#story-progress")).to_be_hidden()
    assert answer.value.status == 202
    expect(library_row(page, "boat.mp3").locator(".badge")).to_have_text("ready")
    assert server.metadata("boat.mp3").json()["duration"] > 10


def test_an_empty_story_is_not_sent(signed_in: Page):
    page = signed_in
    sent = posts(page)

    page.get_by_role("button", name="Generate story").click()

    expect(page.locator("#story-status")).to_have_text("Type the story first.")
    expect(page.get_by_label("Story text")).to_be_focused()
    assert not sent


def test_an_unknown_voice_is_answered_in_the_apis_words(signed_in: Page):
    page = signed_in
    page.get_by_label("Story text").fill("Hello.")
    # A voice the server does not have (the list offered a stale one)
    page.evaluate(
        "() => { const o = document.createElement('option'); o.value = 'xx-nobody';"
        " o.textContent = 'Nobody'; document.querySelector('#story-voice').append(o); }"
    )
    page.get_by_label("Voice").select_option("xx-nobody")

    page.get_by_role("button", name="Generate story").click()

    expect(page.locator("#story-status")).to_contain_text("xx-nobody")
    expect(page.get_by_role("button", name="Generate story")).to_be_enabled()
