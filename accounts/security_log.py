"""The security log: listeners that turn what happens to an account into SecurityEvents.

twofactor announces its changes with signals sent *inside* the transaction
that makes the change. The receivers here write the event in that same
transaction, so a change that rolls back leaves no event and an event that
fails to save rolls the change back: no change goes unlogged, no log line
describes something that did not happen. E-mails are queued with
transaction.on_commit() (see accounts.notifications) for the same reason.

Decisions worth knowing:

* One login, one event. Django's user_logged_in fires for every login and
  records "Logged in (password only)". A two-step login calls login() and then
  sends twofactor's two_factor_login for the *same user object*, so that
  receiver upgrades the event it finds on the object to "authenticator app" or
  "backup code" instead of writing a second one. A user with 2FA who somehow
  got in with the password alone would therefore show up as "password only".
* Password changes are caught on the user model's post_save, using the marker
  Django itself relies on to call password validators' password_changed()
  (AbstractBaseUser._password, set by set_password() and cleared by the
  transparent hash upgrade at login). That covers the reset link, the admin
  and manage.py changepassword with one receiver and no extra query per save,
  where a view hook would miss the admin and a hash comparison would cost a
  SELECT on every save. The reset view marks the user so the event says
  "reset" rather than "changed".
* Failed password logins are recorded only for existing accounts (there is no
  user to attach them to otherwise). The lookup happens for unknown e-mails
  too and nothing reaches the response, so the log leaks nothing at login.
"""

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.paginator import Page, Paginator
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from accounts import notifications
from accounts.middleware import ActionOrigin, current_origin, origin_from_request
from accounts.models import SecurityEvent, normalize_email_address
from twofactor import services as twofactor_services
from twofactor import signals as twofactor_signals

Kind = SecurityEvent.Kind

# Attributes set on a user *instance* to pass a fact from one receiver (or
# view) to the next within one action; never stored.
_LOGIN_EVENT_ATTR = "_security_log_login_event"
_PASSWORD_RESET_ATTR = "_security_log_password_reset"  # noqa: S105 - an attribute name

METHOD_WORDS = {"totp": "authenticator app", "backup": "backup code"}
FAILURE_WORDS = {
    ("totp", "invalid"): "wrong authenticator code",
    ("totp", "replayed"): "authenticator code already used",
    ("totp", "drift"): "authenticator code from a device with a wrong clock",
    ("backup", "invalid"): "wrong or used backup code",
}
DETAIL_MAX_LENGTH = SecurityEvent._meta.get_field("detail").max_length
RECENT_EVENTS = 20
HISTORY_PAGE_SIZE = 50


def record_event(
    *,
    user: AbstractBaseUser,
    kind: str,
    detail: str = "",
    actor: AbstractBaseUser | None = None,
    origin: ActionOrigin | None = None,
    now: datetime | None = None,
) -> SecurityEvent:
    """Write one event. Callers pass words, never a secret or a code."""
    origin = origin or current_origin()
    return SecurityEvent.objects.create(
        user=user,
        kind=kind,
        detail=detail[:DETAIL_MAX_LENGTH],
        actor=actor,
        ip=origin.ip,
        user_agent=origin.user_agent,
        created_at=now or timezone.now(),
    )


def recent_events(*, user: AbstractBaseUser, limit: int = RECENT_EVENTS) -> list[SecurityEvent]:
    """Newest first, for "Recent security activity" on My profile."""
    return list(SecurityEvent.objects.filter(user=user).select_related("actor")[:limit])


def history_page(*, user: AbstractBaseUser, number: object) -> Page:
    """One page of a user's full history; a bad page number gets the nearest real page."""
    events = SecurityEvent.objects.filter(user=user).select_related("actor")
    return Paginator(events, HISTORY_PAGE_SIZE).get_page(number)


def prune_events(*, older_than_days: int, now: datetime | None = None) -> int:
    """Delete events older than the retention period; returns how many went."""
    if older_than_days < 1:
        raise ValueError("The retention period must be at least one day.")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted, _ = SecurityEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def mark_password_reset(user: AbstractBaseUser) -> None:
    """Called by the reset view before saving: the coming password change is a reset."""
    setattr(user, _PASSWORD_RESET_ATTR, True)


# --- twofactor's signals ----------------------------------------------------------
@receiver(twofactor_signals.two_factor_enabled, dispatch_uid="security_log_2fa_enabled")
def on_two_factor_enabled(sender, *, user, **kwargs) -> None:
    event = record_event(user=user, kind=Kind.TWO_FACTOR_ENABLED)
    notifications.notify(user=user, event=event)


@receiver(twofactor_signals.two_factor_disabled, dispatch_uid="security_log_2fa_disabled")
def on_two_factor_disabled(sender, *, user, actor=None, reason="", **kwargs) -> None:
    # The signal's contract: actor and reason are empty when the user did it
    # themselves; a reset by staff (web or command line) always has a reason.
    if actor is None and not reason:
        event = record_event(user=user, kind=Kind.TWO_FACTOR_DISABLED)
    else:
        event = record_event(user=user, kind=Kind.TWO_FACTOR_RESET, actor=actor, detail=reason)
    notifications.notify(user=user, event=event)


@receiver(twofactor_signals.backup_codes_generated, dispatch_uid="security_log_codes_generated")
def on_backup_codes_generated(sender, *, user, at_enrollment: bool = False, **kwargs) -> None:
    event = record_event(user=user, kind=Kind.BACKUP_CODES_GENERATED)
    # The first set comes with turning 2FA on, whose e-mail already says so: one mail.
    if not at_enrollment:
        notifications.notify(user=user, event=event)


@receiver(twofactor_signals.backup_code_used, dispatch_uid="security_log_code_used")
def on_backup_code_used(sender, *, user, remaining, **kwargs) -> None:
    event = record_event(user=user, kind=Kind.BACKUP_CODE_USED, detail=f"{remaining} left")
    notifications.notify(user=user, event=event, extra={"remaining": remaining})


@receiver(twofactor_signals.code_verification_failed, dispatch_uid="security_log_code_failed")
def on_code_verification_failed(sender, *, user, method, reason, **kwargs) -> None:
    # No e-mail per failure: the lock (five in a row) is what the user hears about.
    detail = FAILURE_WORDS.get((method, reason), METHOD_WORDS.get(method, "code"))
    record_event(user=user, kind=Kind.CODE_FAILED, detail=detail)


@receiver(twofactor_signals.account_locked, dispatch_uid="security_log_account_locked")
def on_account_locked(sender, *, user, until, **kwargs) -> None:
    until_utc = until.astimezone(UTC)
    event = record_event(user=user, kind=Kind.ACCOUNT_LOCKED, detail=f"until {until_utc:%H:%M} UTC")
    notifications.notify(user=user, event=event, extra={"until": until_utc})


@receiver(twofactor_signals.two_factor_login, dispatch_uid="security_log_two_factor_login")
def on_two_factor_login(sender, *, user, method, **kwargs) -> None:
    detail = METHOD_WORDS.get(method, method)
    event = getattr(user, _LOGIN_EVENT_ATTR, None)
    if event is None:
        # Not preceded by Django's login() on this object: record it on its own.
        record_event(user=user, kind=Kind.LOGIN, detail=detail)
        return
    delattr(user, _LOGIN_EVENT_ATTR)
    SecurityEvent.objects.filter(pk=event.pk).update(detail=detail)


# --- Django's auth signals ------------------------------------------------------------
@receiver(user_logged_in, dispatch_uid="security_log_logged_in")
def on_user_logged_in(sender, *, request: HttpRequest | None, user, **kwargs) -> None:
    origin = origin_from_request(request) if request is not None else None
    event = record_event(user=user, kind=Kind.LOGIN, detail="password only", origin=origin)
    setattr(user, _LOGIN_EVENT_ATTR, event)


@receiver(user_login_failed, dispatch_uid="security_log_login_failed")
def on_user_login_failed(
    sender, *, credentials: dict, request: HttpRequest | None = None, **kwargs
) -> None:
    # Refused by a lock before any password was checked: not a wrong password (the
    # lock itself is the news), and a locked-out guesser cannot flood the log.
    if request is not None and getattr(
        request, twofactor_services.AUTHENTICATION_THROTTLED_ATTR, False
    ):
        return
    # Django has already replaced the password in `credentials` with stars.
    username = normalize_email_address(str(credentials.get("username") or ""))
    if not username:
        return
    user = get_user_model()._default_manager.filter(email_key=username).first()
    if user is None:
        return
    origin = origin_from_request(request) if request is not None else None
    is_confirm = credentials.get("purpose") == twofactor_services.PURPOSE_CONFIRM
    record_event(
        user=user, kind=Kind.CONFIRM_FAILED if is_confirm else Kind.LOGIN_FAILED, origin=origin
    )


def on_user_saved(sender, *, instance, created: bool, **kwargs) -> None:
    if created or getattr(instance, "_password", None) is None:
        return
    is_reset = getattr(instance, _PASSWORD_RESET_ATTR, False)
    if is_reset:
        delattr(instance, _PASSWORD_RESET_ATTR)
    # Staff changing someone else's password (the admin) is named as the actor.
    request_user = current_origin().request_user
    is_someone_else = (
        request_user is not None
        and request_user.is_authenticated
        and request_user.pk != instance.pk
    )
    actor = request_user if is_someone_else else None
    event = record_event(
        user=instance,
        kind=Kind.PASSWORD_RESET if is_reset else Kind.PASSWORD_CHANGED,
        actor=actor,
    )
    # "If this was not you...": a changed password is the first thing an intruder does.
    notifications.notify(user=instance, event=event)


def connect() -> None:
    """Called from AccountsConfig.ready(); the @receiver functions above connect on import."""
    post_save.connect(
        on_user_saved, sender=get_user_model(), dispatch_uid="security_log_password_saved"
    )
