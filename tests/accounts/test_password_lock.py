"""Password guessing limits with device cookies: a stranger cannot lock the owner out.

Everything here goes through HTTP as an attacker would (the test client, with
REMOTE_ADDR set per request). "Known browser" means a client that completed a
login for the account earlier and so holds its device cookie.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client

from accounts import device_cookies
from accounts.models import RateWindow
from tests.concurrency import all_at_once
from tests.conftest import PASSWORD, request_with_cookies_of

LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
PROFILE_URL = "/accounts/profile/"
CODE_URL = "/2fa/login/"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BROWSERS = 8  # guessing at the same moment, in the PostgreSQL test


@pytest.fixture
def low_limits(settings):
    settings.LOGIN_FAILURE_RATE_PER_DEVICE = "3/h"
    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "6/h"
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "8/h"


@pytest.fixture
def clock(freeze_clock):
    return freeze_clock(START)


def log_in(client, email, password=PASSWORD, ip="192.0.2.10"):
    return client.post(LOGIN_URL, {"username": email, "password": password}, REMOTE_ADDR=ip)


def known_browser(user) -> Client:
    """A browser the owner has logged in from (and logged out of again)."""
    browser = Client()
    assert log_in(browser, user.email).status_code == 302
    browser.post(LOGOUT_URL)
    assert settings.DEVICE_COOKIE_NAME in browser.cookies
    return browser


def strangers_guess(email: str, times: int) -> None:
    """Wrong passwords from fresh browsers at many addresses (no pair lock helps here)."""
    for n in range(times):
        log_in(Client(), email, "wrong", ip=f"203.0.113.{n + 1}")


def without_csrf(response) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "CSRF", response.content.decode())


def test_a_strangers_guesses_do_not_lock_the_owners_browser(user, low_limits, clock):
    owner = known_browser(user)
    strangers_guess(user.email, 20)
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 429
    response = log_in(owner, user.email)
    assert response.status_code == 302
    assert owner.get(PROFILE_URL).status_code == 200


def test_a_strangers_guesses_do_not_lock_the_owners_confirm_its_you(user, low_limits, clock):
    owner = known_browser(user)
    log_in(owner, user.email)
    strangers_guess(user.email, 20)
    response = owner.post("/2fa/enable/", {"sudo": "1", "password": PASSWORD})
    assert response.status_code == 302  # proven: back to the dialog it asked for
    assert ">Check</button>" in owner.get("/2fa/enable/").content.decode()


def test_unknown_browsers_are_locked_until_a_stated_time(user, low_limits, clock):
    strangers_guess(user.email, 6)
    response = log_in(Client(), user.email, ip="198.51.100.1")
    assert response.status_code == 429
    text = " ".join(response.content.decode().split())
    assert "Try again after 10:00 UTC" in text  # the sixth failure at 09:00 plus an hour
    assert "Browsers that have logged in to this account before are not paused." in text


def test_the_lock_ends_when_its_time_is_up(user, low_limits, clock):
    strangers_guess(user.email, 6)
    clock.advance(minutes=61)
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 302


def test_attempts_refused_by_a_lock_are_not_counted_again(user, low_limits, clock):
    strangers_guess(user.email, 6)
    blocked = RateWindow.objects.get(key__startswith="account:")
    clock.advance(minutes=50)
    for _ in range(5):  # the right password and wrong ones, all refused before checking
        log_in(Client(), user.email, ip="198.51.100.1")
        log_in(Client(), user.email, "wrong", ip="198.51.100.2")
    again = RateWindow.objects.get(key__startswith="account:")
    assert (again.count, again.blocked_until) == (blocked.count, blocked.blocked_until)
    clock.advance(minutes=11)
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 302


def test_a_known_browser_has_its_own_small_budget(user, low_limits, clock):
    owner = known_browser(user)
    for _ in range(3):
        log_in(owner, user.email, "wrong")
    assert log_in(owner, user.email).status_code == 429
    # Its budget is its own: the account's other browsers are not affected.
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 302
    assert RateWindow.objects.get(key__startswith="account:").count == 0  # its one try, refunded


def test_a_forged_device_cookie_counts_as_an_unknown_browser(user, low_limits, clock):
    strangers_guess(user.email, 6)
    forger = Client()
    tokens = {device_cookies.account_tag(user.email): "made-up-token"}
    forger.cookies[settings.DEVICE_COOKIE_NAME] = signing.dumps(tokens, salt="another salt")
    assert log_in(forger, user.email).status_code == 429
    forger.cookies[settings.DEVICE_COOKIE_NAME] = "not even signed"
    assert log_in(forger, user.email).status_code == 429


def test_a_device_cookie_of_another_account_counts_as_an_unknown_browser(
    user, make_user, low_limits, clock
):
    other = make_user("other@example.com")
    browser = known_browser(other)
    strangers_guess(user.email, 6)
    assert log_in(browser, user.email).status_code == 429
    assert log_in(browser, other.email).status_code == 302


def test_a_completed_password_reset_lifts_the_lock(
    client, user, low_limits, clock, mailoutbox, django_capture_on_commit_callbacks
):
    strangers_guess(user.email, 20)
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 429
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password-reset/", {"email": user.email})
    link = re.search(r"https?://[^/]+(/accounts/password-reset/\S+/)", mailoutbox[0].body)[1]
    form_url = client.get(link)["Location"]
    new_password = "a new and long passphrase 42"
    response = client.post(form_url, {"new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302
    assert log_in(Client(), user.email, new_password, ip="198.51.100.1").status_code == 302


def test_the_device_cookie_is_signed_http_only_and_does_not_name_the_account(user, clock):
    browser = Client()
    log_in(browser, user.email)
    cookie = browser.cookies[settings.DEVICE_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) >= 180 * 24 * 3600
    assert user.email not in cookie.value
    assert user.email not in signing.loads(cookie.value, salt=device_cookies.SIGNING_SALT)


def test_a_wrong_password_gets_no_device_cookie(user, clock):
    browser = Client()
    log_in(browser, user.email, "wrong")
    assert settings.DEVICE_COOKIE_NAME not in browser.cookies


def test_the_password_step_alone_gives_no_device_cookie_to_a_two_factor_user(
    client, user_with_totp, totp_code
):
    user, secret = user_with_totp
    response = log_in(client, user.email)
    assert response["Location"] == CODE_URL
    assert settings.DEVICE_COOKIE_NAME not in client.cookies
    client.post(CODE_URL, {"code": totp_code(secret)})
    assert settings.DEVICE_COOKIE_NAME in client.cookies


def test_each_login_gives_the_browser_a_new_token(user, clock):
    browser = known_browser(user)
    first = device_cookies._read(request_with_cookies_of(browser))
    log_in(browser, user.email)
    second = device_cookies._read(request_with_cookies_of(browser))
    tag = device_cookies.account_tag(user.email)
    assert first[tag] != second[tag]


# --- Unknown browsers: per account from anywhere, and per network --------------------------
def test_guessing_one_account_from_many_addresses_is_stopped(user, low_limits, clock):
    strangers_guess(user.email, 7)
    response = log_in(Client(), user.email, ip="198.51.100.1")
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_spraying_many_accounts_from_one_network_is_stopped(make_user, low_limits, clock):
    victim = make_user("victim@example.com")
    for n in range(9):  # one guess each at 9 accounts (most unknown), from one IPv6 /64
        log_in(Client(), f"someone{n}@example.com", "wrong", ip=f"2001:db8:1:2::{n + 1}")
    response = log_in(Client(), victim.email, ip="2001:db8:1:2:ffff::9")
    assert response.status_code == 429
    assert log_in(Client(), victim.email, ip="2001:db8:9::1").status_code == 302


def test_ipv4_clients_seen_as_ipv4_mapped_ipv6_keep_their_own_buckets(make_user, low_limits, clock):
    victim = make_user("victim@example.com")
    for n in range(9):  # a sprayer at one IPv4 address, seen through a dual-stack socket
        log_in(Client(), f"someone{n}@example.com", "wrong", ip="::ffff:203.0.113.7")
    assert log_in(Client(), victim.email, ip="::ffff:198.51.100.20").status_code == 302
    assert log_in(Client(), "next@example.com", "wrong", ip="203.0.113.7").status_code == 429


def test_wrong_passwords_at_confirm_its_you_count_like_those_at_login(user, low_limits, clock):
    # A stolen session (no device cookie) guessing the password that 2FA changes ask for.
    thief = Client()
    thief.force_login(user)
    for n in range(6):
        thief.post("/2fa/enable/", {"sudo": "1", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}")
    right = thief.post("/2fa/enable/", {"sudo": "1", "password": PASSWORD})
    assert right.status_code == 200  # refused before the password is even checked
    assert "Too many wrong passwords for this account lately." in right.content.decode()
    assert log_in(Client(), user.email, ip="192.0.2.10").status_code == 429


def test_a_locked_unknown_account_looks_like_a_locked_real_one(user, low_limits, clock):
    strangers_guess(user.email, 7)
    strangers_guess("nobody@example.com", 7)
    real = log_in(Client(), user.email, "wrong", ip="198.51.100.2")
    unknown = log_in(Client(), "nobody@example.com", "wrong", ip="198.51.100.3")
    assert real.status_code == unknown.status_code == 429
    assert without_csrf(real) == without_csrf(unknown)  # byte for byte, but for the token


def test_successful_logins_do_not_count_towards_the_limits(client, user, low_limits, clock):
    for _ in range(10):
        assert log_in(client, user.email).status_code == 302
        client.post(LOGOUT_URL)


@pytest.mark.parametrize("variant", ["ANN@EXAMPLE.COM", " ann@example.com ", "ａｎｎ@example.com"])
def test_every_spelling_of_an_address_shares_one_budget(user, low_limits, clock, variant):
    for n in range(6):
        log_in(Client(), variant, "wrong", ip=f"203.0.113.{n + 1}")
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 429
    assert RateWindow.objects.filter(key__startswith="account:").count() == 1


def test_old_windows_are_pruned(user, low_limits, clock):
    from accounts import rate_windows

    strangers_guess(user.email, 2)  # windows: ann's, 203.0.113.1's and .2's
    clock.advance(hours=2)
    strangers_guess("other@example.com", 1)  # other's, and .1's starts again
    clock.advance(hours=23)
    assert rate_windows.prune(older_than=timedelta(days=1)) == 2  # ann's and .2's
    assert RateWindow.objects.count() == 2


# --- Device cookies can be revoked ---------------------------------------------------------
def copy_of(browser) -> Client:
    thief = Client()
    thief.cookies[settings.DEVICE_COOKIE_NAME] = browser.cookies[settings.DEVICE_COOKIE_NAME].value
    return thief


def test_a_copy_of_an_old_device_cookie_dies_when_the_browser_logs_in_again(
    user, low_limits, clock
):
    owner = known_browser(user)
    thief = copy_of(owner)  # copied from a shared computer, say
    log_in(owner, user.email)  # the owner logs in again: the token rotates
    strangers_guess(user.email, 6)
    assert log_in(thief, user.email).status_code == 429  # just another unknown browser now
    owner.post(LOGOUT_URL)
    assert log_in(owner, user.email).status_code == 302


def test_signing_out_everywhere_makes_every_browser_unknown(user, low_limits, clock):
    from accounts.sign_out import end_all_sessions

    owner = known_browser(user)
    end_all_sessions(user=user)
    strangers_guess(user.email, 6)
    assert log_in(owner, user.email).status_code == 429


def test_a_completed_password_reset_revokes_every_device_cookie(user, low_limits, clock):
    from accounts.login_throttle import lift_account_locks
    from accounts.models import DeviceToken

    known_browser(user)
    assert DeviceToken.objects.count() == 1
    lift_account_locks(email=user.email)
    assert DeviceToken.objects.count() == 0


# --- Many guesses at the same moment (PostgreSQL: real row locks) ---------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_wrong_passwords_at_once_count_exactly(user, settings):
    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "5/h"
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "1000/h"
    clients = [Client() for _ in range(BROWSERS)]
    responses = all_at_once(
        clients,
        lambda c: c.post("/accounts/login/", {"username": user.email, "password": "wrong"}),
    )
    assert {r.status_code for r in responses} <= {200, 429}
    window = RateWindow.objects.get(key__startswith="account:")
    # Counted before hashing, under the row lock: exactly the limit's worth of
    # passwords were checked, however many arrived at once; the rest were refused.
    assert window.count == 5 and window.blocked_until is not None
    assert sum(1 for r in responses if r.status_code == 429) == BROWSERS - 5
    right = Client().post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert right.status_code == 429


# --- After the owner's own security actions, their browser stays known ----------------------
def test_turning_2fa_on_keeps_the_owners_browser_known(user, low_limits, clock, enrolled):
    owner = known_browser(user)
    enrolled(user, at=clock.now)  # as the enable dialog does: every other session ends
    strangers_guess(user.email, 20)
    assert log_in(Client(), user.email, ip="198.51.100.1").status_code == 429
    response = log_in(owner, user.email)
    assert response.status_code == 302 and response["Location"] == CODE_URL


def test_the_browser_that_completed_a_reset_is_known_afterwards(
    client, user, low_limits, clock, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password-reset/", {"email": user.email})
    link = re.search(r"https?://[^/]+(/accounts/password-reset/\S+/)", mailoutbox[0].body)[1]
    form_url = client.get(link)["Location"]
    new_password = "a new and long passphrase 42"
    client.post(form_url, {"new_password1": new_password, "new_password2": new_password})
    assert settings.DEVICE_COOKIE_NAME in client.cookies
    strangers_guess(user.email, 20)  # a stranger uses up the unknown browsers' budget
    assert log_in(Client(), user.email, new_password, ip="198.51.100.1").status_code == 429
    assert log_in(client, user.email, new_password).status_code == 302
