"""E-mails, sent by a task worker (`manage.py db_worker`), never inside a request.

Callers enqueue with transaction.on_commit(): nothing is queued for a change
that rolls back. Arguments are plain JSON values (the queue is a database
table); the task renders and sends. A failed send is logged by user id (never
the address) and does not retry: the security log holds the event either way.

Every mail is rendered in its recipient's language and time zone (speaking_to).
Tasks queued before a deploy may lack the newer arguments: each has a default.
"""

import logging
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django_tasks import task

logger = logging.getLogger(__name__)

# Context keys that travel as ISO 8601 strings and are datetimes again in the task.
DATETIME_KEYS = ("occurred_at", "until")


@contextmanager
def speaking_to(language: str, time_zone: str) -> Iterator[None]:
    """Render as the recipient reads: their language (else the portal's default) and
    their time zone (else UTC). A name this portal no longer knows (a language taken
    out, a zone renamed) falls back too: a mail is never lost to a preference."""
    try:
        language = translation.get_supported_language_variant(language or settings.LANGUAGE_CODE)
    except LookupError:
        language = settings.LANGUAGE_CODE
    try:
        zone = zoneinfo.ZoneInfo(time_zone) if time_zone else zoneinfo.ZoneInfo("UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        zone = zoneinfo.ZoneInfo("UTC")
    with translation.override(language), timezone.override(zone):
        yield


@task()
def send_security_notice(
    *,
    template: str,
    to: str,
    user_id: int | str,
    context: dict,
    language: str = "",
    time_zone: str = "",
    facts: dict | None = None,
) -> bool:
    """One security notice (templates/accounts/email/<template>*); False if sending failed.

    The event's words ("detail", and "description" with its kind) are made here, in
    the recipient's language and zone, from the English detail and the facts.
    """
    context = {
        key: datetime.fromisoformat(value) if key in DATETIME_KEYS and value else value
        for key, value in context.items()
    }
    try:
        with speaking_to(language, time_zone):
            _send_notice(template=template, to=to, context=context, facts=facts or {})
    except Exception:
        logger.exception("Could not send the %s e-mail to user %s", template, user_id)
        return False
    return True


def _send_notice(*, template: str, to: str, context: dict, facts: dict) -> None:
    from accounts.security_log import describe_event, event_detail

    kind, detail = context.get("kind") or "", context.get("detail") or ""
    if kind:
        context["detail"] = event_detail(kind=kind, detail=detail, facts=facts)
        context["description"] = describe_event(kind=kind, detail=detail, facts=facts)
    subject = render_to_string(f"accounts/email/{template}_subject.txt", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # a header: one line, no injected newlines
        body=render_to_string(f"accounts/email/{template}.txt", context),
        to=[to],
    )
    message.attach_alternative(
        render_to_string(f"accounts/email/{template}.html", context), "text/html"
    )
    message.send()


@task()
def send_password_reset(*, email: str, domain: str, use_https: bool) -> None:
    """The reset link, for whichever active account has this address (often none).

    The lookup happens here, in the worker, so the reset form does the same work
    for known and unknown addresses and takes the same time for both.
    """
    from accounts.forms import PasswordResetForm

    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return
    form.save(
        domain_override=domain,
        use_https=use_https,
        subject_template_name="accounts/email/password_reset_subject.txt",
        email_template_name="accounts/email/password_reset.txt",
        from_email=settings.DEFAULT_FROM_EMAIL,
        extra_email_context={"product_name": settings.PRODUCT_NAME},
    )


@task()
def delete_sessions_of(*, user_id: int) -> int:
    """Delete the stored sessions of one user (a closed account); returns how many.

    They are already void (the account's session hash changed); this removes the
    rows. Database sessions are not indexed by user, so every live one is read:
    work for the worker, never for a request.
    """
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    doomed = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user_id)
    ]
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)
