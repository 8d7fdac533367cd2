"""Passkeys and security keys in a real browser (issue 17): chromium's own
navigator.credentials against its virtual authenticators (DevTools' WebAuthn domain),
so each ceremony runs end to end: twofactor/static/twofactor/webauthn.js, the browser's
checks of origin and RP id, py_webauthn's on the server.

The server is opened as http://localhost:<port> (an IP address cannot be an RP id) and
accepts that origin (the webauthn_origin fixture). The database is touched only to
create the people who start a journey. App codes come from oathtool, each from the
next 30-second step where a journey needs several.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import steps
from twofactor import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

both_widths = pytest.mark.parametrize("viewport", ["desktop", "phone"], indirect=True)
UNAVAILABLE = re.compile(r"needs a browser with passkey support, with JavaScript turned on")
REFUSED = "That passkey was not accepted. It may have been removed from your account."


@pytest.fixture
def person(user_with_totp):
    """(user, secret, backup codes): Ann, with the authenticator app and five backup codes
    (a code for a second "confirm it's you" without waiting for the app's next step)."""
    user, secret = user_with_totp
    return user, secret, services.regenerate_backup_codes(user=user)


def log_in_with_app(page: Page, user, secret: str, app_code) -> None:
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


def activity(page: Page):
    return page.get_by_role("region", name="Recent security activity")


def page_messages(page: Page):
    """base.html's polite live region, where the messages after an action appear."""
    return page.locator("main > [role=status][aria-live=polite]")


def log_out_untouched(page: Page, authenticator) -> None:
    """Log out, with the authenticator left alone: the login page's autofill request then
    waits, as while a person types (touched, it would sign straight back in: see
    VirtualAuthenticator.touched). The next step that uses the key touches it."""
    authenticator.touched(False)
    steps.log_out(page)


@both_widths
def test_passkey_added_then_signs_in_after_the_password_and_alone(
    page, person, app_code, authenticators, step_shots
):
    user, secret, backup_codes = person
    laptop = authenticators(steps.PASSKEY_AUTHENTICATOR)
    log_in_with_app(page, user, secret, app_code)

    # Add a passkey: confirm it's you (password and the app's next code), Continue.
    section = steps.two_factor_section(page)
    expect(steps.keys_list(page)).to_have_count(0)
    dialog = steps.open_dialog(
        page, True, section.get_by_role("link", name="Add a passkey"), "Add a passkey"
    )
    steps.confirm_identity(dialog, code=app_code(secret, seconds=30))
    expect(dialog.get_by_text("When you continue, your browser asks where")).to_be_visible()
    expect(dialog.get_by_text(UNAVAILABLE)).to_be_hidden()
    step_shots(page, "passkey-add")
    dialog.get_by_role("button", name="Continue").click()

    expect(dialog.get_by_role("heading", name="Passkey added", level=1)).to_be_visible()
    name = dialog.get_by_label("Name")
    expect(name).to_have_value("Passkey")
    step_shots(page, "passkey-added")
    [held] = laptop.credentials()
    assert held["rpId"] == "localhost"
    assert held["isResidentCredential"] is True  # discoverable: it can sign in alone
    assert held["userName"] == user.email

    name.fill("Work laptop")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page_messages(page)).to_contain_text("Saved. Your key is called “Work laptop”.")
    keys = steps.keys_list(page).get_by_role("listitem")
    expect(keys).to_have_count(1)
    expect(keys.first).to_contain_text("Work laptop")
    expect(keys.first).to_contain_text("Not used yet")
    expect(section.get_by_text("1 passkey or security key")).to_be_visible()
    expect(activity(page).get_by_text("Passkey or security key added")).to_be_visible()
    step_shots(page, "passkey-list")

    # Next time: the password, then the passkey instead of a code.
    log_out_untouched(page, laptop)
    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_text("or enter a code")).to_be_visible()
    expect(page.get_by_label("Verification code")).to_be_visible()
    step_shots(page, "passkey-code-step")
    steps.use_key_at_code_step(page, laptop)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(activity(page).get_by_text("Logged in (passkey or security key)")).to_be_visible()
    expect(steps.keys_list(page).get_by_role("listitem").first).to_contain_text("Last used")
    assert laptop.credentials()[0]["signCount"] > held["signCount"]

    # And with the passkey alone: no email, no password, no code.
    log_out_untouched(page, laptop)
    step_shots(page, "passkey-sign-in")
    steps.sign_in_with_passkey(page, laptop)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(activity(page).get_by_text("Logged in (passkey, without a password)")).to_be_visible()

    # Rename it from the list (no "confirm it's you": a name protects nothing).
    keys = steps.keys_list(page)
    dialog = steps.open_dialog(
        page, True, keys.get_by_role("link", name="Rename Work laptop"), "Rename “Work laptop”"
    )
    dialog.get_by_label("Name").fill("Old laptop")
    dialog.get_by_role("button", name="Save").click()
    expect(page_messages(page)).to_contain_text("Saved. Your key is called “Old laptop”.")
    expect(keys.get_by_role("listitem")).to_have_count(1)
    expect(keys.get_by_role("listitem").first).to_contain_text("Old laptop")

    # Remove it: a new session since the passkey sign-in, so confirm it's you again,
    # with the password and the passkey instead of a code.
    dialog = steps.open_dialog(
        page, True, keys.get_by_role("link", name="Remove Old laptop"), "Remove a passkey"
    )
    expect(dialog.get_by_text("Confirm it's you first.")).to_be_visible()
    dialog.get_by_label("Password").fill(steps.PASSWORD)
    dialog.get_by_role("button", name="Use a passkey or security key").click()
    expect(dialog.get_by_role("heading", name="Remove “Old laptop”?", level=1)).to_be_visible()
    dialog.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page_messages(page)).to_contain_text("“Old laptop” was removed")
    expect(steps.keys_list(page)).to_have_count(0)
    expect(section.get_by_text("Activated", exact=True)).to_be_visible()
    expect(activity(page).get_by_text("Passkey or security key removed")).to_be_visible()

    # The authenticator still holds it (a site cannot make it forget), but the portal no
    # longer lets it in: the passkey alone is refused like a wrong password.
    assert len(laptop.credentials()) == 1
    log_out_untouched(page, laptop)
    steps.sign_in_with_passkey(page, laptop)
    expect(page.get_by_role("alert")).to_contain_text(REFUSED)
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)


def test_a_passkey_picked_from_the_email_box_signs_in(
    page, user_with_totp, app_code, authenticators
):
    # Passkey autofill: the login page asks in the background (conditional mediation);
    # the virtual authenticator answers as a person picking it from the email box does.
    user, secret = user_with_totp
    laptop = authenticators(steps.PASSKEY_AUTHENTICATOR)
    log_in_with_app(page, user, secret, app_code)
    steps.add_key(page, code=app_code(secret, seconds=30))
    # Escape at "Passkey added" keeps the default name; My profile behind lists the key.
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(steps.keys_list(page).get_by_role("listitem")).to_contain_text(["Passkey"])
    log_out_untouched(page, laptop)
    expect(page.get_by_label("Email")).to_have_attribute("autocomplete", "username webauthn")

    # The person picks the passkey the email box offers (the next request is touched).
    steps.wait_for_autofill(page)
    laptop.touched(True)
    page.reload()
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(activity(page).get_by_text("Logged in (passkey, without a password)")).to_be_visible()


@both_widths
def test_security_key_added_and_used_after_the_password_but_not_alone(
    page, user, app_code, authenticators, step_shots
):
    usb_key = authenticators(steps.SECURITY_KEY_AUTHENTICATOR)
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    secret = steps.enable_two_factor(page, True, app_code)

    # Confirmed it's you a moment ago (to enable 2FA): straight to Continue.
    dialog = steps.add_key(page, sudo=False)
    expect(dialog.get_by_role("heading", name="Security key added", level=1)).to_be_visible()
    expect(dialog.get_by_label("Name")).to_have_value("Security key")
    [held] = usb_key.credentials()
    assert held["isResidentCredential"] is False  # a plain U2F key: not discoverable
    # Keeping the name: the dialog closes onto My profile, which lists the new key.
    dialog.get_by_role("link", name="Keep this name").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    keys = steps.keys_list(page).get_by_role("listitem")
    expect(keys).to_have_count(1)
    expect(keys.first).to_contain_text("Security key")
    step_shots(page, "security-key-list")

    # The same key again: the browser refuses (the server listed it as excluded).
    section = steps.two_factor_section(page)
    dialog = steps.open_dialog(
        page, True, section.get_by_role("link", name="Add a passkey"), "Add a passkey"
    )
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog.get_by_role("alert")).to_contain_text(
        "This passkey or security key is already registered to your account."
    )
    expect(dialog.get_by_role("button", name="Continue")).to_be_enabled()
    assert len(usb_key.credentials()) == 1
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(keys).to_have_count(1)

    log_out_untouched(page, usb_key)
    steps.log_in_with_password(page, user.email)
    steps.use_key_at_code_step(page, usb_key)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(activity(page).get_by_text("Logged in (passkey or security key)")).to_be_visible()

    # Alone, the key cannot sign in: it keeps no account (no discoverable credential)
    # and checks no PIN. The browser says no; the login page says so and still works.
    log_out_untouched(page, usb_key)
    steps.sign_in_with_passkey(page, usb_key)
    expect(page.get_by_role("alert")).to_contain_text(
        "No passkey was used: the request was cancelled or timed out, or this device has "
        "no passkey for this site. Try again, or log in with your email and password."
    )
    step_shots(page, "security-key-sign-in-refused")
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_enabled()
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, app_code(secret, seconds=30))
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


@pytest.mark.parametrize("js_enabled", [False], ids=["nojs"])
def test_without_javascript_passkeys_say_what_they_need_and_codes_still_log_in(
    page, user_with_key, app_code, js_enabled, step_shots
):
    user, secret, _key = user_with_key
    steps.start(page)
    expect(page.get_by_text(UNAVAILABLE)).to_be_visible()
    step_shots(page, "passkey-sign-in")

    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_text(UNAVAILABLE)).to_be_visible()
    step_shots(page, "passkey-code-step")
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(steps.keys_list(page).get_by_role("listitem").first).to_contain_text("Blue key")

    # Add a passkey is a page of its own, which says what it needs.
    section = steps.two_factor_section(page)
    main = steps.open_dialog(
        page, False, section.get_by_role("link", name="Add a passkey"), "Add a passkey"
    )
    steps.confirm_identity(main, code=app_code(secret, seconds=30))
    expect(main.get_by_text(UNAVAILABLE)).to_be_visible()
    # No Continue without the script, so no word of what it would do either.
    expect(main.get_by_text("When you continue, your browser asks where")).to_be_hidden()
    step_shots(page, "passkey-add")
    main.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


NO_WEBAUTHN = "delete window.PublicKeyCredential;"  # a browser without WebAuthn


@pytest.mark.parametrize(
    ("js_enabled", "webauthn"), [(False, True), (True, False)], ids=["nojs", "no-webauthn"]
)
def test_without_javascript_or_webauthn_no_passkey_button_shows(
    page, user_with_key, app_code, js_enabled, webauthn
):
    user, secret, _key = user_with_key
    if not webauthn:
        page.add_init_script(NO_WEBAUTHN)
    steps.start(page)
    expect(page.get_by_text(UNAVAILABLE)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()

    steps.log_in_with_password(page, user.email)
    expect(page.get_by_text(UNAVAILABLE)).to_be_visible()
    expect(page.get_by_role("button", name="Use a passkey or security key")).to_be_hidden()
    steps.enter_login_code(page, app_code(secret))

    section = steps.two_factor_section(page)
    scope = steps.open_dialog(
        page, js_enabled, section.get_by_role("link", name="Add a passkey"), "Add a passkey"
    )
    steps.confirm_identity(scope, code=app_code(secret, seconds=30))
    expect(scope.get_by_text(UNAVAILABLE)).to_be_visible()
    expect(scope.get_by_role("button", name="Continue")).to_be_hidden()
