"""Every journey of the user guide, as a person does it, with and without JavaScript.

The database is touched only to create the people who start each journey;
everything else happens through the screen. Fresh app codes come from Debian's
oathtool. Where a journey needs several codes in a row it takes them from
successive 30-second steps (oathtool -N "now + 30 seconds"), which the server
accepts within its +-1 step window, instead of waiting for the next step.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e import steps
from tests.e2e.steps import JS_MODES
from twofactor import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

js_modes = pytest.mark.parametrize("js_enabled", **JS_MODES)


@pytest.fixture
def person(user_with_totp):
    """Ann, whose 2FA was switched on two minutes ago: (user, secret)."""
    return user_with_totp


@pytest.fixture
def person_with_backup_codes(person):
    user, secret = person
    return user, secret, services.regenerate_backup_codes(user=user)


def page_live_region(page):
    """base.html's polite live region, where the messages after an action appear."""
    return page.locator("main > [role=status][aria-live=polite]")


def log_in_with_app(page, user, secret, app_code) -> None:
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


@js_modes
def test_user_enables_2fa_by_scanning_the_qr_code(page, user, app_code, js_enabled, step_shots):
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.go_to_profile(page)
    section = steps.two_factor_section(page)
    expect(section.get_by_text("Not activated")).to_be_visible()
    step_shots(page, "enable-1-profile")

    dialog = steps.open_dialog(
        page, js_enabled, section.get_by_role("link", name="Enable 2FA"), "Enable 2FA"
    )
    step_shots(page, "enable-2-password")
    steps.confirm_identity(dialog)

    expect(dialog.get_by_role("heading", name="Enable two-factor authentication")).to_be_visible()
    for app in ("Google Authenticator", "Microsoft Authenticator", "FreeOTP"):
        expect(dialog.get_by_text(app)).to_be_visible()
    scanned = steps.scan_qr(dialog)
    # A screen-reader user hears where the same secret is written out to type by hand.
    expect(dialog.get_by_role("img", name=re.compile("QR code"))).to_have_attribute(
        "alt", re.compile(r"If you cannot scan it, enter the key shown next to it by hand\.")
    )
    expect(dialog.get_by_text("Can't scan it? Enter this key in the app:")).to_be_visible()
    assert scanned["scheme"] == "otpauth" and scanned["type"] == "totp"
    assert scanned["label"] == f"Customer Portal:{user.email}"
    assert scanned["issuer"] == "Customer Portal"
    # The key for typing by hand is the same secret, in groups of four.
    manual_key = dialog.locator("code.secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", manual_key)
    assert manual_key.replace(" ", "") == scanned["secret"]
    if js_enabled:
        copy_manual_key(page, dialog, scanned["secret"])
    step_shots(page, "enable-3-qr")

    dialog.get_by_label("Six-digit code").fill(app_code(scanned["secret"]))
    dialog.get_by_role("button", name="Check").click()

    # Setup ends with the backup codes, in the same dialog (or page, without JS).
    heading = dialog.get_by_role("heading", name="Two-factor authentication is on", level=1)
    expect(heading).to_be_visible()
    if js_enabled:
        expect(heading).to_be_focused()  # a screen reader lands on the codes
    expect(dialog.get_by_role("list", name="Backup codes").get_by_role("listitem")).to_have_count(5)
    step_shots(page, "enable-4-backup-codes")
    dialog.get_by_label("I have stored these codes").check()
    dialog.get_by_role("button", name="Done").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(section.get_by_text("Activated", exact=True)).to_be_visible()
    expect(section.get_by_text("Backup codes: 5 unused")).to_be_visible()
    expect(section.get_by_role("link", name="Disable 2FA")).to_be_visible()
    expect(section.get_by_role("link", name="Generate backup code")).to_be_visible()
    step_shots(page, "enable-5-activated")


@js_modes
def test_backup_codes_downloaded_are_the_ones_shown(page, person, app_code, js_enabled, step_shots):
    user, secret = person
    log_in_with_app(page, user, secret, app_code)
    section = steps.two_factor_section(page)

    dialog = steps.open_dialog(
        page,
        js_enabled,
        section.get_by_role("link", name="Generate backup code"),
        "Generate backup code",
    )
    # Sudo mode with 2FA on: the password and a fresh code (the next step's).
    steps.confirm_identity(dialog, code=app_code(secret, seconds=30))
    expect(dialog.get_by_role("heading", name="Backup codes")).to_be_visible()
    dialog.get_by_role("button", name="Generate backup code").click()

    expect(dialog.get_by_role("heading", name="Your backup codes")).to_be_visible()
    shown = dialog.get_by_role("list", name="Backup codes").get_by_role("listitem")
    expect(shown).to_have_count(5)
    codes = [text.strip() for text in shown.all_inner_texts()]
    assert all(steps.BACKUP_CODE.fullmatch(code) for code in codes)
    assert len(set(codes)) == 5
    step_shots(page, "backup-1-codes")

    with page.expect_download() as download_info:
        dialog.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "backup-codes.txt"
    with open(download.path(), encoding="utf-8") as downloaded:
        assert steps.BACKUP_CODE.findall(downloaded.read()) == codes

    if js_enabled:
        copy_and_print_codes(page, dialog, codes, step_shots)
    else:
        # Copy and Print need JavaScript; without it they are not offered at all.
        expect(dialog.get_by_role("button", name="Copy")).to_be_hidden()
        expect(dialog.get_by_role("button", name="Print")).to_be_hidden()

    dialog.get_by_label("I have stored these codes").check()
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(section.get_by_text("5 unused")).to_be_visible()
    step_shots(page, "backup-2-profile")


def dialog_live_region(dialog):
    """The polite live region of dialog.html, where screen readers hear what happened."""
    return dialog.locator("[role=status][aria-live=polite]").first


def copy_manual_key(page, dialog, secret: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    dialog.get_by_role("button", name="Copy key").click()
    expect(dialog_live_region(dialog)).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret


def copy_and_print_codes(page, dialog, codes, step_shots) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("button", name="Copied")).to_be_visible()
    expect(dialog_live_region(dialog)).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == codes

    # Headless chromium has no print dialog: window.print() returns at once. What
    # would be printed is the print stylesheet's work: only the codes, with the
    # product, the account and the date.
    page.evaluate("window.print = () => { window.printed = true; }")
    dialog.get_by_role("button", name="Print").click()
    assert page.evaluate("window.printed === true")
    page.emulate_media(media="print")
    # (The dialog itself is hidden on paper, so look from the page, not from the dialog.)
    expect(page.get_by_text("Customer Portal — backup codes for")).to_be_visible()
    for code in codes:
        expect(page.get_by_text(code, exact=True)).to_be_visible()
    expect(page.get_by_text("I have stored these codes")).to_be_hidden()
    expect(page.get_by_role("heading", name="My profile")).to_be_hidden()
    step_shots(page, "backup-print")
    page.emulate_media(media="screen")


@js_modes
def test_user_logs_out_then_logs_in_with_an_app_code(
    page, person, app_code, js_enabled, step_shots
):
    user, secret = person
    log_in_with_app(page, user, secret, app_code)
    steps.log_out(page)
    step_shots(page, "login-1-password")

    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    # Not logged in yet: the header has no account menu until the code is accepted.
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)
    step_shots(page, "login-2-code")
    # The first login spent this step's code; the app's next code is the one to type.
    steps.enter_login_code(page, app_code(secret, seconds=30))

    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(steps.two_factor_section(page).get_by_text("Activated", exact=True)).to_be_visible()
    step_shots(page, "login-3-profile")


@js_modes
def test_backup_code_logs_in_once_and_is_refused_the_second_time(
    page, person_with_backup_codes, js_enabled, step_shots
):
    user, _secret, codes = person_with_backup_codes
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, codes[0])
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(page_live_region(page)).to_contain_text(
        "You signed in with a backup code. 4 unused backup codes left."
    )
    step_shots(page, "backup-login-1-profile")

    steps.log_out(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, codes[0])
    expect(page.get_by_role("alert")).to_contain_text(
        "That backup code is not right, or it was already used"
    )
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)
    step_shots(page, "backup-login-2-refused")


@js_modes
def test_a_phone_clock_that_is_off_ends_with_a_login(
    page, person, app_code, wrong_code, js_enabled, step_shots
):
    user, secret = person
    steps.start(page)
    steps.log_in_with_password(page, user.email)

    steps.enter_login_code(page, wrong_code(secret))
    expect(page.get_by_role("alert")).to_contain_text("That code is not right.")

    # A phone whose clock runs 90 s (three steps) ahead: refused, with the reason.
    steps.enter_login_code(page, app_code(secret, seconds=90))
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("your device's clock looks about 90 seconds off")
    expect(alert).to_contain_text(re.compile(r"The server's time is \d\d:\d\d:\d\d UTC"))
    expect(page.get_by_text("A backup code works whatever the time.")).to_be_visible()
    step_shots(page, "login-drift")

    # The user follows the advice and fixes the clock: today's code logs in at once.
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    step_shots(page, "login-drift-recovered")


@js_modes
def test_five_wrong_codes_lock_code_entry_and_the_page_says_so(
    page, person, app_code, wrong_code, js_enabled, step_shots
):
    user, secret = person
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    for _ in range(services.MAX_FAILURES):
        steps.enter_login_code(page, wrong_code(secret))
    expect(page.get_by_role("alert")).to_contain_text("Too many wrong codes.")
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"locked until \d\d:\d\d UTC"))
    # Locked means locked: even the right code is refused now.
    steps.enter_login_code(page, app_code(secret))
    expect(page.get_by_role("alert")).to_contain_text("Too many wrong codes.")
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)
    step_shots(page, "login-locked")

    # Coming back later (before the lock ends): the page says so before any typing.
    page.get_by_role("link", name="Start over").click()
    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"locked until \d\d:\d\d UTC"))
    step_shots(page, "login-locked-on-open")


@js_modes
def test_user_disables_2fa(page, person, app_code, js_enabled, step_shots):
    user, secret = person
    log_in_with_app(page, user, secret, app_code)
    section = steps.two_factor_section(page)

    dialog = steps.open_dialog(
        page, js_enabled, section.get_by_role("link", name="Disable 2FA"), "Disable 2FA"
    )
    steps.confirm_identity(dialog, code=app_code(secret, seconds=30))
    expect(dialog.get_by_role("heading", name="Disable two-factor authentication?")).to_be_visible()
    step_shots(page, "disable-1-confirm")
    dialog.get_by_role("button", name="Disable 2FA").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(section.get_by_text("Not activated")).to_be_visible()
    expect(section.get_by_role("link", name="Enable 2FA")).to_be_visible()
    expect(page_live_region(page)).to_contain_text("Two-factor authentication is off.")
    step_shots(page, "disable-2-profile")


@js_modes
def test_profile_lists_enabling_2fa_and_using_a_backup_code(
    page, user, app_code, js_enabled, step_shots
):
    # The whole story of issue 7: enable by scanning, download codes, log in with
    # one of the downloaded codes, and find both events on My profile.
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    steps.go_to_profile(page)
    section = steps.two_factor_section(page)
    steps.enable_two_factor(page, js_enabled, app_code)

    # Sudo mode was proven a moment ago for enabling: no second password prompt.
    dialog = steps.open_dialog(
        page,
        js_enabled,
        section.get_by_role("link", name="Generate backup code"),
        "Backup codes",
    )
    dialog.get_by_role("button", name="Generate backup code").click()
    with page.expect_download() as download_info:
        dialog.get_by_role("link", name="Download").click()
    with open(download_info.value.path(), encoding="utf-8") as downloaded:
        downloaded_codes = steps.BACKUP_CODE.findall(downloaded.read())
    dialog.get_by_label("I have stored these codes").check()
    dialog.get_by_role("button", name="Done").click()

    steps.log_out(page)
    steps.log_in_with_password(page, user.email)
    steps.enter_login_code(page, downloaded_codes[2])
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()

    activity = page.get_by_role("region", name="Recent security activity")
    expect(activity.get_by_text("Two-factor authentication enabled")).to_be_visible()
    expect(activity.get_by_text("Backup code used")).to_be_visible()
    # Two sets: setup's first one, then the one generated and downloaded.
    expect(activity.get_by_text("New backup codes generated")).to_have_count(2)
    step_shots(page, "activity")


@pytest.fixture
def support_staff(staff_user, enrolled):
    """(Sam, his secret): support staff (the fixture gives him view_user and
    reset_two_factor) with 2FA on, as staff pages need."""
    secret = enrolled(staff_user, at=timezone.now() - timedelta(minutes=2))
    return staff_user, secret


@pytest.fixture
def mixed_users(person, make_user):
    """Ann has 2FA on; Bob does not."""
    ann, _secret = person
    bob = make_user("bob@example.com", name="Bob Plain")
    return ann, bob


def open_all_users(page, staff, code: str) -> None:
    steps.start(page)
    steps.log_in_with_password(page, staff.email)
    steps.enter_login_code(page, code)  # staff pages open only past the second factor
    steps.open_account_menu(page).get_by_role("link", name="All users").click()
    expect(page.get_by_role("heading", name="All users", level=1)).to_be_visible()


@js_modes
def test_staff_without_2fa_turn_it_on_and_then_all_users_opens(
    page, staff_user, app_code, js_enabled, step_shots
):
    steps.start(page)
    steps.log_in_with_password(page, staff_user.email)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    # Staff rights count only with 2FA: no staff pages in the menu yet; instead the security
    # policy's banner (2FA is required for staff) says why, with the button that fixes it.
    menu = steps.open_account_menu(page)
    expect(menu.get_by_role("link", name="All users")).to_have_count(0)
    page.keyboard.press("Escape")
    banner = steps.policy_banner(page)
    expect(banner).to_contain_text(
        "Two-factor authentication will be required for your account from"
    )
    expect(banner).to_contain_text("Staff pages open once it is on.")
    expect(banner.get_by_role("link", name="Enable 2FA")).to_be_visible()
    step_shots(page, "staff-1-needs-2fa")

    steps.enable_two_factor(page, js_enabled, app_code)
    expect(steps.policy_banner(page)).to_have_count(0)

    steps.open_account_menu(page).get_by_role("link", name="All users").click()
    expect(page.get_by_role("heading", name="All users", level=1)).to_be_visible()
    expect(user_cell(page, staff_user.email)).to_be_visible()
    step_shots(page, "staff-2-all-users")


def filter_by_two_factor(page, js_enabled: bool, value: str) -> None:
    # A person waits for the list to change before acting on it: the old table
    # (htmx replaces it; without JavaScript the page reloads) must be gone first,
    # or a click could land on a row of the unfiltered list.
    old_list = page.locator("#users-region").element_handle()
    page.get_by_label("Two-Factor authentication").select_option(label=value)
    if js_enabled:
        old_list.wait_for_element_state("hidden")  # htmx swapped in the filtered list
    else:
        # Without JavaScript the filter is a plain GET form: the person presses Apply
        # (the click waits for the new page).
        page.get_by_role("button", name="Apply").click()


def user_cell(page, email: str):
    return page.get_by_role("table").get_by_role("cell", name=email, exact=True)


@js_modes
def test_staff_filters_all_users_by_activated_and_not_activated(
    page, support_staff, mixed_users, app_code, js_enabled, step_shots
):
    ann, bob = mixed_users
    staff, staff_secret = support_staff
    open_all_users(page, staff, app_code(staff_secret))
    table = page.get_by_role("table")
    expect(table.get_by_role("cell", name=ann.email, exact=True)).to_be_visible()
    expect(table.get_by_role("cell", name=bob.email, exact=True)).to_be_visible()
    step_shots(page, "users-1-all")

    filter_by_two_factor(page, js_enabled, "Activated")
    expect(table.get_by_role("cell", name=bob.email, exact=True)).to_have_count(0)
    expect(table.get_by_role("cell", name=ann.email, exact=True)).to_be_visible()
    expect(table.get_by_role("cell", name=staff.email, exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"of\s+2\s+users\b"))).to_be_visible()
    # The filter lives in the address bar: bookmarkable, and the back button works.
    expect(page).to_have_url(re.compile(r"two_factor="))
    step_shots(page, "users-2-activated")

    filter_by_two_factor(page, js_enabled, "Not activated")
    # htmx pushed each view into the history, but kept no copy of the list in the browser
    # storage, where it would outlive the logout.
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert ann.email not in stored and bob.email not in stored
    expect(table.get_by_role("cell", name=ann.email, exact=True)).to_have_count(0)
    expect(table.get_by_role("cell", name=bob.email, exact=True)).to_be_visible()
    expect(table.get_by_role("cell", name=staff.email, exact=True)).to_have_count(0)
    expect(table.get_by_role("cell", name="Activated", exact=True)).to_have_count(0)
    step_shots(page, "users-3-not-activated")


@pytest.mark.parametrize("language", ["en", "de"])
def test_all_users_fits_a_1280_px_screen(
    page, support_staff, mixed_users, app_code, language, screenshot, django_user_model
):
    # Every column in view beside the sticky actions, none hidden under them, with the
    # widest cells there are: a last login with its time, a lock note.
    from twofactor.models import TOTPDevice

    staff, staff_secret = support_staff
    ann, bob = mixed_users
    now = timezone.now()
    django_user_model.objects.filter(pk__in=[staff.pk, ann.pk, bob.pk]).update(last_login=now)
    TOTPDevice.objects.filter(user=ann).update(locked_until=now + timedelta(minutes=5))
    django_user_model.objects.filter(pk=staff.pk).update(language=language)
    steps.start(page)
    steps.log_in_with_password(page, staff.email)
    steps.enter_login_code(page, app_code(staff_secret))
    page.goto(page.base_url + "/accounts/users/")
    table = page.get_by_role("table")
    expect(table.get_by_role("cell", name=ann.email, exact=True)).to_be_visible()
    hidden = page.locator(".table-wrap").evaluate("wrap => wrap.scrollWidth - wrap.clientWidth")
    screenshot(page, f"users-1280-{language}")
    assert hidden <= 0, f"{hidden}px of the table are out of view at 1280 px"


def test_paging_all_users_shows_the_new_page_from_its_top(page, support_staff, app_code, make_user):
    # Next is at the bottom of 50 rows: after it, the new rows are in view from their
    # first, and the keyboard is still on the pager, not back at the start of the page.
    for number in range(110):
        make_user(f"member{number:03d}@example.com", name=f"Member {number:03d}")
    staff, staff_secret = support_staff
    open_all_users(page, staff, app_code(staff_secret))
    page.get_by_role("link", name="Next").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Page 2 of 3")).to_be_visible()
    expect(page.get_by_role("link", name="Next")).to_be_focused()
    top = page.locator("#users-region").evaluate("region => region.getBoundingClientRect().top")
    assert -2 <= top < 100, f"the list starts {top}px from the top of the screen"
    # Last and First are not on the pages they open: the keyboard lands on the count at
    # the top of the new page, which is in view.
    count = page.locator(".result-count")
    page.get_by_role("link", name="Last", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Page 3 of 3")).to_be_visible()
    expect(count).to_be_focused()
    expect(count).to_contain_text(re.compile(r"^\s*101–\d+ of"))
    assert count.evaluate("node => node.getBoundingClientRect().top < window.innerHeight")
    page.keyboard.press("Tab")  # on into the page, from the top
    expect(page.get_by_role("link", name="Export CSV")).to_be_focused()
    page.get_by_role("link", name="First", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Page 1 of 3")).to_be_visible()
    expect(count).to_be_focused()


@js_modes
def test_staff_resets_2fa_and_the_user_logs_in_with_the_password_alone(
    page, support_staff, mixed_users, app_code, js_enabled, step_shots
):
    ann, _bob = mixed_users
    staff, staff_secret = support_staff
    open_all_users(page, staff, app_code(staff_secret))
    filter_by_two_factor(page, js_enabled, "Activated")
    expect(user_cell(page, ann.email)).to_be_visible()

    dialog = steps.open_dialog(
        page,
        js_enabled,
        page.get_by_role("link", name=f"Reset 2FA for {ann.email}"),
        "Reset 2FA",
    )
    # Sudo mode: the staff member's own password and a code (the next one: this step's
    # code was spent at login).
    steps.confirm_identity(dialog, code=app_code(staff_secret, seconds=30))
    expect(
        dialog.get_by_role("heading", name=f"Reset two-factor authentication for {ann.email}?")
    ).to_be_visible()
    dialog.get_by_label("Reason").fill("Lost her phone; identity checked by video call")
    step_shots(page, "users-4-reset")
    dialog.get_by_role("button", name="Reset 2FA").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page_live_region(page)).to_contain_text(
        f"Two-factor authentication is reset for {ann.email}."
    )
    # Back on the list as it was left (filtered by Activated): Ann is no longer in it.
    expect(user_cell(page, ann.email)).to_have_count(0)
    step_shots(page, "users-5-after-reset")

    steps.log_out(page)
    steps.log_in_with_password(page, ann.email)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()
    expect(steps.two_factor_section(page).get_by_text("Not activated")).to_be_visible()
    activity = page.get_by_role("region", name="Recent security activity")
    expect(
        activity.get_by_text("2FA reset by staff: Lost her phone; identity checked by video call")
    ).to_be_visible()
    step_shots(page, "users-6-user-sees-reset")
