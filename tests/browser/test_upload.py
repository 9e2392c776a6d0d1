"""Uploads from the page: several files at once (one over 4 MB through the upload URL),
each with its own progress; conversions shown until ready; a name taken answered with
Replace; something that is not audio refused in the API's words; a drop on the zone."""

from __future__ import annotations

import base64
from typing import Any

from playwright.sync_api import Page, expect

from tests.audio import Source, make_audio, make_mp3
from tests.browser.conftest import PageServer, library_row, posts, upload_item, wav_bytes

DIRECT_MAX = 4 * 1024 * 1024


def payload(name: str, data: bytes, mime: str = "audio/mpeg") -> Any:
    return {"name": name, "mimeType": mime, "buffer": data}


def record_progress(page: Page, section: str, filename: str) -> None:
    """Keep every value the item's <progress> takes (in window.progressSeen[filename])."""
    page.evaluate(
        """([section, filename]) => {
            window.progressSeen = window.progressSeen || {};
            const seen = (window.progressSeen[filename] = []);
            const list = document.querySelector(section);
            const watch = (li) => {
                if (li.querySelector('.filename')?.textContent !== filename) return;
                const bar = li.querySelector('progress');
                new MutationObserver(() => seen.push(bar.getAttribute('value')))
                    .observe(bar, { attributes: true, attributeFilter: ['value'] });
            };
            new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(watch)))
                .observe(list, { childList: true });
        }""",
        [section, filename],
    )


def test_three_uploads_one_through_the_upload_url_each_with_its_progress(
    signed_in: Page, server: PageServer
):
    page = signed_in
    big = wav_bytes(26)  # 4.6 MB: over the API's 4 MB, so through the upload URL
    assert len(big) > DIRECT_MAX
    sent = posts(page)
    # Uploads go out at 8 MB/s, so the bytes' progress is seen on its way
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8e6},
    )
    record_progress(page, "#upload-list", "big-story.wav")

    page.get_by_label("Upload audio").set_input_files(
        [
            payload("morning.mp3", make_mp3(1.0, title="Morning song", artist="Dad")),
            payload("evening.mp3", make_mp3(1.5)),
            payload("big-story.wav", big, "audio/wav"),
        ]
    )

    for name, library_name in [
        ("morning.mp3", "morning.mp3"),
        ("evening.mp3", "evening.mp3"),
        ("big-story.wav", "big-story.mp3"),
    ]:
        item = upload_item(page, "#upload-list", name)
        expect(item.locator(".badge")).to_have_text("ready")
        expect(item.locator("progress")).to_have_attribute("value", "1")
        expect(library_row(page, library_name)).to_be_visible()
    expect(upload_item(page, "#upload-list", "big-story.wav")).to_contain_text(
        "becomes big-story.mp3"
    )
    # The big file's bytes were shown going out, part-way and then whole
    seen = [float(v) for v in page.evaluate("window.progressSeen['big-story.wav']") if v]
    assert any(0 < v < 1 for v in seen), seen
    # Through the upload URL (its form sent to the local twin of S3), the others directly
    assert sum(url.endswith("/api/audio/upload-url") for url in sent) == 1
    assert sum(url.endswith("/api/audio/upload") for url in sent) == 2
    # The rows tell what the library knows
    morning = library_row(page, "morning.mp3")
    expect(morning).to_contain_text("Morning song — Dad")
    expect(morning).to_contain_text("0:01")
    expect(library_row(page, "big-story.mp3")).to_contain_text("0:26")
    expect(library_row(page, "big-story.mp3")).to_contain_text("ready")
    assert server.metadata("big-story.mp3").json()["status"] == "ready"


def test_an_m4a_shows_converting_then_ready(signed_in: Page, server: PageServer):
    page = signed_in
    m4a = make_audio(Source("ipod", "aac", 48000, seconds=20.0))
    record_progress(page, "#upload-list", "voice memo.m4a")

    page.get_by_label("Upload audio").set_input_files(payload("voice memo.m4a", m4a, "audio/mp4"))

    item = upload_item(page, "#upload-list", "voice memo.m4a")
    expect(item.locator(".badge")).to_contain_text("converting")
    row = library_row(page, "voice memo.mp3")
    expect(row).to_contain_text("converting")
    expect(item.locator(".badge")).to_have_text("ready")
    expect(row.locator(".badge")).to_have_text("ready")
    expect(row).to_contain_text("0:20")
    expect(item).to_contain_text("In the library as “voice memo.mp3”")
    assert server.metadata("voice memo.mp3").json()["source_format"] == "m4a/aac"


def test_a_name_taken_offers_replace(signed_in: Page, server: PageServer):
    page = signed_in
    server.upload("lullaby.mp3", make_mp3(1.0))
    page.reload()
    expect(library_row(page, "lullaby.mp3")).to_contain_text("0:01")

    page.get_by_label("Upload audio").set_input_files(payload("lullaby.mp3", make_mp3(3.0)))

    item = upload_item(page, "#upload-list", "lullaby.mp3")
    expect(item).to_contain_text("already exists")
    item.get_by_role("button", name="Replace").click()
    expect(item.locator(".badge")).to_have_text("ready")
    expect(library_row(page, "lullaby.mp3")).to_contain_text("0:03")
    assert round(server.metadata("lullaby.mp3").json()["duration"]) == 3


def test_a_big_file_whose_name_is_taken_is_replaced_through_the_upload_url(
    signed_in: Page, server: PageServer
):
    page = signed_in
    server.upload("long-night.mp3", make_mp3(1.0))
    page.reload()
    expect(library_row(page, "long-night.mp3")).to_contain_text("0:01")

    page.get_by_label("Upload audio").set_input_files(
        payload("long-night.wav", wav_bytes(25), "audio/wav")
    )

    item = upload_item(page, "#upload-list", "long-night.wav")
    expect(item).to_contain_text("already exists")
    item.get_by_role("button", name="Replace").click()
    expect(item.locator(".badge")).to_have_text("ready")
    expect(library_row(page, "long-night.mp3")).to_contain_text("0:25")


def test_what_is_not_audio_is_refused_naming_the_formats(signed_in: Page):
    page = signed_in
    page.get_by_label("Upload audio").set_input_files(
        payload("shopping.mp3", b"eggs, milk, bread\n" * 100, "audio/mpeg")
    )

    item = upload_item(page, "#upload-list", "shopping.mp3")
    expect(item.locator(".badge")).to_have_text("failed")
    expect(item.locator(".message")).to_contain_text("FLAC")
    expect(library_row(page, "shopping.mp3")).to_have_count(0)


def test_files_dropped_on_the_zone_are_uploaded(signed_in: Page):
    page = signed_in
    names = ["dropped-1.mp3", "dropped-2.mp3"]
    data = base64.b64encode(make_mp3(1.0)).decode()
    drop = page.evaluate_handle(
        """([names, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            for (const name of names) {
                transfer.items.add(new File([bytes], name, { type: 'audio/mpeg' }));
            }
            return transfer;
        }""",
        [names, data],
    )
    zone = page.locator("#drop-zone")
    zone.dispatch_event("dragenter", {"dataTransfer": drop})
    zone.dispatch_event("dragover", {"dataTransfer": drop})
    expect(zone).to_have_class("drop over")
    zone.dispatch_event("drop", {"dataTransfer": drop})

    for name in names:
        expect(upload_item(page, "#upload-list", name).locator(".badge")).to_have_text("ready")
        expect(library_row(page, name)).to_be_visible()
    expect(zone).to_have_class("drop")
