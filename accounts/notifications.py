"""E-mails that tell users about security changes to their account.

Queued as a task (accounts.tasks) with transaction.on_commit(): the change and
its log event commit first, so no mail announces a change that rolled back,
and the sending happens in the task worker, never inside the user's request
(a slow or broken mail server cannot slow down or break a completed change).

The context holds only words, times, counts and the place (IP, browser); the
signals these mails come from carry no secret or code, and neither may a mail.

Each mail speaks the account's language and shows times in its time zone (both
captured here, rendered in the task): the recipient is not the request's reader.
"""

from datetime import datetime
from functools import partial

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.urls import reverse

from accounts.models import SecurityEvent
from accounts.tasks import send_security_notice, speaking_to
from accounts.user_agents import describe_origin

Kind = SecurityEvent.Kind

# Event kind -> template name under templates/accounts/email/ (NAME_subject.txt,
# NAME.txt, NAME.html). Kinds missing here send no mail. Keyed by str: event.kind is
# the stored value, and a Kind is equal to (and hashes as) its value.
TEMPLATES: dict[str, str] = {
    Kind.TWO_FACTOR_ENABLED: "two_factor_enabled",
    Kind.TWO_FACTOR_DISABLED: "two_factor_disabled",
    Kind.TWO_FACTOR_RESET: "two_factor_reset",
    Kind.BACKUP_CODES_GENERATED: "backup_codes_generated",
    Kind.BACKUP_CODE_USED: "backup_code_used",
    Kind.KEY_ADDED: "key_added",
    Kind.KEY_REMOVED: "key_removed",
    Kind.ACCOUNT_LOCKED: "account_locked",
    Kind.PASSWORD_CHANGED: "password_changed",
    Kind.PASSWORD_RESET: "password_changed",
    Kind.NAME_CHANGED: "name_changed",
    Kind.EMAIL_CHANGED: "email_changed",
    Kind.SESSIONS_ENDED_BY_STAFF: "sessions_ended_by_staff",
    Kind.POLICY_CHANGED: "policy_changed",
    Kind.BROWSER_TRUSTED: "browser_trusted",
}
# Not a kind of its own: a refused key (CODE_FAILED) whose signature counter went
# backwards. Other refusals send no mail; this one may mean a copied key.
KEY_SIGN_COUNT_TEMPLATE = "key_sign_count"


def notify(
    *,
    user: AbstractBaseUser,
    event: SecurityEvent,
    extra: dict | None = None,
    template: str | None = None,
) -> None:
    """Queue the e-mail for `event`, if its kind has one (or `template` names one), to go
    out after the commit."""
    template = template or TEMPLATES.get(event.kind)
    if template is not None:
        notify_address(
            to=getattr(user, "email", ""), template=template, event=event, user=user, extra=extra
        )


def notify_address(
    *,
    to: str,
    template: str,
    event: SecurityEvent,
    user: AbstractBaseUser,
    extra: dict | None = None,
) -> None:
    """Queue `template` about `event` to `to`: an address that is not (or no longer) the
    user's own (a new address to confirm, the old one after a change, a closed account's)."""
    if not to:
        return
    language, time_zone = recipient_locale(user)
    # What staff did to the account happened at the staff member's address, in their
    # browser: the user is not told those (the pages do not show them either).
    told_where = not event.by_someone_else
    ip = event.ip if told_where else None
    with speaking_to(language, time_zone):
        browser = describe_origin(event.user_agent, ip) if told_where and event.user_agent else ""
    # Plain JSON values captured now: the task runs later, in another process,
    # and must not depend on objects that change (or are deleted) meanwhile. The
    # detail travels as the event's English words and facts: the task words it again
    # in the recipient's language and time zone.
    context = {
        "name": user.get_short_name() if hasattr(user, "get_short_name") else to,
        "email": to,
        "product_name": settings.PRODUCT_NAME,
        "support_email": settings.SUPPORT_EMAIL,
        "support_url": settings.SUPPORT_URL,
        "occurred_at": event.created_at.isoformat(),
        "ip": ip,
        "browser": browser,
        "detail": event.detail,
        "kind": str(event.kind),
        "profile_url": profile_url(),
        **{
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in (extra or {}).items()
        },
    }
    transaction.on_commit(
        partial(
            send_security_notice.enqueue,
            template=template,
            to=to,
            user_id=user.pk,
            context=context,
            language=language,
            time_zone=time_zone,
            facts=dict(event.facts or {}),
        )
    )


def recipient_locale(user: AbstractBaseUser) -> tuple[str, str]:
    """The language and time zone the account's mails use: its own, else the portal's
    default language and UTC (the task checks them again: it may run after a deploy)."""
    language = getattr(user, "language", "") or settings.LANGUAGE_CODE
    time_zone = getattr(user, "time_zone", "") or "UTC"
    return language, time_zone


def profile_url() -> str:
    """My profile's address for a link in a mail, or "" (the mail then names it in words).

    Only from SITE_URL: the task has no request, and a link must not come from a
    client's Host header (portal/site.py); development without SITE_URL gets no link.
    """
    if not settings.SITE_URL:
        return ""
    return settings.SITE_URL.rstrip("/") + reverse("accounts:profile")
