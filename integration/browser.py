"""A real browser for the HTML report's tests: Debian's Chromium, headless, driven by selenium through
Debian's chromedriver (scripts/setup-engine installs both; nothing is downloaded). It records what the
page logs to the console and every request it makes, so a test can fail on either."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def available() -> str | None:
    """None when the browser can run here, else what is missing."""
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists() and not shutil.which(Path(exe).name):
            return f"{exe} missing (scripts/setup-engine installs Debian's chromium and chromium-driver)"
    return None


class Page:
    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def open(self, path: Path) -> None:
        """Load a file; what the browser did before (its own start page) is left out of the logs."""
        self.driver.get_log("performance")
        self.driver.get_log("browser")
        self.driver.get(path.resolve().as_uri())

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.driver.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]

    def requests(self) -> list[str]:
        """Every URL the page asked for, other than the page itself and data: URLs."""
        out = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                url = msg["params"]["request"]["url"]
                if not url.startswith(("data:", "file:")):
                    out.append(url)
        return out


@contextmanager
def chromium(tmp: Path, width: int = 1280, height: int = 800) -> Iterator[Page]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", f"--window-size={width},{height}",
                f"--user-data-dir={tmp / 'chromium-profile'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or CHROMEDRIVER),
                              options=opts)
    try:
        driver.set_window_size(width, height)
        yield Page(driver)
    finally:
        driver.quit()
