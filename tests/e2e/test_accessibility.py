"""Usable with a keyboard and a screen reader: axe on every page and dialog, keyboard journeys.

axe-core needs JavaScript in the page, so the "nojs" audits keep JavaScript on
for axe but block the portal's own scripts (htmx and portal.js): the page then
renders exactly as it does for a browser without JavaScript (no html.js class,
dialogs as full pages), and axe still runs.
"""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from tests.conftest import PASSWORD
from tests.e2e import steps

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BLOCKING_IMPACTS = {"serious", "critical"}
audit_modes = pytest.mark.parametrize("scripts", [True, False], ids=["js", "nojs"])

_axe = Axe()


def assert_accessible(page: Page, where: str) -> None:
    """Zero serious or critical axe-core violations on what is on screen now."""
    # Inject axe-core once per document: inside a dialog journey the document stays
    # the same while htmx swaps content, and re-sending 500 kB of script each time is slow.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe.axe_script)
    violations = page.evaluate("axe.run({resultTypes: ['violations']})")["violations"]
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(node["target"][0] for node in v["nodes"][:3])
        for v in blocking
    )
    assert not blocking, f"axe found serious/critical problems on {where}:\n{report}"
    # Belt and braces for the one rule every form here depends on: each visible
    # field has its own <label> (not just a placeholder or an aria-label).
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(f => f.type !== 'hidden' && f.getClientRects().length > 0)
            .filter(f => !(f.labels && f.labels.length))
            .map(f => f.name)"""
    )
    assert not unlabelled, f"fields without a label on {where}: {unlabelled}"


def dialog_or_main(page: Page, scripts: bool) -> Locator:
    if scripts:
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        return dialog
    # Without scripts there is no htmx: the dialog must be a page of its own.
    expect(page.get_by_role("dialog")).to_have_count(0)
    return page.get_by_role("main")


@audit_modes
def test_login_pages_have_no_serious_accessibility_problems(
    audited_page, user_with_totp, app_code, scripts
):
    page = audited_page
    user, secret = user_with_totp
    steps.start(page)
    assert_accessible(page, "the login page")

    steps.log_in_with_password(page, user.email, "not the password")
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "the login page with an error")

    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    assert_accessible(page, "the password reset page")
    page.get_by_role("link", name="Back to log in").click()

    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    assert_accessible(page, "the code step")

    steps.enter_login_code(page, app_code(secret, seconds=90))
    expect(page.get_by_role("alert")).to_contain_text("clock")
    assert_accessible(page, "the code step with the clock message")


@audit_modes
def test_profile_and_every_two_factor_dialog_have_no_serious_accessibility_problems(
    audited_page, user, app_code, scripts
):
    page = audited_page
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    assert_accessible(page, "My profile")
    page.get_by_role("button", name="Account menu").click()
    expect(page.locator("#account-menu")).to_be_visible()
    assert_accessible(page, "the open account menu")
    page.keyboard.press("Escape")

    section = steps.two_factor_section(page)
    section.get_by_role("link", name="Enable 2FA").click()
    scope = dialog_or_main(page, scripts)
    expect(scope.get_by_label("Password")).to_be_visible()
    assert_accessible(page, "the password (sudo) dialog")
    steps.confirm_identity(scope, password="wrong password")
    expect(scope.get_by_text("That password is not right.")).to_be_visible()
    assert_accessible(page, "the password dialog with an error")
    steps.confirm_identity(scope)

    secret = steps.scan_qr(scope)["secret"]
    assert_accessible(page, "the enable dialog with its QR code")
    scope.get_by_label("Six-digit code").fill("000")
    scope.get_by_role("button", name="Check").click()
    expect(scope.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "the enable dialog with an error")
    scope.get_by_label("Six-digit code").fill(app_code(secret))
    scope.get_by_role("button", name="Check").click()
    expect(scope.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    assert_accessible(page, "setup's backup codes")
    scope.get_by_label("I have stored these codes").check()
    scope.get_by_role("button", name="Done").click()
    expect(section.get_by_text("Activated", exact=True)).to_be_visible()
    assert_accessible(page, "My profile with 2FA on and a message")

    section.get_by_role("link", name="Generate backup code").click()
    scope = dialog_or_main(page, scripts)
    expect(scope.get_by_role("heading", name="Backup codes")).to_be_visible()
    assert_accessible(page, "the backup codes introduction")
    scope.get_by_role("button", name="Generate backup code").click()
    expect(scope.get_by_role("list", name="Backup codes")).to_be_visible()
    assert_accessible(page, "the backup codes dialog")
    scope.get_by_label("I have stored these codes").check()
    scope.get_by_role("button", name="Done").click()

    section.get_by_role("link", name="Disable 2FA").click()
    scope = dialog_or_main(page, scripts)
    expect(scope.get_by_role("heading", name="Disable two-factor authentication?")).to_be_visible()
    assert_accessible(page, "the disable dialog")
    if scripts:
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_have_count(0)
    else:
        scope.get_by_role("link", name="Cancel").click()

    page.get_by_role("region", name="Recent security activity").get_by_role(
        "link", name="Full history"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ecurity")
    assert_accessible(page, "the security history page")


@audit_modes
def test_staff_pages_have_no_serious_accessibility_problems(
    audited_page, staff_user, user_with_totp, enrolled, app_code, scripts
):
    # staff_user may view users and reset 2FA (tests/conftest.py).
    staff_secret = enrolled(staff_user, at=timezone.now() - timedelta(minutes=2))
    user, _secret = user_with_totp
    page = audited_page
    steps.start(page)
    steps.log_in_with_password(page, staff_user.email)
    steps.enter_login_code(page, app_code(staff_secret))  # staff pages need the second factor
    steps.open_account_menu(page).get_by_role("link", name="All users").click()
    expect(page.get_by_role("heading", name="All users", level=1)).to_be_visible()
    assert_accessible(page, "All users")

    page.get_by_role("link", name=f"Reset 2FA for {user.email}").click()
    scope = dialog_or_main(page, scripts)
    assert_accessible(page, "the reset dialog asking for the staff password")
    steps.confirm_identity(scope, code=app_code(staff_secret, seconds=30))
    scope.get_by_role("button", name="Reset 2FA").click()
    expect(scope.get_by_text("Enter the reason for the reset.")).to_be_visible()
    assert_accessible(page, "the reset dialog with an error")


@audit_modes
def test_passkey_pages_and_dialogs_have_no_serious_accessibility_problems(
    audited_page, user_with_key, app_code, authenticators, scripts
):
    # user_with_key has a security key, "Blue key", beside the app (tests/e2e/conftest.py).
    page = audited_page
    user, secret, _key = user_with_key
    if scripts:
        authenticators(steps.PASSKEY_AUTHENTICATOR)
    steps.start(page)
    if scripts:
        expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    assert_accessible(page, "the login page with its passkey sign-in")

    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    if scripts:
        expect(page.get_by_role("button", name="Use a passkey or security key")).to_be_visible()
    assert_accessible(page, "the code step of a user with a key")
    steps.enter_login_code(page, app_code(secret))

    steps.two_factor_section(page).get_by_role("link", name="Add a passkey").click()
    scope = dialog_or_main(page, scripts)
    steps.confirm_identity(scope, code=app_code(secret, seconds=30))
    expect(scope.get_by_role("heading", name="Add a passkey", level=1)).to_be_visible()
    assert_accessible(page, "the add a passkey dialog")
    if scripts:
        scope.get_by_role("button", name="Continue").click()
        expect(scope.get_by_role("heading", name="Passkey added")).to_be_visible()
        assert_accessible(page, "the passkey added dialog")
        scope.get_by_role("link", name="Keep this name").click()
        expect(page.get_by_role("dialog")).to_have_count(0)
    else:
        scope.get_by_role("link", name="Cancel").click()

    # "Confirm it's you" was answered a moment ago: straight to the question.
    steps.keys_list(page).get_by_role("link", name="Remove Blue key").click()
    scope = dialog_or_main(page, scripts)
    expect(scope.get_by_role("heading", name="Remove “Blue key”?")).to_be_visible()
    assert_accessible(page, "the remove dialog")


# --- Keyboard only -----------------------------------------------------------------------


def tab_to(page: Page, target: Locator, *, limit: int = 40) -> None:
    """Press Tab until `target` has the focus, as a keyboard user would; fail if never."""
    for _ in range(limit):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus after {limit} presses of Tab")


@pytest.mark.parametrize("js_enabled", **steps.JS_MODES)
def test_login_with_the_keyboard_alone(page, user_with_totp, app_code, js_enabled):
    user, secret = user_with_totp
    steps.start(page)
    tab_to(page, page.get_by_label("Email"))
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    # The code step puts the cursor in its one field: no Tab needed.
    code_field = page.get_by_label("Verification code")
    expect(code_field).to_be_focused()
    page.keyboard.type(app_code(secret))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()

    tab_to(page, page.get_by_role("button", name="Account menu"))
    page.keyboard.press("Enter")
    menu = page.locator("#account-menu")
    expect(menu).to_be_visible()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(page.get_by_role("button", name="Account menu")).to_be_focused()


def test_enable_2fa_with_the_keyboard_alone_moves_focus_into_and_out_of_the_dialog(
    page, user, app_code
):
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    opener = steps.two_factor_section(page).get_by_role("link", name="Enable 2FA")
    tab_to(page, opener)
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    # Focus moves into the dialog, onto its first field.
    expect(dialog.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    # The dialog's content changes to the QR step; focus follows to the code field.
    expect(dialog.get_by_label("Six-digit code")).to_be_focused()

    # Escape closes it and gives the focus back to what opened it.
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(opener).to_be_focused()

    # Open it again (identity proven a moment ago: straight to the QR), type, Enter.
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    code_field = dialog.get_by_label("Six-digit code")
    expect(code_field).to_be_focused()
    secret = steps.scan_qr(dialog)["secret"]
    page.keyboard.type(app_code(secret))
    page.keyboard.press("Enter")
    # The codes replace the QR step: focus moves to their heading, then on by Tab.
    heading = dialog.get_by_role("heading", name="Two-factor authentication is on")
    expect(heading).to_be_focused()
    stored = dialog.get_by_label("I have stored these codes")
    tab_to(page, stored)
    page.keyboard.press("Space")
    tab_to(page, dialog.get_by_role("button", name="Done"))
    page.keyboard.press("Enter")
    expect(steps.two_factor_section(page).get_by_text("Activated", exact=True)).to_be_visible()


def test_backup_codes_dialog_keeps_focus_until_codes_are_confirmed_stored(
    page, user_with_totp, app_code
):
    user, secret = user_with_totp
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, app_code(secret))
    opener = steps.two_factor_section(page).get_by_role("link", name="Generate backup code")
    opener.click()
    dialog = page.get_by_role("dialog")
    steps.confirm_identity(dialog, code=app_code(secret, seconds=30))
    dialog.get_by_role("button", name="Generate backup code").click()
    expect(dialog.get_by_role("list", name="Backup codes")).to_be_visible()
    # Settled, as a person sees it: the new step's heading has the focus. (Escape pressed
    # in the few milliseconds between the swap and the settle would be answered, and the
    # settle would then move the focus to the heading.)
    expect(dialog.get_by_role("heading", name="Your backup codes")).to_be_focused()

    # Escape before ticking the box does not lose the only copy of the codes: the
    # dialog stays, says why (in its live region) and puts the focus on the box.
    page.keyboard.press("Escape")
    expect(dialog).to_be_visible()
    stored = dialog.get_by_label("I have stored these codes")
    expect(stored).to_be_focused()
    expect(dialog.locator("[aria-live]").first).to_contain_text(
        "Tick “I have stored these codes” before closing."
    )
    page.keyboard.press("Space")
    expect(stored).to_be_checked()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    # My profile is loaded again, so the count behind the dialog is the new set's.
    expect(steps.two_factor_section(page).get_by_text("Backup codes: 5 unused")).to_be_visible()
