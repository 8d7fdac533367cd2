"""The user guide's flows at their edges, driven through what a person sees.

A clock that is off, a session that ends while a dialog is open, a slow setup,
a reload on the codes page, a busy button, a phone, a lock. Where a journey
needs time to pass (10 minutes of "confirm it's you"), it moves the recorded
moment back in the session row instead of waiting: the only thing touched
behind the browser's back.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e import steps
from tests.e2e.steps import JS_MODES
from twofactor import services
from twofactor.models import TOTPDevice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

js_modes = pytest.mark.parametrize("js_enabled", **JS_MODES)


def browser_session(page) -> SessionStore:
    """The server-side session of the browser behind `page`."""
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    return SessionStore(session_key=cookie["value"])


def age_proof(page, minutes: int) -> None:
    """As if "confirm it's you" had been answered `minutes` ago."""
    session = browser_session(page)
    proof = session[services.SUDO_SESSION_KEY]
    proof["at"] -= minutes * 60
    session[services.SUDO_SESSION_KEY] = proof
    session.save()


def to_enable_qr(page, user, js_enabled):
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    section = steps.two_factor_section(page)
    dialog = steps.open_dialog(
        page, js_enabled, section.get_by_role("link", name="Enable 2FA"), "Enable 2FA"
    )
    steps.confirm_identity(dialog)
    return dialog, steps.scan_qr(dialog)["secret"]


# --- 1. Clock drift at the Check step ---------------------------------------------------
@js_modes
def test_a_phone_clock_that_is_off_still_ends_setup(page, user, app_code, js_enabled, step_shots):
    dialog, secret = to_enable_qr(page, user, js_enabled)
    dialog.get_by_label("Six-digit code").fill(app_code(secret, seconds=90))
    dialog.get_by_role("button", name="Check").click()
    expect(dialog.get_by_role("alert")).to_contain_text("clock looks about 90 seconds off")
    step_shots(page, "setup-drift")
    dialog.get_by_label("Six-digit code").fill(app_code(secret))  # clock fixed
    dialog.get_by_role("button", name="Check").click()
    steps.store_first_backup_codes(page)
    expect(steps.two_factor_section(page).get_by_text("Activated", exact=True)).to_be_visible()


# --- 2. A session that ends while a dialog is open ----------------------------------------
def test_logged_out_in_another_tab_the_dialog_leads_to_the_login_page(
    page, user, app_code, step_shots
):
    dialog, secret = to_enable_qr(page, user, js_enabled=True)
    other_tab = page.context.new_page()
    other_tab.goto(page.base_url + "/accounts/profile/")
    steps.log_out(other_tab)
    other_tab.close()

    dialog.get_by_label("Six-digit code").fill(app_code(secret))
    dialog.get_by_role("button", name="Check").click()
    # The whole page goes to the login page: no login form inside a dialog.
    expect(page.get_by_role("heading", name="Log in", level=1)).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert "next=%2Faccounts%2Fprofile%2F" in page.url
    step_shots(page, "lapsed-1-login")
    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


@js_modes
def test_a_code_step_left_for_ten_minutes_starts_again_with_a_reason(
    page, person_secret, app_code, js_enabled, step_shots
):
    user, secret = person_secret
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    session = browser_session(page)
    pending = session[services.PENDING_LOGIN_SESSION_KEY]
    session[services.PENDING_LOGIN_SESSION_KEY] = {
        **pending,
        "started_at": pending["started_at"] - 601,
    }
    session.save()
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("heading", name="Log in", level=1)).to_be_visible()
    expect(page.get_by_text("Your sign-in took longer than 10 minutes.")).to_be_visible()
    step_shots(page, "lapsed-2-code-step")


@pytest.fixture
def person_secret(user_with_totp):
    return user_with_totp


# --- 4. A reload never makes a new set -----------------------------------------------------
@js_modes
def test_reloading_the_codes_page_says_they_were_shown(
    page, person_secret, app_code, js_enabled, step_shots
):
    user, secret = person_secret
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, app_code(secret))
    section = steps.two_factor_section(page)
    dialog = steps.open_dialog(
        page, js_enabled, section.get_by_role("link", name="Generate backup code"),
        "Generate backup code",
    )  # fmt: skip
    steps.confirm_identity(dialog, code=app_code(secret, seconds=30))
    dialog.get_by_role("button", name="Generate backup code").click()
    shown = dialog.get_by_role("list", name="Backup codes").get_by_role("listitem")
    expect(shown).to_have_count(5)
    codes = shown.all_inner_texts()
    if js_enabled:
        return  # in a dialog there is no page to reload; the no-JS run covers it
    page.reload()  # no "resubmit the form?" question: the page was reached by a GET
    expect(page.get_by_text("cannot be shown again")).to_be_visible()
    expect(page.get_by_role("list", name="Backup codes")).to_have_count(0)
    expect(page.get_by_text("Generating new codes invalidates your current codes")).to_be_visible()
    for code in codes:
        expect(page.get_by_text(code.strip())).to_have_count(0)
    step_shots(page, "codes-reloaded")
    page.go_back()
    expect(page.get_by_role("list", name="Backup codes")).to_have_count(0)
    from twofactor.models import BackupCode

    assert BackupCode.objects.filter(user=user, used_at__isnull=True).count() == 5


# --- 5. A slow setup -----------------------------------------------------------------------
@js_modes
def test_a_slow_setup_asks_again_and_keeps_the_code(page, user, app_code, js_enabled, step_shots):
    dialog, secret = to_enable_qr(page, user, js_enabled)
    age_proof(page, minutes=11)  # the user read every app's description first
    dialog.get_by_label("Six-digit code").fill(app_code(secret))
    dialog.get_by_role("button", name="Check").click()
    expect(
        dialog.get_by_text("more than 10 minutes since you last confirmed it's you")
    ).to_be_visible()
    expect(dialog.get_by_text("What you entered is kept")).to_be_visible()
    step_shots(page, "slow-setup-confirm-again")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Continue").click()
    steps.store_first_backup_codes(page)  # the kept code went through: nothing retyped


# --- 6. A button shows it is working --------------------------------------------------------
def test_check_is_busy_while_its_request_runs_and_a_double_click_sends_one(
    page, user, app_code, wrong_code, step_shots
):
    dialog, secret = to_enable_qr(page, user, js_enabled=True)
    held, posts = [], []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.route("**/2fa/enable/", lambda route: held.append(route))
    dialog.get_by_label("Six-digit code").fill(wrong_code(secret))
    check = dialog.get_by_role("button", name="Check")
    check.click()
    expect(check).to_be_disabled()
    expect(dialog.locator("form[aria-busy=true]")).to_have_count(1)
    check.dblclick(force=True)  # impatient clicks on the disabled button
    step_shots(page, "busy-check")
    assert len(posts) == 1
    held[0].continue_()
    page.unroute("**/2fa/enable/")
    expect(dialog.get_by_role("alert")).to_contain_text("not right")
    expect(check).to_be_enabled()
    # A stale error goes as soon as the next attempt starts.
    page.route("**/2fa/enable/", lambda route: held.append(route))
    dialog.get_by_label("Six-digit code").fill(app_code(secret))
    check.click()
    expect(dialog.get_by_role("alert")).to_have_count(0)
    held[-1].continue_()
    page.unroute("**/2fa/enable/")
    steps.store_first_backup_codes(page)


# --- 7. Phones ------------------------------------------------------------------------------
@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_on_a_phone_every_dialog_opens_at_its_top(page, user, app_code, wrong_code):
    dialog, secret = to_enable_qr(page, user, js_enabled=True)
    expect(
        dialog.get_by_role("heading", name="Enable two-factor authentication")
    ).to_be_in_viewport()
    expect(dialog.get_by_role("button", name="Close")).to_be_in_viewport()
    # A refusal is shown where it is: the message scrolled into view, not the top.
    dialog.get_by_label("Six-digit code").fill(wrong_code(secret))
    dialog.get_by_role("button", name="Check").click()
    expect(dialog.get_by_role("alert")).to_be_in_viewport()
    dialog.get_by_label("Six-digit code").fill(app_code(secret))
    dialog.get_by_role("button", name="Check").click()
    heading = dialog.get_by_role("heading", name="Two-factor authentication is on")
    expect(heading).to_be_in_viewport()
    expect(dialog.get_by_role("button", name="Close")).to_be_in_viewport()
    assert page.locator("dialog[open]").evaluate("d => d.scrollTop") == 0


@pytest.fixture
def locked_customer(make_user, enrolled):
    ann = make_user("ann@example.com", name="Ann Archer")
    enrolled(ann)
    TOTPDevice.objects.filter(user=ann).update(locked_until=timezone.now() + timedelta(minutes=5))
    return ann


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_all_users_on_a_phone_is_a_card_per_user_with_status_in_view(
    page, staff_user, enrolled, locked_customer, app_code, step_shots
):
    secret = enrolled(staff_user, at=timezone.now() - timedelta(minutes=2))
    steps.start(page)
    steps.log_in_with_password(page, staff_user.email)
    steps.enter_login_code(page, app_code(secret))
    steps.open_account_menu(page).get_by_role("link", name="All users").click()
    expect(page.get_by_role("heading", name="All users", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    row = page.get_by_role("row").filter(has_text=locked_customer.email)
    badge = row.get_by_text("Activated", exact=True)
    expect(badge).to_be_in_viewport()
    box = badge.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    expect(row.get_by_text(re.compile(r"Locked until \d\d:\d\d UTC"))).to_be_visible()
    expect(row.get_by_role("link", name=f"Reset 2FA for {locked_customer.email}")).to_be_visible()
    step_shots(page, "users-phone-cards")


# --- 8. Locks are visible before typing ----------------------------------------------------
@js_modes
def test_a_strangers_guesses_pause_only_unknown_browsers(
    page, browser, live_server, user, settings, js_enabled, step_shots
):
    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "3/h"
    steps.start(page)
    steps.log_in_with_password(page, user.email)  # the owner's laptop: now a known browser
    steps.log_out(page)

    stranger = browser.new_context(viewport={"width": 1280, "height": 900})
    strange_page = stranger.new_page()
    strange_page.base_url = live_server.url
    for _ in range(3):
        steps.start(strange_page)
        steps.log_in_with_password(strange_page, user.email, "not the password")
    steps.start(strange_page)
    steps.log_in_with_password(strange_page, user.email)  # even the right one, from there
    alert = strange_page.get_by_role("alert")
    expect(alert).to_contain_text(re.compile(r"Try again after\s+\d\d:\d\d UTC"))
    expect(strange_page.get_by_role("link", name="reset your password")).to_be_visible()
    step_shots(strange_page, "password-paused")
    stranger.close()

    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


# --- 8b. Back after refused codes ----------------------------------------------------------
def test_back_after_refused_codes_opens_pages_not_a_resubmission(
    page, person_secret, app_code, wrong_code, step_shots
):
    """Each refused code is a page answering a post; Back over them must not land on
    Chrome's "Confirm Form Resubmission", nor post a code again."""
    user, secret = person_secret
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    for _ in range(2):
        steps.enter_login_code(page, wrong_code(secret))
        expect(page.get_by_role("alert")).to_contain_text("not right")
    page.go_back()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)  # opened afresh, not the old answer
    expect(page.get_by_label("Verification code")).to_have_value("")  # not the refused code
    step_shots(page, "back-after-wrong-code")
    assert len(posts) == 2
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    page.go_back()  # to the code step's address: logged in now, it leads to the profile
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    assert len(posts) == 3


# --- 9. Wording ------------------------------------------------------------------------------
def test_contact_support_on_the_code_step_is_a_link(page, person_secret):
    user, _ = person_secret
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    link = page.get_by_role("link", name="Contact support")
    expect(link).to_have_attribute("href", "mailto:support@portal.example")
