"""Everything the portal does after an event, in one place: read it top to bottom.

Connected once, by AccountsConfig.ready() calling connect() at the bottom. Each
receiver is a line or two that hands the signal's facts (its arguments) to the
module that does the work: the security log, the e-mails, signing sessions out,
the device cookies of the password lock, the cached counts of All users.

twofactor sends its signals inside the transaction of the change (see
twofactor/signals.py): the log events below commit or roll back with it, and
e-mails are queued for after the commit (accounts.notifications).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal
from django.http import HttpRequest

from accounts import (
    device_cookies,
    notifications,
    preferences,
    security_log,
    session_records,
    sign_out,
    user_list,
)
from accounts import signals as accounts_signals
from accounts.middleware import current_origin, origin_from_request
from accounts.models import SecurityEvent, User, normalize_email_address
from twofactor import services as twofactor_services
from twofactor import signals as twofactor_signals
from twofactor.models import TrustedBrowser, TwoFactorPolicy, WebAuthnCredential
from twofactor.signals import Method, Outcome

Kind = SecurityEvent.Kind


# --- twofactor: the second factor changed -----------------------------------------------
def on_two_factor_enabled(sender: type, *, user: User, **kwargs: Any) -> None:
    event = security_log.record_event(user=user, kind=Kind.TWO_FACTOR_ENABLED)
    notifications.notify(user=user, event=event)
    # A session opened with the password alone before 2FA was on would stay logged in
    # for weeks: it may be exactly the intruder the user turned 2FA on against. The
    # session that turned it on just proved the code; the enable view keeps it
    # (update_session_auth_hash). The browsers stay known to the password lock: the
    # password did not change, and forgetting them would let a stranger's guesses
    # lock the owner's own browser out right after they turned 2FA on.
    sign_out.end_all_sessions(user=user, forget_browsers=False)
    user_list.forget_counts()


def on_two_factor_disabled(sender: type, *, user: User, **kwargs: Any) -> None:
    # Turned off by the user, from a session that passed it: nobody is signed out.
    event = security_log.record_event(user=user, kind=Kind.TWO_FACTOR_DISABLED)
    notifications.notify(user=user, event=event)
    user_list.forget_counts()


def on_two_factor_reset(
    sender: type,
    *,
    user: User,
    actor: User | None,
    reason: str,
    **kwargs: Any,
) -> None:
    event = security_log.record_event(
        user=user, kind=Kind.TWO_FACTOR_RESET, actor=actor, detail=reason
    )
    notifications.notify(user=user, event=event)
    # A reset follows a lost or stolen phone: whoever holds that phone's sessions
    # is signed out with it.
    sign_out.end_all_sessions(user=user)
    user_list.forget_counts()


def on_backup_codes_generated(
    sender: type, *, user: User, at_enrollment: bool, **kwargs: Any
) -> None:
    event = security_log.record_event(user=user, kind=Kind.BACKUP_CODES_GENERATED)
    # The first set comes with turning 2FA on, whose e-mail already says so: one mail.
    if not at_enrollment:
        notifications.notify(user=user, event=event)


def on_backup_code_used(sender: type, *, user: User, remaining: int, **kwargs: Any) -> None:
    event = security_log.record_event(
        user=user, kind=Kind.BACKUP_CODE_USED, facts={"remaining": remaining}
    )
    notifications.notify(user=user, event=event, extra={"remaining": remaining})


def on_code_verification_failed(
    sender: type, *, user: User, method: Method, outcome: Outcome, **kwargs: Any
) -> None:
    facts = security_log.failure_facts(method, outcome)
    event = security_log.record_event(user=user, kind=Kind.CODE_FAILED, facts=facts)
    # No e-mail per failure: the lock (five in a row) is what the user hears about. But a
    # key's signature counter going backwards is news at once: a genuine key only counts
    # up, so another authenticator (a copy of the key) may be in use.
    if outcome == Outcome.SIGN_COUNT:
        notifications.notify(user=user, event=event, template=notifications.KEY_SIGN_COUNT_TEMPLATE)


def on_account_locked(sender: type, *, user: User, until: datetime, **kwargs: Any) -> None:
    until_utc = until.astimezone(UTC)
    event = security_log.record_event(
        user=user, kind=Kind.ACCOUNT_LOCKED, facts={"until": until_utc.isoformat()}
    )
    notifications.notify(user=user, event=event, extra={"until": until_utc})


# --- twofactor: passkeys and security keys ----------------------------------------------
# The event and the mail name the key by the name its owner gave it: never by its
# credential id or public key. A key counts as a second factor: All users' counts change.
def on_webauthn_credential_added(
    sender: type, *, user: User, credential: WebAuthnCredential, **kwargs: Any
) -> None:
    event = security_log.record_event(user=user, kind=Kind.KEY_ADDED, detail=credential.name)
    # "If this was not you...": a key someone else added lets them back in at will.
    notifications.notify(user=user, event=event, extra={"key_name": credential.name})
    user_list.forget_counts()


def on_webauthn_credential_removed(
    sender: type, *, user: User, credential: WebAuthnCredential, **kwargs: Any
) -> None:
    # The row is already deleted; its name is still on the instance.
    event = security_log.record_event(user=user, kind=Kind.KEY_REMOVED, detail=credential.name)
    notifications.notify(user=user, event=event, extra={"key_name": credential.name})
    user_list.forget_counts()


# --- twofactor: the security policy and trusted browsers -------------------------------
def on_policy_changed(
    sender: type,
    *,
    user: User,
    changes: list[str],
    policy: TwoFactorPolicy | None = None,
    **kwargs: Any,
) -> None:
    # On the log of the superuser who changed it (the actor is themselves). The facts
    # are read back from twofactor's words; words it cannot read are kept as they are.
    facts = security_log.policy_facts(changes, policy)
    event = security_log.record_event(
        user=user,
        kind=Kind.POLICY_CHANGED,
        detail="" if facts else "; ".join(str(change) for change in changes),
        facts=facts,
    )
    notifications.notify(user=user, event=event)
    user_list.forget_counts()  # who is past their deadline may have changed


def on_trusted_browser_added(
    sender: type, *, user: User, browser: TrustedBrowser, **kwargs: Any
) -> None:
    days = max(1, round((browser.expires_at - browser.created_at).total_seconds() / 86400))
    event = security_log.record_event(user=user, kind=Kind.BROWSER_TRUSTED, facts={"days": days})
    # A stranger who got past the code would want exactly this: the owner hears of it.
    notifications.notify(user=user, event=event, extra={"days": days})


def on_trusted_browsers_removed(sender: type, *, user: User, count: int, **kwargs: Any) -> None:
    security_log.record_event(user=user, kind=Kind.TRUSTED_BROWSERS_REMOVED, facts={"count": count})


# --- Django's auth signals: logins ------------------------------------------------------
def on_user_logged_in(
    sender: type, *, request: HttpRequest | None, user: User, **kwargs: Any
) -> None:
    # One login, one event. twofactor marks the session with how it passed the
    # second factor before its login() call, so the event says "authenticator app",
    # "backup code", "passkey or security key" or "passkey, without a password"; any
    # other login (a user without 2FA) is "password only".
    method = (
        twofactor_services.verified_method(session=request.session, user=user)
        if request is not None
        else None
    )
    origin = origin_from_request(request) if request is not None else None
    security_log.record_event(
        user=user, kind=Kind.LOGIN, facts=security_log.login_facts(method), origin=origin
    )
    # A completed login (after the code, for 2FA users): this browser is now known
    # to the password lock, and the session is in the user's list of sessions.
    if request is not None:
        if method is Method.PASSKEY:  # no password check trimmed the tokens
            device_cookies.trim_tokens(email=user.get_username())
        device_cookies.remember_login(request, email=user.get_username())
        session_records.start_record(request, user)
        # The language chosen before login and the browser's time zone go on the profile.
        preferences.remember_at_login(request=request, user=user)


def on_user_logged_out(
    sender: type, *, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    if request is not None and user is not None:
        session_records.end_record(request)


def on_user_login_failed(
    sender: str, *, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Refused by a lock before any password was checked: not a wrong password (the
    # lock itself is the news), and a locked-out guesser cannot flood the log.
    if request is not None and getattr(
        request, twofactor_services.AUTHENTICATION_THROTTLED_ATTR, False
    ):
        return
    # Only existing accounts have a log. The lookup happens for unknown e-mails too
    # and nothing of it reaches the response, so the log leaks nothing at login.
    # (Django has already replaced the password in `credentials` with stars.)
    email_key = normalize_email_address(str(credentials.get("username") or ""))
    user = email_key and get_user_model()._default_manager.filter(email_key=email_key).first()
    if not user:
        return
    is_confirm = credentials.get("purpose") == twofactor_services.PURPOSE_CONFIRM
    security_log.record_event(
        user=user,
        kind=Kind.CONFIRM_FAILED if is_confirm else Kind.LOGIN_FAILED,
        origin=origin_from_request(request) if request is not None else None,
    )


# --- The user model: passwords, and users coming and going -------------------------------
COUNT_NEUTRAL_FIELDS = {"last_login", "language", "time_zone"}


def on_user_saved(
    sender: type,
    *,
    instance: User,
    created: bool,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    # A login saves last_login (and the first language and time zone) only: the
    # counts of All users, by 2FA status and by name or address, stay.
    if created or update_fields is None or not set(update_fields) <= COUNT_NEUTRAL_FIELDS:
        user_list.forget_counts()
    # A changed password, by whatever path (My profile, the admin, manage.py
    # changepassword): set_password() leaves the marker Django itself relies on to
    # call the password validators' password_changed(); a login's transparent hash
    # upgrade clears it. No extra query per save. (A reset is saved without the
    # marker and announced by accounts.signals.password_reset instead.)
    if created or getattr(instance, "_password", None) is None:
        return
    # Staff changing someone else's password (the admin) is named as the actor.
    request_user = current_origin().request_user
    is_someone_else = (
        request_user is not None
        and request_user.is_authenticated
        and request_user.pk != instance.pk
    )
    event = security_log.record_event(
        user=instance,
        kind=Kind.PASSWORD_CHANGED,
        actor=request_user if is_someone_else else None,
    )
    # "If this was not you...": a changed password is the first thing an intruder does.
    notifications.notify(user=instance, event=event)
    # Trust was given under the old password (its fingerprint is void now anyway).
    twofactor_services.forget_trusted_browsers(user=instance, announce=False)


def on_user_deleted(sender: type, **kwargs: Any) -> None:
    user_list.forget_counts()


def on_password_reset(sender: type, *, user: User, **kwargs: Any) -> None:
    event = security_log.record_event(user=user, kind=Kind.PASSWORD_RESET)
    notifications.notify(user=user, event=event)
    twofactor_services.forget_trusted_browsers(user=user, announce=False)


def connect() -> None:
    """Called once, from AccountsConfig.ready(); dispatch_uid makes a second call harmless."""
    user_model = get_user_model()
    receivers: list[tuple[Signal, Callable[..., None]]] = [
        (twofactor_signals.two_factor_enabled, on_two_factor_enabled),
        (twofactor_signals.two_factor_disabled, on_two_factor_disabled),
        (twofactor_signals.two_factor_reset, on_two_factor_reset),
        (twofactor_signals.backup_codes_generated, on_backup_codes_generated),
        (twofactor_signals.backup_code_used, on_backup_code_used),
        (twofactor_signals.code_verification_failed, on_code_verification_failed),
        (twofactor_signals.account_locked, on_account_locked),
        (twofactor_signals.webauthn_credential_added, on_webauthn_credential_added),
        (twofactor_signals.webauthn_credential_removed, on_webauthn_credential_removed),
        (twofactor_signals.policy_changed, on_policy_changed),
        (twofactor_signals.trusted_browser_added, on_trusted_browser_added),
        (twofactor_signals.trusted_browsers_removed, on_trusted_browsers_removed),
        (user_logged_in, on_user_logged_in),
        (user_logged_out, on_user_logged_out),
        (user_login_failed, on_user_login_failed),
        (accounts_signals.password_reset, on_password_reset),
    ]
    for signal, receiver in receivers:
        signal.connect(receiver, dispatch_uid=f"accounts.receivers.{receiver.__name__}")
    post_save.connect(
        on_user_saved, sender=user_model, dispatch_uid="accounts.receivers.on_user_saved"
    )
    post_delete.connect(
        on_user_deleted, sender=user_model, dispatch_uid="accounts.receivers.on_user_deleted"
    )
