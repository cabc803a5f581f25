"""The portal in a real browser: Debian's Chromium driven by Playwright against a live server.

A participant logs in, registers a site, issues and revokes a key, opens a target and sees
its light curve drawn, follows a frame to its preview; no request leaves the server.
Screenshots of every page, desktop and 420 px wide, go to ``DATAS_SCREENSHOT_DIR``
(default ``var/screenshots``).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.portal.factories import SURVEY_POINTS, add_survey_points, build_portal_world

CHROMIUM = os.environ.get("DATAS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("DATAS_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PASSWORD = "a long test pass phrase"
CLOCK_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"Chromium is not installed at {CHROMIUM} "
                                                          "(scripts/services.sh installs it)"),
]


@pytest.fixture
def browser():
    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
    # (and would open a second, never-closed connection) while it runs: tests create their
    # data before asking for the browser.
    from playwright.sync_api import sync_playwright

    # Under scripts/moved_clock.sh the test process runs with libfaketime preloaded; Chromium
    # (and Playwright's driver) hang under it, so they start with the real clock. The server
    # keeps the moved one: only it decides what the pages say.
    moved = {name: os.environ.pop(name) for name in CLOCK_VARIABLES if name in os.environ}
    try:
        playwright = sync_playwright().start()
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    finally:
        os.environ.update(moved)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def participant():
    world = build_portal_world()
    add_survey_points(world.a_target)
    world.a_observer.set_password(PASSWORD)
    world.a_observer.save()
    return world


def shoot(page, name: str) -> None:
    """Screenshots of the page as it is, full length, desktop then 420 px wide."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_timeout(150)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})
    page.wait_for_timeout(600)  # Plotly resizes, and moves long legends below the plot (debounced)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-420.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 440, f"{name} is {width} px wide at 420 px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_participant_journey_in_chromium(live_server, participant, browser):
    world = participant
    server = urlsplit(live_server.url).netloc
    requests: list[str] = []
    failures: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: failures.append(f"{response.status} {response.url}")
            if response.status >= 500 else None)
    page.on("pageerror", lambda error: failures.append(f"script error: {error}"))

    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    shoot(page, "01-login")
    page.get_by_label("Username").fill("a_observer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.wait_for_selector("text=planning…", state="detached", timeout=30_000)
    page.wait_for_selector("#map .main-svg", timeout=30_000)
    assert page.get_by_role("heading", name="Sites").is_visible()
    shoot(page, "02-dashboard")

    # Register a site from My observatory
    page.get_by_role("link", name="My observatory").click()
    shoot(page, "03-my-observatory")
    page.get_by_role("link", name="Register a site").click()
    page.get_by_label("Name").fill("Browser Backyard")
    page.get_by_label("Latitude").fill("47.37")
    page.get_by_label("Longitude").fill("8.54")
    page.get_by_label("Timezone").fill("Europe/Zurich")
    page.get_by_label("Filters").fill("L, V")
    shoot(page, "04-register-site")
    page.get_by_role("button", name="Register site").click()
    page.wait_for_url(re.compile(r".*/sites/\d+/$"))
    assert page.get_by_role("heading", name=re.compile("Browser Backyard")).is_visible()

    # Issue a key: shown once; then revoke it
    page.get_by_label("Label").fill("observatory PC")
    page.get_by_role("button", name="Issue a new key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("dsk_")
    page.wait_for_selector("#horizon .main-svg")
    shoot(page, "05-site")
    page.get_by_role("button", name=re.compile("Revoke key")).click()
    assert page.get_by_text(re.compile("revoked")).first.is_visible()
    assert key not in page.content()

    # A target's light curve, drawn by Plotly from the JSON endpoint
    page.goto(f"{live_server.url}/targets/")
    shoot(page, "06-targets")
    page.get_by_role("link", name="Delta Cephei").click()
    page.wait_for_selector("#lightcurve .scatterlayer .trace", timeout=30_000)
    points = page.locator("#lightcurve .scatterlayer .point").count()
    assert points >= 40 + len(SURVEY_POINTS)  # 30 calibrated + 10 instrumental + the survey's
    legend = page.locator("#lightcurve .legendtext")
    assert legend.filter(has_text="instrumental").count() == 1
    assert legend.filter(has_text="upper limit").count() == 1 and legend.filter(has_text="ZTF, calibrated").count() == 2
    page.wait_for_selector("#altitude .main-svg")
    shoot(page, "07-target")

    # Follow a frame to its preview
    page.locator(f"a[href='/frames/{world.a_frame.pk}/']").first.click()
    page.wait_for_url(f"{live_server.url}/frames/{world.a_frame.pk}/")
    preview = page.locator("img#preview")
    preview.wait_for()
    assert page.evaluate("document.getElementById('preview').naturalWidth") == 512
    shoot(page, "08-frame")

    page.goto(f"{live_server.url}/frames/")
    shoot(page, "09-frames")
    page.goto(f"{live_server.url}/campaigns/")
    shoot(page, "09b-campaigns")
    page.goto(f"{live_server.url}/campaigns/{world.a_campaign.pk}/")
    shoot(page, "10-campaign")
    page.goto(f"{live_server.url}/sites/{world.a_site.pk}/")
    page.wait_for_selector("#quality .main-svg")
    shoot(page, "11-site-with-data")

    # The keyboard reaches the page: the skip link first, with a visible focus ring.
    page.goto(f"{live_server.url}/targets/")
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.textContent.trim(), "
                            "getComputedStyle(document.activeElement).outlineStyle]")
    assert focused[0].lower().startswith("skip") and focused[1] != "none", focused

    outside = [url for url in requests if urlsplit(url).netloc != server and not url.startswith("data:")]
    assert not outside, f"requests left the server: {outside}"
    assert any(url.endswith("/static/vendor/plotly.min.js") for url in requests)
    assert not failures, failures
