"""Open a page in a real headless browser and list what a person looking at it would find wrong.

The HTML reports promise to be self-contained: they render, their figures load, the console stays
quiet and nothing is fetched from anywhere.  Parsing the HTML cannot tell whether an inline SVG
decodes or whether a script throws, so the check drives Debian's chromium through Playwright
(``executable_path``: Playwright's own browser download does not work on a closed network) and
reads the answers off the live page.

The background-networking flags matter on a machine without a network: without them chromium
keeps trying to reach Google's hosts at start-up.  Playwright's ``launch`` gives every browser a
new, empty profile directory of its own, so no state carries over between runs.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Route

__all__ = [
    "CHROMIUM_FLAGS",
    "INSTALL_HINT",
    "PageCheck",
    "check_page",
    "chromium",
    "missing_browser",
]

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""As the machine notes for this kind prescribe; ``--no-sandbox`` because CI runs as root."""

INSTALL_HINT = "install it with `apt-get install chromium` (Debian) and the dev extra: `pip install -e '.[dev]'`"

_IMAGES_JS = "Array.from(document.images, i => [i.getAttribute('src') || '', i.complete, i.naturalWidth])"


def missing_browser() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return f"the Python package playwright is not installed; {INSTALL_HINT}"
    if shutil.which("chromium") is None:
        return f"chromium is not on PATH; {INSTALL_HINT}"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless chromium for many pages (starting it takes about a second)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError(f"chromium is not on PATH; {INSTALL_HINT}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class PageCheck:
    """What the browser saw on one page."""

    url: str
    title: str
    headings: tuple[str, ...]
    """the text of every ``<h1>``"""
    console: tuple[str, ...]
    """console messages of type error or warning, as ``"error: text"``"""
    page_errors: tuple[str, ...]
    """uncaught exceptions thrown by the page's scripts"""
    dialogs: tuple[str, ...]
    """alerts, confirms and prompts the page opened (a sign of unescaped user text run as script)"""
    images: int
    """how many ``<img>`` the page has (whether a page needs any is the caller's rule)"""
    broken_images: tuple[str, ...]
    """the start of the ``src`` of every image not loaded (incomplete or zero natural width)"""
    requests: tuple[str, ...]
    """every request that tried to leave the page (blocked): anything but the page itself"""

    @property
    def problems(self) -> tuple[str, ...]:
        """Each failure as a sentence; empty when the page is fine."""
        found: list[str] = []
        if not self.title.strip():
            found.append("the page has no <title>")
        if not any(h.strip() for h in self.headings):
            found.append("the page has no <h1> heading")
        found += [f"console {message}" for message in self.console]
        found += [f"page error: {error}" for error in self.page_errors]
        found += [f"dialog opened: {dialog}" for dialog in self.dialogs]
        found += [f"image not loaded: {src}" for src in self.broken_images]
        found += [f"request leaves the page: {url}" for url in self.requests]
        return tuple(found)


def check_page(browser: Browser, page_file: Path, screenshot: Path | None = None) -> PageCheck:
    """Load ``page_file`` in a fresh browser context, block every request but the page itself, and report.

    ``data:`` URIs never reach the network layer, so what is routed at all is either the page's
    own ``file://`` URL or something the page fetches, which a self-contained report must not do.
    When ``screenshot`` is given, a full-page PNG of the rendered page is written there.
    """
    url = page_file.resolve().as_uri()
    console: list[str] = []
    page_errors: list[str] = []
    dialogs: list[str] = []
    requests: list[str] = []

    def only_the_page(route: Route) -> None:
        requested = route.request.url
        if requested == url or requested.startswith("data:"):
            route.continue_()
        else:
            requests.append(requested[:200])
            route.abort()

    def noisy(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(f"{message.type}: {message.text}")

    def opened(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type} {dialog.message}")
        dialog.dismiss()

    # A laptop screen in a design review; the screenshot then extends to the full page height.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route("**/*", only_the_page)
        page = context.new_page()
        page.on("console", noisy)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("dialog", opened)
        page.goto(url, wait_until="load")
        images = page.evaluate(_IMAGES_JS)
        check = PageCheck(
            url=url,
            title=page.title(),
            headings=tuple(page.locator("h1").all_inner_texts()),
            console=tuple(console),
            page_errors=tuple(page_errors),
            dialogs=tuple(dialogs),
            images=len(images),
            broken_images=tuple(src[:60] for src, complete, width in images if not (complete and width > 0)),
            requests=tuple(requests),
        )
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=screenshot, full_page=True)
    finally:
        context.close()
    return check
