"""The security log: every state change leaves exactly one event, with where it came from.

Actions go through the pages with a client that has an IP and a browser, the
way a user (or an attacker) would do them; the rollback tests call the
services inside a transaction that fails.
"""

import re
import secrets
from collections import Counter
from datetime import timedelta

import pyotp
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Permission
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import security_log
from accounts.middleware import ActionOrigin, action_origin
from accounts.models import SecurityEvent
from tests.accounts.security_helpers import (
    BACKUP_CODES_URL,
    BROWSER,
    DISABLE_URL,
    HISTORY_URL,
    IP,
    LOGIN_CODE_URL,
    LOGIN_URL,
    PROFILE_URL,
    USER_AGENT,
    browser_client,
    enable_through_pages,
    events,
    kinds,
)
from tests.conftest import PASSWORD
from twofactor import services, signals
from twofactor.models import WebAuthnCredential, encode_credential_id
from twofactor.signals import Method, Outcome

Kind = SecurityEvent.Kind


class Boom(Exception):
    pass


def assert_one_event(user, kind: str) -> SecurityEvent:
    recorded = events(user)
    assert [event.kind for event in recorded] == [kind]
    event = recorded[0]
    assert event.ip == IP
    assert event.user_agent == USER_AGENT
    return event


@pytest.fixture
def browser(db):
    return browser_client()


@pytest.fixture
def with_codes(user_with_totp):
    user, secret = user_with_totp
    codes = services.regenerate_backup_codes(user=user)
    SecurityEvent.objects.all().delete()
    return user, secret, codes


def start_login(client, user) -> None:
    """Step 1 (password) of a two-step login, with earlier events (enrollment) cleared."""
    SecurityEvent.objects.all().delete()
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response["Location"] == LOGIN_CODE_URL


# --- Each action: exactly one event of the right kind, with IP and browser -----------
def test_enabling_2fa_records_one_event_with_ip_and_browser(browser, user, log_in_with_sudo):
    log_in_with_sudo(browser, user)
    enable_through_pages(browser, user)
    # Setup ends with the first backup codes: their own event, one each.
    recorded = events(user)
    assert [event.kind for event in recorded] == [
        Kind.TWO_FACTOR_ENABLED,
        Kind.BACKUP_CODES_GENERATED,
    ]
    assert all((event.ip, event.user_agent) == (IP, USER_AGENT) for event in recorded)


def test_disabling_2fa_records_one_event(browser, user_with_totp, log_in_with_sudo):
    user, _ = user_with_totp
    log_in_with_sudo(browser, user)
    browser.post(DISABLE_URL, {"confirm": "1"})
    assert_one_event(user, Kind.TWO_FACTOR_DISABLED)


def test_generating_backup_codes_records_one_event(browser, user_with_totp, log_in_with_sudo):
    user, _ = user_with_totp
    log_in_with_sudo(browser, user)
    response = browser.post(BACKUP_CODES_URL, {"generate": "1"})
    assert response.status_code == 302
    assert_one_event(user, Kind.BACKUP_CODES_GENERATED)


def test_password_only_login_records_one_login_event(browser, user):
    browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert assert_one_event(user, Kind.LOGIN).detail == "password only"


def test_two_step_login_records_one_login_event_naming_the_app(browser, user_with_totp, totp_code):
    user, secret = user_with_totp
    start_login(browser, user)
    browser.post(LOGIN_CODE_URL, {"code": totp_code(secret)})
    # Django's user_logged_in and twofactor's two_factor_login both fire: one event.
    assert assert_one_event(user, Kind.LOGIN).detail == "authenticator app"


def test_login_with_backup_code_records_the_code_used_and_the_login(browser, with_codes):
    user, _, codes = with_codes
    start_login(browser, user)
    browser.post(LOGIN_CODE_URL, {"code": codes[0]})
    recorded = events(user)
    assert Counter(event.kind for event in recorded) == {
        Kind.BACKUP_CODE_USED: 1,
        Kind.LOGIN: 1,
    }
    assert all(event.ip == IP and event.user_agent == USER_AGENT for event in recorded)
    used = next(event for event in recorded if event.kind == Kind.BACKUP_CODE_USED)
    login = next(event for event in recorded if event.kind == Kind.LOGIN)
    assert used.description == "Backup code used (4 left)"
    assert login.detail == "backup code"


def test_wrong_password_records_a_failed_login_for_that_account(browser, user):
    browser.post(LOGIN_URL, {"username": "ANN@example.com ", "password": "not it"})
    assert_one_event(user, Kind.LOGIN_FAILED)


def test_wrong_password_for_an_unknown_email_records_nothing(browser, user):
    browser.post(LOGIN_URL, {"username": "nobody@example.com", "password": "not it"})
    assert events() == []


def test_wrong_code_records_one_code_failed_event(browser, user_with_totp, wrong_code):
    user, secret = user_with_totp
    start_login(browser, user)
    browser.post(LOGIN_CODE_URL, {"code": wrong_code(secret)})
    event = assert_one_event(user, Kind.CODE_FAILED)
    assert event.detail == "wrong authenticator code"


def test_fifth_wrong_code_records_the_lock_once(browser, user_with_totp, wrong_code):
    user, secret = user_with_totp
    start_login(browser, user)
    for _ in range(services.MAX_FAILURES):
        browser.post(LOGIN_CODE_URL, {"code": wrong_code(secret)})
    assert Counter(kinds(user)) == {
        Kind.CODE_FAILED: services.MAX_FAILURES,
        Kind.ACCOUNT_LOCKED: 1,
    }
    locked = SecurityEvent.objects.get(kind=Kind.ACCOUNT_LOCKED)
    assert (locked.ip, locked.user_agent) == (IP, USER_AGENT)
    assert locked.detail.startswith("until ") and locked.detail.endswith(" UTC")


def test_password_reset_by_link_records_one_password_reset_event(browser, user):
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    # Django swaps the token for a session marker and redirects to ".../set-password/".
    form_url = browser.get(f"/accounts/password-reset/{uid}/{token}/")["Location"]
    new_password = "a brand new long passphrase"
    response = browser.post(
        form_url, {"new_password1": new_password, "new_password2": new_password}
    )
    assert response.status_code == 302
    assert_one_event(user, Kind.PASSWORD_RESET)


def test_password_changed_elsewhere_records_password_changed(user):
    user.set_password("another long passphrase")
    user.save()
    assert kinds(user) == [Kind.PASSWORD_CHANGED]


def test_password_changed_by_staff_names_the_staff_member(user, staff_user):
    with action_origin(ActionOrigin(ip=IP, user_agent=USER_AGENT, request_user=staff_user)):
        user.set_password("another long passphrase")
        user.save()
    assert [(event.kind, event.actor) for event in events(user)] == [
        (Kind.PASSWORD_CHANGED, staff_user)
    ]


def test_saving_a_user_without_a_new_password_records_nothing(user):
    user.name = "Ann Renamed"
    user.save()
    assert events(user) == []


class FastPBKDF2(PBKDF2PasswordHasher):
    iterations = 1


def test_password_hash_upgrade_at_login_is_not_a_password_change(browser, user, settings):
    settings.PASSWORD_HASHERS = [
        "tests.accounts.test_security_log.FastPBKDF2",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # the upgrade did happen
    assert kinds(user) == [Kind.LOGIN]


def test_staff_reset_records_the_actor_and_the_reason(user_with_totp, staff_user):
    user, _ = user_with_totp
    SecurityEvent.objects.all().delete()
    with action_origin(ActionOrigin(ip=IP, user_agent=USER_AGENT)):
        services.reset_two_factor(user=user, actor=staff_user, reason="Lost phone, ID checked")
    event = assert_one_event(user, Kind.TWO_FACTOR_RESET)
    assert event.actor == staff_user
    assert event.description == "2FA reset by staff: Lost phone, ID checked"


def test_staff_reset_on_the_all_users_page_records_staff_ip_and_browser(
    browser, user_with_totp, staff_user, log_in_verified
):
    user, _ = user_with_totp
    staff_user.user_permissions.add(Permission.objects.get(codename="reset_two_factor"))
    staff_secret = log_in_verified(browser, staff_user)
    reset_url = reverse("accounts:reset_two_factor", args=[user.pk])
    own_proof = {"sudo": "1", "password": PASSWORD, "code": pyotp.TOTP(staff_secret).now()}
    assert browser.post(reset_url, own_proof).status_code == 302
    SecurityEvent.objects.all().delete()
    response = browser.post(reset_url, {"reason": "Lost phone"})
    assert response.status_code == 302
    event = assert_one_event(user, Kind.TWO_FACTOR_RESET)
    assert (event.actor, event.detail) == (staff_user, "Lost phone")


# --- Same transaction as the change ------------------------------------------------------
def test_rolled_back_disable_records_nothing(user_with_totp):
    user, _ = user_with_totp
    SecurityEvent.objects.all().delete()
    with pytest.raises(Boom), transaction.atomic():
        services.disable_two_factor(user=user)
        raise Boom
    assert events() == []
    assert services.is_two_factor_enabled(user=user)


def test_rolled_back_backup_code_generation_records_nothing(user_with_totp):
    user, _ = user_with_totp
    SecurityEvent.objects.all().delete()
    with pytest.raises(Boom), transaction.atomic():
        services.regenerate_backup_codes(user=user)
        raise Boom
    assert events() == []


def test_a_change_whose_event_cannot_be_saved_does_not_happen(user_with_totp, monkeypatch):
    user, _ = user_with_totp

    def broken_log(**kwargs):
        raise Boom

    monkeypatch.setattr(security_log, "record_event", broken_log)
    with pytest.raises(Boom):
        services.disable_two_factor(user=user)
    assert services.is_two_factor_enabled(user=user)


# --- Where it came from ----------------------------------------------------------------
def test_a_junk_client_address_is_stored_as_unknown_and_the_action_still_works(
    user, log_in_with_sudo
):
    client = browser_client()
    client.defaults["REMOTE_ADDR"] = "not-an-address"
    log_in_with_sudo(client, user)
    enable_through_pages(client, user)
    assert [(event.kind, event.ip) for event in events(user)] == [
        (Kind.TWO_FACTOR_ENABLED, None),
        (Kind.BACKUP_CODES_GENERATED, None),
    ]


def test_a_long_user_agent_is_cut_to_300_characters(user):
    client = browser_client()
    client.defaults["HTTP_USER_AGENT"] = "Mozilla/5.0 " + "x" * 1000
    client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert len(events(user)[0].user_agent) == 300


def test_an_action_outside_a_request_records_no_place(user_with_totp):
    user, _ = user_with_totp
    SecurityEvent.objects.all().delete()
    services.disable_two_factor(user=user)
    assert [(event.ip, event.user_agent) for event in events(user)] == [(None, "")]


# --- Recent security activity on My profile ------------------------------------------------
def make_events(user, count: int, *, kind=Kind.LOGIN, detail: str = "password only"):
    now = timezone.now()
    for index in range(count):
        security_log.record_event(
            user=user,
            kind=kind,
            detail=f"{detail} #{index}",
            origin=ActionOrigin(ip=IP, user_agent=USER_AGENT),
            now=now - timedelta(minutes=count - index),
        )


def test_profile_lists_the_20_newest_events_newest_first(client, user):
    make_events(user, 25, kind=Kind.BACKUP_CODE_USED, detail="left")
    client.force_login(user)  # the 26th event, newest of all
    page = client.get(PROFILE_URL).content.decode()
    assert "Recent security activity" in page
    shown = [event.description for event in page_events(client.get(PROFILE_URL))]
    assert len(shown) == 20
    assert shown[0] == "Logged in (password only)"
    assert shown[1:3] == ["Backup code used (left #24)", "Backup code used (left #23)"]
    assert "Backup code used (left #5)" not in page


def page_events(response) -> list[SecurityEvent]:
    return list(response.context["security_events"])


def test_profile_shows_events_in_words_with_time_place_and_browser(client, user, staff_user):
    security_log.record_event(
        user=user, kind=Kind.TWO_FACTOR_ENABLED, origin=ActionOrigin(IP, USER_AGENT)
    )
    security_log.record_event(user=user, kind=Kind.BACKUP_CODE_USED, detail="3 left")
    security_log.record_event(
        user=user, kind=Kind.TWO_FACTOR_RESET, detail="Lost phone", actor=staff_user
    )
    client.force_login(user)
    page = client.get(PROFILE_URL).content.decode()
    assert "Two-factor authentication enabled" in page
    assert "Backup code used (3 left)" in page
    assert "2FA reset by staff: Lost phone" in page
    assert f"{IP}" in page and BROWSER in page
    assert "ago</time>" in page or "now</time>" in page
    assert re.search(
        r"\(\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC\)</span>", page
    )  # the exact time, shown
    assert f'href="{HISTORY_URL}"' in page and "Full history" in page
    # The staff member's identity is for staff pages, not for the user's own list.
    assert staff_user.email not in page


def test_a_staff_action_shows_the_user_no_address_or_browser_of_the_staff_member(
    client, user, staff_user, log_in_verified
):
    staff_origin = ActionOrigin("203.0.113.77", "Mozilla/5.0 (Macintosh) Firefox/130.0")
    security_log.record_event(
        user=user,
        kind=Kind.TWO_FACTOR_RESET,
        detail="Lost phone",
        actor=staff_user,
        origin=staff_origin,
    )
    client.force_login(user)
    for url in (PROFILE_URL, HISTORY_URL):
        page = client.get(url).content.decode()
        assert "2FA reset by staff: Lost phone" in page
        assert "203.0.113.77" not in page and "Firefox" not in page, url
    staff = Client()
    log_in_verified(staff, staff_user)
    history = staff.get(f"/accounts/users/{user.pk}/security/").content.decode()
    assert "203.0.113.77" in history and f"by {staff_user.email}" in history


# --- Who sees what ---------------------------------------------------------------------------
@pytest.fixture
def two_logs(make_user):
    ann = make_user("ann@example.com")
    bob = make_user("bob@example.com", name="Bob Example")
    security_log.record_event(user=ann, kind=Kind.CODE_FAILED, detail="ann's marker")
    security_log.record_event(user=bob, kind=Kind.CODE_FAILED, detail="bob's marker")
    return ann, bob


def test_users_see_only_their_own_events(client, two_logs):
    ann, _ = two_logs
    client.force_login(ann)
    for url in (PROFILE_URL, HISTORY_URL):
        page = client.get(url).content.decode()
        assert "ann&#x27;s marker" in page
        assert "bob&#x27;s marker" not in page


def test_a_user_cannot_open_another_users_history(client, two_logs):
    ann, bob = two_logs
    client.force_login(ann)
    response = client.get(f"/accounts/users/{bob.pk}/security/")
    assert response.status_code == 403
    assert "bob&#x27;s marker" not in response.content.decode()


def test_staff_see_anyones_history_with_who_did_it(client, two_logs, staff_user, log_in_verified):
    _, bob = two_logs
    security_log.record_event(
        user=bob, kind=Kind.TWO_FACTOR_RESET, detail="Lost phone", actor=staff_user
    )
    log_in_verified(client, staff_user)
    response = client.get(f"/accounts/users/{bob.pk}/security/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Security history of bob@example.com" in page
    assert "bob&#x27;s marker" in page and "ann&#x27;s marker" not in page
    assert f"by {staff_user.email}" in page


def test_staff_history_of_an_unknown_user_is_404(client, staff_user, log_in_verified):
    log_in_verified(client, staff_user)
    assert client.get("/accounts/users/999999/security/").status_code == 404


@pytest.mark.parametrize("url", [HISTORY_URL, "/accounts/users/1/security/"])
def test_anonymous_sees_no_events(client, two_logs, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL)


def test_full_history_is_paginated_50_per_page(client, user):
    make_events(user, 60)
    client.force_login(user)  # 61 events in all
    first = client.get(HISTORY_URL)
    second = client.get(HISTORY_URL, {"page": 2})
    assert len(first.context["page"].object_list) == 50
    assert len(second.context["page"].object_list) == 11
    assert "Page 1 of 2" in first.content.decode()


def test_a_bad_history_page_number_shows_a_page_not_an_error(client, user):
    client.force_login(user)
    assert client.get(HISTORY_URL, {"page": "last-but-one"}).status_code == 200


def test_history_page_is_not_cached(client, user):
    client.force_login(user)
    assert "no-store" in client.get(HISTORY_URL)["Cache-Control"]


def test_all_users_links_each_user_to_their_history(client, two_logs, staff_user, log_in_verified):
    _, bob = two_logs
    log_in_verified(client, staff_user)
    page = client.get("/accounts/users/").content.decode()
    assert f'href="/accounts/users/{bob.pk}/security/"' in page


def test_a_wrong_password_at_confirm_its_you_is_recorded_as_such(browser, user):
    browser.force_login(user)
    SecurityEvent.objects.all().delete()
    browser.post("/2fa/enable/", {"sudo": "1", "password": "not it"})
    event = assert_one_event(user, Kind.CONFIRM_FAILED)
    assert event.description == "Wrong password at “Confirm it's you”"


# --- Passkeys and security keys ------------------------------------------------------------
def make_key(user, name: str = "YubiKey 5 NFC") -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user,
        credential_id=encode_credential_id(secrets.token_bytes(16)),
        public_key=b"\xa5\x01\x02\x03\x26 public key bytes",
        transports=["usb", "nfc"],
        aaguid="ee882879-721c-4913-9775-3dfcce97072a",
        name=name,
    )


def assert_names_the_key_only(event: SecurityEvent, credential: WebAuthnCredential) -> None:
    assert event.detail == credential.name
    assert credential.credential_id not in event.description
    assert credential.aaguid not in event.description


def test_adding_a_key_records_one_event_naming_it(user):
    credential = make_key(user)
    with action_origin(ActionOrigin(ip=IP, user_agent=USER_AGENT)):
        signals.webauthn_credential_added.send(sender=type(user), user=user, credential=credential)
    event = assert_one_event(user, Kind.KEY_ADDED)
    assert event.description == "Passkey or security key added (YubiKey 5 NFC)"
    assert_names_the_key_only(event, credential)


def test_removing_a_key_records_one_event_naming_it(user):
    credential = make_key(user, name="Work laptop")
    credential.delete()  # the signal comes after the delete, in its transaction
    with action_origin(ActionOrigin(ip=IP, user_agent=USER_AGENT)):
        signals.webauthn_credential_removed.send(
            sender=type(user), user=user, credential=credential
        )
    event = assert_one_event(user, Kind.KEY_REMOVED)
    assert event.description == "Passkey or security key removed (Work laptop)"
    assert_names_the_key_only(event, credential)


@pytest.mark.parametrize(
    ("method", "outcome", "words"),
    [
        (Method.WEBAUTHN, Outcome.KEY_REFUSED, "passkey or security key not accepted"),
        (
            Method.WEBAUTHN,
            Outcome.SIGN_COUNT,
            "signature counter of a passkey or security key went backwards: "
            "the key may have been copied",
        ),
        (Method.PASSKEY, Outcome.KEY_REFUSED, "passkey not accepted"),
        (
            Method.PASSKEY,
            Outcome.SIGN_COUNT,
            "signature counter of a passkey went backwards: the passkey may have been copied",
        ),
    ],
)
def test_a_refused_key_records_why_in_words(user, method, outcome, words):
    signals.code_verification_failed.send(
        sender=type(user), user=user, method=method, outcome=outcome
    )
    [event] = events(user)
    assert (event.kind, event.detail) == (Kind.CODE_FAILED, words)
    assert "(" not in event.detail  # the description puts it in parentheses: none nested


def log_in_with(user, method: Method) -> None:
    """A login whose session passed the second factor with `method`, as twofactor marks it."""
    request = RequestFactory().post(LOGIN_CODE_URL, REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT)
    request.session = SessionStore()
    services.mark_session_verified(session=request.session, user=user, method=method)
    user_logged_in.send(sender=type(user), request=request, user=user)


def test_profile_and_history_show_keys_and_key_logins_in_words(client, user):
    credential = make_key(user, name="Ann's <b>key</b>")
    signals.webauthn_credential_added.send(sender=type(user), user=user, credential=credential)
    log_in_with(user, Method.WEBAUTHN)
    log_in_with(user, Method.PASSKEY)
    credential.delete()
    signals.webauthn_credential_removed.send(sender=type(user), user=user, credential=credential)
    client.force_login(user)
    SecurityEvent.objects.filter(user=user, detail="password only").delete()  # force_login's
    expected = [
        "Passkey or security key removed (Ann&#x27;s &lt;b&gt;key&lt;/b&gt;)",
        "Logged in (passkey, without a password)",
        "Logged in (passkey or security key)",
        "Passkey or security key added (Ann&#x27;s &lt;b&gt;key&lt;/b&gt;)",
    ]
    for url in (PROFILE_URL, HISTORY_URL):
        page = client.get(url).content.decode()
        positions = [page.find(f'<span class="event-what">{words}</span>') for words in expected]
        assert -1 not in positions, url
        assert positions == sorted(positions), url  # newest first
        assert credential.credential_id not in page
