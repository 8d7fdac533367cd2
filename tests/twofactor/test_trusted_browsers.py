"""Trusted browsers over HTTP (issue 18): "Don't ask for a code on this browser for 30 days".

Written from both sides: the owner's browser skips the code step after the password,
and every way an attacker could try the cookie (stolen, forged, another account's,
without the password, after the owner voided it) ends at the code step or nowhere.
Time is the frozen `clock` (django.utils.timezone.now replaced): views, services and
sessions all see the same instant.
"""

import hashlib
import html
import re
import secrets
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import sign_out
from accounts.models import SecurityEvent
from tests.concurrency import all_at_once
from tests.conftest import OPEN_REDIRECTS, PASSWORD, FrozenClock
from tests.twofactor.soft_authenticator import ORIGIN, RP_ID, SoftAuthenticator
from twofactor import otp, services
from twofactor.models import TOTPDevice, TrustedBrowser

Kind = SecurityEvent.Kind
User = get_user_model()

COOKIE = settings.TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME  # the test server: plain http
LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
CODE_URL = "/2fa/login/"
PROFILE_URL = "/accounts/profile/"
REMOVE_ALL_URL = "/2fa/trusted-browsers/remove-all/"
SIGN_OUT_OTHERS_URL = "/accounts/profile/sessions/sign-out-others/"
BOX = "Don't ask for a code on this browser for 30 days"
THIRTY_DAYS = 30 * 24 * 60 * 60
TRUSTED_LOGIN = "trusted browser, no code asked"
REFUSED_PASSWORD = "That email and password do not match an account."
NEW_PASSWORD = "a completely new passphrase 2026"  # noqa: S105 - test value
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
BROWSERS = 8

pytestmark = pytest.mark.django_db


# --- Fixtures and helpers ----------------------------------------------------------
@pytest.fixture
def clock(freeze_clock) -> FrozenClock:
    # The middle of a 30-second step, so "the current code" names exactly one step.
    real = datetime.now(tz=UTC).timestamp()
    return freeze_clock(datetime.fromtimestamp((real // otp.PERIOD) * otp.PERIOD + 15, tz=UTC))


@pytest.fixture
def ann(clock, user, enrolled):
    """(user, secret): 2FA switched on two minutes before the frozen clock."""
    return user, enrolled(user, at=clock.now - timedelta(minutes=2))


@pytest.fixture
def bob(clock, make_user, enrolled):
    bob = make_user("bob@example.com", name="Bob Example")
    return bob, enrolled(bob, at=clock.now - timedelta(minutes=2))


@pytest.fixture
def root(make_user):
    """A superuser: the one who may change the security policy."""
    return make_user("root@example.com", name="Rita Root", is_staff=True, is_superuser=True)


@pytest.fixture
def trusted(client, ann, clock) -> str:
    """Ann ticked the box on `client` at a login a moment ago and logged out again
    (the cookie stays, as a browser keeps it); returns the cookie's value."""
    user, secret = ann
    token = trust_this_browser(client, user, secret, clock)
    log_out(client)
    return token


def code_at(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def password_step(client: Client, user, *, password: str = PASSWORD, next_url: str | None = None):
    data = {"username": user.email, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post(LOGIN_URL, data)


def trust_this_browser(client: Client, user, secret: str, clock: FrozenClock) -> str:
    """Password, then a right code with the box ticked (the client stays logged in);
    the new cookie value. The clock moves on a step, so the next code is a fresh one."""
    assert password_step(client, user).url == CODE_URL
    response = client.post(CODE_URL, {"code": code_at(secret, clock.now), "remember_browser": "1"})
    assert response.status_code == 302, "the code step refused the code"
    clock.advance(seconds=otp.PERIOD)
    return response.cookies[COOKIE].value


def log_out(client: Client) -> None:
    # The real Log out, not Client.logout(): that one throws every cookie away, and a
    # browser keeps the trusted browser's cookie across logouts.
    client.post(LOGOUT_URL)
    assert SESSION_KEY not in client.session


def asks_for_code(client: Client, user, *, password: str = PASSWORD) -> bool:
    """A logged-out browser gives the right password: is it sent to the code step (True),
    or logged in straight away (False)?"""
    assert SESSION_KEY not in client.session, "log out first: the login page skips a user"
    response = password_step(client, user, password=password)
    assert response.status_code == 302, "the password was refused"
    if response.url == CODE_URL:
        assert SESSION_KEY not in client.session
        return True
    assert client.session.get(SESSION_KEY) == str(user.pk)
    return False


def browser_with(token: str, **defaults) -> Client:
    """Another browser (a thief's) holding a copy of the cookie."""
    other = Client(**defaults)
    other.cookies[COOKIE] = token
    return other


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def row_of(token: str) -> TrustedBrowser:
    return TrustedBrowser.objects.get(token_hash=sha256(token))


def text(response) -> str:
    return " ".join(html.unescape(response.content.decode()).split())


def trusted_section(response) -> str:
    """My profile's "Trusted browsers" list ("" when the page has none)."""
    page = response.content.decode()
    found = re.search(r'<div class="keys" id="trusted-browsers">(.*?)\n</div>', page, re.S)
    return html.unescape(found.group(1)) if found else ""


def login_events(user) -> list[str]:
    return list(
        SecurityEvent.objects.filter(user=user, kind=Kind.LOGIN)
        .order_by("pk")
        .values_list("detail", flat=True)
    )


# --- The box at the code step ---------------------------------------------------------
def test_the_code_step_offers_the_box(client, ann):
    password_step(client, ann[0])
    page = text(client.get(CODE_URL))
    assert BOX in page
    assert 'name="remember_browser"' in page


def test_the_box_says_the_configured_number_of_days(client, ann, settings):
    settings.TWOFACTOR_TRUSTED_BROWSER_DAYS = 7
    password_step(client, ann[0])
    page = text(client.get(CODE_URL))
    assert "Don't ask for a code on this browser for 7 days" in page
    assert "30 days" not in page


def test_the_trust_lasts_the_configured_number_of_days(client, ann, clock, settings):
    settings.TWOFACTOR_TRUSTED_BROWSER_DAYS = 7
    token = trust_this_browser(client, *ann, clock)
    row = row_of(token)
    assert row.expires_at - row.created_at == timedelta(days=7)


def test_the_code_step_offers_no_box_when_the_policy_turns_trust_off(client, ann, root):
    services.update_policy(actor=root, allow_trusted_browsers=False)
    password_step(client, ann[0])
    page = text(client.get(CODE_URL))
    assert "Don't ask for a code" not in page
    assert 'name="remember_browser"' not in page


def test_a_ticked_box_is_ignored_when_the_policy_turns_trust_off(client, ann, clock, root):
    services.update_policy(actor=root, allow_trusted_browsers=False)
    password_step(client, ann[0])
    response = client.post(CODE_URL, {"code": code_at(ann[1], clock.now), "remember_browser": "1"})
    assert response.status_code == 302
    assert COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


# --- Trusting a browser ---------------------------------------------------------------
@override_settings(
    TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME="__Host-twofactor_trusted",
    TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE=True,
)
def test_a_right_code_with_the_box_sets_a_secure_host_only_cookie(client, ann, clock):
    # As the portal sets it in production (SECURE_COOKIES, the default with DEBUG off).
    user, secret = ann
    password_step(client, user)
    response = client.post(CODE_URL, {"code": code_at(secret, clock.now), "remember_browser": "1"})
    cookie = response.cookies["__Host-twofactor_trusted"]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""  # __Host-: no Domain
    assert int(cookie["max-age"]) == THIRTY_DAYS


def test_over_plain_http_the_cookie_is_one_the_browser_keeps(client, ann, clock):
    # SECURE_COOKIES=0 (a server on plain http, as here): a Secure or __Host- cookie set
    # from an http page is dropped by the browser, so it is neither.
    assert COOKIE == "twofactor_trusted"
    user, secret = ann
    password_step(client, user)
    response = client.post(CODE_URL, {"code": code_at(secret, clock.now), "remember_browser": "1"})
    cookie = response.cookies[COOKIE]
    assert cookie["secure"] == ""
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_the_database_keeps_only_the_hash_of_the_token(client, ann, clock):
    token = trust_this_browser(client, *ann, clock)
    row = TrustedBrowser.objects.get()
    assert row.token_hash == sha256(token)
    stored = [str(value) for value in TrustedBrowser.objects.values().get().values()]
    assert not any(token in value for value in stored)
    events = SecurityEvent.objects.values_list("detail", "user_agent")
    assert not any(token in str(event) for event in events)


def test_a_fresh_token_is_random(ann, clock):
    # Two trusts never share a token (256 random bits each).
    first = trust_this_browser(Client(), *ann, clock)
    second = trust_this_browser(Client(), *ann, clock)
    assert first != second and len(first) >= 43
    assert secrets.compare_digest(sha256(first), row_of(first).token_hash)


def test_trusting_a_browser_is_logged_and_mailed(
    client, ann, clock, django_capture_on_commit_callbacks, mailoutbox
):
    user, secret = ann
    password_step(client, user)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(CODE_URL, {"code": code_at(secret, clock.now), "remember_browser": "1"})
    event = SecurityEvent.objects.get(user=user, kind=Kind.BROWSER_TRUSTED)
    assert "30 days" in event.detail
    assert [m.subject for m in mailoutbox] == [
        "A browser no longer asks for your Customer Portal code"
    ]
    assert mailoutbox[0].to == [user.email]


def test_a_wrong_code_with_the_box_trusts_nothing(client, ann, wrong_code):
    user, secret = ann
    password_step(client, user)
    response = client.post(CODE_URL, {"code": wrong_code(secret), "remember_browser": "1"})
    assert response.status_code == 200
    assert COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()
    assert "checked" in re.search(r'<input type="checkbox"[^>]*>', text(response)).group(0)


def test_a_right_code_without_the_box_trusts_nothing(client, ann, clock):
    user, secret = ann
    password_step(client, user)
    response = client.post(CODE_URL, {"code": code_at(secret, clock.now)})
    assert response.status_code == 302
    assert COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


def test_a_key_answer_with_the_box_trusts_the_browser(client, ann, log_in_with_sudo, settings):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = RP_ID
    settings.TWOFACTOR_WEBAUTHN_ORIGINS = [ORIGIN]
    user, _secret = ann
    key = SoftAuthenticator()
    log_in_with_sudo(client, user)
    options = html.unescape(
        re.search(
            r'data-webauthn-options="([^"]*)"', client.get("/2fa/keys/add/").content.decode()
        ).group(1)
    )
    client.post("/2fa/keys/add/", {"credential": key.create(options)})
    log_out(client)
    password_step(client, user)
    page = client.get(CODE_URL).content.decode()
    assert re.search(r'<input type="hidden" name="remember_browser"', page)
    options = html.unescape(re.search(r'data-webauthn-options="([^"]*)"', page).group(1))
    response = client.post(CODE_URL, {"credential": key.get(options), "remember_browser": "1"})
    assert response.status_code == 302 and response.url == PROFILE_URL
    assert row_of(response.cookies[COOKIE].value).user == user
    log_out(client)
    assert not asks_for_code(client, user)


# --- The skip: only with the cookie, only after the password ---------------------------
def test_the_cookie_and_the_right_password_log_in_without_the_code(client, ann, trusted):
    user = ann[0]
    response = password_step(client, user)
    assert response.status_code == 302 and response.url == PROFILE_URL
    assert client.session.get(SESSION_KEY) == str(user.pk)
    assert client.get(PROFILE_URL).status_code == 200


def test_a_login_without_the_code_is_logged_as_trusted_browser(client, ann, trusted):
    password_step(client, ann[0])
    assert login_events(ann[0])[-1] == TRUSTED_LOGIN


def test_a_login_without_the_code_records_when_the_browser_was_used(client, ann, clock, trusted):
    assert row_of(trusted).last_used_at is None
    clock.advance(hours=3)
    password_step(client, ann[0])
    assert row_of(trusted).last_used_at == clock.now


def test_a_login_without_the_code_follows_a_safe_next(client, ann, trusted):
    response = password_step(client, ann[0], next_url="/accounts/security/")
    assert response.status_code == 302 and response.url == "/accounts/security/"


@pytest.mark.parametrize("next_url", OPEN_REDIRECTS)
def test_a_login_without_the_code_never_leaves_the_site(client, ann, trusted, next_url):
    response = password_step(client, ann[0], next_url=next_url)
    assert response.status_code == 302 and response.url == PROFILE_URL


def test_the_cookie_and_a_wrong_password_are_refused_as_usual(client, ann, trusted):
    response = password_step(client, ann[0], password="not the password")
    assert response.status_code == 200
    assert REFUSED_PASSWORD in text(response)
    assert SESSION_KEY not in client.session
    assert login_events(ann[0]) == ["authenticator app"]  # the one that trusted it
    assert client.get(PROFILE_URL).status_code == 302


def test_the_cookie_without_the_password_opens_no_page(client, ann, trusted):
    for url in (PROFILE_URL, "/accounts/security/", "/2fa/backup-codes/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(LOGIN_URL), url
    assert SESSION_KEY not in client.session


def test_the_cookie_without_the_password_gets_no_code_step(client, ann, trusted):
    response = client.get(CODE_URL)
    assert response.status_code == 302 and response.url == LOGIN_URL
    response = client.post(CODE_URL, {"code": "123456"})
    assert response.status_code == 302 and response.url == LOGIN_URL
    assert SESSION_KEY not in client.session


def test_a_stolen_cookie_on_another_browser_opens_nothing_without_the_password(
    client, ann, trusted
):
    thief = browser_with(trusted)
    for response in (thief.get(PROFILE_URL), thief.get(CODE_URL), thief.get("/")):
        assert SESSION_KEY not in thief.session
        assert response.status_code in (200, 302)
    assert thief.get(PROFILE_URL).url.startswith(LOGIN_URL)
    response = password_step(thief, ann[0], password="a guess at the password")
    assert response.status_code == 200 and SESSION_KEY not in thief.session


def test_a_stolen_cookie_still_needs_the_password(client, ann, trusted):
    thief = browser_with(trusted)
    assert thief.get(LOGIN_URL).status_code == 200  # the login page, like anyone's
    assert thief.get(PROFILE_URL).status_code == 302
    assert not asks_for_code(thief, ann[0])  # only the password itself lets it in


def test_the_stored_hash_presented_as_the_cookie_is_worthless(client, ann, trusted):
    # Someone who read the database (or a backup) has the hashes, never the tokens.
    assert asks_for_code(browser_with(row_of(trusted).token_hash), ann[0])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-token",
        "x" * 19,
        "y" * 65,
        "A" * 43,  # the shape of a token, but no browser's
        "." * 500,
        ".".join(["B" * 43] * 200),  # many token-shaped parts: a bounded lookup
        "z" * 8000,
        '"quoted;value"',
        "null",
        "%00%ff%0d%0a",
        "\u00e9\u00e8" * 30,
    ],
    ids=[
        "empty", "short-word", "too-short", "too-long", "unknown", "dots", "many-parts",
        "oversized", "quoted", "null", "escapes", "non-ascii",
    ],
)  # fmt: skip
def test_a_forged_cookie_is_ignored(client, ann, value):
    client.cookies[COOKIE] = value
    assert asks_for_code(client, ann[0])
    response = client.get(CODE_URL)
    assert response.status_code == 200 and BOX in text(response)


def test_a_cookie_of_many_tokens_costs_a_bounded_lookup(client, ann):
    parts = [secrets.token_urlsafe(32) for _ in range(1000)]
    client.cookies[COOKIE] = ".".join(parts)
    with CaptureQueriesContext(connection) as queries:
        assert asks_for_code(client, ann[0])
    looked_up = {sha256(part) for part in parts}
    asked = [q["sql"] for q in queries if "twofactor_trustedbrowser" in q["sql"]]
    assert asked, "the cookie was not looked at"
    for sql in asked:
        assert len(looked_up & set(re.findall(r"[0-9a-f]{64}", sql))) <= 5


def test_a_cookie_with_one_character_changed_is_ignored(client, ann, trusted):
    changed = trusted[:-1] + ("A" if trusted[-1] != "A" else "B")
    assert asks_for_code(browser_with(changed), ann[0])


def test_a_forged_cookie_next_to_the_real_token_still_skips(client, ann, trusted):
    client.cookies[COOKIE] = f"{'C' * 43}.garbage.{trusted}"
    assert not asks_for_code(client, ann[0])


# --- Several accounts on one browser ---------------------------------------------------
def test_anns_trust_does_not_skip_bobs_code_step(client, ann, bob, trusted):
    assert asks_for_code(client, bob[0])


def test_two_accounts_can_trust_one_browser_and_each_skips(client, ann, bob, clock, trusted):
    both = trust_this_browser(client, *bob, clock)
    log_out(client)
    assert both.split(".") == [trusted, both.split(".")[1]]
    assert asks_for_code(client, ann[0]) is False
    log_out(client)
    assert asks_for_code(client, bob[0]) is False


def test_trusting_again_after_expiry_replaces_this_browsers_token(client, ann, clock, trusted):
    clock.advance(days=31)
    again = trust_this_browser(client, *ann, clock)
    assert again.split(".") == [again] and again != trusted
    assert TrustedBrowser.objects.filter(user=ann[0]).count() == 1
    log_out(client)
    assert not asks_for_code(client, ann[0])
    log_out(client)
    assert asks_for_code(browser_with(trusted), ann[0])  # the old token is gone


def test_a_browser_keeps_at_most_five_tokens(client, clock, make_user, enrolled):
    users = []
    for number in range(6):
        user = make_user(f"user{number}@example.com")
        secret = enrolled(user, at=clock.now - timedelta(minutes=2))
        users.append(user)
        value = trust_this_browser(client, user, secret, clock)
        log_out(client)
    assert len(value.split(".")) == 5
    assert asks_for_code(client, users[0])  # the oldest was dropped
    for user in users[1:]:
        assert not asks_for_code(client, user)
        log_out(client)


# --- Expiry ----------------------------------------------------------------------------
def test_a_day_before_the_30_days_end_the_code_is_still_skipped(client, ann, clock, trusted):
    clock.advance(days=29)
    assert not asks_for_code(client, ann[0])


def test_after_30_days_the_code_is_asked_again(client, ann, clock, trusted):
    clock.advance(days=30)
    assert asks_for_code(client, ann[0])


# --- What voids it -----------------------------------------------------------------------
def test_remove_voids_that_browser(client, ann, trusted, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    response = client.post(f"/2fa/trusted-browsers/{row_of(trusted).pk}/remove/")
    assert response.status_code == 302
    # The browser removed is the one asking: the message says so.
    assert "This browser will ask for a code next time you log in." in text(client.get(PROFILE_URL))
    log_out(client)
    assert asks_for_code(client, ann[0])


def test_remove_is_recorded_in_the_security_log(client, ann, trusted, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    client.post(f"/2fa/trusted-browsers/{row_of(trusted).pk}/remove/")
    event = SecurityEvent.objects.get(user=ann[0], kind=Kind.TRUSTED_BROWSERS_REMOVED)
    assert event.detail == "1"


def test_remove_all_voids_every_browser(client, ann, clock, trusted, log_in_with_sudo):
    other = Client(HTTP_USER_AGENT=CHROME)
    second = trust_this_browser(other, *ann, clock)
    log_out(other)
    log_in_with_sudo(client, ann[0])
    assert client.post(REMOVE_ALL_URL).status_code == 302
    log_out(client)
    assert asks_for_code(client, ann[0])
    assert asks_for_code(browser_with(second), ann[0])


def test_removing_another_users_browser_removes_nothing(
    client, ann, bob, trusted, log_in_with_sudo
):
    mallory = log_in_with_sudo(Client(), bob[0])
    response = mallory.post(f"/2fa/trusted-browsers/{row_of(trusted).pk}/remove/")
    assert response.status_code == 302
    assert "That browser is no longer trusted." in text(mallory.get(PROFILE_URL))
    assert TrustedBrowser.objects.filter(user=ann[0]).count() == 1
    assert not asks_for_code(client, ann[0])


def test_remove_all_of_another_user_removes_only_their_own(
    client, ann, bob, trusted, log_in_with_sudo
):
    log_in_with_sudo(Client(), bob[0]).post(REMOVE_ALL_URL)
    assert not asks_for_code(client, ann[0])


def test_remove_by_get_is_refused(client, ann, trusted, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    assert client.get(f"/2fa/trusted-browsers/{row_of(trusted).pk}/remove/").status_code == 405
    assert client.get(REMOVE_ALL_URL).status_code == 405
    log_out(client)
    assert not asks_for_code(client, ann[0])


def test_remove_without_the_csrf_token_is_refused(client, ann, trusted):
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(ann[0])
    assert forged.post(f"/2fa/trusted-browsers/{row_of(trusted).pk}/remove/").status_code == 403
    assert forged.post(REMOVE_ALL_URL).status_code == 403
    assert not asks_for_code(client, ann[0])


def test_remove_needs_a_login(client, ann, trusted):
    response = client.post(f"/2fa/trusted-browsers/{row_of(trusted).pk}/remove/")
    assert response.status_code == 302 and response.url.startswith(LOGIN_URL)
    assert not asks_for_code(client, ann[0])


def test_a_password_change_on_my_profile_voids_the_trust(client, ann, trusted, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    response = client.post(
        "/accounts/profile/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    log_out(client)
    assert asks_for_code(client, ann[0], password=NEW_PASSWORD)
    assert not TrustedBrowser.objects.filter(user=ann[0]).exists()


def test_a_password_set_where_no_code_removes_the_rows_voids_the_trust(client, ann, trusted):
    # An UPDATE behind every receiver's back (a script, a raw migration): the fingerprint
    # still notices the new password.
    User.objects.filter(pk=ann[0].pk).update(password=make_password(NEW_PASSWORD))
    assert asks_for_code(client, ann[0], password=NEW_PASSWORD)


def test_a_password_reset_by_email_link_voids_the_trust(client, ann, trusted):
    user = User.objects.get(pk=ann[0].pk)  # the link is made from the current last_login
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    form_url = client.get(f"/accounts/password-reset/{uid}/{token}/")["Location"]
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response.url == "/accounts/password-reset/done/"
    assert asks_for_code(client, user, password=NEW_PASSWORD)
    assert not TrustedBrowser.objects.filter(user=user).exists()


def test_disable_2fa_voids_the_trust(client, ann, clock, enrolled, trusted, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    assert client.post("/2fa/disable/", {"confirm": "1"}).status_code == 302
    assert not TOTPDevice.objects.filter(user=ann[0]).exists()
    assert not TrustedBrowser.objects.filter(user=ann[0]).exists()
    log_out(client)
    enrolled(ann[0], at=clock.now)
    assert asks_for_code(client, ann[0])


def test_a_staff_reset_voids_the_trust(client, ann, clock, enrolled, trusted, staff_user):
    services.reset_two_factor(user=ann[0], actor=staff_user, reason="Lost phone")
    assert not TrustedBrowser.objects.filter(user=ann[0]).exists()
    enrolled(ann[0], at=clock.now)
    assert asks_for_code(client, ann[0])


def test_new_backup_codes_void_the_trust(client, ann, trusted, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    response = client.post("/2fa/backup-codes/", {"generate": "1"})
    assert response.status_code == 302 and response.url == "/2fa/backup-codes/new/"
    log_out(client)
    assert asks_for_code(client, ann[0])


def test_end_all_sessions_voids_the_trust(client, ann, trusted):
    sign_out.end_all_sessions(user=ann[0])
    assert asks_for_code(client, ann[0])


def test_staff_sign_out_everywhere_voids_the_trust(
    client, ann, trusted, staff_user, enrolled, clock, log_in_with_sudo
):
    enrolled(staff_user, at=clock.now - timedelta(minutes=2))
    staff = log_in_with_sudo(Client(), staff_user)
    response = staff.post(f"/accounts/users/{ann[0].pk}/sessions/end/", {"reason": "Laptop stolen"})
    assert response.status_code == 302
    assert asks_for_code(client, ann[0])


def test_the_policy_turning_trust_off_voids_it(client, ann, trusted, root):
    services.update_policy(actor=root, allow_trusted_browsers=False)
    assert asks_for_code(client, ann[0])


def test_the_policy_turning_trust_back_on_brings_no_old_trust_back(client, ann, trusted, root):
    services.update_policy(actor=root, allow_trusted_browsers=False)
    services.update_policy(actor=root, allow_trusted_browsers=True)
    assert asks_for_code(client, ann[0])


def test_sign_out_all_other_sessions_keeps_this_browsers_trust(client, ann, clock):
    user, secret = ann
    trust_this_browser(client, user, secret, clock)  # still logged in on this one
    other = Client(HTTP_USER_AGENT=CHROME)
    trust_this_browser(other, user, secret, clock)
    response = client.post(SIGN_OUT_OTHERS_URL)
    assert response.status_code == 302
    log_out(client)
    assert not asks_for_code(client, user)


def test_sign_out_all_other_sessions_voids_the_other_browsers_trust(client, ann, clock):
    user, secret = ann
    trust_this_browser(client, user, secret, clock)
    other = Client(HTTP_USER_AGENT=CHROME)
    trust_this_browser(other, user, secret, clock)
    client.post(SIGN_OUT_OTHERS_URL)
    assert other.get(PROFILE_URL).status_code == 302  # signed out there
    assert SESSION_KEY not in other.session
    assert asks_for_code(other, user)


def test_2fa_disabled_and_enabled_again_asks_for_the_code(client, ann, clock, enrolled, trusted):
    services.disable_two_factor(user=ann[0])
    enrolled(ann[0], at=clock.now)
    assert asks_for_code(client, ann[0])


def test_a_new_authenticator_voids_the_trust_even_if_its_row_survived(client, ann, trusted):
    # A device row replaced behind the services' back (the admin, a script): no code path
    # removed the trust, but it was earned with the old device, and the fingerprint says so.
    device = TOTPDevice.objects.get(user=ann[0])
    device.delete()
    device.pk = None
    device.save()
    assert TrustedBrowser.objects.filter(user=ann[0]).exists()
    assert asks_for_code(client, ann[0])


# --- My profile's list -------------------------------------------------------------------
def test_my_profile_lists_trusted_browsers_and_marks_this_one(ann, clock):
    user, secret = ann
    firefox = Client(HTTP_USER_AGENT=FIREFOX)
    mine = trust_this_browser(firefox, user, secret, clock)
    chrome = Client(HTTP_USER_AGENT=CHROME)
    theirs = trust_this_browser(chrome, user, secret, clock)
    section = trusted_section(firefox.get(PROFILE_URL))
    items = re.findall(r'<li class="key">(.*?)</li>', section, re.S)
    assert len(items) == 2
    [this] = [item for item in items if "This browser" in item]
    assert "Firefox on Windows" in this
    assert f'action="/2fa/trusted-browsers/{row_of(mine).pk}/remove/"' in this
    [that] = [item for item in items if "This browser" not in item]
    assert "Chrome on Windows" in that
    assert f'action="/2fa/trusted-browsers/{row_of(theirs).pk}/remove/"' in that


def test_my_profile_offers_remove_and_remove_all(client, ann, clock):
    trust_this_browser(client, *ann, clock)
    section = trusted_section(client.get(PROFILE_URL))
    assert ">Remove</button>" in section
    assert ">Remove all</button>" in section
    assert f'action="{REMOVE_ALL_URL}"' in section


def test_my_profile_shows_no_trusted_browsers_without_2fa(client, user):
    client.force_login(user)
    response = client.get(PROFILE_URL)
    assert trusted_section(response) == ""
    assert "Trusted browsers" not in text(response)


def test_my_profile_shows_no_trusted_browsers_when_the_policy_turns_trust_off(
    client, ann, root, log_in_with_sudo
):
    services.update_policy(actor=root, allow_trusted_browsers=False)
    log_in_with_sudo(client, ann[0])
    assert "Trusted browsers" not in text(client.get(PROFILE_URL))


def test_my_profile_without_trust_says_none(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann[0])
    section = trusted_section(client.get(PROFILE_URL))
    assert "None." in section and "Remove all" not in section


# --- PostgreSQL: many requests at once ------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_cookie_and_password_posted_at_once_log_each_in(ann, clock, trusted):
    user = ann[0]
    clients = [browser_with(trusted) for _ in range(BROWSERS)]
    data = {"username": user.email, "password": PASSWORD}
    responses = all_at_once(clients, lambda c: c.post(LOGIN_URL, data))
    assert [(r.status_code, r.url) for r in responses] == [(302, PROFILE_URL)] * BROWSERS
    assert login_events(user)[-BROWSERS:] == [TRUSTED_LOGIN] * BROWSERS
    assert row_of(trusted).last_used_at == clock.now


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_code_with_the_box_posted_at_once_trusts_one_browser(ann, clock):
    user, secret = ann
    clients = [Client() for _ in range(BROWSERS)]
    for browser in clients:
        assert password_step(browser, user).url == CODE_URL
    data = {"code": code_at(secret, clock.now), "remember_browser": "1"}
    responses = all_at_once(clients, lambda c: c.post(CODE_URL, data))
    trusted_responses = [r for r in responses if COOKIE in r.cookies]
    assert len(trusted_responses) == 1
    assert TrustedBrowser.objects.filter(user=user).count() == 1
    assert sorted(r.status_code for r in responses) == [200] * (BROWSERS - 1) + [302]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_remove_all_at_once_in_many_tabs_leaves_nothing_and_no_error(
    ann, clock, trusted, log_in_with_sudo
):
    tabs = [log_in_with_sudo(Client(), ann[0]) for _ in range(BROWSERS)]
    responses = all_at_once(tabs, lambda c: c.post(REMOVE_ALL_URL))
    assert [r.status_code for r in responses] == [302] * BROWSERS
    assert not TrustedBrowser.objects.exists()
    assert SecurityEvent.objects.filter(kind=Kind.TRUSTED_BROWSERS_REMOVED).count() == 1


@override_settings(TWOFACTOR_TRUSTED_BROWSER_DAYS=0)
def test_zero_days_in_the_settings_switch_trust_off():
    assert not services.is_trust_offered()


def test_no_trust_is_made_once_the_policy_has_switched_it_off(ann, root):
    # The code step checked the policy a moment before a superuser switched trust off:
    # trust_browser reads it again under the policy row's lock, so no row outlives "off".
    services.update_policy(actor=root, allow_trusted_browsers=False)
    with pytest.raises(services.TrustNotOffered):
        services.trust_browser(
            request=RequestFactory().get("/"), response=HttpResponse(), user=ann[0]
        )
    assert not TrustedBrowser.objects.exists()


def test_pruning_deletes_expired_trusts_and_keeps_live_ones(ann, clock):
    live = services.trust_browser(
        request=RequestFactory().get("/"), response=HttpResponse(), user=ann[0]
    )
    clock.advance(days=20)
    services.trust_browser(request=RequestFactory().get("/"), response=HttpResponse(), user=ann[0])
    clock.advance(days=15)  # the first is 35 days old, the second 15
    assert services.prune_trusted_browsers() == 1
    assert not TrustedBrowser.objects.filter(pk=live.pk).exists()
    assert TrustedBrowser.objects.count() == 1
