"""Browser journeys: real Chromium (Playwright, sync API) against a live server, a real
Celery worker and the test gateway.

The server is pytest-django's `live_server` (a thread of this process, on the test
database). The worker is its own process, pointed at the same test database and
media folder, and at the live server as SITE_URL: the test gateway delivers its
webhooks from a Celery task to SITE_URL/webhooks/stripe/, so the journeys run the
same webhook path as production.

Nothing here downloads a browser: Debian's Chromium is launched by path. Where it is
missing, the journeys are not collected and the run says so once, at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(settings.BASE_DIR) / "var" / "e2e"
TIMEOUT_MS = 15_000  # any one step; generation and webhooks get their own waits


def _why_not() -> str | None:
    """Why the journeys cannot run on this machine, or None when they can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (the dev extra)"
    return None


SKIP_REASON = _why_not()
if SKIP_REASON:
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter):
    if SKIP_REASON:
        terminalreporter.write_line(
            f"e2e: SKIPPED the browser journeys (tests/e2e/): {SKIP_REASON}", yellow=True
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Journeys last: they are the slowest, and the unit tests say more when they fail."""
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid.replace(os.sep, "/"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --- The live site: server, worker, media -------------------------------------------


@pytest.fixture(scope="session")
def e2e_media(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-media")


def _test_database_url() -> str:
    """DATABASE_URL for the worker: the test database pytest-django made (the last part
    of the URL's path is the database's name, also in the socket form that the
    embedded PostgreSQL of `make test` uses)."""
    url = urlsplit(os.environ["DATABASE_URL"])
    path = url.path.rsplit("/", 1)[0] + "/" + quote(settings.DATABASES["default"]["NAME"])
    return urlunsplit(url._replace(path=path))


@pytest.fixture(scope="session")
def e2e_worker(django_db_setup, live_server, e2e_media):
    """A real Celery worker on the test database, delivering webhooks to the live server."""
    from soundstudio.celery import app
    from tests.workers import celery_worker

    # Tasks queued by earlier tests (their rows are long gone) must not run now.
    app.control.purge()
    with celery_worker(
        queue="celery",
        DATABASE_URL=_test_database_url(),
        SITE_URL=live_server.url,
        MEDIA_ROOT=str(e2e_media),
        STRIPE_SECRET_KEY="",
        STRIPE_API_BASE="",
    ) as process:
        yield process
    app.control.purge()


@pytest.fixture
def site(live_server, e2e_worker, e2e_media, settings):
    """The live site's base URL, with this process's settings matching the worker's."""
    settings.MEDIA_ROOT = e2e_media
    settings.SITE_URL = live_server.url
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = ""
    assert e2e_worker.poll() is None, "the Celery worker died"
    return live_server.url


# --- The browser -------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run; each journey opens its own contexts in it."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio event loop running in this (the main)
    # thread, so from here on Django sees a "running event loop" and refuses ORM calls
    # from test bodies and from pytest-django's flush as async-unsafe
    # (SynchronousOnlyOperation). Nothing async touches the database: test bodies are
    # plain synchronous code and the live server answers from threads of its own. So
    # the check is off while the browser runs (the journeys run last, see above).
    unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if unsafe is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe


class Journey:
    """One journey's browser contexts (one per person), screenshots and failure dumps."""

    def __init__(self, browser, base_url: str, folder: Path):
        self.browser = browser
        self.base_url = base_url
        self.folder = folder
        self.pages: dict[str, object] = {}
        self.console: dict[str, list[str]] = {}
        self.step = 0

    def person(self, name: str):
        """A fresh browser (context and page) for one person in the journey."""
        context = self.browser.new_context(base_url=self.base_url, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        lines = self.console[name] = []
        page.on("console", lambda message: lines.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: lines.append(f"pageerror: {error}"))
        self.pages[name] = page
        return page

    def shot(self, page, name: str) -> None:
        """Save a screenshot of one main step, numbered in order."""
        self.step += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        page.screenshot(path=str(self.folder / f"{self.step:02d}-{slug}.png"), full_page=True)

    def dump(self) -> None:
        """A failed journey: every page's HTML, console log and a last screenshot."""
        for name, page in self.pages.items():
            try:
                (self.folder / f"failed-{name}.html").write_text(page.content(), "utf-8")
                page.screenshot(path=str(self.folder / f"failed-{name}.png"), full_page=True)
            except Exception as exc:  # a crashed page still gets its console log
                (self.folder / f"failed-{name}.html").write_text(f"<!-- {exc} -->", "utf-8")
            (self.folder / f"failed-{name}.console.log").write_text(
                "\n".join(self.console[name]) + "\n", "utf-8"
            )

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()


@pytest.fixture
def journey(request, browser, site):
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    trip = Journey(browser, site, folder)
    yield trip
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed:
        trip.dump()
    trip.close()


# --- Helpers the journeys share ------------------------------------------------------


def eventually(check, *, timeout: float = 30.0, every: float = 0.25, what: str = "it"):
    """Poll `check()` until it returns something truthy (webhooks arrive from the worker)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


PASSWORD = "correct horse battery staple"  # noqa: S105 - the factories' test password


def log_in(page, email: str, *, password: str = PASSWORD, path: str = "/accounts/login/"):
    """Log in through the site's form (or the admin's, with path="/admin/login/")."""
    page.goto(path)
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(password)
    page.locator("form [type=submit]").first.click()
    page.wait_for_load_state()
