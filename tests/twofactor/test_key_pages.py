"""Passkeys and security keys through the pages, over HTTP: add, name, remove; the code
step's key; "Sign in with a passkey"; and what Disable 2FA and a reset take with them.

The browser's half is SoftAuthenticator (real signatures); the browser itself is in
tests/e2e/test_passkeys.py.
"""

import html
import json
import re

import pyotp
import pytest
from django.core import mail
from django.test import Client

from accounts import device_cookies
from accounts.models import DeviceToken, SecurityEvent
from tests.concurrency import all_at_once
from tests.conftest import PASSWORD
from tests.twofactor.soft_authenticator import ORIGIN, RP_ID, SoftAuthenticator
from twofactor import services
from twofactor.models import TOTPDevice, WebAuthnCredential
from twofactor.signals import Method

LOGIN_URL = "/accounts/login/"
CODE_URL = "/2fa/login/"
ADD_URL = "/2fa/keys/add/"
OPTIONS_URL = "/2fa/passkey/options/"
PROFILE_URL = "/accounts/profile/"
# Every refused passkey sign-in gets this one answer, whatever the cause.
PASSKEY_REFUSED = "That passkey was not accepted. It may have been removed from your account."

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _relying_party(settings):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = RP_ID
    settings.TWOFACTOR_WEBAUTHN_ORIGINS = [ORIGIN]


@pytest.fixture
def ann(user_with_totp):
    return user_with_totp[0]


def page_options(response) -> str:
    """The options a page hands webauthn.js (data-webauthn-options), as JSON text."""
    found = re.search(r'data-webauthn-options="([^"]*)"', response.content.decode())
    assert found, "the page offers no key"
    return html.unescape(found.group(1))


def add_key(client, authenticator: SoftAuthenticator, **answer):
    options = page_options(client.get(ADD_URL))
    return client.post(ADD_URL, {"credential": authenticator.create(options, **answer)})


@pytest.fixture
def with_key(client, ann, log_in_with_sudo):
    """Ann with a key added through the page ("Blue key"); the client logged out again."""
    authenticator = SoftAuthenticator()
    log_in_with_sudo(client, ann)
    add_key(client, authenticator)
    WebAuthnCredential.objects.update(name="Blue key")
    client.logout()
    return authenticator


def password_step(client, user):
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response.url == CODE_URL
    return client.get(CODE_URL)


def passkey_sign_in(client, authenticator: SoftAuthenticator, **answer):
    options = client.post(OPTIONS_URL).content.decode()
    return client.post(LOGIN_URL, {"credential": authenticator.get(options, **answer)})


# Adding, naming, removing


def test_my_profile_offers_passkeys_once_2fa_is_on(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann)
    page = client.get(PROFILE_URL).content.decode()
    assert "Passkeys and security keys" in page
    assert "Add a passkey" in page


def test_my_profile_without_2fa_offers_no_passkey(client, user):
    client.force_login(user)
    page = client.get(PROFILE_URL).content.decode()
    assert "Add a passkey" not in page
    assert "Once it is on, you can add passkeys and security keys too." in page


def test_adding_a_key_asks_confirm_its_you_first(client, ann):
    client.force_login(ann)
    response = client.get(ADD_URL)
    assert "Confirm it" in response.content.decode()
    assert "data-webauthn-options" not in response.content.decode()


def test_adding_a_key_needs_2fa_on(client, user, log_in_with_sudo):
    log_in_with_sudo(client, user)
    response = client.get(ADD_URL)
    assert response.status_code == 302
    assert not WebAuthnCredential.objects.exists()


def test_a_key_is_added_and_then_named(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann)
    response = add_key(client, SoftAuthenticator())
    key = WebAuthnCredential.objects.get(user=ann)
    assert response.status_code == 302
    assert response.url == f"/2fa/keys/{key.pk}/rename/?added=1"
    named = client.get(response.url).content.decode()
    assert "Security key added" in named and 'value="Security key"' in named
    response = client.post(f"/2fa/keys/{key.pk}/rename/", {"name": "  Work   laptop "})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "Work laptop"
    profile = client.get(PROFILE_URL).content.decode()
    assert "Work laptop" in profile and "Not used yet" in profile
    assert "1 passkey or security key" in profile


def test_adding_a_key_is_logged_and_mailed(
    client, ann, log_in_with_sudo, django_capture_on_commit_callbacks
):
    log_in_with_sudo(client, ann)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        add_key(client, SoftAuthenticator())
    assert SecurityEvent.objects.filter(user=ann, kind=SecurityEvent.Kind.KEY_ADDED).count() == 1
    assert any("passkey or security key was added" in m.subject for m in mail.outbox)


def test_the_add_page_says_what_it_needs_without_javascript(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann)
    page = client.get(ADD_URL).content.decode()
    assert "needs a browser with passkey support, with JavaScript turned on" in page
    # The button is there for the script to show, hidden until it does.
    assert re.search(r"<button[^>]*data-webauthn-start hidden>Continue</button>", page)


@pytest.mark.parametrize(
    "answer",
    [
        "",  # posted without the script (a no-JS form submit)
        "not json",
        json.dumps({"id": "AAAA", "type": "public-key", "response": {}}),
        "x" * 70000,
    ],
    ids=["empty", "garbage", "incomplete", "huge"],
)
def test_a_bad_answer_is_refused_with_a_message_and_a_new_try(
    client, ann, log_in_with_sudo, answer
):
    log_in_with_sudo(client, ann)
    client.get(ADD_URL)
    response = client.post(ADD_URL, {"credential": answer})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page
    assert "data-webauthn-options" in page  # a fresh challenge to try again with
    assert not WebAuthnCredential.objects.exists()


def test_an_answer_from_another_site_is_refused(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann)
    response = add_key(client, SoftAuthenticator(), origin="https://phish.example")
    assert "could not be added" in response.content.decode()
    assert not WebAuthnCredential.objects.exists()


def test_the_same_authenticator_twice_is_refused(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann)
    authenticator = SoftAuthenticator()
    add_key(client, authenticator)
    response = add_key(client, authenticator)
    assert "already registered" in response.content.decode()
    assert WebAuthnCredential.objects.count() == 1


def test_a_blank_name_is_refused(client, ann, log_in_with_sudo, with_key):
    log_in_with_sudo(client, ann)
    key = WebAuthnCredential.objects.get()
    response = client.post(f"/2fa/keys/{key.pk}/rename/", {"name": "   "})
    assert response.status_code == 200
    assert "Give the key a name." in response.content.decode()
    key.refresh_from_db()
    assert key.name == "Blue key"


def test_another_users_key_can_be_neither_renamed_nor_removed(
    client, make_user, enrolled, log_in_with_sudo, with_key
):
    key = WebAuthnCredential.objects.get()
    mallory = make_user("mallory@example.com")
    enrolled(mallory)
    log_in_with_sudo(client, mallory)
    client.post(f"/2fa/keys/{key.pk}/rename/", {"name": "mine now"})
    client.post(f"/2fa/keys/{key.pk}/remove/", {"confirm": "1"})
    key.refresh_from_db()
    assert key.name == "Blue key"


def test_removing_a_key_asks_confirm_its_you_and_then_removes_it(
    client, ann, log_in_with_sudo, with_key, django_capture_on_commit_callbacks
):
    key = WebAuthnCredential.objects.get()
    client.force_login(ann)
    response = client.post(f"/2fa/keys/{key.pk}/remove/", {"confirm": "1"})
    assert "Confirm it" in response.content.decode()
    assert WebAuthnCredential.objects.exists()
    log_in_with_sudo(client, ann)
    page = client.get(f"/2fa/keys/{key.pk}/remove/").content.decode()
    assert "Remove “<bdi>Blue key</bdi>”?" in page
    assert "Your authenticator app and your backup codes keep working." in page
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/2fa/keys/{key.pk}/remove/", {"confirm": "1"})
    assert response.status_code == 302
    assert not WebAuthnCredential.objects.exists()
    assert services.is_two_factor_enabled(user=ann)  # the app stays
    assert SecurityEvent.objects.filter(user=ann, kind=SecurityEvent.Kind.KEY_REMOVED).exists()
    assert any("was removed" in m.subject for m in mail.outbox)


def test_the_last_second_factor_is_not_removed_by_remove(client, ann, log_in_with_sudo, with_key):
    # Not reachable through the pages (keys come with the app); the rule holds anyway.
    key = WebAuthnCredential.objects.get()
    TOTPDevice.objects.filter(user=ann).delete()
    with pytest.raises(services.LastSecondFactor):
        services.remove_credential(user=ann, pk=key.pk)
    assert WebAuthnCredential.objects.exists()


def test_a_key_removed_in_another_tab_is_said_not_an_error(client, ann, log_in_with_sudo, with_key):
    pk = WebAuthnCredential.objects.get().pk
    log_in_with_sudo(client, ann)
    WebAuthnCredential.objects.filter(pk=pk).delete()
    response = client.get(f"/2fa/keys/{pk}/rename/", follow=True)
    assert response.status_code == 200
    assert "That passkey or security key has been removed." in response.content.decode()


def test_disable_2fa_says_and_removes_the_keys(client, ann, log_in_with_sudo, with_key):
    log_in_with_sudo(client, ann)
    page = client.get("/2fa/disable/").content.decode()
    assert "your passkey or security key" in page
    client.post("/2fa/disable/", {"confirm": "1"})
    assert not WebAuthnCredential.objects.exists()


def test_a_staff_reset_removes_the_keys(ann, staff_user, with_key):
    staff_user.is_superuser = True
    staff_user.save()
    services.reset_two_factor(user=ann, actor=staff_user, reason="Lost phone and keys")
    assert not WebAuthnCredential.objects.exists()


# The code step


def test_the_code_step_offers_the_key_first(client, ann, with_key):
    page = password_step(client, ann).content.decode()
    assert page.index("Use a passkey or security key") < page.index('for="id_code"')
    assert "or enter a code" in page
    options = json.loads(page_options(password_step(client, ann)))
    assert [c["id"] for c in options["allowCredentials"]] == [
        WebAuthnCredential.objects.get().credential_id
    ]


def test_the_code_step_without_a_key_offers_only_codes(client, ann):
    page = password_step(client, ann).content.decode()
    assert "Use a passkey or security key" not in page


def test_password_and_key_log_in(client, ann, with_key):
    options = page_options(password_step(client, ann))
    response = client.post(CODE_URL, {"credential": with_key.get(options)})
    assert response.status_code == 302 and response.url == PROFILE_URL
    assert services.verified_method(session=client.session, user=ann) == Method.WEBAUTHN
    login = SecurityEvent.objects.filter(user=ann, kind=SecurityEvent.Kind.LOGIN).latest("pk")
    assert login.detail == "passkey or security key"
    assert WebAuthnCredential.objects.get().last_used_at is not None


def test_a_key_answer_is_single_use(client, ann, with_key):
    options = page_options(password_step(client, ann))
    answer = with_key.get(options)
    client.post(CODE_URL, {"credential": answer})
    client.logout()
    password_step(client, ann)
    response = client.post(CODE_URL, {"credential": answer})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_an_answer_for_an_earlier_password_step_is_refused(client, ann, with_key):
    old = page_options(password_step(client, ann))
    password_step(client, ann)  # a new password step, a new challenge
    response = client.post(CODE_URL, {"credential": with_key.get(old)})
    assert "Try again" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_refused_key_counts_towards_the_code_lock(client, ann, with_key, user_with_totp):
    for _ in range(services.MAX_FAILURES):
        options = page_options(password_step(client, ann))
        response = client.post(
            CODE_URL, {"credential": with_key.get(options, origin="https://phish.example")}
        )
        assert "_auth_user_id" not in client.session
    assert "locked until" in response.content.decode()
    failed = SecurityEvent.objects.filter(user=ann, kind=SecurityEvent.Kind.CODE_FAILED)
    assert failed.count() == services.MAX_FAILURES
    assert failed.first().detail == "passkey or security key not accepted"
    # Locked: codes wait, even the right one.
    response = client.post(CODE_URL, {"code": pyotp.TOTP(user_with_totp[1]).now()})
    assert "locked until" in response.content.decode()
    # A refused key while locked is not counted again (nor logged again).
    options = page_options(client.get(CODE_URL))
    response = client.post(
        CODE_URL, {"credential": with_key.get(options, origin="https://phish.example")}
    )
    assert "locked until" in response.content.decode()
    assert failed.count() == services.MAX_FAILURES


def test_the_owners_key_gets_through_a_code_lock(client, ann, with_key, wrong_code, user_with_totp):
    # A stranger with the password guessed codes until the lock: the owner's key, which
    # no one can guess, still logs in (and lifts the lock).
    password_step(client, ann)
    for _ in range(services.MAX_FAILURES):
        client.post(CODE_URL, {"code": wrong_code(user_with_totp[1])})
    assert services.code_entry_locked_until(user=ann) is not None
    options = page_options(client.get(CODE_URL))
    response = client.post(CODE_URL, {"credential": with_key.get(options)})
    assert response.status_code == 302 and response.url == PROFILE_URL
    assert services.code_entry_locked_until(user=ann) is None


def test_a_right_key_clears_the_failure_count(client, ann, with_key, wrong_code, user_with_totp):
    secret = user_with_totp[1]
    password_step(client, ann)
    client.post(CODE_URL, {"code": wrong_code(secret)})
    assert TOTPDevice.objects.get(user=ann).failure_count == 1
    options = page_options(client.get(CODE_URL))
    client.post(CODE_URL, {"credential": with_key.get(options)})
    assert TOTPDevice.objects.get(user=ann).failure_count == 0


def test_a_cloned_key_is_refused_and_logged(client, ann, with_key, caplog):
    options = page_options(password_step(client, ann))
    client.post(CODE_URL, {"credential": with_key.get(options, sign_count=10)})
    client.logout()
    options = page_options(password_step(client, ann))
    with caplog.at_level("WARNING", logger="twofactor.services.webauthn"):
        response = client.post(CODE_URL, {"credential": with_key.get(options, sign_count=3)})
    assert "_auth_user_id" not in client.session
    assert "not accepted" in response.content.decode()
    assert "Sign count went backwards" in caplog.text
    assert SecurityEvent.objects.filter(
        user=ann, kind=SecurityEvent.Kind.CODE_FAILED, detail__contains="went backwards"
    ).exists()


def test_a_key_answer_without_the_script_says_what_is_needed(client, ann, with_key):
    password_step(client, ann)
    response = client.post(CODE_URL, {"credential": ""})
    assert response.status_code == 200
    assert "needs a browser with passkey support" in response.content.decode()
    assert TOTPDevice.objects.get(user=ann).failure_count == 0


# Sign in with a passkey


def test_the_login_page_offers_a_passkey_and_autofill(client, settings):
    page = client.get(LOGIN_URL).content.decode()
    assert "Sign in with a passkey" in page
    assert 'autocomplete="username webauthn"' in page
    # No challenge (and no session) for a visitor who only reads the page.
    assert settings.SESSION_COOKIE_NAME not in client.cookies


def test_passkey_options_are_posted_not_got(client):
    assert client.get(OPTIONS_URL).status_code == 405
    options = json.loads(client.post(OPTIONS_URL).content)
    assert options["userVerification"] == "required"
    assert "allowCredentials" not in options or options["allowCredentials"] == []


def test_a_passkey_alone_signs_in(client, ann, with_key):
    response = passkey_sign_in(client, with_key)
    assert response.status_code == 302 and response.url == PROFILE_URL
    assert int(client.session["_auth_user_id"]) == ann.pk
    assert services.verified_method(session=client.session, user=ann) == Method.PASSKEY
    login = SecurityEvent.objects.filter(user=ann, kind=SecurityEvent.Kind.LOGIN).latest("pk")
    assert login.detail == "passkey, without a password"


def test_passkey_sign_ins_keep_the_bound_on_device_tokens(ann, with_key, monkeypatch):
    # No password step trims the tokens of these browsers: the passkey sign-in does.
    monkeypatch.setattr(device_cookies, "MAX_TOKENS_PER_ACCOUNT", 3)
    for _ in range(5):  # five new browsers
        assert passkey_sign_in(Client(), with_key).status_code == 302
    assert DeviceToken.objects.filter(account=device_cookies.account_tag(ann.email)).count() == 4


def test_a_passkey_sign_in_keeps_the_next_page(client, ann, with_key):
    options = client.post(OPTIONS_URL).content.decode()
    response = client.post(
        LOGIN_URL, {"credential": with_key.get(options), "next": "/accounts/security-history/"}
    )
    assert response.url == "/accounts/security-history/"


def refused_like_a_wrong_password(response, client) -> None:
    assert response.status_code == 200
    assert PASSKEY_REFUSED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_passkey_without_user_verification_does_not_sign_in(client, with_key):
    with_key.user_verified = False
    refused_like_a_wrong_password(passkey_sign_in(client, with_key), client)


def test_an_unknown_passkey_gets_the_one_refusal(client, with_key):
    stranger = SoftAuthenticator()
    stranger.user_handle = with_key.user_handle
    refused_like_a_wrong_password(passkey_sign_in(client, stranger), client)


def test_a_passkey_naming_another_account_does_not_sign_in(client, with_key):
    refused_like_a_wrong_password(
        passkey_sign_in(client, with_key, user_handle=b"someone else"), client
    )


def test_a_passkey_from_another_site_does_not_sign_in(client, with_key):
    refused_like_a_wrong_password(
        passkey_sign_in(client, with_key, origin="https://phish.example"), client
    )


def test_a_passkey_answer_is_single_use(client, with_key):
    options = client.post(OPTIONS_URL).content.decode()
    answer = with_key.get(options)
    client.post(LOGIN_URL, {"credential": answer})
    client.logout()
    refused_like_a_wrong_password(client.post(LOGIN_URL, {"credential": answer}), client)


def test_a_passkey_of_a_deactivated_account_does_not_sign_in(client, ann, with_key):
    ann.is_active = False
    ann.save()
    refused_like_a_wrong_password(passkey_sign_in(client, with_key), client)


@pytest.mark.parametrize("answer", ["", "{", "x" * 70000])
def test_a_malformed_passkey_answer_is_a_refusal_not_an_error(client, answer):
    client.post(OPTIONS_URL)
    refused_like_a_wrong_password(client.post(LOGIN_URL, {"credential": answer}), client)


def test_asking_for_passkey_options_stores_nothing(client):
    from django.contrib.sessions.models import Session

    for _ in range(5):
        Client().post(OPTIONS_URL)
    assert Session.objects.count() == 0


def test_passkey_options_are_bound_to_the_browser_that_asked(client, with_key):
    options = Client().post(OPTIONS_URL).content.decode()  # another browser's challenge
    client.post(OPTIONS_URL)
    refused_like_a_wrong_password(
        client.post(LOGIN_URL, {"credential": with_key.get(options)}), client
    )


# PostgreSQL: one answer posted many times at once, from copies of one browser


def copies_of(client, count: int) -> list:
    copies = []
    for _ in range(count):
        browser = Client()
        browser.cookies = client.cookies
        copies.append(browser)
    return copies


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_passkey_answer_posted_at_once_signs_in_once(client, ann, with_key):
    with_key.counts = False  # a synced passkey: no sign count to stop a second use
    options = client.post(OPTIONS_URL).content.decode()
    answer = with_key.get(options)
    browsers = copies_of(client, 8)
    responses = all_at_once(browsers, lambda b: b.post(LOGIN_URL, {"credential": answer}))
    assert sum(1 for r in responses if r.status_code == 302) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_key_answer_posted_at_once_at_the_code_step_logs_in_once(client, ann, with_key):
    with_key.counts = False
    options = page_options(password_step(client, ann))
    answer = with_key.get(options)
    browsers = copies_of(client, 8)
    responses = all_at_once(browsers, lambda b: b.post(CODE_URL, {"credential": answer}))
    assert sum(1 for r in responses if r.status_code == 302) == 1
    # The copies were refused as stale, not counted as wrong keys (no false alarm).
    assert TOTPDevice.objects.get(user=ann).failure_count == 0


# "Confirm it's you" with a key


def test_confirm_its_you_takes_the_password_and_a_key(client, ann, with_key):
    client.force_login(ann)
    question = client.get(ADD_URL)
    assert "or your password and then use your passkey or security key" in question.content.decode()
    answer = with_key.get(page_options(question))
    response = client.post(ADD_URL, {"sudo": "1", "password": PASSWORD, "credential": answer})
    assert response.status_code == 302 and response.url == ADD_URL
    assert services.has_recent_proof(request=_request_for(client, ann))


def test_confirm_its_you_with_a_key_still_needs_the_password(client, ann, with_key):
    client.force_login(ann)
    answer = with_key.get(page_options(client.get(ADD_URL)))
    response = client.post(ADD_URL, {"sudo": "1", "password": "wrong", "credential": answer})
    assert "That password is not right." in response.content.decode()
    assert not services.has_recent_proof(request=_request_for(client, ann))


def test_a_login_steps_key_challenge_does_not_confirm_its_you(client, ann, with_key):
    options = page_options(password_step(client, ann))  # bound to the pending login
    client.post(CODE_URL, {"code": "000000"})  # not logged in yet: still at the code step
    client.force_login(ann)
    client.get(ADD_URL)
    response = client.post(
        ADD_URL, {"sudo": "1", "password": PASSWORD, "credential": with_key.get(options)}
    )
    assert response.status_code == 200
    assert not services.has_recent_proof(request=_request_for(client, ann))


def test_a_code_lock_does_not_keep_the_owner_from_confirming_with_a_key(
    client, ann, with_key, wrong_code, user_with_totp
):
    password_step(client, ann)
    for _ in range(services.MAX_FAILURES):
        client.post(CODE_URL, {"code": wrong_code(user_with_totp[1])})
    assert services.code_entry_locked_until(user=ann) is not None
    client.force_login(ann)
    answer = with_key.get(page_options(client.get(ADD_URL)))
    response = client.post(ADD_URL, {"sudo": "1", "password": PASSWORD, "credential": answer})
    assert response.status_code == 302


def _request_for(client, user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    request.session = client.session
    return request


def test_every_passkey_refusal_reads_the_same(client, ann, with_key):
    # Unknown key, another site's, no user verification, a stale challenge: one page,
    # byte for byte but for the CSRF token, so nothing tells which keys exist.
    def refusal(**answer) -> str:
        browser = Client()
        options = browser.post(OPTIONS_URL).content.decode()
        page = browser.post(LOGIN_URL, {"credential": with_key.get(options, **answer)})
        return re.sub(r"[A-Za-z0-9]{64}", "", page.content.decode())  # CSRF tokens

    stranger = refusal(user_handle=b"nobody")
    assert refusal(origin="https://phish.example") == stranger
    with_key.user_verified = False
    assert refusal() == stranger


def test_a_second_key_of_one_kind_gets_a_numbered_name(client, ann, log_in_with_sudo):
    log_in_with_sudo(client, ann)
    add_key(client, SoftAuthenticator())
    add_key(client, SoftAuthenticator())
    names = list(WebAuthnCredential.objects.values_list("name", flat=True))
    assert names == ["Security key", "Security key 2"]


def test_an_answer_for_a_challenge_another_tab_replaced_is_stale_not_wrong(client, ann, with_key):
    old = page_options(password_step(client, ann))
    client.get(CODE_URL)  # the page opened again: a new challenge replaces the old one
    response = client.post(CODE_URL, {"credential": with_key.get(old)})
    assert "opened again in another tab" in response.content.decode()
    assert TOTPDevice.objects.get(user=ann).failure_count == 0
