"""The changes a user makes to their own account on My profile. Each one is atomic.

Views call these after "confirm it's you" and turn the exceptions into messages.
Every change is written to the security log and announced by e-mail (queued as
a task after the commit, see accounts.notifications).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model, password_validation, update_session_auth_hash
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import login_throttle, notifications, security_log, session_records, sign_out
from accounts import signals as account_signals
from accounts.models import (
    CLOSED_ACCOUNT_DOMAIN,
    EmailChange,
    SecurityEvent,
    User,
    UserSession,
    deliverable_email_address,
    normalize_email_address,
)
from accounts.tasks import delete_sessions_of
from twofactor import services as twofactor_services

Kind = SecurityEvent.Kind

EMAIL_CHANGE_TTL = timedelta(hours=24)
EMAIL_CHANGE_SALT = "accounts.account_changes.email_change"
NAME_MAX_LENGTH = get_user_model()._meta.get_field("name").max_length


class AccountChangeError(Exception):
    """Base class: a refusal the user can understand, never a server error."""


class ResetLinkUsed(AccountChangeError):
    """The reset link's password was changed meanwhile (the link was used, at the same time)."""


class AddressTaken(AccountChangeError):
    pass


class SameAddress(AccountChangeError):
    pass


class TooManyRequests(AccountChangeError):
    """Confirmation links go out at most every few minutes per address, a few an hour."""


class LinkInvalid(AccountChangeError):
    """Tampered with, expired, replaced by a newer request, or already used."""


class LinkForAnotherAccount(AccountChangeError):
    pass


class LastSuperuser(AccountChangeError):
    pass


# --- Name ---------------------------------------------------------------------------
def change_name(*, user: User, name: str) -> bool:
    """Set the display name (trimmed); False when nothing changed."""
    name = " ".join(name.split())[:NAME_MAX_LENGTH]
    if name == user.name:
        return False
    with transaction.atomic():
        user.name = name
        user.save(update_fields=["name"])
        event = security_log.record_event(user=user, kind=Kind.NAME_CHANGED)
        notifications.notify(user=user, event=event, extra={"new_name": name})
    return True


# --- E-mail address -------------------------------------------------------------------
def address_is_taken(email: str, *, except_user: User | None = None) -> bool:
    users = get_user_model()._default_manager.filter(email_key=normalize_email_address(email))
    if except_user is not None:
        users = users.exclude(pk=except_user.pk)
    return users.exists()


def request_email_change(*, user: User, new_email: str, link_for: Callable[[str], str]) -> str:
    """Record the request and mail a confirmation link to the new address; returns the token.

    `link_for(token)` is the absolute URL of the confirmation page (the view knows the host).

    The old address keeps logging in until the link is opened. A new request
    replaces every earlier one (their links stop working).
    """
    new_email = deliverable_email_address(new_email)
    if normalize_email_address(new_email) == user.email_key:
        raise SameAddress
    if address_is_taken(new_email, except_user=user):
        raise AddressTaken
    if not login_throttle.is_email_change_mail_allowed(user=user, new_email=new_email):
        raise TooManyRequests
    with transaction.atomic():
        # The user's row, locked: requests at once take turns, so only the newest stays.
        get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()
        EmailChange.objects.filter(user=user, confirmed_at__isnull=True).delete()
        change = EmailChange.objects.create(user=user, new_email=new_email)
        token = signing.dumps({"change": change.pk, "user": user.pk}, salt=EMAIL_CHANGE_SALT)
        event = security_log.record_event(
            user=user, kind=Kind.EMAIL_CHANGE_REQUESTED, facts={"new_email": new_email}
        )
        notifications.notify_address(
            to=new_email, template="email_change_confirm", event=event, user=user,
            extra={"link": link_for(token), "new_email": new_email},
        )  # fmt: skip
    return token


@dataclass(frozen=True)
class ConfirmedChange:
    old_email: str
    new_email: str


def confirm_email_change(*, user: User, token: str, now: datetime | None = None) -> ConfirmedChange:
    """Move `user` (who opened the link, logged in) to the address the link confirms.

    One conditional UPDATE marks the request used, so two openings of the same
    link at once change the address once.
    """
    now = now or timezone.now()
    try:
        payload = signing.loads(
            token, salt=EMAIL_CHANGE_SALT, max_age=int(EMAIL_CHANGE_TTL.total_seconds())
        )
    except signing.BadSignature:  # SignatureExpired is one too
        raise LinkInvalid from None
    if not isinstance(payload, dict) or not isinstance(payload.get("change"), int):
        raise LinkInvalid
    if payload.get("user") != user.pk:
        raise LinkForAnotherAccount
    with transaction.atomic():
        change = EmailChange.objects.filter(
            pk=payload["change"], user=user, created_at__gt=now - EMAIL_CHANGE_TTL
        ).first()
        if change is None or change.confirmed_at is not None:
            raise LinkInvalid
        claimed = EmailChange.objects.filter(pk=change.pk, confirmed_at__isnull=True).update(
            confirmed_at=now
        )
        if not claimed:
            raise LinkInvalid  # the other of two simultaneous openings won
        if address_is_taken(change.new_email, except_user=user):
            transaction.set_rollback(True)
            raise AddressTaken
        old_email = user.email
        user.email = change.new_email
        try:
            with transaction.atomic():  # a savepoint: the address taken at this very moment
                user.save(update_fields=["email"])
        except IntegrityError:
            user.email = old_email
            transaction.set_rollback(True)
            raise AddressTaken from None
        event = security_log.record_event(
            user=user,
            kind=Kind.EMAIL_CHANGED,
            facts={"old_email": old_email, "new_email": change.new_email},
        )
        notifications.notify(user=user, event=event, extra={"new_email": change.new_email})
        # The old address is told too, with the way to support: it may not have been them.
        notifications.notify_address(
            to=old_email, template="email_changed_old_address", event=event, user=user,
            extra={"new_email": change.new_email, "old_email": old_email},
        )  # fmt: skip
    return ConfirmedChange(old_email=old_email, new_email=change.new_email)


# --- Closing the account --------------------------------------------------------------
def close_account(*, user: User) -> None:
    """Remove what the account holds and keep its security log, anonymised.

    The row stays (the log's events point at it) but names nobody: no e-mail
    address, no name, no usable password, inactive. Its second factors, pending
    e-mail changes and sessions go; the goodbye mail goes to the old address.
    """
    User = get_user_model()
    with transaction.atomic():
        locked = User._default_manager.select_for_update().get(pk=user.pk)
        if locked.is_superuser:
            # Every active superuser's row, locked: two of them closing at once take
            # turns, and the second sees that the first is gone.
            superusers = User._default_manager.select_for_update().filter(
                is_superuser=True, is_active=True
            )
            if not [pk for pk in superusers.values_list("pk", flat=True) if pk != locked.pk]:
                raise LastSuperuser
        address, name = locked.email, locked.get_short_name()
        event = security_log.record_event(user=locked, kind=Kind.ACCOUNT_CLOSED)
        notifications.notify_address(
            to=address, template="account_closed", event=event, user=locked,
            extra={"name": name},
        )  # fmt: skip
        twofactor_services.delete_second_factors(user=locked)
        # The log stays for the audit trail, but names nobody: no addresses in it.
        SecurityEvent.objects.filter(
            user=locked, kind__in=[Kind.EMAIL_CHANGE_REQUESTED, Kind.EMAIL_CHANGED]
        ).update(detail="", facts={})
        EmailChange.objects.filter(user=locked).delete()
        locked.email = f"closed-{locked.pk}@{CLOSED_ACCOUNT_DOMAIN}"
        locked.name = ""
        locked.is_active = locked.is_staff = locked.is_superuser = False
        locked.set_unusable_password()
        locked.save()
        locked.groups.clear()
        locked.user_permissions.clear()
        sign_out.end_all_sessions(user=locked)
        # Where the account was signed in (IPs, browsers) goes, like its addresses.
        UserSession.objects.filter(user=locked).delete()
        user_id = locked.pk
        transaction.on_commit(lambda: delete_sessions_of.enqueue(user_id=user_id))


def sign_out_sessions(*, user: User, request: HttpRequest, only: int | None = None) -> int:
    """My profile: sign out one other session (`only`) or all others; how many ended.
    All others also takes the trust of every other browser: it is what someone does
    who fears a stranger is signed in, and the stranger may have trusted their own."""
    current = session_records.current_record_id(request)
    with transaction.atomic():
        ended = session_records.end_sessions(user=user, keep=current, only=only)
        if only is not None:
            if ended:
                security_log.record_event(
                    user=user, kind=Kind.SESSIONS_ENDED, facts={"sessions": ended}
                )
            return ended
        this_trust = twofactor_services.current_browser_trust(request=request, user=user)
        # Sessions without a record (opened before records existed) end too: a new
        # generation ends every session but this one, which is kept (as a password
        # change keeps its own), and so does this browser's trust.
        untrusted = sign_out.end_all_sessions(
            user=user, forget_browsers=False, keep_trust=this_trust
        )
        update_session_auth_hash(request, user)
        if ended or untrusted:
            facts = {"sessions": ended, "trusted_browsers": untrusted}
            security_log.record_event(user=user, kind=Kind.SESSIONS_ENDED, facts=facts)
    return ended


def sign_out_everywhere_by_staff(*, user: User, actor: User, reason: str) -> None:
    """Staff sign `user` out of every session (a stolen laptop): on every server at the
    next request, with every trusted browser voided; recorded and e-mailed with the reason."""
    with transaction.atomic():
        session_records.end_sessions(user=user)
        sign_out.end_all_sessions(user=user)
        event = security_log.record_event(
            user=user, kind=Kind.SESSIONS_ENDED_BY_STAFF, actor=actor, detail=reason
        )
        notifications.notify(user=user, event=event, extra={"reason": reason})


def reset_password(*, user: User, password: str) -> None:
    """The new password from a reset link: saved, announced as a reset, every lock lifted.

    Written with an UPDATE of the password column rather than save(): save() after
    set_password() is how every other password change is seen (the post_save
    receiver records "password changed"); the reset announces itself instead, with
    accounts.signals.password_reset, so it is one event that says "reset".
    """
    checked_against = user.password  # the hash the link's token was made from
    user.password = make_password(password)
    with transaction.atomic():
        # Conditional: of several posts of one link at once, the first changes the hash
        # (and so voids the token); the others find it changed and save nothing.
        saved = (
            get_user_model()
            ._default_manager.filter(pk=user.pk, password=checked_against)
            .update(password=user.password)
        )
        if not saved:
            raise ResetLinkUsed
        password_validation.password_changed(password, user)
        account_signals.password_reset.send(sender=type(user), user=user)
        # The owner proved the mailbox: a stranger's password lock ends here, and every
        # device cookie goes (a stolen copy among them).
        login_throttle.lift_account_locks(email=user.get_username())
