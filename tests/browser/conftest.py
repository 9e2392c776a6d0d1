"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the real
local server (uvicorn on a free port, one per module), a fresh browser context per test,
and a watch on the page that fails a test on any script error, console error or failed
load of the page's own files."""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from smart_stream.bootstrap import Services, install
from smart_stream.settings import Settings
from tests.audio import pcm_tone
from tests.conftest import ROOT, TOKEN, _free_port, isolate, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request, ViewportSize

    from local_server.template import LocalTemplate

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
#: What every expect() waits at most: generous, it returns as soon as the page is right.
WAIT_MS = 20_000
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 640}


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    """Replaces the suite's per-test isolation: here a server lives for a whole module, so
    its environment is set once per module (``server``) and must not be reset per test."""
    yield


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":  # CI: missing is a failure
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@dataclass
class PageServer:
    """The local server as the page sees it; ``device_url`` is the second port that serves
    the device URLs when the module asks for one (``DEVICE_ON_OTHER_PORT = True``)."""

    base_url: str
    audio_dir: Path
    data_dir: Path
    app: Any
    device_url: str | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=httpx.Timeout(30.0),
        )

    def link(self, token: str = TOKEN) -> str:
        """The sign-in link ``make dev`` prints."""
        return f"{self.base_url}/#token={token}"

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Put a file in the library through the API (for tests about something else)."""
        answer = self.client.post("/api/audio/upload", files={"file": (name, data, "audio/mpeg")})
        assert answer.status_code in (201, 202), answer.text
        body: dict[str, Any] = answer.json()
        return body

    def save_queue(self, name: str, files: list[str]) -> dict[str, Any]:
        answer = self.client.post(f"/api/streams/{name}/queue", json={"files": files})
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body

    def queue(self, name: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/streams/{name}/queue")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def metadata(self, name: str) -> httpx.Response:
        return self.client.get(f"/api/audio/{name}/metadata")


@pytest.fixture(scope="module")
def server_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """More settings of the module's server: its ``SERVER_ENV``; a module whose settings are
    known only once something else runs (a fake's address) overrides this fixture."""
    settings: dict[str, str] = getattr(request.module, "SERVER_ENV", {})
    return settings


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    local_template: LocalTemplate,
    server_env: dict[str, str],
) -> Iterator[PageServer]:
    """The whole local server on a free port, for one module, with an empty library. With
    ``DEVICE_ON_OTHER_PORT = True`` in the module, the same app answers on a second port too
    and ``PUBLIC_BASE_URL`` points there, so device URLs (previews) are another origin;
    ``SERVER_ENV`` (a dict) sets more of its settings."""
    from local_server.app import create_app

    other_port = bool(getattr(request.module, "DEVICE_ON_OTHER_PORT", False))
    settings = server_env
    tmp = tmp_path_factory.mktemp("page")
    with pytest.MonkeyPatch.context() as env:
        isolate(env, tmp)
        for name, value in settings.items():
            env.setenv(name, value)
        port = _free_port()
        device_port = _free_port() if other_port else None
        if device_port:
            env.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{device_port}")
        services = Services(Settings.from_env())
        app = create_app(local_template, services, access_log=False)
        running = [serve(app, port)]
        if device_port:  # the same app, its start-up work done once already
            running.append(serve(app, device_port, lifespan="off"))
        page_server = PageServer(
            f"http://127.0.0.1:{port}",
            tmp / "audio",
            tmp / "state",
            app,
            f"http://127.0.0.1:{device_port}" if device_port else None,
        )
        try:
            yield page_server
        finally:
            page_server.client.close()
            for uvicorn_server, _ in reversed(running):
                uvicorn_server.should_exit = True
            for _, thread in running:
                thread.join(timeout=10)
            install(None)


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A fresh context (no storage, no cookies) per test, ``VIEWPORT`` of its module wide."""
    viewport: ViewportSize = getattr(request.module, "VIEWPORT", DESKTOP)
    made = browser.new_context(viewport=viewport, permissions=["microphone"])
    made.set_default_timeout(WAIT_MS)
    yield made
    made.close()


PROBLEMS = pytest.StashKey[list[str]]()


@pytest.fixture
def page(context: BrowserContext, server: PageServer, request: pytest.FixtureRequest) -> Page:
    """A page that records what must never happen: a script error, a console error (other
    than Chromium's "Failed to load resource" line for an /api answer, which the page shows
    in its own words), a JavaScript dialog, or a failed load of the page's own files."""
    problems: list[str] = []
    request.node.stash[PROBLEMS] = problems
    opened = context.new_page()
    own = urlsplit(server.base_url).netloc

    def page_file(url: str) -> bool:
        parts = urlsplit(url)
        return parts.netloc == own and (parts.path == "/" or parts.path.startswith("/assets/"))

    def on_console(message: Any) -> None:
        if message.type != "error":
            return
        where = str(message.location.get("url", ""))
        api_answer = urlsplit(where).path.startswith("/api/")
        if message.text.startswith("Failed to load resource") and api_answer:
            return
        problems.append(f"console error: {message.text} ({where})")

    def on_dialog(dialog: Any) -> None:
        problems.append(f"a JavaScript {dialog.type} opened: {dialog.message!r}")
        dialog.dismiss()

    def on_request_failed(request: Any) -> None:
        # ERR_ABORTED: the test navigated away while it loaded (the favicon, say).
        if page_file(request.url) and request.failure != "net::ERR_ABORTED":
            problems.append(f"{request.url} failed: {request.failure}")

    def on_response(response: Any) -> None:
        if page_file(response.url) and response.status >= 400:
            problems.append(f"{response.url} answered {response.status}")

    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on("console", on_console)
    opened.on("dialog", on_dialog)
    opened.on("requestfailed", on_request_failed)
    opened.on("response", on_response)
    return opened


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test whose page reported a problem fails, even if its own checks passed."""
    result = yield
    problems = item.stash.get(PROBLEMS, [])
    if problems:
        pytest.fail("the page misbehaved:\n" + "\n".join(problems), pytrace=False)
    return result


@pytest.fixture
def signed_in(page: Page, server: PageServer) -> Page:
    """The page opened through its sign-in link, the library loaded."""
    from playwright.sync_api import expect

    page.goto(server.link())
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#library-count")).not_to_be_empty()
    return page


def library_row(page: Page, filename: str) -> Any:
    """The library's row (a list item) of ``filename``, matched on its filename line."""
    return page.locator("#library-list > li").filter(
        has=page.locator(".filename", has_text=_exactly(filename))
    )


def playing(page: Page, audio_selector: str, beyond: float = 1.0) -> None:
    """Wait until the <audio> has really played past ``beyond`` seconds."""
    page.wait_for_function(
        "([selector, beyond]) => {"
        "  const audio = document.querySelector(selector);"
        "  return audio && !audio.paused && audio.currentTime > beyond; }",
        arg=[audio_selector, beyond],
        timeout=WAIT_MS,
    )


def wav_bytes(seconds: float) -> bytes:
    """A 44.1 kHz stereo WAV (10 MB a minute): big files cheaply, one second repeated."""
    one_second = pcm_tone(1.0)
    out = io.BytesIO()
    with wave.open(out, "wb") as sink:
        sink.setnchannels(2)
        sink.setsampwidth(2)
        sink.setframerate(44100)
        sink.writeframes(one_second * int(seconds))
    return out.getvalue()


def requests_made(page: Page, keep: Callable[[Request], bool]) -> list[str]:
    """The URLs of the page's requests that ``keep`` picks, from now on."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if keep(request):
            seen.append(request.url)

    page.on("request", on_request)
    return seen


def posts(page: Page) -> list[str]:
    return requests_made(page, lambda request: request.method == "POST")


def _exactly(text: str) -> Any:
    import re

    return re.compile(rf"^{re.escape(text)}$")


def upload_item(page: Page, section: str, filename: str) -> Any:
    """An upload's item in ``section`` ("#upload-list" or "#record-list")."""
    return page.locator(f"{section} > li").filter(
        has=page.locator(".filename", has_text=_exactly(filename))
    )


def update_screenshots() -> bool:
    """``UPDATE_SCREENSHOT=1``: the tests that can, rewrite the README's screenshots."""
    return os.environ.get("UPDATE_SCREENSHOT") == "1"


DOCS = ROOT / "docs"
