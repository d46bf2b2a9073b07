"""Headless Chromium (Debian's chromium + chromium-driver) driven by selenium for the web page's
tests, plus the accessibility check (axe-core from the npm registry, cached by scripts/fetch-axe
and injected here: the station never serves it)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parent.parent
PHONE, DESKTOP = 390, 1280


def chromium(width: int = DESKTOP, height: int = 1000) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--no-default-browser-check",
                # loopback only: no proxy, no component updates, no background requests
                "--no-proxy-server", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--hide-scrollbars", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})   # script errors, CSP reports
    # the distribution's driver, given by path: selenium's manager never downloads one
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    return driver


def page_errors(driver) -> list[str]:
    """Script errors and Content-Security-Policy violations the browser logged since the last call
    (an API answer of 4xx is logged too, as "Failed to load resource": expected, left out)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]


def wait(driver, predicate, timeout: float = 20.0, what: str = "the page"):
    # a page that reloads (log-out) replaces its elements: look again on the next poll
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(
        lambda d: _detached_is_not_yet(predicate, d), message=f"waiting for {what}")


def _detached_is_not_yet(predicate, driver):
    """Mid-reload chromedriver sometimes reports an element the page just replaced as a plain
    WebDriverException ("Node with given id does not belong to the document", seen in a CI run)
    instead of a stale element: the same thing, so look again on the next poll."""
    try:
        return predicate(driver)
    except StaleElementReferenceException:
        raise
    except WebDriverException as e:
        if "does not belong to the document" in str(e.msg or ""):
            return False
        raise


def by_id(driver, ident: str):
    return driver.find_element(By.ID, ident)


def text_of(driver, ident: str) -> str:
    return by_id(driver, ident).text


def visible(driver, ident: str) -> bool:
    found = driver.find_elements(By.ID, ident)
    return bool(found) and found[0].is_displayed()


def fill(driver, ident: str, value: str) -> None:
    el = by_id(driver, ident)
    el.clear()
    el.send_keys(value)


def wait_text(driver, ident: str, needle: str, timeout: float = 20.0) -> str:
    wait(driver, lambda d: needle in text_of(d, ident), timeout, f"{needle!r} in #{ident}")
    return text_of(driver, ident)


def tab_to(driver, ident: str, limit: int = 80) -> None:
    """Press Tab (keyboard only) until the element has the focus."""
    for _ in range(limit):
        if driver.execute_script("return document.activeElement && document.activeElement.id") == ident:
            return
        driver.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"#{ident} not reached with Tab in {limit} presses")


def press(driver, key: str) -> None:
    driver.switch_to.active_element.send_keys(key)


def axe_source() -> str:
    path = subprocess.run([str(REPO / "scripts" / "fetch-axe")], capture_output=True, text=True,
                          check=True, timeout=180).stdout.strip()
    return Path(path).read_text()


def axe_violations(driver, source: str) -> list[dict]:
    """WCAG 2.x A and AA rules of axe-core on the page as it is now."""
    driver.execute_script(source)
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => done(r.violations.map(v => ({id: v.id, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))"
        ".catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));")


def screenshot(driver, name: str, width: int, height: int | None = None) -> Path:
    """The page from its top at `width` CSS pixels (the whole page when `height` is None), into
    docs/ when DOORSTATION_WEB_SCREENSHOTS=docs (the README shows those), else into $TMPDIR."""
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(2):     # the height depends on the width (text wraps)
        full = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
        driver.set_window_size(width, min(max(height or full, 600), 6000))
    driver.execute_script("window.scrollTo(0, 0)")
    target = (REPO / "docs" if os.environ.get("DOORSTATION_WEB_SCREENSHOTS") == "docs"
              else Path(os.environ.get("TMPDIR", "/tmp")))
    path = target / f"web-{name}.png"
    driver.save_screenshot(str(path))
    return path
