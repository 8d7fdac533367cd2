"""The security policy through the pages: its defaults, the reminder before a user's deadline,
forced setup after it, Disable 2FA refused under the requirement, and the superusers' policy
page (access, "confirm it's you", saving, bad input, audit, CSRF).

The clock is frozen (freeze_clock) wherever a deadline matters, so dates on the page are exact.
"""

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.models import SecurityEvent
from tests.concurrency import all_at_once
from tests.conftest import PASSWORD, FrozenClock
from twofactor import services
from twofactor.models import (
    POLICY_CACHE_KEY,
    PolicyDeadline,
    TOTPDevice,
    TrustedBrowser,
    TwoFactorPolicy,
)

PROFILE_URL = "/accounts/profile/"
ALL_USERS_URL = "/accounts/users/"
HISTORY_URL = "/accounts/security/"
LOGOUT_URL = "/accounts/logout/"
LOGIN_URL = "/accounts/login/"
CLOSE_ACCOUNT_URL = "/accounts/profile/delete/"
ACCOUNT_CLOSED_URL = "/accounts/closed/"
ENABLE_URL = "/2fa/enable/"
NEW_CODES_URL = "/2fa/backup-codes/new/"
DISABLE_URL = "/2fa/disable/"
POLICY_URL = "/2fa/policy/"

# 15 s into a 30 s step: a code of this moment is one whole step from its neighbours.
START = datetime(2025, 3, 14, 9, 0, 15, tzinfo=UTC)
# START + the default grace of 7 days, as the banner writes it ("j M Y, H:i" UTC).
DEFAULT_DEADLINE_TEXT = "21 Mar 2025, 09:00"
BEFORE_DEADLINE = "Two-factor authentication will be required for your account from"
AFTER_DEADLINE = "Two-factor authentication is required for your account."
REFUSED_TITLE = "Two-factor authentication is required"
SUDO_TITLE = "Confirm it's you"
PASSWORD_INPUT = 'name="password"'
DISABLED_BUTTON = (
    '<button type="button" class="button" disabled '
    'aria-describedby="disable-required">Disable 2FA</button>'
)
DISABLED_HELP = (
    "Disable 2FA is not available: the security policy requires two-factor authentication "
    "for your account."
)
POLICY_DEFAULTS = {
    "require_for_staff": True,
    "require_for_everyone": False,
    "grace_period_days": 7,
    "allow_trusted_browsers": True,
}


def page(response) -> str:
    """The page as HTML, with the inline <span>s that only style words (no line break in
    a date) taken out, so a sentence reads as one string."""
    return re.sub(r"</?span( class=\"nowrap\")?>", "", response.content.decode())


def set_policy(**fields: object) -> None:
    """Change the policy row directly (the page and its audit are tested on their own)."""
    policy = TwoFactorPolicy.objects.get(pk=TwoFactorPolicy.current().pk)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()  # forgets the cached copy, as update_policy's save does


def policy_values() -> dict:
    policy = TwoFactorPolicy.objects.get(pk=1)
    return {name: getattr(policy, name) for name in POLICY_DEFAULTS}


def form_data(**changes: object) -> dict:
    """The policy form as a browser posts it: ticked boxes as "on", unticked ones absent."""
    values = {**POLICY_DEFAULTS, **changes}
    data = {name: "on" for name in POLICY_DEFAULTS if values[name] is True}
    data["grace_period_days"] = str(values["grace_period_days"])
    return data


def sudo_answer(secret: str | None = None) -> dict:
    answer = {"sudo": "1", "password": PASSWORD}
    if secret is not None:
        answer["code"] = pyotp.TOTP(secret).at(timezone.now())
    return answer


@pytest.fixture
def clock(freeze_clock) -> FrozenClock:
    return freeze_clock(START)


@pytest.fixture
def superuser(make_user):
    return make_user("root@example.com", name="Rita Root", is_staff=True, is_superuser=True)


@pytest.fixture
def other_superuser(make_user):
    return make_user("admin@example.com", name="Abe Admin", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser, log_in_with_sudo, enrolled):
    """A superuser with 2FA, in a session that passed it and answered "confirm it's you"."""
    enrolled(superuser)
    return log_in_with_sudo(client, superuser)


@pytest.fixture
def staff_with_totp(staff_user, enrolled):
    enrolled(staff_user)
    return staff_user


def overdue(user) -> None:
    """`user` was first seen under the requirement 8 days before START (grace: 7)."""
    PolicyDeadline.objects.create(user=user, required_since=START - timedelta(days=8))


# --- Defaults ------------------------------------------------------------------------------
def test_policy_row_from_the_migration_has_the_safe_defaults(db):
    # Read straight from the row the migration made, not from a freshly built instance.
    assert TwoFactorPolicy.objects.filter(pk=1).exists()
    assert policy_values() == POLICY_DEFAULTS


def test_policy_made_on_first_use_has_the_safe_defaults(db):
    TwoFactorPolicy.objects.all().delete()
    policy = services.get_policy()
    assert {name: getattr(policy, name) for name in POLICY_DEFAULTS} == POLICY_DEFAULTS
    assert policy_values() == POLICY_DEFAULTS


# --- Cached: every logged-in request reads it ---------------------------------------------
def test_the_policy_is_read_from_the_database_once_then_from_the_cache(
    db, superuser, django_assert_num_queries
):
    TwoFactorPolicy.current()
    with django_assert_num_queries(0):
        assert TwoFactorPolicy.current().require_for_staff
    services.update_policy(actor=superuser, require_for_staff=False)
    assert not TwoFactorPolicy.current().require_for_staff  # the save forgot the copy


@pytest.mark.parametrize("read_is_cached", ["before the commit", "after the commit"])
def test_a_request_that_read_the_row_before_a_change_cannot_put_it_back(
    db, django_capture_on_commit_callbacks, read_is_cached
):
    # Another request missed the cache, read the row, then caches what it read as
    # current() does (cache.add), while the change commits.
    before = TwoFactorPolicy.objects.get(pk=TwoFactorPolicy.current().pk)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        changed = TwoFactorPolicy.objects.get(pk=before.pk)
        changed.require_for_everyone = True
        changed.save()
        if read_is_cached == "before the commit":
            cache.add(POLICY_CACHE_KEY, before)
    if read_is_cached == "after the commit":
        cache.add(POLICY_CACHE_KEY, before)
    assert TwoFactorPolicy.current().require_for_everyone


def test_the_policy_page_shows_the_row_not_a_copy(admin_client):
    # A copy another app server's cache still holds must not fill the form: saving it
    # would undo the change it does not know of.
    stale = TwoFactorPolicy.objects.get(pk=TwoFactorPolicy.current().pk)
    set_policy(allow_trusted_browsers=False)
    cache.set(POLICY_CACHE_KEY, stale)  # as a process the save could not reach has it
    form = admin_client.get(POLICY_URL).context["form"]
    assert form.initial["allow_trusted_browsers"] is False


# --- Before the deadline: the reminder -----------------------------------------------------
def test_staff_without_2fa_see_the_reminder_with_their_deadline(clock, client, staff_user):
    client.force_login(staff_user)
    html = page(client.get(PROFILE_URL))
    assert f"{BEFORE_DEADLINE} {DEFAULT_DEADLINE_TEXT} UTC." in html
    assert 'class="button button-primary button-small" href="/2fa/enable/"' in html


def test_reminder_is_shown_on_other_pages_too(clock, client, staff_user):
    client.force_login(staff_user)
    html = page(client.get(HISTORY_URL))
    assert f"{BEFORE_DEADLINE} {DEFAULT_DEADLINE_TEXT} UTC." in html


def test_customers_see_no_reminder_under_the_default_policy(clock, client, user):
    client.force_login(user)
    response = client.get(PROFILE_URL)
    assert response.status_code == 200
    assert BEFORE_DEADLINE not in page(response)
    assert not PolicyDeadline.objects.filter(user=user).exists()


def test_customers_see_the_reminder_when_2fa_is_required_for_everyone(clock, client, user):
    set_policy(require_for_everyone=True)
    client.force_login(user)
    html = page(client.get(PROFILE_URL))
    assert f"{BEFORE_DEADLINE} {DEFAULT_DEADLINE_TEXT} UTC." in html


def test_reminder_counts_the_grace_period_set_in_the_policy(clock, client, staff_user):
    set_policy(grace_period_days=30)
    client.force_login(staff_user)
    html = page(client.get(PROFILE_URL))
    assert f"{BEFORE_DEADLINE} 13 Apr 2025, 09:00 UTC." in html


def test_staff_with_2fa_see_no_reminder(clock, client, staff_with_totp, log_in_verified):
    log_in_verified(client, staff_with_totp)
    response = client.get(PROFILE_URL)
    assert response.status_code == 200
    assert BEFORE_DEADLINE not in page(response)


def test_deadline_starts_at_the_users_first_request_under_the_requirement(
    clock, client, staff_user
):
    client.force_login(staff_user)  # logging in alone starts nothing
    assert not PolicyDeadline.objects.filter(user=staff_user).exists()
    clock.advance(days=2)
    client.get(PROFILE_URL)
    assert PolicyDeadline.objects.get(user=staff_user).required_since == START + timedelta(days=2)


def test_each_user_has_their_own_deadline(clock, make_user, staff_user):
    first, second = Client(), Client()
    first.force_login(staff_user)
    first.get(PROFILE_URL)
    clock.advance(days=3)
    colleague = make_user("colleague@example.com", is_staff=True)
    second.force_login(colleague)
    assert f"{BEFORE_DEADLINE} 24 Mar 2025, 09:00 UTC." in page(second.get(PROFILE_URL))
    assert f"{BEFORE_DEADLINE} {DEFAULT_DEADLINE_TEXT} UTC." in page(first.get(PROFILE_URL))


def test_later_requests_keep_the_first_deadline(clock, client, staff_user):
    client.force_login(staff_user)
    client.get(PROFILE_URL)
    clock.advance(days=5)
    html = page(client.get(PROFILE_URL))
    assert f"{BEFORE_DEADLINE} {DEFAULT_DEADLINE_TEXT} UTC." in html
    assert PolicyDeadline.objects.filter(user=staff_user).count() == 1


def test_switching_the_requirement_off_and_on_gives_no_new_grace(
    clock, client, staff_user, superuser
):
    client.force_login(staff_user)
    client.get(PROFILE_URL)
    clock.advance(days=3)
    services.update_policy(actor=superuser, require_for_staff=False)
    assert BEFORE_DEADLINE not in page(client.get(PROFILE_URL))
    clock.advance(days=1)
    services.update_policy(actor=superuser, require_for_staff=True)
    html = page(client.get(PROFILE_URL))
    assert f"{BEFORE_DEADLINE} {DEFAULT_DEADLINE_TEXT} UTC." in html
    assert PolicyDeadline.objects.get(user=staff_user).required_since == START


def test_reminder_is_still_shown_one_second_before_the_deadline(clock, client, staff_user):
    client.force_login(staff_user)
    client.get(PROFILE_URL)
    clock.advance(days=7, seconds=-1)
    response = client.get(PROFILE_URL)
    assert response.status_code == 200
    assert BEFORE_DEADLINE in page(response)


# --- After the deadline: setup first -------------------------------------------------------
@pytest.mark.parametrize("url", [PROFILE_URL, ALL_USERS_URL, HISTORY_URL, POLICY_URL])
def test_staff_past_the_deadline_are_sent_to_setup_from_every_page(clock, client, staff_user, url):
    overdue(staff_user)
    client.force_login(staff_user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == ENABLE_URL


def test_setup_is_forced_at_the_moment_the_grace_period_ends(clock, client, staff_user):
    client.force_login(staff_user)
    assert client.get(PROFILE_URL).status_code == 200
    clock.advance(days=7)
    response = client.get(PROFILE_URL)
    assert response.status_code == 302
    assert response["Location"] == ENABLE_URL


def test_customer_past_the_deadline_is_sent_to_setup_when_required_for_everyone(
    clock, client, user
):
    set_policy(require_for_everyone=True)
    overdue(user)
    client.force_login(user)
    response = client.get(PROFILE_URL)
    assert response.status_code == 302
    assert response["Location"] == ENABLE_URL


def test_htmx_request_past_the_deadline_gets_a_client_redirect_to_setup(clock, client, staff_user):
    overdue(staff_user)
    client.force_login(staff_user)
    response = client.get(PROFILE_URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == ENABLE_URL
    assert "Two-Factor authentication" not in page(response)  # no page behind it


def test_grace_period_zero_forces_setup_at_the_first_request(clock, client, staff_user):
    set_policy(grace_period_days=0)
    client.force_login(staff_user)
    response = client.get(PROFILE_URL)
    assert response.status_code == 302
    assert response["Location"] == ENABLE_URL


def test_logging_out_still_works_past_the_deadline(clock, client, staff_user):
    overdue(staff_user)
    client.force_login(staff_user)
    response = client.post(LOGOUT_URL)
    assert response.status_code == 302
    assert response["Location"] != ENABLE_URL
    assert "_auth_user_id" not in client.session


def test_closing_the_account_is_still_reachable_past_the_deadline(
    clock, client, staff_user, log_in_with_sudo
):
    overdue(staff_user)
    log_in_with_sudo(client, staff_user)
    response = client.get(CLOSE_ACCOUNT_URL)
    assert response.status_code == 200
    assert "Type your email address to confirm" in page(response)
    response = client.post(CLOSE_ACCOUNT_URL, {"email": staff_user.email})
    assert response.status_code == 302
    assert response["Location"] == ACCOUNT_CLOSED_URL
    assert not get_user_model().objects.filter(email=staff_user.email).exists()  # anonymised
    assert client.get(ACCOUNT_CLOSED_URL).status_code == 200


def test_setup_page_past_the_deadline_asks_for_the_password_and_says_why(clock, client, staff_user):
    overdue(staff_user)
    client.force_login(staff_user)
    response = client.get(ENABLE_URL)
    assert response.status_code == 200
    html = page(response)
    assert SUDO_TITLE in html and PASSWORD_INPUT in html
    assert AFTER_DEADLINE in html
    assert "The deadline was 13 Mar 2025, 09:00 UTC" in html


def test_logging_in_past_the_deadline_goes_straight_to_the_qr_code(clock, client, staff_user):
    # The password was typed a moment ago: setup does not ask for it again.
    overdue(staff_user)
    response = client.post(LOGIN_URL, {"username": staff_user.email, "password": PASSWORD})
    assert response.status_code == 302
    html = page(client.get(ENABLE_URL, follow=True))
    assert ">Check</button>" in html and SUDO_TITLE not in html


def test_logging_in_before_the_deadline_still_asks_for_the_password_at_setup(
    clock, client, staff_user
):
    response = client.post(LOGIN_URL, {"username": staff_user.email, "password": PASSWORD})
    assert response.status_code == 302
    html = page(client.get(ENABLE_URL))
    assert SUDO_TITLE in html and PASSWORD_INPUT in html


def test_setup_past_the_deadline_leads_back_to_every_page(clock, client, staff_user):
    overdue(staff_user)
    client.force_login(staff_user)
    response = client.post(ENABLE_URL, sudo_answer())
    assert response.status_code == 302
    assert response["Location"] == ENABLE_URL
    response = client.get(ENABLE_URL)
    assert response.status_code == 200
    assert ">Check</button>" in page(response)
    assert "data:image/png;base64," in page(response)  # the QR code
    secret = TOTPDevice.objects.get(user=staff_user).secret
    response = client.post(ENABLE_URL, {"code": pyotp.TOTP(secret).at(START)})
    assert response.status_code == 302
    assert response["Location"] == NEW_CODES_URL
    assert client.get(NEW_CODES_URL).status_code == 200
    for url in (PROFILE_URL, HISTORY_URL, ALL_USERS_URL):
        response = client.get(url)
        assert response.status_code == 200, url
        assert AFTER_DEADLINE not in page(response)


# --- Disable 2FA under the requirement -----------------------------------------------------
def test_required_user_opening_disable_is_told_why_without_a_password_question(
    client, staff_with_totp, log_in_verified
):
    log_in_verified(client, staff_with_totp)
    response = client.get(DISABLE_URL)
    assert response.status_code == 403
    html = page(response)
    assert REFUSED_TITLE in html
    assert "requires two-factor authentication for staff accounts" in html
    assert SUDO_TITLE not in html and PASSWORD_INPUT not in html


def test_required_user_posting_disable_is_refused_and_keeps_the_device(
    client, staff_with_totp, log_in_with_sudo
):
    log_in_with_sudo(client, staff_with_totp)  # even with "confirm it's you" answered
    response = client.post(DISABLE_URL, {"confirm": "1"})
    assert response.status_code == 403
    assert REFUSED_TITLE in page(response)
    assert TOTPDevice.objects.filter(user=staff_with_totp, confirmed_at__isnull=False).exists()
    assert services.is_two_factor_enabled(user=staff_with_totp)


def test_required_user_answering_the_password_question_at_disable_is_refused(
    client, staff_with_totp, log_in_verified
):
    secret = log_in_verified(client, staff_with_totp)
    response = client.post(DISABLE_URL, {**sudo_answer(secret), "resume-confirm": "1"})
    assert response.status_code == 403
    assert REFUSED_TITLE in page(response)
    assert services.is_two_factor_enabled(user=staff_with_totp)


def test_disable_refusal_inside_the_htmx_dialog_comes_with_200(
    client, staff_with_totp, log_in_verified
):
    log_in_verified(client, staff_with_totp)
    response = client.get(DISABLE_URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert REFUSED_TITLE in page(response)
    assert PASSWORD_INPUT not in page(response)


def test_disable_refusal_names_every_account_when_required_for_everyone(
    client, user_with_totp, log_in_verified
):
    set_policy(require_for_everyone=True)
    user, _ = user_with_totp
    log_in_verified(client, user)
    response = client.get(DISABLE_URL)
    assert response.status_code == 403
    assert "requires two-factor authentication for every account" in page(response)


def test_disable_service_refuses_a_required_user(staff_with_totp):
    with pytest.raises(services.TwoFactorRequired):
        services.disable_two_factor(user=staff_with_totp)
    assert TOTPDevice.objects.filter(user=staff_with_totp).exists()


def test_customer_not_required_can_still_disable(client, user_with_totp, log_in_with_sudo):
    user, _ = user_with_totp
    log_in_with_sudo(client, user)
    response = client.post(DISABLE_URL, {"confirm": "1"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_profile_of_a_required_user_shows_disable_greyed_out_with_the_reason(
    client, staff_with_totp, log_in_verified
):
    log_in_verified(client, staff_with_totp)
    html = page(client.get(PROFILE_URL))
    assert DISABLED_BUTTON in html
    assert DISABLED_HELP in html
    assert f'href="{DISABLE_URL}"' not in html


def test_profile_of_a_customer_offers_disable(client, user_with_totp, log_in_verified):
    user, _ = user_with_totp
    log_in_verified(client, user)
    html = page(client.get(PROFILE_URL))
    assert f'href="{DISABLE_URL}"' in html
    assert DISABLED_BUTTON not in html and DISABLED_HELP not in html


# --- The policy page: who may open it ------------------------------------------------------
def test_staff_who_are_not_superusers_get_403_before_any_password_question(
    client, staff_with_totp, log_in_verified
):
    log_in_verified(client, staff_with_totp)
    response = client.get(POLICY_URL)
    assert response.status_code == 403
    assert SUDO_TITLE not in page(response) and PASSWORD_INPUT not in page(response)


def test_staff_who_are_not_superusers_cannot_save_the_policy_even_in_sudo_mode(
    client, staff_with_totp, log_in_with_sudo
):
    log_in_with_sudo(client, staff_with_totp)
    response = client.post(POLICY_URL, form_data(require_for_everyone=True))
    assert response.status_code == 403
    assert policy_values() == POLICY_DEFAULTS


def test_customers_get_403_at_the_policy_page(client, user):
    client.force_login(user)
    assert client.get(POLICY_URL).status_code == 403


def test_superuser_whose_session_did_not_pass_2fa_is_sent_away(client, superuser, enrolled):
    enrolled(superuser)
    client.force_login(superuser)  # a password-only session (say, before 2FA was turned on)
    response = client.get(POLICY_URL, follow=True)
    assert response.redirect_chain == [(PROFILE_URL, 302)]
    html = page(response)
    assert "The security policy can be changed only after logging in with 2FA." in html
    assert "Save policy" not in html


def test_superuser_without_2fa_cannot_save_the_policy_even_in_sudo_mode(
    client, superuser, log_in_with_sudo
):
    log_in_with_sudo(client, superuser)  # sudo answered with the password; no 2FA at all
    response = client.post(POLICY_URL, form_data(require_for_everyone=True))
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    assert policy_values() == POLICY_DEFAULTS


def test_verified_superuser_is_asked_to_confirm_first(client, superuser, log_in_verified):
    log_in_verified(client, superuser)
    response = client.get(POLICY_URL)
    assert response.status_code == 200
    html = page(response)
    assert SUDO_TITLE in html and PASSWORD_INPUT in html and 'name="code"' in html
    assert "Save policy" not in html


def test_verified_superuser_sees_the_form_after_confirming(client, superuser, log_in_verified):
    secret = log_in_verified(client, superuser)
    response = client.post(POLICY_URL, sudo_answer(secret))
    assert response.status_code == 302
    assert response["Location"] == POLICY_URL
    response = client.get(POLICY_URL)
    assert response.status_code == 200
    html = page(response)
    assert "Save policy" in html
    for name in POLICY_DEFAULTS:
        assert f'name="{name}"' in html
    assert re.search(r'name="grace_period_days"[^>]*value="7"', html)


def test_menu_offers_the_policy_to_a_verified_superuser(client, superuser, log_in_verified):
    log_in_verified(client, superuser)
    html = page(client.get(PROFILE_URL))
    assert f'href="{POLICY_URL}">Security policy</a>' in html


def test_menu_hides_the_policy_from_a_superuser_session_without_2fa(client, superuser, enrolled):
    enrolled(superuser)
    client.force_login(superuser)
    html = page(client.get(PROFILE_URL))
    assert POLICY_URL not in html
    assert ">Security policy</a>" not in html


# --- The policy page: saving ---------------------------------------------------------------
def test_saving_changes_the_policy(admin_client, superuser):
    response = admin_client.post(
        POLICY_URL, form_data(require_for_everyone=True, grace_period_days=14)
    )
    assert response.status_code == 302
    assert response["Location"] == POLICY_URL
    assert policy_values() == {
        **POLICY_DEFAULTS,
        "require_for_everyone": True,
        "grace_period_days": 14,
    }
    policy = TwoFactorPolicy.objects.get(pk=1)
    assert policy.updated_by == superuser
    assert policy.updated_at is not None


def test_saving_says_what_changed(admin_client):
    response = admin_client.post(
        POLICY_URL, form_data(require_for_everyone=True, grace_period_days=14), follow=True
    )
    assert "Security policy saved: 2FA required for every user: on; grace period: 14 days." in page(
        response
    )


def test_saving_records_the_change_on_the_superusers_security_log(admin_client, superuser):
    admin_client.post(POLICY_URL, form_data(require_for_staff=False, grace_period_days=1))
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.POLICY_CHANGED)
    assert event.user == superuser
    assert event.detail == "2FA required for staff: off; grace period: 1 day"


def test_saving_mails_the_superuser(
    admin_client, superuser, mailoutbox, django_capture_on_commit_callbacks
):
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(POLICY_URL, form_data(allow_trusted_browsers=False))
    assert len(mailoutbox) == 1, [message.subject for message in mailoutbox]
    message = mailoutbox[0]
    assert message.to == [superuser.email]
    assert "security policy" in message.subject
    assert "trusted browsers allowed: off" in message.body


@pytest.mark.parametrize(
    ("grace", "message"),
    [
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("366", "Ensure this value is less than or equal to 365."),
        ("abc", "Enter a whole number."),
        ("", "Enter a number of days (0 for none)."),
    ],
)
def test_bad_grace_period_is_refused_with_a_message_and_changes_nothing(
    admin_client, mailoutbox, django_capture_on_commit_callbacks, grace, message
):
    data = {**form_data(require_for_everyone=True), "grace_period_days": grace}
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(POLICY_URL, data)
    assert response.status_code == 200
    assert message in page(response)
    assert "Save policy" in page(response)
    assert policy_values() == POLICY_DEFAULTS
    assert TwoFactorPolicy.objects.get(pk=1).updated_at is None
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.POLICY_CHANGED).exists()
    assert mailoutbox == []


def test_saving_the_unchanged_form_says_nothing_changed(
    admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(POLICY_URL, form_data(), follow=True)
    assert "Nothing changed." in page(response)
    assert "Security policy saved" not in page(response)
    assert TwoFactorPolicy.objects.get(pk=1).updated_at is None
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.POLICY_CHANGED).exists()
    assert mailoutbox == []


def test_turning_trusted_browsers_off_removes_every_trusted_browser(
    admin_client, superuser, user, staff_user
):
    later = START + timedelta(days=30)
    for number, owner in enumerate([user, staff_user, superuser]):
        TrustedBrowser.objects.create(
            user=owner, token_hash=f"{number:064x}", fingerprint="f" * 64, expires_at=later
        )
    admin_client.post(POLICY_URL, form_data(allow_trusted_browsers=False))
    assert TwoFactorPolicy.objects.get(pk=1).allow_trusted_browsers is False
    assert TrustedBrowser.objects.count() == 0


def test_other_changes_leave_trusted_browsers_alone(admin_client, user):
    TrustedBrowser.objects.create(
        user=user, token_hash="a" * 64, fingerprint="f" * 64, expires_at=START + timedelta(days=30)
    )
    admin_client.post(POLICY_URL, form_data(grace_period_days=3))
    assert TrustedBrowser.objects.count() == 1


def test_saving_without_the_csrf_token_is_refused(superuser, enrolled, log_in_with_sudo):
    enrolled(superuser)
    browser = log_in_with_sudo(Client(enforce_csrf_checks=True), superuser)
    response = browser.post(POLICY_URL, form_data(require_for_everyone=True))
    assert response.status_code == 403
    assert policy_values() == POLICY_DEFAULTS


def test_saving_with_the_pages_csrf_token_works(superuser, enrolled, log_in_with_sudo):
    enrolled(superuser)
    browser = log_in_with_sudo(Client(enforce_csrf_checks=True), superuser)
    form = page(browser.get(POLICY_URL))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = {**form_data(require_for_everyone=True), "csrfmiddlewaretoken": token}
    response = browser.post(POLICY_URL, data)
    assert response.status_code == 302
    assert policy_values()["require_for_everyone"] is True


# --- PostgreSQL: many requests at once -----------------------------------------------------
BROWSERS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_first_requests_at_once_make_one_deadline(staff_user):
    clients = [Client() for _ in range(BROWSERS)]
    for browser in clients:
        browser.force_login(staff_user)
    responses = all_at_once(clients, lambda browser: browser.get(PROFILE_URL))
    assert [response.status_code for response in responses] == [200] * BROWSERS
    assert PolicyDeadline.objects.filter(user=staff_user).count() == 1
    deadline = services.two_factor_requirement(user=staff_user).deadline
    shown = {re.search(rf"{BEFORE_DEADLINE} ([^<]+) UTC\.", page(r)).group(1) for r in responses}
    assert shown == {f"{deadline:%-d %b %Y, %H:%M}"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_superusers_saving_the_same_change_at_once_record_it_once(
    superuser, other_superuser, enrolled, log_in_with_sudo
):
    clients = []
    for admin in (superuser, other_superuser):
        enrolled(admin)
        clients.append(log_in_with_sudo(Client(), admin))
    data = form_data(require_for_everyone=True)
    responses = all_at_once(clients, lambda browser: browser.post(POLICY_URL, data))
    assert [response.status_code for response in responses] == [302, 302]
    assert policy_values()["require_for_everyone"] is True
    events = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.POLICY_CHANGED)
    assert events.count() == 1
    assert events.get().user == TwoFactorPolicy.objects.get(pk=1).updated_by
