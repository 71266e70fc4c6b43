"""Real-browser fixtures: Debian's Chromium driven by the playwright package, and the Firebase
Auth emulator (npm firebase-tools).

Chromium is the system one (`chromium` on PATH, else /usr/bin/chromium; CACHEBASH_CHROMIUM
overrides), passed to playwright as `executable_path`; `playwright install` is never needed (nor
possible here). Each backend that cannot run is skipped with the reason, unless
CACHEBASH_REQUIRE_BACKENDS names it (`browser`, `firebase-auth`; `.ci/run` does), in which case
the test fails.

Playwright's sync API runs its own asyncio loop and, while it is started, leaves that loop
marked as running in this thread: `asyncio.run()` (and anyio's async tests) then refuse to
start. So the browser lives for this package only (it stops after the last test here, before
async tests elsewhere run), browser tests are plain `def` tests, and they start servers as
subprocesses or in threads rather than on an event loop in this thread.

    def test_home(desk_page, console_url):
        tab = desk_page()
        tab.page.goto(console_url)
        assert_no_horizontal_scroll(tab.page)
        tab.assert_clean()
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

from support.firebase_auth_emulator import auth_emulator_unavailable, start_auth_emulator
from support.id_tokens import PROJECT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Route

    from cachebash.adapters.firebase_auth import FirebaseVerifier

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                         "has_touch": True}
DESK: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def unavailable(backend: str, reason: str) -> NoReturn:
    """Skip with the reason, or fail if CACHEBASH_REQUIRE_BACKENDS requires `backend`."""
    if backend in os.environ.get("CACHEBASH_REQUIRE_BACKENDS", "").split():
        pytest.fail(f"{backend} is required (CACHEBASH_REQUIRE_BACKENDS) but cannot run: {reason}", pytrace=False)
    pytest.skip(f"{backend}: {reason}")


def find_chromium() -> str | None:
    """CACHEBASH_CHROMIUM if set, else `chromium` on PATH, else Debian's /usr/bin/chromium."""
    chosen = os.environ.get("CACHEBASH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return chosen if os.access(chosen, os.X_OK) else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the browser `browser`, so `-m "not browser"` leaves them out."""
    for item in items:
        if "chromium_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


# ---------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; skips (or fails, if `browser` is required) when it or playwright is missing."""
    if importlib.util.find_spec("playwright") is None:
        unavailable("browser", "the playwright package is not installed (pip install -e '.[test]')")
    path = find_chromium()
    if path is None:
        unavailable("browser", "Chromium is not installed (Debian: apt-get install chromium; .ci/run does), "
                               "or CACHEBASH_CHROMIUM does not name an executable")
    return path


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One headless Chromium for this package's tests (package scope: see the module docstring)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    except BaseException:
        playwright.stop()
        raise
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()


@dataclass
class Tab:
    """A page in its own browser context (fresh cookies and storage). `errors`: console errors
    and uncaught page errors; `blocked`: requests to other than loopback, which are aborted, so
    a test also proves the page works offline."""

    page: Page
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.errors, "console or page errors:\n  " + "\n  ".join(self.errors)
        assert not self.blocked, "requests left loopback (blocked):\n  " + "\n  ".join(self.blocked)


def _tab_factory(browser: Browser, preset: dict[str, Any]) -> Iterator[Callable[..., Tab]]:
    contexts = []

    def open_tab(**options: Any) -> Tab:
        context = browser.new_context(**{**preset, **options})
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                tab.errors.append(f"console.error: {message.text}" + (f" ({where})" if where else ""))

        def on_route(route: Route) -> None:
            if urlsplit(route.request.url).hostname in LOOPBACK:
                route.continue_()
            else:
                tab.blocked.append(route.request.url)
                route.abort("blockedbyclient")

        page.on("console", on_console)
        page.on("pageerror", lambda error: tab.errors.append(f"pageerror: {error}"))
        context.route("**/*", on_route)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """`phone_page(**context_options) -> Tab`: a 390x844 touch phone at 2x (a new context per call)."""
    yield from _tab_factory(browser, PHONE)


@pytest.fixture
def desk_page(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """`desk_page(**context_options) -> Tab`: a 1280x900 desktop window (a new context per call)."""
    yield from _tab_factory(browser, DESK)


def assert_no_horizontal_scroll(page: Page) -> None:
    """The page is no wider than its viewport; on failure, name the elements that stick out."""
    found = page.evaluate("""() => {
        const root = document.documentElement, width = root.clientWidth;
        const wide = [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > width + 0.5)
            .slice(0, 8)
            .map(el => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
                       `${el.classList.length ? '.' + [...el.classList].join('.') : ''}` +
                       ` (right ${Math.round(el.getBoundingClientRect().right)})`);
        return {scrollWidth: root.scrollWidth, width, wide};
    }""")
    assert found["scrollWidth"] <= found["width"], (
        f"horizontal scroll: content {found['scrollWidth']}px wide in a {found['width']}px viewport; "
        f"sticking out: {', '.join(found['wide']) or '(none found)'}")


# ---------------------------------------------------------------------------- Firebase Auth


@pytest.fixture(scope="session")
def firebase_auth() -> Iterator[str]:
    """A Firebase Auth emulator for project demo-cachebash (support.id_tokens.PROJECT), shared by
    the session; yields its host "127.0.0.1:PORT". Users persist across tests: use unique emails
    or support.firebase_auth_emulator.clear_users(host)."""
    reason = auth_emulator_unavailable()
    if reason:
        unavailable("firebase-auth", reason)
    with start_auth_emulator(PROJECT) as host:
        yield host


@pytest.fixture
def firebase_verifier(firebase_auth: str, monkeypatch: pytest.MonkeyPatch) -> FirebaseVerifier:
    """The server's FirebaseVerifier, in this process, pointed at the emulator as a server would be:
    FIREBASE_AUTH_EMULATOR_HOST=<emulator>, GOOGLE_CLOUD_PROJECT=demo-cachebash."""
    from cachebash.adapters.firebase_auth import FirebaseVerifier

    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", firebase_auth)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return FirebaseVerifier()


@pytest.fixture(scope="session")
def console_vendor() -> Path:
    """The vendored Firebase JS SDK compat builds the console loads (`make console-vendor`)."""
    import cachebash

    return Path(cachebash.__file__).parent / "interface" / "console_static" / "vendor"
