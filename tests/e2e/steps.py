"""What a person does in the portal, written once for every journey.

Everything goes through what is on the screen: labels, button and link names,
roles. The only URL ever typed is the start page.
"""

import io
import re
from urllib.parse import parse_qs, unquote, urlsplit

from playwright.sync_api import Locator, Page, expect

from tests.conftest import PASSWORD

BACKUP_CODE = re.compile(r"\b[a-z0-9]{5}-[a-z0-9]{5}\b")
JS_MODES = {"argvalues": [True, False], "ids": ["js", "nojs"]}


def start(page: Page) -> None:
    page.goto(page.base_url + "/")


def log_in_with_password(page: Page, email: str, password: str = PASSWORD) -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def enter_login_code(page: Page, code: str, *, trust_this_browser: bool = False) -> None:
    """The code step; `trust_this_browser` ticks "Don't ask for a code on this browser"."""
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_label("Verification code").fill(code)
    if trust_this_browser:
        page.get_by_label(TRUST_BOX).check()
    page.get_by_role("button", name="Log in").click()


TRUST_BOX = re.compile(r"Don't ask for a code on this browser for \d+ days?")


def open_account_menu(page: Page) -> Locator:
    page.get_by_role("button", name="Account menu").click()
    menu = page.locator("#account-menu")
    expect(menu).to_be_visible()
    return menu


def go_to_profile(page: Page) -> None:
    open_account_menu(page).get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


def log_out(page: Page) -> None:
    open_account_menu(page).get_by_role("button", name="Log out").click()
    # Django's logout page redirects to the login page (LOGOUT_REDIRECT_URL).
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def two_factor_section(page: Page) -> Locator:
    # Exact: the policy's banner is a region too, "Two-factor authentication required".
    return page.get_by_role("region", name="Two-Factor authentication", exact=True)


def open_dialog(page: Page, js_enabled: bool, opener: Locator, title: str | re.Pattern) -> Locator:
    """Click what opens a dialog; return where its content is.

    With JavaScript it must open as a modal <dialog> over My profile; without,
    the same content is a page of its own (the full-page fallback).
    """
    opener.click()
    if js_enabled:
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("heading", name=title, level=1)).to_be_visible()
        return dialog
    expect(page.get_by_role("dialog")).to_have_count(0)
    main = page.get_by_role("main")
    expect(main.get_by_role("heading", name=title, level=1)).to_be_visible()
    return main


def confirm_identity(scope: Locator, *, password: str = PASSWORD, code: str | None = None) -> None:
    """The sudo step: "Confirm it's you" with the password (and a code once 2FA is on)."""
    expect(scope.get_by_text("Confirm it's you first.")).to_be_visible()
    scope.get_by_label("Password").fill(password)
    if code is not None:
        scope.get_by_label("Verification code").fill(code)
    scope.get_by_role("button", name="Continue").click()


def decode_qr(png: bytes) -> str:
    """The text of the one QR code in a screenshot, read by zxing-cpp as a phone would: an
    authenticator app looks for QR codes only (a 1D reader may see a "barcode" in any QR)."""
    import zxingcpp
    from PIL import Image

    results = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert len(results) == 1, f"expected one QR code in the image, found {len(results)}"
    return results[0].text


def parse_otpauth(uri: str) -> dict:
    """The parts of an otpauth:// URI (Key URI Format) that a test checks."""
    parts = urlsplit(uri)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return {"scheme": parts.scheme, "type": parts.netloc, "label": unquote(parts.path[1:]), **query}


def scan_qr(dialog: Locator) -> dict:
    """Photograph the QR code on the screen and read it, like the phone app does."""
    image = dialog.get_by_role("img", name=re.compile("QR code"))
    expect(image).to_be_visible()
    return parse_otpauth(decode_qr(image.screenshot()))


def enable_two_factor(page: Page, js_enabled: bool, app_code) -> str:
    """From My profile: Enable 2FA, confirm the password, scan the QR, type the code.
    Returns the secret the QR held."""
    section = two_factor_section(page)
    dialog = open_dialog(
        page, js_enabled, section.get_by_role("link", name="Enable 2FA"), "Enable 2FA"
    )
    confirm_identity(dialog)
    secret = scan_qr(dialog)["secret"]
    dialog.get_by_label("Six-digit code").fill(app_code(secret))
    dialog.get_by_role("button", name="Check").click()
    store_first_backup_codes(page)
    expect(section.get_by_text("Activated", exact=True)).to_be_visible()
    return secret


def store_first_backup_codes(page: Page) -> list[str]:
    """Setup's last step: the five backup codes, "I have stored these codes", Done."""
    heading = page.get_by_role("heading", name="Two-factor authentication is on", level=1)
    expect(heading).to_be_visible()
    codes = page.get_by_role("list", name="Backup codes").get_by_role("listitem")
    expect(codes).to_have_count(5)
    shown = [text.strip() for text in codes.all_inner_texts()]
    page.get_by_label("I have stored these codes").check()
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    return shown


# --- Passkeys and security keys ----------------------------------------------------------

# Chromium's virtual authenticators (DevTools' WebAuthn domain), as a person's devices:
# a passkey in the laptop's screen lock (discoverable, verifies the user) and a plain USB
# security key (U2F: not discoverable, presence only). Presence is "touched" at once.
PASSKEY_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
SECURITY_KEY_AUTHENTICATOR = {
    "protocol": "u2f",
    "transport": "usb",
    "hasResidentKey": False,
    "hasUserVerification": False,
    "automaticPresenceSimulation": True,
}


class VirtualAuthenticator:
    """One authenticator attached to a page's browser tab; what it holds, as the browser
    sees it (the server's side is checked through the screen)."""

    def __init__(self, page: Page, options: dict) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        self.id = added["authenticatorId"]

    def credentials(self) -> list[dict]:
        answer = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return answer["credentials"]

    def touched(self, touched: bool) -> None:
        """Whether the person touches it (or picks it) when the browser asks.

        In chromium's virtual environment a passkey request runs without the browser's
        own UI: even the login page's autofill (conditional mediation) is answered at
        once, so a passkey that is "touched" signs in as soon as the login page opens,
        as if the person had picked it from the email box. Untouched, a request waits,
        as it does while a person types their password instead; a request that is
        already waiting stays so, and the next one is answered.
        """
        self.cdp.send(
            "WebAuthn.setAutomaticPresenceSimulation",
            {"authenticatorId": self.id, "enabled": touched},
        )


def keys_list(page: Page) -> Locator:
    """My profile's list of passkeys and security keys (absent while there is none)."""
    return two_factor_section(page).get_by_role("list", name="Passkeys and security keys")


def add_key(page: Page, *, code: str | None = None, sudo: bool = True) -> Locator:
    """From My profile: Add a passkey, confirm it's you (unless proven a moment ago),
    Continue (the authenticator answers); returns the dialog at "Passkey added" (or
    "Security key added")."""
    section = two_factor_section(page)
    dialog = open_dialog(
        page, True, section.get_by_role("link", name="Add a passkey"), "Add a passkey"
    )
    if sudo:
        confirm_identity(dialog, code=code)
    # The sudo step has the same title and a "Continue" of its own: wait for the add step.
    expect(
        dialog.get_by_text("When you continue, your browser asks where to save it")
    ).to_be_visible()
    dialog.get_by_role("button", name="Continue").click()
    added = re.compile(r"^(Passkey|Security key) added$")
    expect(dialog.get_by_role("heading", name=added, level=1)).to_be_visible()
    return dialog


def use_key_at_code_step(page: Page, authenticator: VirtualAuthenticator) -> None:
    """The code step of a user with a key: "Use a passkey or security key", touched."""
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    authenticator.touched(True)
    page.get_by_role("button", name="Use a passkey or security key").click()


def wait_for_autofill(page: Page) -> None:
    """On the login page, with the authenticator left alone: until the page's passkey
    autofill request (conditional mediation) waits at the authenticator, if it makes one.

    Chromium offers autofill only where an authenticator could answer it (a passkey, not
    a plain U2F key); a request that reached an untouched authenticator waits for good
    (a later touch does not answer it), so what is touched next is a new request.
    """
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    if page.evaluate("PublicKeyCredential.isConditionalMediationAvailable()"):
        _wait_until(
            page,
            "(window.__webauthnRequests || [])"
            ".some(r => r.mediation === 'conditional' && r.state === 'waiting')",
        )
        # Made by the page; a moment more for it to reach the authenticator.
        page.wait_for_timeout(500)


def _wait_until(page: Page, expression: str, timeout_ms: int = 10_000) -> None:
    """Until `expression` is true in the page, asked every 50 ms by page.evaluate.

    Not page.wait_for_function: its polling builds the predicate from a string inside the
    page, which our Content-Security-Policy (no 'unsafe-eval') refuses once the first check
    comes back false; page.evaluate runs through the DevTools protocol, which CSP allows.
    """
    for _ in range(timeout_ms // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_ms} ms: {expression}")


def sign_in_with_passkey(page: Page, authenticator: VirtualAuthenticator) -> None:
    """On the login page, with `authenticator` left alone until now: "Sign in with a passkey".

    The page's autofill request is waiting first (untouched, it stays so); the button
    must cancel it and ask again, and that second request is the one touched.
    """
    wait_for_autofill(page)
    authenticator.touched(True)
    page.get_by_role("button", name="Sign in with a passkey").click()


# --- Security policy, trusted browsers and sessions --------------------------------------


def policy_banner(page: Page) -> Locator:
    """base.html's reminder that the security policy requires 2FA (absent when it does not)."""
    return page.get_by_role("region", name="Two-factor authentication required", exact=True)


def trusted_browsers(page: Page) -> Locator:
    """My profile's list of trusted browsers (absent while there is none)."""
    return two_factor_section(page).get_by_role("list", name="Trusted browsers")


def sessions_card(page: Page) -> Locator:
    return page.get_by_role("region", name="Where you're signed in")


def sessions_list(page: Page) -> Locator:
    return sessions_card(page).get_by_role("list", name="Where you're signed in")
