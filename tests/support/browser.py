"""Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (PyPI
`playwright`; no browser download), each test with a fresh user-data directory, and where the
screenshots go."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, ViewportSize, sync_playwright

from tests.support.processes import REPO_ROOT, require

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 768, "height": 1024}
REPORT_DIR = Path(os.environ.get("BROWSER_REPORT_DIR", REPO_ROOT / "reports" / "browser"))
DOCS_IMG = REPO_ROOT / "docs" / "img"


def require_chromium() -> None:
    require(
        CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK),
        f"Chromium at {CHROMIUM}",
        "apt-get install -y chromium (or set CHROMIUM_PATH)",
    )


@contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile, 1280x800, removed afterwards."""
    require_chromium()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport=DESKTOP,
            )
            context.set_default_timeout(15_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG into the report directory; with UPDATE_DOCS_SCREENSHOTS=1 into docs/img too
    (the README's pictures), so ordinary runs leave the working tree clean."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    target = REPORT_DIR / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS_IMG / f"{name}.png")
    return target
