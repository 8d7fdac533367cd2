"""Issue 18 in a real browser: the security policy (2FA required, with a deadline),
trusted browsers ("Don't ask for a code on this browser") and the list of sessions,
with and without JavaScript.

The database is touched only to set up where a journey starts (the people, a policy
already in force, a deadline already past); everything else happens on the screen.
Several browsers of one person are separate browser contexts (own cookies, own session).
"""

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.e2e import steps
from tests.e2e.conftest import PHONE
from tests.e2e.steps import JS_MODES
from tests.e2e.test_accessibility import assert_accessible, dialog_or_main
from twofactor.models import PolicyDeadline, TwoFactorPolicy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

js_modes = pytest.mark.parametrize("js_enabled", **JS_MODES)
audit_modes = pytest.mark.parametrize("scripts", [True, False], ids=["js", "nojs"])

SIGNED_OUT_ELSEWHERE = "This browser was signed out from another session. Please log in again."


def shown_utc(moment: datetime) -> str:
    """A moment as the pages write it ("j M Y, H:i", followed by "UTC")."""
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def live_region(page: Page):
    """base.html's polite live region, where the messages after an action appear."""
    return page.locator("main > [role=status][aria-live=polite]")


def sessions_said(page: Page):
    """The sessions card's own live region: what its buttons say appears there, where the
    page opens after them (#sessions), not out of view at the top."""
    region = steps.sessions_card(page).locator("[role=status][aria-live=polite]")
    expect(region).to_be_in_viewport()
    return region


def expect_profile(page: Page) -> None:
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


def expect_login_page(page: Page) -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)


def expect_forced_setup(page: Page) -> None:
    """Past the deadline: the setup page, with the overdue banner ("confirm it's you" first,
    unless the password was typed a moment ago at login)."""
    expect(page).to_have_url(re.compile(r"/2fa/enable/$"))
    heading = re.compile(r"^(Enable 2FA|Enable two-factor authentication)$")
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    expect(steps.policy_banner(page)).to_contain_text(
        "Two-factor authentication is required for your account."
    )


def log_in(page: Page, email: str) -> None:
    steps.start(page)
    steps.log_in_with_password(page, email)


def log_in_with_code(page: Page, email: str, code: str, *, trust: bool = False) -> None:
    log_in(page, email)
    steps.enter_login_code(page, code, trust_this_browser=trust)
    expect_profile(page)


def require_two_factor_for_everyone(grace_period_days: int = 7) -> None:
    """A policy already in force when the journey starts (set by a superuser earlier)."""
    policy = TwoFactorPolicy.current()
    policy.require_for_everyone = True
    policy.grace_period_days = grace_period_days
    policy.save()


# --- 1. The security policy -------------------------------------------------------------


@pytest.fixture
def superuser(make_user, enrolled):
    """(Rita, her secret): a superuser with 2FA on, as the policy page needs."""
    rita = make_user("rita@example.com", name="Rita Root", is_staff=True, is_superuser=True)
    return rita, enrolled(rita, at=timezone.now() - timedelta(minutes=2))


def open_security_policy(page: Page, superuser, app_code) -> None:
    rita, secret = superuser
    log_in_with_code(page, rita.email, app_code(secret))
    steps.open_account_menu(page).get_by_role("link", name="Security policy").click()
    # A page of its own (a link, not a dialog), behind "confirm it's you" with a code: the
    # next step's, as the login spent this one's.
    main = page.get_by_role("main")
    steps.confirm_identity(main, code=app_code(secret, seconds=30))
    expect(main.get_by_role("heading", name="Security policy", level=1)).to_be_visible()


@js_modes
def test_superuser_requires_2fa_for_everyone_and_a_customer_is_shown_the_deadline(
    page, superuser, user, app_code, js_enabled, step_shots
):
    open_security_policy(page, superuser, app_code)
    main = page.get_by_role("main")
    expect(main.get_by_label("Require two-factor authentication for staff")).to_be_checked()
    everyone = main.get_by_label("Require two-factor authentication for every user")
    expect(everyone).not_to_be_checked()
    everyone.check()
    main.get_by_label("Grace period (days)").fill("14")
    main.get_by_role("button", name="Save policy").click()
    expect(live_region(page)).to_contain_text(
        "Security policy saved: 2FA required for every user: on; grace period: 14 days."
    )
    expect(main.get_by_label("Require two-factor authentication for every user")).to_be_checked()
    expect(main.get_by_label("Grace period (days)")).to_have_value("14")
    step_shots(page, "policy-1-page")
    steps.log_out(page)

    # Ann, a customer without 2FA: her grace period starts at this first login under the rule.
    log_in(page, user.email)
    expect_profile(page)
    started = PolicyDeadline.objects.get(user=user).required_since
    banner = steps.policy_banner(page)
    expect(banner).to_contain_text(
        "Two-factor authentication will be required for your account from "
        f"{shown_utc(started + timedelta(days=14))} UTC."
    )
    step_shots(page, "policy-2-banner")

    dialog = steps.open_dialog(
        page, js_enabled, banner.get_by_role("link", name="Enable 2FA"), "Enable 2FA"
    )
    expect(dialog.get_by_text("Confirm it's you first.")).to_be_visible()


@pytest.fixture
def customer_past_the_deadline(user):
    """Ann, without 2FA, whose grace period (7 days) ended a day ago."""
    require_two_factor_for_everyone(grace_period_days=7)
    PolicyDeadline.objects.create(user=user, required_since=timezone.now() - timedelta(days=8))
    return user


@js_modes
def test_a_customer_past_the_deadline_is_taken_to_setup_from_every_link_until_2fa_is_on(
    page, customer_past_the_deadline, app_code, js_enabled, step_shots
):
    ann = customer_past_the_deadline
    log_in(page, ann.email)
    expect_forced_setup(page)
    deadline = PolicyDeadline.objects.get(user=ann).required_since + timedelta(days=7)
    expect(steps.policy_banner(page)).to_contain_text(f"The deadline was {shown_utc(deadline)} UTC")
    # Past the deadline the banner has nothing to offer but the setup below it.
    expect(steps.policy_banner(page).get_by_role("link", name="Enable 2FA")).to_have_count(0)
    step_shots(page, "policy-3-forced-setup")

    page.get_by_role("link", name="Customer Portal").click()  # the brand, to My profile
    expect_forced_setup(page)
    steps.open_account_menu(page).get_by_role("link", name="Profile").click()
    expect_forced_setup(page)
    # Nowhere to go back to: setup offers no Cancel (Log out stays in the account menu).
    expect(page.get_by_role("main").get_by_role("link", name="Cancel")).to_have_count(0)
    steps.start(page)
    expect_forced_setup(page)

    main = page.get_by_role("main")
    # The password typed at login just now is the proof setup asks for: straight to the QR.
    expect(main.get_by_role("heading", name="Enable two-factor authentication")).to_be_visible()
    secret = steps.scan_qr(main)["secret"]
    main.get_by_label("Six-digit code").fill(app_code(secret))
    main.get_by_role("button", name="Check").click()
    steps.store_first_backup_codes(page)  # ends on My profile

    expect(steps.two_factor_section(page).get_by_text("Activated", exact=True)).to_be_visible()
    expect(steps.policy_banner(page)).to_have_count(0)
    steps.open_account_menu(page).get_by_role("link", name="Profile").click()
    expect_profile(page)


@js_modes
def test_when_the_deadline_passes_the_next_click_on_my_profile_leads_to_setup(
    page, user, js_enabled
):
    require_two_factor_for_everyone(grace_period_days=7)
    log_in(page, user.email)
    expect_profile(page)
    expect(steps.policy_banner(page)).to_contain_text("will be required for your account from")
    # A week goes by with My profile open (the one thing moved behind the browser's back).
    PolicyDeadline.objects.filter(user=user).update(
        required_since=timezone.now() - timedelta(days=7, minutes=1)
    )
    # With JavaScript "Edit details" is an htmx request for a dialog: the whole page must
    # still go to setup, not a dialog with the setup page squeezed into it.
    details = page.get_by_role("region", name="Your details")
    details.get_by_role("link", name="Edit details").click()
    expect_forced_setup(page)
    expect(page.get_by_role("dialog")).to_have_count(0)


@js_modes
def test_a_user_the_policy_requires_cannot_disable_2fa_and_is_told_why(
    page, user_with_totp, app_code, js_enabled, step_shots
):
    require_two_factor_for_everyone()
    ann, secret = user_with_totp
    log_in_with_code(page, ann.email, app_code(secret))
    expect(steps.policy_banner(page)).to_have_count(0)  # she has 2FA: nothing to remind
    section = steps.two_factor_section(page)
    disable = section.get_by_role("button", name="Disable 2FA")
    expect(disable).to_be_disabled()
    expect(disable).to_have_accessible_description(
        re.compile(
            r"^Disable 2FA is not available: the security policy requires two-factor "
            r"authentication for your account\."
        )
    )
    expect(section.get_by_role("link", name="Disable 2FA")).to_have_count(0)
    step_shots(page, "policy-4-disable-refused")


# --- 2. Trusted browsers ----------------------------------------------------------------


@js_modes
def test_a_trusted_browser_skips_the_code_until_it_is_removed(
    page, user_with_totp, app_code, js_enabled, step_shots
):
    ann, secret = user_with_totp
    log_in(page, ann.email)
    expect(page.get_by_label(steps.TRUST_BOX)).to_have_accessible_name(
        "Don't ask for a code on this browser for 30 days"
    )
    page.get_by_label("Verification code").fill(app_code(secret))
    page.get_by_label(steps.TRUST_BOX).check()
    step_shots(page, "trust-1-code-step-box")
    page.get_by_role("button", name="Log in").click()
    expect_profile(page)
    steps.log_out(page)

    # The password alone now: no code step.
    steps.log_in_with_password(page, ann.email)
    expect_profile(page)
    browsers = steps.trusted_browsers(page)
    expect(browsers.get_by_role("listitem")).to_have_count(1)
    this_one = browsers.get_by_role("listitem").first
    expect(this_one.get_by_text("This browser", exact=True)).to_be_visible()
    expect(this_one).to_contain_text("Headless Chrome")
    expect(this_one).to_contain_text(re.compile(r"Until \d{1,2} \w{3} \d{4}"))
    this_one.scroll_into_view_if_needed()
    step_shots(page, "trust-2-list")

    this_one.get_by_role("button", name=re.compile(r"^Remove .*\(this browser\)")).click()
    expect(live_region(page)).to_contain_text(
        "This browser will ask for a code next time you log in."
    )
    expect(steps.trusted_browsers(page)).to_have_count(0)
    steps.log_out(page)

    steps.log_in_with_password(page, ann.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)


@js_modes
def test_trusting_one_browser_still_asks_for_the_code_in_another(
    page, another_browser, user_with_totp, app_code, js_enabled
):
    ann, secret = user_with_totp
    log_in_with_code(page, ann.email, app_code(secret), trust=True)
    expect(steps.trusted_browsers(page).get_by_role("listitem")).to_have_count(1)

    laptop = another_browser()
    log_in(laptop, ann.email)
    expect(laptop.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(laptop.get_by_role("button", name="Account menu")).to_have_count(0)

    # And the trusted one still skips it.
    steps.log_out(page)
    steps.log_in_with_password(page, ann.email)
    expect_profile(page)


# --- 3. Sessions ------------------------------------------------------------------------


def signed_in_twice(page: Page, another_browser, user) -> Page:
    """`user` logged in on a second browser, then on `page`; returns the second browser."""
    laptop = another_browser()
    log_in(laptop, user.email)
    expect_profile(laptop)
    log_in(page, user.email)
    expect_profile(page)
    return laptop


def click_something(page: Page) -> None:
    """The person's next click, on a page left open: Profile in the account menu."""
    steps.open_account_menu(page).get_by_role("link", name="Profile").click()


@js_modes
def test_signing_out_another_session_logs_that_browser_out_at_its_next_click(
    page, another_browser, user, js_enabled, step_shots
):
    laptop = signed_in_twice(page, another_browser, user)
    sessions = steps.sessions_list(page).get_by_role("listitem")
    expect(sessions).to_have_count(2)
    expect(sessions.filter(has_text="This browser")).to_have_count(1)
    expect(sessions.filter(has_text="This browser")).to_contain_text("Active now")
    other = sessions.filter(has_not_text="This browser")
    expect(other).to_contain_text(re.compile(r"Last active \d{1,2}\s\w{3}\s\d{4},\s\d\d:\d\d\sUTC"))
    steps.sessions_card(page).scroll_into_view_if_needed()
    step_shots(page, "sessions-1-list")

    other.get_by_role("button", name=re.compile(r"^Sign out .+, last active")).click()
    expect(sessions_said(page)).to_contain_text("That session is signed out.")
    step_shots(page, "sessions-2-signed-out")
    expect(steps.sessions_list(page).get_by_role("listitem")).to_have_count(1)
    expect(steps.sessions_card(page)).to_contain_text("You are signed in on this browser only.")

    click_something(laptop)
    expect_login_page(laptop)
    expect(live_region(laptop)).to_contain_text(SIGNED_OUT_ELSEWHERE)
    # This browser is still signed in.
    click_something(page)
    expect_profile(page)


@js_modes
def test_sign_out_all_other_sessions_logs_every_other_browser_out(
    page, another_browser, user, js_enabled
):
    laptop = signed_in_twice(page, another_browser, user)
    phone = another_browser()
    log_in(phone, user.email)
    expect_profile(phone)
    page.reload()
    expect(steps.sessions_list(page).get_by_role("listitem")).to_have_count(3)

    steps.sessions_card(page).get_by_role("button", name="Sign out all other sessions").click()
    expect(sessions_said(page)).to_contain_text("Signed out of 2 other sessions.")
    expect(steps.sessions_list(page).get_by_role("listitem")).to_have_count(1)

    for other in (laptop, phone):
        click_something(other)
        expect_login_page(other)
        expect(live_region(other)).to_contain_text(SIGNED_OUT_ELSEWHERE)
    click_something(page)
    expect_profile(page)


@pytest.fixture
def support_staff(staff_user, enrolled):
    """(Sam, his secret): support staff (view_user and reset_two_factor) with 2FA on."""
    return staff_user, enrolled(staff_user, at=timezone.now() - timedelta(minutes=2))


def open_sessions_of(page: Page, staff, code: str, email: str) -> None:
    log_in_with_code(page, staff.email, code)
    steps.open_account_menu(page).get_by_role("link", name="All users").click()
    expect(page.get_by_role("heading", name="All users", level=1)).to_be_visible()
    page.get_by_role("link", name=f"Sessions of {email}").click()
    expect(page.get_by_role("heading", name=f"Sessions of {email}", level=1)).to_be_visible()


@js_modes
def test_staff_sign_a_user_out_everywhere_with_a_reason(
    page, another_browser, support_staff, user_with_totp, app_code, js_enabled, step_shots
):
    ann, secret = user_with_totp
    anns_laptop = another_browser()  # a browser she trusts
    log_in_with_code(anns_laptop, ann.email, app_code(secret), trust=True)

    staff, staff_secret = support_staff
    open_sessions_of(page, staff, app_code(staff_secret), ann.email)
    signed_in = page.get_by_role("list", name="Signed in").get_by_role("listitem")
    expect(signed_in).to_have_count(1)
    expect(signed_in).to_contain_text("Headless Chrome")
    step_shots(page, "sessions-2-staff")

    dialog = steps.open_dialog(
        page,
        js_enabled,
        page.get_by_role("link", name="Sign out everywhere"),
        "Sign out everywhere",
    )
    steps.confirm_identity(dialog, code=app_code(staff_secret, seconds=30))
    expect(
        dialog.get_by_role("heading", name=f"Sign {ann.email} out everywhere?", level=1)
    ).to_be_visible()
    dialog.get_by_role("button", name="Sign out everywhere").click()
    expect(dialog.get_by_text("Enter the reason for signing them out.")).to_be_visible()
    dialog.get_by_label("Reason").fill("Laptop stolen, reported by phone")
    step_shots(page, "sessions-3-staff-reason")
    dialog.get_by_role("button", name="Sign out everywhere").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(live_region(page)).to_contain_text(f"{ann.email} is signed out everywhere.")
    expect(page.get_by_role("heading", name="All users", level=1)).to_be_visible()

    click_something(anns_laptop)
    expect_login_page(anns_laptop)
    # The stolen laptop's trust went too: the password alone is not enough any more.
    steps.log_in_with_password(anns_laptop, ann.email)
    steps.enter_login_code(anns_laptop, app_code(secret, seconds=30))
    expect_profile(anns_laptop)
    # And she finds who signed her out and why.
    activity = anns_laptop.get_by_role("region", name="Recent security activity")
    expect(
        activity.get_by_text("Signed out by staff: Laptop stolen, reported by phone")
    ).to_be_visible()


@js_modes
def test_sign_out_all_other_sessions_also_makes_their_trusted_browsers_ask_for_a_code(
    page, another_browser, user_with_totp, app_code, js_enabled
):
    ann, secret = user_with_totp
    laptop = another_browser()
    log_in_with_code(laptop, ann.email, app_code(secret), trust=True)
    log_in_with_code(page, ann.email, app_code(secret, seconds=30))

    steps.sessions_card(page).get_by_role("button", name="Sign out all other sessions").click()
    expect(sessions_said(page)).to_contain_text(
        "Other browsers you trusted will ask for a code again."
    )
    expect(steps.trusted_browsers(page)).to_have_count(0)

    click_something(laptop)
    expect_login_page(laptop)
    steps.log_in_with_password(laptop, ann.email)
    expect(laptop.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(laptop.get_by_role("button", name="Account menu")).to_have_count(0)


# --- 4. Accessibility (axe) -------------------------------------------------------------


@audit_modes
def test_policy_page_and_banners_have_no_serious_accessibility_problems(
    audited_page, superuser, make_user, app_code, scripts
):
    page = audited_page
    open_security_policy(page, superuser, app_code)
    assert_accessible(page, "the security policy page")
    page.get_by_label("Grace period (days)").fill("400")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_label("Grace period (days)")).to_have_accessible_description(
        re.compile("365")
    )
    assert_accessible(page, "the security policy page with an error")
    page.get_by_label("Require two-factor authentication for every user").check()
    page.get_by_label("Grace period (days)").fill("7")
    page.get_by_role("button", name="Save policy").click()
    expect(live_region(page)).to_contain_text("Security policy saved")
    assert_accessible(page, "the security policy page, saved")
    steps.log_out(page)

    bob = make_user("bob@example.com", name="Bob Plain")
    log_in(page, bob.email)
    expect(steps.policy_banner(page)).to_contain_text("will be required for your account from")
    assert_accessible(page, "My profile with the policy banner")
    steps.log_out(page)

    cleo = make_user("cleo@example.com", name="Cleo Late")
    PolicyDeadline.objects.create(user=cleo, required_since=timezone.now() - timedelta(days=8))
    log_in(page, cleo.email)
    expect_forced_setup(page)
    assert_accessible(page, "the forced setup page with the overdue banner")


@audit_modes
def test_trust_box_and_profile_with_browsers_and_sessions_have_no_serious_accessibility_problems(
    audited_page, another_browser, user_with_totp, app_code, scripts
):
    page = audited_page
    ann, secret = user_with_totp
    laptop = another_browser()
    log_in_with_code(laptop, ann.email, app_code(secret), trust=True)

    log_in(page, ann.email)
    page.get_by_label(steps.TRUST_BOX).check()
    assert_accessible(page, "the code step with the trust box")
    page.get_by_label("Verification code").fill(app_code(secret, seconds=30))
    page.get_by_role("button", name="Log in").click()
    expect_profile(page)
    expect(steps.trusted_browsers(page).get_by_role("listitem")).to_have_count(2)
    expect(steps.sessions_list(page).get_by_role("listitem")).to_have_count(2)
    assert_accessible(page, "My profile with trusted browsers and sessions")


@audit_modes
def test_staff_sessions_page_and_dialog_have_no_serious_accessibility_problems(
    audited_page, another_browser, support_staff, user, app_code, scripts
):
    page = audited_page
    anns_laptop = another_browser()
    log_in(anns_laptop, user.email)
    staff, staff_secret = support_staff
    open_sessions_of(page, staff, app_code(staff_secret), user.email)
    assert_accessible(page, "the staff sessions page")

    page.get_by_role("link", name="Sign out everywhere").click()
    scope = dialog_or_main(page, scripts)
    assert_accessible(page, "the sign out everywhere dialog asking for the staff password")
    steps.confirm_identity(scope, code=app_code(staff_secret, seconds=30))
    expect(scope.get_by_label("Reason")).to_be_visible()
    assert_accessible(page, "the sign out everywhere dialog")
    scope.get_by_role("button", name="Sign out everywhere").click()
    expect(scope.get_by_text("Enter the reason for signing them out.")).to_be_visible()
    assert_accessible(page, "the sign out everywhere dialog with an error")


# --- 5. Phones --------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_on_a_phone_the_profile_with_browsers_and_sessions_needs_no_sideways_scrolling(
    page, another_browser, user_with_totp, app_code
):
    ann, secret = user_with_totp
    laptop = another_browser()
    log_in_with_code(laptop, ann.email, app_code(secret), trust=True)
    log_in_with_code(page, ann.email, app_code(secret, seconds=30), trust=True)
    expect(steps.trusted_browsers(page).get_by_role("listitem")).to_have_count(2)
    expect(steps.sessions_list(page).get_by_role("listitem")).to_have_count(2)

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    buttons = [
        *steps.trusted_browsers(page).get_by_role("button", name=re.compile("^Remove")).all(),
        steps.trusted_browsers(page).locator("xpath=..").get_by_role("button", name="Remove all"),
        *steps.sessions_card(page).get_by_role("button").all(),
    ]
    for button in buttons:
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], button
