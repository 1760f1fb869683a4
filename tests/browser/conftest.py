"""Browser fixtures: the session's test app served over HTTP, and Debian's Chromium driven by
Playwright (`playwright install` is not used; `make test` installs the `chromium` package).

The server runs in a background thread, each request in its own app context and database
session, as in production; the test keeps its own context for the factories, which commit, so
the data is there before the browser asks for a page.
"""

import threading
from pathlib import Path

import pytest
from flask import got_request_exception
from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: A cheap Android phone.
PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 1,
         "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


class _QuietHandler(WSGIRequestHandler):
    """No access log lines (errors are still logged)."""

    def log_request(self, *args, **kwargs):
        pass


class LiveServer:
    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        #: Exceptions the app raised while serving (each one would be a 500).
        self.errors: list[BaseException] = []
        self._app = app
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="live-server", daemon=True)

    def _record(self, sender, exception, **extra):
        self.errors.append(exception)

    def start(self):
        got_request_exception.connect(self._record, self._app)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        got_request_exception.disconnect(self._record, self._app)

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture(scope="session")
def live_server(_app):
    """The session's test app on http://127.0.0.1:<free port>; call it with a path for a URL."""
    server = LiveServer(_app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; `make test` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser, live_server, app):
    """new_page(java_script_enabled=True) → a page in a fresh 360×640 phone context.

    Depends on ``app`` so the tables are emptied after the test. At teardown, fails the test
    if the page threw a JavaScript error or the server raised an exception.
    """
    contexts, page_errors = [], []
    live_server.errors.clear()

    def make(java_script_enabled: bool = True, **options):
        context = browser.new_context(**{**PHONE, **options},
                                      java_script_enabled=java_script_enabled,
                                      base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: page_errors.append(error))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not live_server.errors, f"the server raised: {live_server.errors!r}"
    assert not page_errors, f"JavaScript errors: {page_errors!r}"


@pytest.fixture
def page(new_page):
    """A page with JavaScript on, 360×640 at scale 1, zh-CN."""
    return new_page()


@pytest.fixture
def login(live_server):
    """login(page, user) through the real form; returns the page, on the user's home."""
    from tests.conftest import PASSWORD

    def log_in(page, user, password=PASSWORD):
        page.goto(live_server("/login"))
        page.get_by_label("手机号").fill(user.phone)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    return log_in
