"""Headless Chromium for the report's browser test, and the README's screenshot.

Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them), driven by
Selenium; nothing is downloaded at run time. Run as a script, it writes a screenshot of the
report of the built-in sample::

    python tests/browser.py docs/report-china.png
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "install it with `make browser` (apt-get install chromium chromium-driver)"


def missing() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: {INSTALL_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A headless Chromium WebDriver with its console and network logs on, colours exactly
    sRGB and one device pixel per CSS pixel (so screenshots hold the image's own values)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kmeanscli-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--force-color-profile=srgb",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page's viewport exactly ``width`` × ``height`` CSS pixels."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )


def wait_for_images(driver, timeout: float = 20) -> None:
    """Wait until every image of the page has loaded (or failed to)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.src)"
        )
    )


def screenshot_sample(png: Path, html: Path | None = None) -> None:
    """Write ``kmeanscli report --sample``'s page and a 1280 px screenshot of its top,
    compressed to 128 colours with kmeanscli itself (PSNR about 41 dB, a third of the size)."""
    import subprocess

    from kmeanscli import QuantizeOptions, compress_file

    with tempfile.TemporaryDirectory() as tmp:
        page = html or Path(tmp) / "report.html"
        subprocess.run(
            [sys.executable, "-m", "kmeanscli", "report", "--sample", "-o", str(page), "-f"],
            check=True,
        )
        with chromium(1280, 1400) as driver:
            set_viewport(driver, 1280, 1400)
            driver.get(page.resolve().as_uri())
            wait_for_images(driver)
            driver.execute_script("document.querySelector('.zoom [data-zoom=\"0\"]').click()")
            shot = Path(tmp) / "shot.png"
            shot.write_bytes(driver.get_screenshot_as_png())
        compress_file(shot, png, QuantizeOptions(k=128), force=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/browser.py OUT.png")
    reason = missing()
    if reason:
        sys.exit(reason)
    screenshot_sample(Path(sys.argv[1]))
