"""A maintainer's way through a bad release, in Debian's Chromium driven by Playwright.

Log in; open release 0.26.2 and see test-packages-firefox marked as the blocker and
deploy-release as never run; open the incident, add a note, resolve it; open the postmortem
and download its Markdown. Every page must load without a console error (the
Content-Security-Policy reports inline code as one) and without a request leaving the
machine. Screenshots of every page, at 1280 px and on a phone, go to var/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User

from incidents.models import Incident
from releases import projector
from releases.models import StreamEvent
from releases.scenarios.pyodide import POLICY, release_0_26_2
from releases.services import policy_set
from tests.pages import SECRETS, person

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every form field has a label, there is one h1, and headings never skip a level.
PAGE_CHECKS = """() => {
  const problems = [];
  for (const field of document.querySelectorAll('input, select, textarea')) {
    if (['hidden', 'submit', 'button'].includes(field.type)) continue;
    const named = (field.labels && field.labels.length) || field.getAttribute('aria-label')
      || field.getAttribute('aria-labelledby');
    if (!named) problems.push('no label for ' + (field.name || field.id));
  }
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')];
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  let last = 0;
  for (const heading of headings) {
    const level = Number(heading.tagName[1]);
    if (level > last + 1) {
      problems.push('heading skips to ' + heading.tagName + ': ' + heading.textContent.trim());
    }
    last = level;
  }
  if (typeof htmx !== 'object') problems.push('htmx did not load');
  return problems;
}"""


class Browser:
    """Chromium with a console and network watch; everything it saw wrong is in `problems`."""

    def __init__(self, playwright: Any, base_url: str) -> None:
        self.base_url = base_url
        self.problems: list[str] = []
        self.browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

    def page(self, viewport: dict[str, int]) -> Any:
        """Return a new page in a fresh context, watched."""
        context = self.browser.new_context(viewport=viewport, accept_downloads=True)
        context.route("**/*", self._only_local)
        page = context.new_page()
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        return page

    def _only_local(self, route: Any) -> None:
        host = urlparse(route.request.url).hostname
        if host in LOCAL_HOSTS:
            route.continue_()
            return
        self.problems.append(f"request left the machine: {route.request.url}")
        route.abort()

    def _console(self, page: Any, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"{page.url}: console error: {message.text}")

    def visit(self, page: Any, path: str, shot: str) -> None:
        """Open a page, check it, and keep a screenshot of it."""
        response = page.goto(self.base_url + path)
        assert response is not None, path
        assert response.status == 200, path
        self.check(page, shot)

    def check(self, page: Any, shot: str) -> None:
        """Check the page in view and keep a screenshot of it."""
        page.wait_for_load_state("networkidle")
        problems = page.evaluate(PAGE_CHECKS)
        assert problems == [], (page.url, problems)
        width = page.viewport_size["width"]
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{page.url} is {overflow} px wider than a {width} px screen"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # caret="initial": hiding the caret would inject a style the CSP rightly refuses.
        page.screenshot(
            path=str(SCREENSHOTS / f"{shot}-{width}.png"), full_page=True, caret="initial"
        )


@dataclass(frozen=True)
class Story:
    """What the browser needs to know about the data, read before it starts."""

    incident_id: str
    incident_title: str
    first_position: int


@pytest.fixture
def blocked_release(post: Any, repository: Any) -> Story:
    """Return 0.26.2 as 26 July left it: blocked, half shipped, its incident open."""
    policy_set(repository=repository, document=POLICY, actor="test")
    for step in release_0_26_2():
        assert post(step.delivery(SECRETS[step.platform])).status_code == 202
    projector.catch_up()
    incident = Incident.objects.get()
    first = StreamEvent.objects.order_by("position").values_list("position", flat=True)[0]
    return Story(str(incident.pk), incident.title, first)


@pytest.fixture
def maintainer_account(db: None) -> User:
    return person("mara", "maintainers")


@pytest.fixture
def chromium(
    live_server: Any, blocked_release: Story, maintainer_account: User
) -> Iterator[Browser]:
    """Return Chromium, started once the data is in place: no ORM call runs beside it."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not at /usr/bin/chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = Browser(playwright, live_server.url)
        try:
            yield browser
        finally:
            browser.browser.close()
    assert not browser.problems, "\n".join(browser.problems)


def log_in(browser: Browser, page: Any) -> None:
    page.goto(browser.base_url + "/")
    assert "/login/" in page.url
    browser.check(page, "00-login")
    page.get_by_label("Username").fill("mara")
    page.get_by_label("Password").fill("pw-mara")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(browser.base_url + "/")


def test_a_maintainer_takes_the_blocked_release_to_its_postmortem(
    blocked_release, chromium, tmp_path
):
    story = blocked_release
    page = chromium.page(DESKTOP)
    log_in(chromium, page)
    chromium.check(page, "01-dashboard")
    in_flight = page.locator("section", has=page.locator("#in-flight-heading"))
    assert "Blocked" in in_flight.inner_text()

    # The release: the blocker and the deploy that never ran, beside the gate's answer.
    in_flight.get_by_role("link", name="0.26.2").click()
    page.wait_for_url(re.compile(r"/releases/pyodide/pyodide/0\.26\.2/$"))
    chromium.check(page, "02-release")
    blocker = page.locator(".chain__blocker").text_content()
    assert "Blocker" in blocker
    assert "test-packages-firefox" in blocker
    never_ran = page.locator(".chain__deploy").text_content()
    assert "Never ran" in never_ran
    assert "deploy-release" in never_ran
    assert "Not deployable" in page.locator(".gate").inner_text()
    bar = page.locator("svg.swimlane g.bar--blocker title")
    assert "test-packages-firefox" in bar.text_content()
    assert page.locator("svg.swimlane g.bar--never-ran").count() == 1
    assert "⚠ test-packages-firefox" in page.locator("svg.swimlane").text_content()
    # While the release is in flight, the live part refreshes itself.
    with page.expect_response(
        lambda r: (
            "/releases/pyodide/pyodide/0.26.2/" in r.url
            and r.request.headers.get("hx-request") == "true"
        ),
        timeout=9000,
    ) as refresh:
        pass
    assert refresh.value.status == 200
    assert page.locator("#release-live .chain__blocker").count() == 1

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # The incident: add a note, then resolve it.
    page.get_by_role("link", name=story.incident_title).first.click()
    page.wait_for_url(re.compile(rf"/incidents/{story.incident_id}/$"))
    chromium.check(page, "03-incident")
    page.get_by_label("Note", exact=True).fill("Firefox timed out in duckdb; rerunning the job.")
    page.get_by_role("button", name="Add note").click()
    page.locator(".timeline", has_text="note (mara): Firefox timed out in duckdb").wait_for()
    assert "Note added." in page.locator(".messages").inner_text()
    page.get_by_label("New status").select_option("resolved")
    page.get_by_label("Note (why, optional)").fill("Rerun from failed deployed it.")
    page.get_by_role("button", name="Change status").click()
    page.locator(".release-state", has_text="Resolved").wait_for()
    chromium.check(page, "04-incident-resolved")

    # The postmortem: write it (no worker runs here), read it, download the Markdown.
    page.get_by_role("link", name="Postmortem").first.click()
    page.wait_for_url(re.compile(r"/postmortem/$"))
    chromium.check(page, "05-postmortem-waiting")
    page.get_by_role("button", name="Write it now").click()
    page.locator("article.postmortem").wait_for()
    chromium.check(page, "06-postmortem")
    assert "test-packages-firefox" in page.locator("article.postmortem").inner_text()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download Markdown (.md)").click()
    download = download_info.value
    assert download.suggested_filename == "postmortem-pyodide-pyodide-0.26.2-r1.md"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    markdown = saved.read_text()
    assert markdown.startswith("# Postmortem: pyodide/pyodide 0.26.2: deploy-release is blocked")
    assert "note (mara): Firefox timed out in duckdb; rerunning the job." in markdown
    assert "status **resolved**" in markdown

    # The other pages load clean too.
    for path, shot in [
        ("/releases/", "07-releases"),
        ("/incidents/", "08-incidents"),
        ("/lessons/", "09-lessons"),
        ("/stream/", "10-stream"),
        (f"/stream/{story.first_position}/", "11-stream-event"),
        ("/settings/", "12-settings"),
        ("/settings/repositories/pyodide/pyodide/", "13-settings-repository"),
        ("/api/docs/", "14-api-docs"),
    ]:
        if path == "/api/docs/":
            page.goto(chromium.base_url + path)
            page.locator(".swagger-ui .info").wait_for()
            page.screenshot(
                path=str(SCREENSHOTS / f"{shot}-1280.png"), full_page=True, caret="initial"
            )
            continue
        chromium.visit(page, path, shot)


def test_the_pages_work_on_a_phone(blocked_release, chromium):
    page = chromium.page(PHONE)
    log_in(chromium, page)
    chromium.check(page, "01-dashboard")
    for path, shot in [
        ("/releases/pyodide/pyodide/0.26.2/", "02-release"),
        (f"/incidents/{blocked_release.incident_id}/", "03-incident"),
        ("/stream/", "10-stream"),
        ("/settings/repositories/pyodide/pyodide/", "13-settings-repository"),
    ]:
        chromium.visit(page, path, shot)
    # The swimlanes scroll sideways inside their own box, not the page.
    box = page.goto(chromium.base_url + "/releases/pyodide/pyodide/0.26.2/")
    assert box is not None
    scroller = page.locator(".swimlane-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
