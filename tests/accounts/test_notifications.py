"""Security e-mails: one per notifying action, to the user, after the commit, never a secret.

Inside a test transaction nothing commits, so on_commit callbacks are run by
django_capture_on_commit_callbacks(execute=True), which is where a real
commit would run them. The broken-mail-server test uses a real transaction
(transaction=True) so the send happens inside the request, as in production.
"""

import logging
import secrets

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from accounts.middleware import ActionOrigin, action_origin
from accounts.models import SecurityEvent
from tests.accounts.security_helpers import (
    BACKUP_CODES_URL,
    DISABLE_URL,
    IP,
    LOGIN_CODE_URL,
    LOGIN_URL,
    USER_AGENT,
    browser_client,
    enable_through_pages,
)
from tests.conftest import PASSWORD
from twofactor import services, signals
from twofactor.models import BackupCode, TOTPDevice, WebAuthnCredential, encode_credential_id
from twofactor.signals import Method, Outcome


class Boom(Exception):
    pass


class BrokenEmailBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server unreachable")


def whole_mail(message) -> str:
    """Subject, text body and every alternative (the HTML), as one string to scan."""
    parts = [message.subject, message.body]
    parts += [content for content, _ in message.alternatives]
    return "\n".join(parts)


def only_mail(mailoutbox, user):
    assert len(mailoutbox) == 1, [message.subject for message in mailoutbox]
    message = mailoutbox[0]
    assert message.to == [user.email]
    assert [mimetype for _, mimetype in message.alternatives] == ["text/html"]
    return message


def assert_no_secret(message, *secrets: str) -> None:
    text = whole_mail(message)
    for secret in secrets:
        assert secret not in text
        # Grouped forms too (the secret is shown in groups of four, codes as "abcde fghij").
        assert secret.replace(" ", "") not in text.replace(" ", "")


@pytest.fixture
def browser(db):
    return browser_client()


@pytest.fixture
def logged_in(browser, user, log_in_with_sudo):
    return log_in_with_sudo(browser, user)


# --- One mail per notifying action, no secret in it ----------------------------------------
def test_enabling_2fa_mails_the_user_without_the_secret(
    logged_in, user, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        secret = enable_through_pages(logged_in, user)
    message = only_mail(mailoutbox, user)
    assert "Two-factor authentication is now on" in message.subject
    assert IP in message.body and "Firefox on Windows" in message.body
    device = TOTPDevice.objects.get(user=user)
    assert_no_secret(message, secret, device.encrypted_secret)


def test_disabling_2fa_mails_the_user(
    browser, user_with_totp, mailoutbox, django_capture_on_commit_callbacks, log_in_with_sudo
):
    user, secret = user_with_totp
    log_in_with_sudo(browser, user)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(DISABLE_URL, {"confirm": "1"})
    message = only_mail(mailoutbox, user)
    assert "turned off" in message.subject
    assert_no_secret(message, secret)


def test_generating_backup_codes_mails_the_user_without_the_codes(
    browser, user_with_totp, mailoutbox, django_capture_on_commit_callbacks, log_in_with_sudo
):
    user, secret = user_with_totp
    log_in_with_sudo(browser, user)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(BACKUP_CODES_URL, {"generate": "1"})
        codes = browser.get(BACKUP_CODES_URL + "new/").context["codes"]
    message = only_mail(mailoutbox, user)
    assert "New backup codes" in message.subject
    assert_no_secret(message, secret, *codes)


@pytest.fixture
def with_codes(user_with_totp):
    user, secret = user_with_totp
    codes = services.regenerate_backup_codes(user=user)
    return user, secret, codes


def test_using_a_backup_code_mails_how_many_remain(
    browser, with_codes, mailoutbox, django_capture_on_commit_callbacks
):
    user, secret, codes = with_codes
    browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(LOGIN_CODE_URL, {"code": codes[0]})
    assert response.status_code == 302
    message = only_mail(mailoutbox, user)
    assert message.subject.startswith("A backup code was used")
    assert "You have 4 unused backup codes left." in message.body
    assert_no_secret(message, secret, *codes)


def test_using_the_last_backup_code_mails_a_nudge_to_make_new_ones(
    with_codes, mailoutbox, django_capture_on_commit_callbacks
):
    user, _, codes = with_codes
    BackupCode.objects.filter(user=user).exclude(
        pk=BackupCode.objects.filter(user=user).order_by("pk").last().pk
    ).update(used_at="2025-01-01T00:00Z")
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for code in codes:  # only the one unused code is accepted
            try:
                services.use_backup_code(user=user, code=code)
            except services.TwoFactorError:
                continue
    message = only_mail(mailoutbox, user)
    assert message.subject.startswith("Your last backup code was used")
    assert "You have no unused backup codes left" in message.body
    assert "Generate backup code" in message.body
    assert_no_secret(message, *codes)


def test_staff_reset_mails_the_user_the_reason(
    user_with_totp, staff_user, mailoutbox, django_capture_on_commit_callbacks
):
    user, secret = user_with_totp
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.reset_two_factor(user=user, actor=staff_user, reason="Lost phone <b>today</b>")
    message = only_mail(mailoutbox, user)
    assert "Support reset" in message.subject
    assert "Reason given: Lost phone <b>today</b>" in message.body
    html = message.alternatives[0][0]
    assert "Lost phone &lt;b&gt;today&lt;/b&gt;" in html  # escaped in the HTML part
    assert_no_secret(message, secret)


def test_account_lock_mails_that_the_password_is_known(
    browser, user_with_totp, mailoutbox, django_capture_on_commit_callbacks, wrong_code
):
    user, secret = user_with_totp
    browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    mailoutbox.clear()
    wrong = [wrong_code(secret) for _ in range(services.MAX_FAILURES)]
    with django_capture_on_commit_callbacks(execute=True):
        for code in wrong:
            browser.post(LOGIN_CODE_URL, {"code": code})
    message = only_mail(mailoutbox, user)
    assert "failed the two-factor code" in message.subject
    assert "entered your password correctly but failed the two-factor code" in message.body
    assert "Change it now" in message.body
    assert_no_secret(message, secret, wrong[0])


def test_a_single_wrong_code_sends_no_mail(
    browser, user_with_totp, mailoutbox, django_capture_on_commit_callbacks, wrong_code
):
    user, secret = user_with_totp
    browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(LOGIN_CODE_URL, {"code": wrong_code(secret)})
    assert mailoutbox == []


# --- After the commit, and only then -----------------------------------------------------------
def test_no_mail_leaves_before_the_commit(
    user_with_totp, mailoutbox, django_capture_on_commit_callbacks
):
    user, _ = user_with_totp
    mailoutbox.clear()
    with django_capture_on_commit_callbacks() as callbacks:
        services.disable_two_factor(user=user)
    assert mailoutbox == []
    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1


def test_a_rolled_back_change_sends_no_mail(
    user_with_totp, mailoutbox, django_capture_on_commit_callbacks
):
    user, _ = user_with_totp
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(Boom), transaction.atomic():
            services.disable_two_factor(user=user)
            raise Boom
    assert mailoutbox == []


# --- A mail server that is down ------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_broken_mail_server_does_not_break_enabling_2fa(
    make_user, settings, caplog, log_in_with_sudo
):
    settings.EMAIL_BACKEND = "tests.accounts.test_notifications.BrokenEmailBackend"
    user = make_user()
    client = log_in_with_sudo(browser_client(), user)
    with caplog.at_level(logging.ERROR, logger="accounts.tasks"):
        # Real commits: the task (run at once by the tests' immediate backend) fails.
        enable_through_pages(client, user)
    assert services.is_two_factor_enabled(user=user)
    assert SecurityEvent.objects.filter(
        user=user, kind=SecurityEvent.Kind.TWO_FACTOR_ENABLED
    ).exists()
    failures = [record for record in caplog.records if record.name == "accounts.tasks"]
    assert len(failures) == 1
    assert "two_factor_enabled" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # the traceback is kept for the operator
    assert user.email not in failures[0].getMessage()


# --- Password changes and resets -------------------------------------------------------------
def test_a_password_reset_by_link_mails_a_notice(
    browser, user, mailoutbox, settings, django_capture_on_commit_callbacks
):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    settings.SUPPORT_EMAIL = "help@portal.example"
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    form_url = browser.get(f"/accounts/password-reset/{uid}/{token}/")["Location"]
    new_password = "a brand new long passphrase"
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(form_url, {"new_password1": new_password, "new_password2": new_password})
    message = only_mail(mailoutbox, user)
    assert message.subject == "The password of your Customer Portal account was reset"
    text = whole_mail(message)
    assert "If this was not you" in text and "Forgot your password?" in text
    assert "help@portal.example" in text and 'href="mailto:help@portal.example"' in text
    assert IP in message.body and "Firefox on Windows" in message.body
    assert_no_secret(message, new_password)
    user.refresh_from_db()
    assert user.password not in text


def test_a_password_change_mails_a_notice(
    user, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_EMAIL = ""
    with django_capture_on_commit_callbacks(execute=True):
        user.set_password("another long passphrase")
        user.save()
    message = only_mail(mailoutbox, user)
    assert message.subject == "The password of your Customer Portal account was changed"
    assert "If this was not you" in message.body
    assert "contact support" not in message.body  # no SUPPORT_EMAIL set: no empty address


def test_a_plain_login_mails_nothing(browser, user, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert mailoutbox == []


# --- Passkeys and security keys ------------------------------------------------------------
PUBLIC_KEY = b"\xa5\x01\x02\x03\x26 public key bytes"


def make_key(user, name: str = "YubiKey 5 NFC") -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user,
        credential_id=encode_credential_id(secrets.token_bytes(16)),
        public_key=PUBLIC_KEY,
        name=name,
    )


def assert_no_key_material(message, credential: WebAuthnCredential) -> None:
    text = whole_mail(message)
    assert credential.credential_id not in text
    assert PUBLIC_KEY.hex() not in text and "public key bytes" not in text


def send_key_signal(signal, user, credential) -> None:
    with action_origin(ActionOrigin(ip=IP, user_agent=USER_AGENT)):
        signal.send(sender=type(user), user=user, credential=credential)


def test_adding_a_key_mails_the_user_its_name_and_what_to_do_if_it_was_not_them(
    user, mailoutbox, django_capture_on_commit_callbacks
):
    credential = make_key(user)
    with django_capture_on_commit_callbacks(execute=True):
        send_key_signal(signals.webauthn_credential_added, user, credential)
    message = only_mail(mailoutbox, user)
    assert message.subject == "A passkey or security key was added to your Customer Portal account"
    assert 'A passkey or security key, "YubiKey 5 NFC", was added to your account.' in message.body
    assert "If this was not you" in message.body and "Forgot your password?" in message.body
    assert "Remove it on My profile" in message.body
    assert IP in message.body and "Firefox on Windows" in message.body
    assert_no_key_material(message, credential)


def test_removing_a_key_mails_the_user_its_name(
    user, mailoutbox, django_capture_on_commit_callbacks
):
    credential = make_key(user, name="Work laptop")
    credential.delete()
    with django_capture_on_commit_callbacks(execute=True):
        send_key_signal(signals.webauthn_credential_removed, user, credential)
    message = only_mail(mailoutbox, user)
    assert (
        message.subject == "A passkey or security key was removed from your Customer Portal account"
    )
    assert '"Work laptop", was removed from your account' in message.body
    assert "If this was not you" in message.body and "Recent security activity" in message.body
    assert_no_key_material(message, credential)


def test_a_key_name_is_escaped_in_the_html_mail(
    user, mailoutbox, django_capture_on_commit_callbacks
):
    credential = make_key(user, name="Ann's <b>key</b>")
    with django_capture_on_commit_callbacks(execute=True):
        send_key_signal(signals.webauthn_credential_added, user, credential)
    message = only_mail(mailoutbox, user)
    assert '"Ann\'s <b>key</b>"' in message.body  # the text part is plain text
    html = message.alternatives[0][0]
    assert "<strong>Ann&#x27;s &lt;b&gt;key&lt;/b&gt;</strong>" in html
    assert "<b>key</b>" not in html


def test_key_mails_link_to_my_profile_at_the_site_url(
    user, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://portal.example.com/"
    credential = make_key(user)
    with django_capture_on_commit_callbacks(execute=True):
        send_key_signal(signals.webauthn_credential_added, user, credential)
    message = only_mail(mailoutbox, user)
    assert "My profile (https://portal.example.com/accounts/profile/)" in message.body
    html = message.alternatives[0][0]
    assert '<a href="https://portal.example.com/accounts/profile/">My profile</a>' in html


def test_of_the_key_refusals_only_a_counter_going_backwards_mails_the_user(
    user, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for outcome in (Outcome.KEY_REFUSED, Outcome.SIGN_COUNT):
            signals.code_verification_failed.send(
                sender=type(user), user=user, method=Method.WEBAUTHN, outcome=outcome
            )
    message = only_mail(mailoutbox, user)
    assert message.subject == (
        "A passkey or security key of your Customer Portal account may have been copied"
    )
    assert "its signature counter was lower than at its last use" in message.body
    assert "That log-in was refused." in message.body
    assert "Remove that key on My profile and add it again" in message.body
