"""The two-step login (issue 5): password, then an app code or a backup code.

Written from an attacker's side: every test names a way in and shows it is shut.
Time is controlled with the `clock` fixture (django.utils.timezone.now is
replaced, so views, services and sessions all see the same instant) or by
passing `now=` to services directly.
"""

import html
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from tests.concurrency import all_at_once
from tests.conftest import OPEN_REDIRECTS, PASSWORD, FrozenClock
from twofactor import otp, services, signals
from twofactor.models import TOTPDevice

LOGIN_URL = "/accounts/login/"
CODE_URL = "/2fa/login/"
PROFILE_URL = "/accounts/profile/"
FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


# --- Fixtures and helpers ----------------------------------------------------------
@pytest.fixture
def clock(freeze_clock) -> FrozenClock:
    # The middle of a 30-second step, so "the current code" names exactly one step.
    real = timezone.now().timestamp()
    return freeze_clock(datetime.fromtimestamp((real // otp.PERIOD) * otp.PERIOD + 15, tz=UTC))


@pytest.fixture
def ann(clock, user, enrolled):
    """(user, secret): 2FA switched on two minutes before the frozen clock."""
    return user, enrolled(user, at=clock.now - timedelta(minutes=2))


@pytest.fixture
def bob(clock, make_user, enrolled):
    bob = make_user("bob@example.com", name="Bob Example")
    return bob, enrolled(bob, at=clock.now - timedelta(minutes=2))


def code_at(secret: str, at: datetime, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(at, counter_offset=steps)


def password_step(client: Client, user, *, next_url: str | None = None):
    data = {"username": user.email, "password": PASSWORD}
    if next_url is not None:
        data["next"] = next_url
    return client.post(LOGIN_URL, data)


def code_step(client: Client, code: str, **extra):
    return client.post(CODE_URL, {"code": code}, **extra)


def text(response) -> str:
    return html.unescape(response.content.decode())


def logged_in_as(client: Client):
    return client.session.get(SESSION_KEY)


def device_of(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user)


@pytest.fixture
def fail(wrong_code):
    """fail(user, times, now=, secret=): that many wrong app codes, straight to the service."""

    def fail_(user, times: int, *, now: datetime, secret: str) -> None:
        for _ in range(times):
            with pytest.raises(services.TwoFactorError):
                services.verify_code(user=user, code=wrong_code(secret, at=now), now=now)

    return fail_


# --- Step 1: the password alone logs nobody in ---------------------------------------
def test_after_password_step_user_is_anonymous(client, ann):
    user, _ = ann
    response = password_step(client, user)
    assert response.status_code == 302
    assert response["Location"] == CODE_URL
    assert logged_in_as(client) is None
    assert client.get(PROFILE_URL)["Location"].startswith(LOGIN_URL + "?next=")


def test_after_password_step_admin_is_unreachable(client, clock, staff_user, enrolled):
    enrolled(staff_user, at=clock.now - timedelta(minutes=2))
    password_step(client, staff_user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # ...and the admin's own login form is not a side door either.
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL + "?next=/admin/")


def test_code_step_without_password_step_is_refused(client, ann, clock):
    user, secret = ann
    response = code_step(client, code_at(secret, clock.now), follow=True)
    assert response.redirect_chain[0] == (LOGIN_URL, 302)
    # A code posted without a pending login: most often a session that lapsed mid-step.
    assert "Your sign-in ended before the code was checked" in text(response)
    assert logged_in_as(client) is None
    assert device_of(user).last_used_step < otp.time_step(clock.now.timestamp())


def test_opening_the_code_step_without_the_password_step_asks_for_it(client):
    response = client.get(CODE_URL, follow=True)
    assert response.redirect_chain[0] == (LOGIN_URL, 302)
    assert "Enter your email and password first." in text(response)


def test_session_after_password_step_holds_only_the_pending_login(client, ann, clock):
    user, _ = ann
    password_step(client, user, next_url="/accounts/profile/?x=1")
    session = dict(client.session.items())
    assert set(session) == {services.PENDING_LOGIN_SESSION_KEY}
    pending = session[services.PENDING_LOGIN_SESSION_KEY]
    fingerprint = pending.pop("fingerprint")
    assert pending == {
        "user_id": str(user.pk),
        "backend": "accounts.login_throttle.ThrottleBackend",
        "started_at": clock.now.timestamp(),
        "next": "/accounts/profile/?x=1",
        "device_id": device_of(user).pk,
    }
    # An HMAC of what the password step saw, never the hash (or the session hash) itself.
    assert len(fingerprint) == 64
    assert fingerprint not in (user.password, user.get_session_auth_hash())


def test_no_password_in_session_data_or_row(client, ann):
    user, _ = ann
    password_step(client, user)
    user.refresh_from_db()
    encoded = user.password  # e.g. "md5$salt$hash": none of its parts may be stored
    forbidden = [PASSWORD, encoded, *encoded.split("$")[1:]]
    row = Session.objects.get(session_key=client.session.session_key)
    decoded = json.dumps(row.get_decoded())
    for secret in forbidden:
        assert secret not in decoded
        assert secret not in row.session_data
    assert "password" not in decoded.lower()


def test_session_key_changes_at_password_step_and_again_at_login(client, ann, clock):
    user, secret = ann
    planted = client.session.session_key  # e.g. fixed by an attacker before step 1
    password_step(client, user)
    pending = client.session.session_key
    code_step(client, code_at(secret, clock.now))
    logged_in = client.session.session_key
    assert logged_in_as(client) == str(user.pk)
    assert len({planted, pending, logged_in}) == 3
    assert not Session.objects.filter(session_key__in=[planted, pending]).exists()


def test_user_without_two_factor_logs_in_at_password_step(client, user):
    response = password_step(client, user)
    assert response["Location"] == PROFILE_URL
    assert logged_in_as(client) == str(user.pk)
    assert services.PENDING_LOGIN_SESSION_KEY not in client.session


def test_wrong_password_for_two_factor_user_looks_like_any_wrong_password(client, ann, make_user):
    with_2fa, _ = ann
    without_2fa = make_user("carl@example.com")

    def attempt(email: str):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(LOGIN_URL, {"username": email, "password": "wrong"})
        return response, [q["sql"] for q in queries.captured_queries]

    attempt("warm-up@example.com")  # the network's failure counter exists for both below
    first, first_sql = attempt(with_2fa.email)
    second, second_sql = attempt(without_2fa.email)

    def body(response, email: str) -> str:
        page = response.content.decode().replace(email, "EMAIL")
        return re.sub(r"[A-Za-z0-9]{64}", "CSRF", page)

    assert first.status_code == second.status_code == 200
    assert body(first, with_2fa.email) == body(second, without_2fa.email)
    # Same work on the server (the timing class): the same number of queries,
    # and the 2FA tables are not even looked at before the password is right.
    assert len(first_sql) == len(second_sql)
    assert not any("twofactor_" in sql for sql in first_sql)


# --- Step 2 with an app code: success, replay ---------------------------------------
def test_correct_app_code_logs_in_and_redirects_to_profile(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    response = code_step(client, code_at(secret, clock.now))
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    assert logged_in_as(client) == str(user.pk)
    assert services.PENDING_LOGIN_SESSION_KEY not in client.session
    assert client.get(PROFILE_URL).status_code == 200


def test_same_code_from_another_browser_is_refused(ann, clock):
    user, secret = ann
    code = code_at(secret, clock.now)
    first, second = Client(), Client()
    password_step(first, user)
    password_step(second, user)  # an attacker who has the password and sees the code
    code_step(first, code)
    response = code_step(second, code)
    assert response.status_code == 200
    assert "That code has already been used." in text(response)
    assert logged_in_as(second) is None


def test_older_code_after_newer_one_is_refused(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    code_step(client, code_at(secret, clock.now, steps=1))  # the next code, inside the window
    client.post("/accounts/logout/")
    password_step(client, user)
    response = code_step(client, code_at(secret, clock.now))  # still in the window, but older
    assert "That code has already been used." in text(response)
    assert logged_in_as(client) is None


@pytest.mark.parametrize(
    "variant",
    [
        lambda c: f"{c[:3]} {c[3:]}",
        lambda c: f" {c}",
        lambda c: f"{c[:3]}-{c[3:]}",
        lambda c: c.translate(FULL_WIDTH_DIGITS),
    ],
    ids=["grouped", "leading-space", "dashed", "full-width"],
)
def test_normalised_variant_of_a_used_code_is_refused(ann, clock, variant):
    user, secret = ann
    code = code_at(secret, clock.now)
    first, second = Client(), Client()
    password_step(first, user)
    password_step(second, user)
    code_step(first, code)
    response = code_step(second, variant(code))
    assert "That code has already been used." in text(response)
    assert logged_in_as(second) is None


# --- Step 2 with a backup code ----------------------------------------------------------
def test_backup_code_logs_in_and_says_how_many_remain(client, ann):
    user, _ = ann
    codes = services.regenerate_backup_codes(user=user)
    password_step(client, user)
    response = code_step(client, codes[0], follow=True)
    assert response.redirect_chain == [(PROFILE_URL, 302)]
    assert logged_in_as(client) == str(user.pk)
    assert "You signed in with a backup code. 4 unused backup codes left." in text(response)


def test_reused_backup_code_is_refused(ann):
    user, _ = ann
    codes = services.regenerate_backup_codes(user=user)
    first, second = Client(), Client()
    password_step(first, user)
    code_step(first, codes[0])
    password_step(second, user)
    response = code_step(second, codes[0].upper())  # same code, typed differently
    assert response.status_code == 200
    assert "That backup code is not right, or it was already used" in text(response)
    assert logged_in_as(second) is None


# --- Throttle ---------------------------------------------------------------------------
def test_five_wrong_codes_refuse_even_the_correct_one_until_the_lock_ends(
    client, ann, clock, wrong_code
):
    user, secret = ann
    password_step(client, user)
    for _ in range(services.MAX_FAILURES):
        code_step(client, wrong_code(secret, at=clock.now))
    response = code_step(client, code_at(secret, clock.now))
    assert "Too many wrong codes." in text(response)
    assert logged_in_as(client) is None

    clock.advance(minutes=4, seconds=59)
    response = code_step(client, code_at(secret, clock.now))
    assert "Too many wrong codes." in text(response)
    assert logged_in_as(client) is None

    clock.advance(seconds=2)
    response = code_step(client, code_at(secret, clock.now))
    assert response.status_code == 302
    assert logged_in_as(client) == str(user.pk)


def test_refused_codes_are_not_echoed_back_into_the_form(client, ann, clock, wrong_code):
    def code_box(response) -> str:
        return re.search(r'<input[^>]*name="code"[^>]*>', response.content.decode()).group(0)

    user, secret = ann
    password_step(client, user)
    response = code_step(client, wrong_code(secret, at=clock.now))
    assert "That code is not right." in text(response)
    assert "value=" not in code_box(response)
    for _ in range(services.MAX_FAILURES - 1):
        code_step(client, wrong_code(secret, at=clock.now))
    response = code_step(client, code_at(secret, clock.now))  # right, but locked out
    assert "Too many wrong codes." in text(response)
    assert "value=" not in code_box(response)


def test_locked_page_says_when_to_try_again(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    for _ in range(services.MAX_FAILURES):
        response = code_step(client, wrong_code(secret, at=clock.now))
    until = clock.now + services.FIRST_LOCK
    assert response.status_code == 200
    assert f"locked until {until:%H:%M} UTC (about 5 minutes from now)" in text(response)


def test_backup_code_failures_count_towards_the_lock(client, ann, clock, wrong_code):
    user, secret = ann
    services.regenerate_backup_codes(user=user)
    password_step(client, user)
    for _ in range(3):
        code_step(client, wrong_code(secret, at=clock.now))
    for guess in ["aaaaa-aaaaa", "ccccc-ccccc"]:
        code_step(client, guess)
    response = code_step(client, code_at(secret, clock.now))
    assert "Too many wrong codes." in text(response)
    assert logged_in_as(client) is None


def test_the_same_wrong_code_posted_again_in_its_30_seconds_is_not_counted_again(
    client, ann, clock, wrong_code
):
    # A reload of the refused page posts the form again: no new guess, not a new attempt.
    user, secret = ann
    password_step(client, user)
    wrong = wrong_code(secret, at=clock.now)
    for _ in range(services.MAX_FAILURES + 1):
        response = code_step(client, wrong)
        assert "That code is not right." in text(response)
    assert device_of(user).failure_count == 1
    assert "Too many wrong codes." not in text(code_step(client, code_at(secret, clock.now)))
    assert logged_in_as(client) == str(user.pk)


def test_the_same_wrong_code_counts_again_once_its_30_seconds_are_over(
    client, ann, clock, wrong_code
):
    user, secret = ann
    password_step(client, user)
    wrong = wrong_code(secret, at=clock.now)
    code_step(client, wrong)
    clock.advance(seconds=otp.PERIOD)
    code_step(client, wrong)  # a code of another moment: checked and counted again
    assert device_of(user).failure_count == 2


def test_the_same_wrong_code_spelled_otherwise_is_the_same_attempt(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    wrong = wrong_code(secret, at=clock.now)
    code_step(client, wrong)
    code_step(client, f" {wrong[:3]} {wrong[3:]} ")
    assert device_of(user).failure_count == 1


def test_a_repeated_code_while_locked_is_told_the_lock(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    codes = [wrong_code(secret, at=clock.now) for _ in range(services.MAX_FAILURES)]
    for code in codes:
        code_step(client, code)
    assert "Too many wrong codes." in text(code_step(client, codes[-1]))


def test_a_new_password_step_checks_and_counts_the_same_code_again(client, ann, clock, wrong_code):
    # The mark belongs to one pending login: after a new password step (perhaps of
    # another account in the same browser) the code is checked afresh.
    user, secret = ann
    password_step(client, user)
    wrong = wrong_code(secret, at=clock.now)
    code_step(client, wrong)
    password_step(client, user)
    code_step(client, wrong)
    assert device_of(user).failure_count == 2


def test_a_code_from_a_drifting_clock_sent_again_still_gets_the_clock_advice(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    drifted = code_at(secret, clock.now, steps=-4)
    for _ in range(2):
        assert "your device's clock looks about" in text(code_step(client, drifted))


def test_a_browsers_name_with_control_characters_is_kept_without_them(
    client, ann, clock, wrong_code
):
    # PostgreSQL refuses NUL in text: unclean, the log's insert failed, and with it the
    # refused code's count (a 500 each time, and no lock).
    from accounts.models import SecurityEvent

    user, secret = ann
    password_step(client, user)
    response = code_step(client, wrong_code(secret, at=clock.now), HTTP_USER_AGENT="x\x00y\x1bz")
    assert response.status_code == 200
    assert device_of(user).failure_count == 1
    assert SecurityEvent.objects.filter(user=user).latest("pk").user_agent == "xyz"


def test_the_last_try_before_the_lock_is_said(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    warning = "One more wrong code locks code entry for a while."
    for _ in range(services.MAX_FAILURES - 2):
        assert warning not in text(code_step(client, wrong_code(secret, at=clock.now)))
    last_but_one = wrong_code(secret, at=clock.now)
    assert warning in text(code_step(client, last_but_one))
    assert warning in text(code_step(client, last_but_one))  # a reload says it again
    assert "Too many wrong codes." in text(code_step(client, wrong_code(secret, at=clock.now)))


def test_new_password_step_does_not_reset_the_failure_count(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    for _ in range(services.MAX_FAILURES - 1):
        code_step(client, wrong_code(secret, at=clock.now))
    password_step(client, user)  # start over, hoping for five fresh guesses
    code_step(client, wrong_code(secret, at=clock.now))
    response = code_step(client, code_at(secret, clock.now))
    assert "Too many wrong codes." in text(response)
    assert logged_in_as(client) is None


def test_success_resets_the_failure_count(ann, clock, fail):
    user, secret = ann
    now = clock.now
    fail(user, services.MAX_FAILURES - 1, now=now, secret=secret)
    services.verify_code(user=user, code=code_at(secret, now), now=now)
    later = now + timedelta(seconds=30)
    fail(user, services.MAX_FAILURES - 1, now=later, secret=secret)
    services.verify_code(user=user, code=code_at(secret, later), now=later)  # not locked


def test_second_lock_lasts_ten_minutes(ann, clock, fail):
    user, secret = ann
    now = clock.now
    fail(user, services.MAX_FAILURES, now=now, secret=secret)
    now = device_of(user).locked_until
    fail(user, services.MAX_FAILURES, now=now, secret=secret)
    assert device_of(user).locked_until == now + timedelta(minutes=10)


def test_lock_doubles_each_time_up_to_one_hour(ann, clock, fail):
    user, secret = ann
    now = clock.now
    durations = []
    for _ in range(6):
        fail(user, services.MAX_FAILURES, now=now, secret=secret)
        until = device_of(user).locked_until
        durations.append(round((until - now).total_seconds() / 60))
        now = until
    assert durations == [5, 10, 20, 40, 60, 60]


@pytest.mark.parametrize("kind", ["app code", "backup code"])
def test_locked_account_is_refused_before_any_hashing(ann, clock, monkeypatch, kind, fail):
    user, secret = ann
    codes = services.regenerate_backup_codes(user=user)
    fail(user, services.MAX_FAILURES, now=clock.now, secret=secret)

    def no_crypto(*args, **kwargs):
        raise AssertionError("a locked account must cost no HMAC or key derivation")

    for name in [
        "match_totp",
        "find_drift",
        "match_backup_code",
        "derive_backup_code",
        "hash_backup_code_like",
        "hash_backup_code",
    ]:
        monkeypatch.setattr(otp, name, no_crypto)
    code = code_at(secret, clock.now) if kind == "app code" else codes[0]
    with pytest.raises(services.AccountLocked):
        services.verify_code(user=user, code=code, now=clock.now)


@pytest.mark.parametrize("kind", ["locked", "no active device"])
def test_a_refused_code_leaves_the_callers_transaction_usable(ann, clock, fail, kind):
    # verify_code takes no savepoint inside a caller's transaction: a refusal must not
    # reach it as an exception raised inside verify_code's block (that marks the
    # caller's transaction for rollback, and its own writes with it).
    user, secret = ann
    if kind == "locked":
        fail(user, services.MAX_FAILURES, now=clock.now, secret=secret)
    else:
        TOTPDevice.objects.filter(user=user).delete()
    with transaction.atomic():
        with pytest.raises((services.AccountLocked, services.NotEnrolled)):
            services.verify_code(user=user, code=code_at(secret, clock.now), now=clock.now)
        get_user_model().objects.filter(pk=user.pk).update(name="Written after the refusal")
    assert get_user_model().objects.get(pk=user.pk).name == "Written after the refusal"


def test_failed_codes_and_the_lock_are_announced(ann, clock, fail):
    user, secret = ann
    failed, locked = [], []

    def on_failed(sender, **kwargs):
        failed.append(kwargs)

    def on_locked(sender, **kwargs):
        locked.append(kwargs)

    signals.code_verification_failed.connect(on_failed)
    signals.account_locked.connect(on_locked)
    try:
        fail(user, services.MAX_FAILURES, now=clock.now, secret=secret)
    finally:
        signals.code_verification_failed.disconnect(on_failed)
        signals.account_locked.disconnect(on_locked)
    assert [(f["user"], f["method"], f["outcome"]) for f in failed] == [
        (user, "totp", "invalid")
    ] * services.MAX_FAILURES
    assert [(lock["user"], lock["until"]) for lock in locked] == [
        (user, clock.now + services.FIRST_LOCK)
    ]


# --- Whose login is it? ----------------------------------------------------------------
def test_pending_login_of_one_user_cannot_be_finished_with_another_users_code(
    client, ann, bob, clock
):
    user, _ = ann
    other, other_secret = bob
    before = device_of(other).last_used_step
    password_step(client, user)
    response = code_step(client, code_at(other_secret, clock.now))
    assert "That code is not right." in text(response)
    assert logged_in_as(client) is None
    assert device_of(other).last_used_step == before  # and Bob's code was not spent


def test_later_password_step_replaces_the_pending_user(client, ann, bob, clock):
    user, secret = ann
    other, other_secret = bob
    password_step(client, user)
    password_step(client, other)
    response = code_step(client, code_at(secret, clock.now))  # Ann's code, Bob pending
    assert "That code is not right." in text(response)
    assert logged_in_as(client) is None
    code_step(client, code_at(other_secret, clock.now))
    assert logged_in_as(client) == str(other.pk)


def test_logged_in_user_visiting_code_step_goes_to_profile(client, user):
    client.force_login(user)
    response = client.get(CODE_URL)
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL


# --- The pending state expires ---------------------------------------------------------
def test_pending_login_older_than_ten_minutes_is_rejected(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    clock.advance(minutes=10, seconds=1)
    response = code_step(client, code_at(secret, clock.now), follow=True)
    assert response.redirect_chain[0] == (LOGIN_URL, 302)
    assert "Your sign-in took longer than 10 minutes. Please start again." in text(response)
    assert logged_in_as(client) is None
    assert services.PENDING_LOGIN_SESSION_KEY not in client.session


def test_pending_login_just_under_ten_minutes_is_accepted(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    clock.advance(minutes=9, seconds=59)
    code_step(client, code_at(secret, clock.now))
    assert logged_in_as(client) == str(user.pk)


def test_two_factor_removed_between_the_steps_means_start_again(client, ann, clock, staff_user):
    user, secret = ann
    password_step(client, user)
    services.reset_two_factor(user=user, actor=staff_user, reason="lost phone")
    response = code_step(client, code_at(secret, clock.now), follow=True)
    assert response.redirect_chain[0] == (LOGIN_URL, 302)
    assert "Please start again." in text(response)
    assert logged_in_as(client) is None


# --- Clock drift -----------------------------------------------------------------------
def test_a_code_revealed_as_ahead_never_works_when_its_time_comes(client, ann, clock):
    # The clock message tells a guesser "this code is valid in 90 s"; it must not be.
    user, secret = ann
    ahead = code_at(secret, clock.now, steps=3)
    password_step(client, user)
    assert "clock looks about 90 seconds off" in text(code_step(client, ahead))
    clock.advance(seconds=90)
    password_step(client, user)
    response = code_step(client, ahead)
    assert logged_in_as(client) is None
    assert "already been used" in text(response)


def test_code_three_steps_ahead_is_refused_with_clock_help(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    response = code_step(client, code_at(secret, clock.now, steps=3))
    page = text(response)
    assert response.status_code == 200
    assert logged_in_as(client) is None
    assert "your device's clock looks about 90 seconds off" in page
    assert f"The server's time is {clock.now:%H:%M:%S} UTC" in page
    assert "A backup code works whatever the time." in page


def test_after_the_clock_message_the_code_from_the_corrected_clock_logs_in(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    assert "90 seconds off" in text(code_step(client, code_at(secret, clock.now, steps=3)))
    response = code_step(client, code_at(secret, clock.now))  # clock fixed: today's code
    assert response.status_code == 302
    assert logged_in_as(client) == str(user.pk)


def test_a_burnt_step_leaves_the_steps_before_it_usable(ann, clock):
    # Unit rule: the code revealed for step c+3 is refused when c+3 comes; c+1 and
    # c+2 still work in their turn.
    user, secret = ann
    with pytest.raises(services.ClockDrift):
        services.verify_code(user=user, code=code_at(secret, clock.now, steps=3), now=clock.now)
    for seconds in (30, 60):
        later = clock.now + timedelta(seconds=seconds)
        services.verify_code(user=user, code=code_at(secret, later), now=later)
    at_burnt_step = clock.now + timedelta(seconds=90)
    with pytest.raises(services.CodeReplayed):
        services.verify_code(user=user, code=code_at(secret, at_burnt_step), now=at_burnt_step)
    later = clock.now + timedelta(seconds=120)
    services.verify_code(user=user, code=code_at(secret, later), now=later)
    assert device_of(user).burnt_steps == []  # spent steps are forgotten


def test_drifted_codes_never_lock_the_account_nor_send_the_lock_mail(
    client, ann, clock, mailoutbox, django_capture_on_commit_callbacks
):
    user, secret = ann
    password_step(client, user)
    with django_capture_on_commit_callbacks(execute=True):
        for steps in (3, 4, 5, 6, 7, 8, -3, -4):
            assert "seconds off" in text(code_step(client, code_at(secret, clock.now, steps=steps)))
    device = device_of(user)
    assert (device.failure_count, device.locked_until) == (0, None)
    assert mailoutbox == []
    code_step(client, code_at(secret, clock.now))
    assert logged_in_as(client) == str(user.pk)


# --- next= through both steps ----------------------------------------------------------
@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_to_another_site_lands_on_profile_after_code_step(client, ann, clock, target):
    user, secret = ann
    password_step(client, user, next_url=target)
    assert client.session[services.PENDING_LOGIN_SESSION_KEY]["next"] == ""  # dropped at step 1
    response = code_step(client, code_at(secret, clock.now))
    assert response["Location"] == PROFILE_URL


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_code_step_checks_next_again(client, ann, clock, target):
    # Even if a bad next= reached the session, step 2 validates it once more.
    user, secret = ann
    password_step(client, user)
    session = client.session
    session[services.PENDING_LOGIN_SESSION_KEY] = {
        **session[services.PENDING_LOGIN_SESSION_KEY],
        "next": target,
    }
    session.save()
    response = code_step(client, code_at(secret, clock.now))
    assert response["Location"] == PROFILE_URL


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_begin_pending_login_drops_an_unsafe_next(rf, ann, target):
    # LoginView validates next= too; the service must not rely on its caller.
    user, _ = ann
    user.backend = "django.contrib.auth.backends.ModelBackend"
    request = rf.post(LOGIN_URL)
    request.session = SessionStore()
    services.begin_pending_login(request=request, user=user, next_url=target)
    assert request.session[services.PENDING_LOGIN_SESSION_KEY]["next"] == ""


def test_local_next_is_honoured_after_code_step(client, ann, clock):
    user, secret = ann
    password_step(client, user, next_url="/accounts/profile/?x=1")
    response = code_step(client, code_at(secret, clock.now))
    assert response["Location"] == "/accounts/profile/?x=1"


# --- The view's armour -------------------------------------------------------------------
def test_code_step_is_never_cached(client, ann):
    user, _ = ann
    password_step(client, user)
    cache_control = client.get(CODE_URL)["Cache-Control"]
    for directive in ["no-cache", "no-store", "must-revalidate", "private"]:
        assert directive in cache_control


def test_code_step_refuses_a_post_without_csrf_token(ann, clock):
    user, secret = ann
    browser = Client(enforce_csrf_checks=True)
    browser.get(LOGIN_URL)
    token = browser.cookies["csrftoken"].value
    browser.post(
        LOGIN_URL,
        {"username": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    forged = code_step(browser, code_at(secret, clock.now))  # e.g. from another site's form
    assert forged.status_code == 403
    assert logged_in_as(browser) is None


def test_code_is_hidden_from_error_reports(client, ann, clock, monkeypatch):
    user, secret = ann
    seen = {}
    complete = services.complete_pending_login

    def spy(*, request, **kwargs):
        seen["request"] = request
        return complete(request=request, **kwargs)

    monkeypatch.setattr(services, "complete_pending_login", spy)
    password_step(client, user)
    code = code_at(secret, clock.now)
    code_step(client, code)
    reported = SafeExceptionReporterFilter().get_post_parameters(seen["request"])
    assert reported["code"] != code
    assert set(reported["code"]) == {"*"}


# --- The password throttle (accounts.login_throttle) and the code step -------------------
def account_limit() -> int:
    from django.conf import settings

    return int(settings.LOGIN_FAILURE_RATE_PER_ACCOUNT.split("/")[0])


def test_wrong_codes_do_not_count_as_password_guesses(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    for _ in range(account_limit() + 1):
        code_step(client, wrong_code(secret, at=clock.now))
    response = password_step(client, user)
    assert response.status_code == 302
    assert response["Location"] == CODE_URL


def test_password_lock_applies_to_two_factor_users_too(client, ann):
    user, _ = ann
    for n in range(account_limit()):
        Client().post(
            LOGIN_URL, {"username": user.email, "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}"
        )
    response = password_step(client, user)
    assert response.status_code == 429
    assert services.PENDING_LOGIN_SESSION_KEY not in client.session


def test_the_code_step_makes_the_browser_known_to_the_password_lock(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    code_step(client, code_at(secret, clock.now))
    assert logged_in_as(client) == str(user.pk)
    client.post("/accounts/logout/")
    for n in range(account_limit()):  # a stranger locks out unknown browsers
        Client().post(
            LOGIN_URL, {"username": user.email, "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}"
        )
    assert password_step(Client(), user).status_code == 429
    assert password_step(client, user).status_code == 302  # this browser is the owner's


# --- PostgreSQL: real concurrency ------------------------------------------------------
def _post_all_at_once(clients: list[Client], code: str) -> list:
    return all_at_once(clients, lambda client: code_step(client, code))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_posts_of_one_code_log_in_exactly_once(ann, clock):
    user, secret = ann
    clients = [Client() for _ in range(10)]
    for browser in clients:
        password_step(browser, user)
    responses = _post_all_at_once(clients, code_at(secret, clock.now))
    assert sum(1 for r in responses if r.status_code == 302) == 1
    assert sum(1 for b in clients if logged_in_as(b) == str(user.pk)) == 1
    # The losers are refused as replays; replays count as failures, so the
    # fifth of them also locks the account (and later ones say so).
    refused = [r for r in responses if r.status_code == 200]
    assert len(refused) == 9
    assert all(
        "already been used" in text(r) or "Too many wrong codes." in text(r) for r in refused
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_wrong_codes_lock_exactly_once(ann, clock, wrong_code):
    user, secret = ann
    failed, locked = [], []
    guard = threading.Lock()

    def on_failed(sender, **kwargs):
        with guard:
            failed.append(kwargs["outcome"])

    def on_locked(sender, **kwargs):
        with guard:
            locked.append(kwargs["until"])

    clients = [Client() for _ in range(10)]
    for browser in clients:
        password_step(browser, user)
    signals.code_verification_failed.connect(on_failed)
    signals.account_locked.connect(on_locked)
    try:
        responses = _post_all_at_once(clients, wrong_code(secret, at=clock.now))
    finally:
        signals.code_verification_failed.disconnect(on_failed)
        signals.account_locked.disconnect(on_locked)
    device = device_of(user)
    assert len(failed) == services.MAX_FAILURES  # never more counted before the lock
    assert locked == [clock.now + services.FIRST_LOCK]
    assert (device.lock_count, device.failure_count) == (1, 0)
    assert device.locked_until == clock.now + services.FIRST_LOCK
    assert sum(1 for r in responses if "Too many wrong codes." in text(r)) == 6
    assert not any(logged_in_as(b) for b in clients)


# --- Cost of the code step ----------------------------------------------------------------
def test_code_step_reads_the_user_once_and_skips_a_reset_with_nothing_to_reset(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    with CaptureQueriesContext(connection) as captured:
        response = code_step(client, code_at(secret, clock.now))
    assert response.status_code == 302
    user_table = connection.ops.quote_name(type(user)._meta.db_table)
    statements = [query["sql"] for query in captured.captured_queries]
    assert sum(s.startswith("SELECT") and f"FROM {user_table}" in s for s in statements) == 1
    assert not any("failure_count" in s for s in statements if s.startswith("UPDATE"))


# --- A half-finished login dies with the password -----------------------------------------
def _change_password(user) -> None:
    user.set_password("a brand new passphrase 77")
    user.save()


def _sign_out_everywhere(user) -> None:
    from accounts.sign_out import end_all_sessions

    end_all_sessions(user=user)


def _reset_and_enable_again(user, clock) -> None:
    staff = get_user_model().objects.create_user("support@example.com", "x", is_staff=True)
    services.reset_two_factor(user=user, actor=staff, reason="lost phone")
    session: dict = {}
    device = services.begin_enrollment(user=user, session=session, now=clock.now)
    services.confirm_enrollment(
        user=user, session=session, code=pyotp.TOTP(device.secret).at(clock.now), now=clock.now
    )


def _reset_password_by_link(user) -> None:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    browser = Client()
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    form_url = browser.get(f"/accounts/password-reset/{uid}/{token}/")["Location"]
    new = "a brand new passphrase 77"
    assert browser.post(form_url, {"new_password1": new, "new_password2": new}).status_code == 302


@pytest.mark.parametrize(
    "change",
    [
        lambda user, clock: _change_password(user),
        lambda user, clock: _reset_password_by_link(user),
        lambda user, clock: _sign_out_everywhere(user),
        _reset_and_enable_again,
    ],
    ids=["password-changed", "password-reset-link", "signed-out-everywhere", "2fa-reset-and-on"],
)
def test_a_pending_login_is_void_once_the_account_changes(client, ann, clock, change):
    user, secret = ann
    password_step(client, user)
    change(get_user_model().objects.get(pk=user.pk), clock)
    clock.advance(seconds=30)
    device = TOTPDevice.objects.get(user=user)
    response = code_step(client, code_at(device.secret, clock.now), follow=True)
    assert response.redirect_chain[0] == (LOGIN_URL, 302)
    assert "changed while you were signing in" in text(response)
    assert logged_in_as(client) is None
    assert services.PENDING_LOGIN_SESSION_KEY not in client.session


def test_a_tampered_pending_fingerprint_is_refused(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    session = client.session
    pending = session[services.PENDING_LOGIN_SESSION_KEY]
    session[services.PENDING_LOGIN_SESSION_KEY] = {**pending, "fingerprint": "0" * 64}
    session.save()
    code_step(client, code_at(secret, clock.now))
    assert logged_in_as(client) is None


# --- Locks are visible before typing ------------------------------------------------------
def test_a_locked_code_step_says_so_when_it_opens(client, ann, clock, wrong_code):
    user, secret = ann
    password_step(client, user)
    for _ in range(services.MAX_FAILURES):
        code_step(client, wrong_code(secret, at=clock.now))
    client.get("/accounts/logout/")
    fresh = Client()
    password_step(fresh, user)
    page = text(fresh.get(CODE_URL))
    until = clock.now + services.FIRST_LOCK
    assert f"locked until {until:%H:%M} UTC" in page
    assert 'role="alert"' in page


def test_contact_support_is_a_real_link(client, ann, settings):
    user, _ = ann
    settings.TWOFACTOR_SUPPORT_URL = "https://help.portal.example/2fa"
    password_step(client, user)
    assert '<a href="https://help.portal.example/2fa">Contact support</a>' in text(
        client.get(CODE_URL)
    )
