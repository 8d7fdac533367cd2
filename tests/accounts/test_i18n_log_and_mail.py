"""The security log and its e-mails in the reader's language and time zone.

The stored `detail` stays English (exports, the admin and support read it); the log
pages say it again from the event's facts in the active language and zone, and each
e-mail in its recipient's, whatever language the request that caused it spoke.

The French tests check that the language and zone are the recipient's while the
mail is rendered, and the French words themselves.
"""

import zoneinfo
from datetime import UTC, datetime

import pytest
from django.template import loader
from django.utils import timezone, translation

from accounts import account_changes, security_log, tasks
from accounts.models import SecurityEvent
from tests.accounts.security_helpers import IP
from twofactor import services, signals
from twofactor.signals import Method

Kind = SecurityEvent.Kind

UNTIL = datetime(2026, 12, 2, 6, 9, tzinfo=UTC)  # 15:09 in Tokyo, 07:09 in Paris
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.fixture
def renders(monkeypatch):
    """Every template the security-notice task renders, with the language and zone active."""
    seen: list[tuple[str, str, str]] = []
    real = tasks.render_to_string

    def spy(template_name, context=None, *args, **kwargs):
        seen.append(
            (template_name, translation.get_language(), timezone.get_current_timezone_name())
        )
        return real(template_name, context, *args, **kwargs)

    monkeypatch.setattr(tasks, "render_to_string", spy)
    return seen


def lock(user, django_capture_on_commit_callbacks) -> SecurityEvent:
    with django_capture_on_commit_callbacks(execute=True):
        signals.account_locked.send(sender=type(user), user=user, until=UNTIL)
    return SecurityEvent.objects.get(user=user, kind=Kind.ACCOUNT_LOCKED)


def whole_mail(message) -> str:
    return "\n".join([message.subject, message.body, *(c for c, _ in message.alternatives)])


# --- E-mails: the recipient's language and zone -------------------------------------------
def test_a_french_users_security_mail_is_rendered_in_french(
    make_user, mailoutbox, renders, django_capture_on_commit_callbacks
):
    user = make_user(language="fr", time_zone="Europe/Paris")
    lock(user, django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 1
    # Subject, text and HTML: all three rendered in French, on the Paris clock.
    assert [name.rsplit("/", 1)[1] for name, _, _ in renders] == [
        "account_locked_subject.txt",
        "account_locked.txt",
        "account_locked.html",
    ]
    assert {(language, zone) for _, language, zone in renders} == {("fr", "Europe/Paris")}
    message = mailoutbox[0]
    assert message.subject == (
        "Quelqu’un a saisi un code à deux facteurs incorrect sur votre compte Customer Portal"
    )
    # The lock's end on the Paris clock, with its zone, in French words.
    assert "la saisie de code est donc verrouillée sur votre compte jusqu’à 07:09 CET" in (
        " ".join(message.body.split())
    )
    # French typography: a no-break space before the question mark.
    assert "Mot de passe oublié\u00a0?" in message.body
    html = message.alternatives[0][0]
    assert '<html lang="fr">' in html
    assert "07:09 CET" in html
    assert "Someone" not in whole_mail(message)


def test_the_request_language_does_not_choose_the_mails(
    make_user, mailoutbox, renders, django_capture_on_commit_callbacks
):
    user = make_user(language="fr", time_zone="Europe/Paris")
    with translation.override("de"):
        lock(user, django_capture_on_commit_callbacks)
    assert {language for _, language, _ in renders} == {"fr"}


def test_a_user_without_a_language_gets_the_default_one_and_utc(
    user, mailoutbox, renders, django_capture_on_commit_callbacks
):
    assert (user.language, user.time_zone) == ("", "")
    with translation.override("de"), timezone.override(TOKYO):
        lock(user, django_capture_on_commit_callbacks)
    assert {(language, zone) for _, language, zone in renders} == {("en", "UTC")}
    assert "locked until 06:09 UTC" in mailoutbox[0].body


def test_a_tokyo_users_lock_mail_shows_tokyo_time(
    make_user, mailoutbox, django_capture_on_commit_callbacks
):
    user = make_user(time_zone="Asia/Tokyo")
    lock(user, django_capture_on_commit_callbacks)
    text = whole_mail(mailoutbox[0])
    assert "15:09 JST" in text
    assert "06:09" not in text


def test_an_unknown_time_zone_falls_back_to_utc(
    make_user, mailoutbox, django_capture_on_commit_callbacks
):
    user = make_user(language="xx", time_zone="Mars/Olympus_Mons")
    lock(user, django_capture_on_commit_callbacks)
    assert "locked until 06:09 UTC" in mailoutbox[0].body


def test_the_mails_detail_is_worded_in_the_task(mailoutbox):
    # Queued with the English words and the facts; the task words them again in the
    # recipient's language (here: English words no catalog knows, so the facts decide).
    tasks.send_security_notice.enqueue(
        template="policy_changed",
        to="ann@example.com",
        user_id=1,
        context={"kind": Kind.POLICY_CHANGED, "detail": "stale words", "name": "Ann"},
        language="en",
        time_zone="UTC",
        facts={"changes": [{"setting": "grace_period_days", "value": 3}]},
    )
    assert "changed from your account: grace period: 3 days." in mailoutbox[0].body


def test_a_task_queued_before_languages_still_sends(db, mailoutbox):
    # The arguments of a task queued by the previous release: no language, zone or facts.
    result = tasks.send_security_notice.enqueue(
        template="account_locked",
        to="ann@example.com",
        user_id=1,
        context={
            "name": "Ann",
            "email": "ann@example.com",
            "product_name": "Customer Portal",
            "occurred_at": UNTIL.isoformat(),
            "until": UNTIL.isoformat(),
            "ip": IP,
            "browser": "Firefox on Windows",
            "detail": "until 06:09 UTC",
            "kind": "account_locked",
            "profile_url": "",
        },
    )
    assert result.return_value is True
    assert len(mailoutbox) == 1
    assert "locked until 06:09 UTC" in mailoutbox[0].body


def test_the_password_reset_mail_speaks_the_accounts_language(make_user, mailoutbox, monkeypatch):
    user = make_user(language="fr", time_zone="Europe/Paris")
    seen = []
    real = loader.render_to_string

    def spy(template_name, context=None, *args, **kwargs):
        seen.append(translation.get_language())
        return real(template_name, context, *args, **kwargs)

    monkeypatch.setattr(loader, "render_to_string", spy)
    with translation.override("de"):
        tasks.send_password_reset.enqueue(email=user.email, domain="portal.test", use_https=True)
    assert len(mailoutbox) == 1
    assert seen and set(seen) == {"fr"}


def test_the_email_change_link_speaks_the_accounts_language(
    make_user, mailoutbox, renders, django_capture_on_commit_callbacks
):
    user = make_user(language="fr", time_zone="Europe/Paris")
    with django_capture_on_commit_callbacks(execute=True):
        account_changes.request_email_change(
            user=user, new_email="ann.new@example.com", link_for=lambda token: f"/c/{token}"
        )
    assert mailoutbox[0].to == ["ann.new@example.com"]
    assert {language for _, language, _ in renders} == {"fr"}


# --- The log: the reader's language and zone, English in the database ------------------------
def test_a_lock_is_described_in_the_readers_time_zone(user, django_capture_on_commit_callbacks):
    event = lock(user, django_capture_on_commit_callbacks)
    assert event.description == "Account locked after failed codes (until 06:09 UTC)"
    with timezone.override(TOKYO):
        assert event.description == "Account locked after failed codes (until 15:09 JST)"


def test_the_detail_stays_english_and_utc_when_recorded_in_german(
    user, django_capture_on_commit_callbacks
):
    with translation.override("de"), timezone.override(TOKYO):
        event = lock(user, django_capture_on_commit_callbacks)
        login = security_log.record_event(
            user=user, kind=Kind.LOGIN, facts=security_log.login_facts(Method.TOTP)
        )
        admin = security_log.record_event(
            user=user,
            kind=Kind.ACCOUNT_CHANGED,
            detail=translation.gettext_lazy(security_log.PASSWORD_LOGIN_DISABLED),
        )
    event.refresh_from_db()
    assert (event.detail, event.facts) == ("until 06:09 UTC", {"until": UNTIL.isoformat()})
    assert login.detail == "authenticator app"
    assert admin.detail == "password login disabled"


def test_an_old_event_without_facts_still_describes_itself(user):
    old = SecurityEvent.objects.create(
        user=user, kind=Kind.ACCOUNT_LOCKED, detail="until 06:09 UTC", created_at=UNTIL
    )
    assert old.facts == {}
    assert old.description == "Account locked after failed codes (until 06:09 UTC)"
    login = SecurityEvent.objects.create(user=user, kind=Kind.LOGIN, detail="backup code")
    assert login.description == "Logged in (backup code)"


def test_a_staff_reason_is_shown_as_written(user, staff_user):
    # A reason that happens to be one of the log's own phrases is still a person's words.
    event = security_log.record_event(
        user=user, kind=Kind.TWO_FACTOR_RESET, actor=staff_user, detail="password only"
    )
    with translation.override("fr"):
        assert event.description.endswith(": password only")


def test_facts_of_another_shape_fall_back_to_the_stored_words(user):
    event = security_log.record_event(
        user=user, kind=Kind.BACKUP_CODE_USED, detail="3 left", facts={"remaining": "many"}
    )
    assert event.description == "Backup code used (3 left)"


def test_sessions_and_trusted_browsers_are_counted_in_words(user):
    event = security_log.record_event(
        user=user, kind=Kind.SESSIONS_ENDED, facts={"sessions": 1, "trusted_browsers": 2}
    )
    assert event.detail == "1 session, 2 trusted browsers"
    assert event.description == "Signed out of other sessions (1 session, 2 trusted browsers)"


def test_the_log_names_every_login_method_in_its_contract_words():
    with translation.override("en"):
        assert {str(m): security_log.METHOD_WORDS[m] for m in Method} == {
            str(m): str(m.label) for m in Method
        }


def test_policy_words_are_twofactors_words(db, make_user):
    admin = make_user("root@example.com", is_staff=True, is_superuser=True)
    for on in (True, False):
        values = {
            "require_for_staff": on,
            "require_for_everyone": on,
            "allow_trusted_browsers": on,
            "grace_period_days": 1 if on else 14,
        }
        words = services.update_policy(actor=admin, **values)
        event = SecurityEvent.objects.filter(user=admin, kind=Kind.POLICY_CHANGED).first()
        assert event is not None and event.facts["changes"]
        assert event.detail == "; ".join(words)


def test_closing_the_account_clears_the_addresses_from_the_facts_too(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        account_changes.request_email_change(
            user=user, new_email="ann.new@example.com", link_for=lambda token: f"/c/{token}"
        )
        account_changes.close_account(user=user)
    event = SecurityEvent.objects.get(user=user, kind=Kind.EMAIL_CHANGE_REQUESTED)
    assert (event.detail, event.facts) == ("", {})
    assert event.description == "E-mail change requested"
