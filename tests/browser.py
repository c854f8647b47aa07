"""Headless Chromium for the tests (Debian's chromium + chromedriver, driven by selenium).

Without them a browser test skips, unless ``CINEREC_REQUIRE_BROWSER=1`` (CI): then it
fails. Screenshots go to ``$CINEREC_SCREENSHOT_DIR`` (or the test's tmp folder).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cinerec._util import fs

CHROMIUM = os.environ.get("CINEREC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CINEREC_CHROMEDRIVER", "/usr/bin/chromedriver")


def missing(reason: str) -> None:
    if os.environ.get("CINEREC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and CINEREC_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(f"{reason} (apt-get install chromium chromium-driver; CI sets CINEREC_REQUIRE_BROWSER=1)")


def need_browser(*modules: str) -> None:
    """Skip (or, in CI, fail) unless selenium, ``modules`` and the browser are here."""
    for module in ("selenium", *modules):
        if importlib.util.find_spec(module) is None:
            missing(f"python package {module} is not installed (extras serve, serve-test)")
    for what, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            missing(f"{what} not found at {path}")


@contextlib.contextmanager
def chrome(profile: Path, window: str = "1360,1500") -> Iterator[Any]:
    """A headless Chromium with its console log readable (``driver.get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={window}", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    shot = Path(os.environ.get("CINEREC_SCREENSHOT_DIR") or tmp_path) / name
    fs.write_bytes(shot, driver.get_screenshot_as_png())
    print(f"\nscreenshot: {shot}")
    assert shot.stat().st_size > 10_000
    return shot


def severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
