"""Real-browser tests: Playwright driving Debian's chromium against a live server.

Playwright cannot download its own browser here, so chromium is launched by
path. Outside CI a missing chromium skips these tests with the reason; with
REQUIRE_BROWSER=1 (set by .ci/run) they fail instead.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make to create their starting users are still plain synchronous code.
    # Only while this package runs: it must not leak into other tests' subprocesses.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def _chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


def _require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install {' '.join(missing)})"
        if os.environ.get("REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    # Package scope: Playwright's event loop must be gone before the non-browser tests that
    # run after this package (Django refuses ORM calls beside a running loop).
    _require_tools("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def oathtool():
    _require_tools("oathtool")
    return shutil.which("oathtool")


@pytest.fixture
def app_code(oathtool):
    """app_code(secret, seconds=0): what an authenticator app shows, from Debian's oathtool.

    A positive `seconds` is a phone whose clock runs ahead. Journeys that need
    several fresh codes in a row take them 30 s apart this way (each one a new
    time step inside the +-1 window) instead of sleeping until the next step.
    """

    def code(secret: str, *, seconds: int = 0) -> str:
        moment = f"now {'+' if seconds >= 0 else '-'} {abs(seconds)} seconds"
        result = subprocess.run(
            [oathtool, "--totp", "-b", secret, "-N", moment],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return result.stdout.strip()

    return code


DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=["desktop"])
def viewport(request) -> dict:
    return {"desktop": DESKTOP, "phone": PHONE}[request.param]


@pytest.fixture
def js_enabled() -> bool:
    """Journeys override this with @pytest.mark.parametrize("js_enabled", JS_MODES, ...)."""
    return True


@pytest.fixture
def context(browser, viewport, js_enabled):
    # java_script_enabled=False is a real no-JS browser: htmx, portal.js and
    # every inline handler are off, so only the full-page fallbacks remain.
    context = browser.new_context(
        viewport=viewport, accept_downloads=True, java_script_enabled=js_enabled
    )
    yield context
    context.close()


@pytest.fixture
def page(context, live_server):
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.base_url = live_server.url
    yield page
    page.close()


@pytest.fixture
def another_browser(browser, viewport, js_enabled, live_server):
    """another_browser(): a page in a browser of its own (its own cookies and session),
    like the same person's second computer; the same size and JavaScript as `page`."""
    contexts = []

    def open_page():
        context = browser.new_context(viewport=viewport, java_script_enabled=js_enabled)
        contexts.append(context)
        other = context.new_page()
        other.set_default_timeout(10_000)
        other.base_url = live_server.url
        return other

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def audited_page(page, scripts):
    """The page for an axe audit. scripts=False blocks the portal's own scripts (htmx,
    portal.js) while JavaScript stays on for axe: the page renders as without JavaScript."""
    if not scripts:
        page.route(re.compile(r"\.js(\?.*)?$"), lambda route: route.abort())
    return page


@pytest.fixture
def screenshot():
    """screenshot(page, name): saves artifacts/screenshots/<name>.png (git-ignored)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, **kwargs) -> Path:
        from playwright.sync_api import Error

        path = SCREENSHOT_DIR / f"{name}.png"
        try:
            page.screenshot(path=str(path), **kwargs)
        except Error as error:
            # Chromium cannot capture a page that is between two documents (CI, once:
            # "Unable to capture screenshot"); the test asserts what the page must show
            # before it shoots, so once the next document has loaded, shoot again.
            if "Unable to capture screenshot" not in str(error):
                raise
            page.wait_for_load_state("load")
            page.screenshot(path=str(path), **kwargs)
        return path

    return take


@pytest.fixture
def step_shots(screenshot, js_enabled):
    """shoot(page, name): one step of a journey at desktop 1280 and phone 390 widths.

    Saved as <name>-desktop.png and <name>-phone.png (<name>-nojs-desktop.png
    without JavaScript). The phone shot is full-page so nothing below the fold
    hides a broken layout, and the page must not be wider than the phone
    (WCAG 1.4.10 reflow: no sideways scrolling).
    """

    def shoot(page, name: str) -> None:
        base = name if js_enabled else f"{name}-nojs"
        original = page.viewport_size
        page.set_viewport_size(DESKTOP)
        screenshot(page, f"{base}-desktop", animations="disabled")
        if not js_enabled:
            # The no-JS pages share the JS pages' responsive CSS; one width is enough
            # to see the full-page fallbacks, and it keeps the suite inside its budget.
            page.set_viewport_size(original)
            return
        page.set_viewport_size(PHONE)
        # Full page, unless a modal is open: the modal and its backdrop fill the
        # viewport and a taller capture would show the page undimmed below it.
        modal_open = page.locator("dialog[open]").count() > 0
        screenshot(page, f"{base}-phone", full_page=not modal_open, animations="disabled")
        page_width = page.evaluate("document.documentElement.scrollWidth")
        page.set_viewport_size(original)
        assert page_width <= PHONE["width"], f"{name}: the page is {page_width}px wide on a phone"

    return shoot


@pytest.fixture
def webauthn_origin(settings, live_server) -> str:
    """Passkeys for the live server: its origin is the one the server accepts.

    WebAuthn refuses an IP address as relying party id, so the browser must open the
    server as http://localhost:<port> (browsers allow WebAuthn over plain http there
    only); pytest-django's live server does. The settings are read at call time, so
    the live server's thread sees them.
    """
    from urllib.parse import urlsplit

    assert urlsplit(live_server.url).hostname == "localhost", live_server.url
    settings.TWOFACTOR_WEBAUTHN_RP_ID = "localhost"
    settings.TWOFACTOR_WEBAUTHN_ORIGINS = [live_server.url]
    return live_server.url


# Every navigator.credentials.get() of a page, in window.__webauthnRequests as
# {mediation, state}: "waiting" until the authenticator answers ("answered") or the
# request ends with an error (its name: "AbortError", "NotAllowedError"...). Only
# watched, never changed: it lets a journey wait for the login page's autofill request.
WEBAUTHN_RECORDER = """
(() => {
  if (!navigator.credentials || !navigator.credentials.get) { return; }
  const get = navigator.credentials.get.bind(navigator.credentials);
  window.__webauthnRequests = [];
  navigator.credentials.get = (options) => {
    const entry = {mediation: (options && options.mediation) || "optional", state: "waiting"};
    window.__webauthnRequests.push(entry);
    const answer = get(options);
    answer.then(() => { entry.state = "answered"; }, (error) => { entry.state = error.name; });
    return answer;
  };
})();
"""


@pytest.fixture
def authenticators(page, webauthn_origin):
    """authenticators(steps.PASSKEY_AUTHENTICATOR): a virtual authenticator in the page's tab."""
    from tests.e2e.steps import VirtualAuthenticator

    page.add_init_script(WEBAUTHN_RECORDER)

    def attach(options: dict) -> VirtualAuthenticator:
        return VirtualAuthenticator(page, options)

    return attach


@pytest.fixture
def user_with_key(user_with_totp, webauthn_origin):
    """(user, secret, key): Ann with the authenticator app and a security key called
    "Blue key", added through the server's own ceremony by a software authenticator
    (for pages that only need the key to exist: without JavaScript no browser adds one)."""
    from tests.twofactor.soft_authenticator import SoftAuthenticator
    from twofactor import services

    user, secret = user_with_totp
    session: dict = {}
    options = services.begin_registration(user=user, session=session)
    key = services.finish_registration(
        user=user,
        session=session,
        response_json=SoftAuthenticator().create(options, origin=webauthn_origin),
        name="Blue key",
    )
    return user, secret, key
