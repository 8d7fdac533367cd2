"""E-mails that tell users about security changes to their account.

Queued with transaction.on_commit(): the change and its log event commit
first, so no mail announces a change that rolled back. Sending happens after
the commit but still inside the user's request, so every failure (SMTP down,
a template error) is caught and logged here: a mail problem must never turn a
completed change into an error page.

The context holds only words, times, counts and the place (IP, browser); the
signals these mails come from carry no secret or code, and neither may a mail.
"""

import logging
from functools import partial

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from accounts.models import SecurityEvent
from accounts.user_agents import describe_user_agent

logger = logging.getLogger(__name__)

Kind = SecurityEvent.Kind

# Event kind -> template name under templates/accounts/email/ (NAME_subject.txt,
# NAME.txt, NAME.html). Kinds missing here send no mail.
TEMPLATES = {
    Kind.TWO_FACTOR_ENABLED: "two_factor_enabled",
    Kind.TWO_FACTOR_DISABLED: "two_factor_disabled",
    Kind.TWO_FACTOR_RESET: "two_factor_reset",
    Kind.BACKUP_CODES_GENERATED: "backup_codes_generated",
    Kind.BACKUP_CODE_USED: "backup_code_used",
    Kind.ACCOUNT_LOCKED: "account_locked",
}


def notify(*, user: AbstractBaseUser, event: SecurityEvent, extra: dict | None = None) -> None:
    """Queue the e-mail for `event`, if its kind has one, to go out after the commit."""
    template = TEMPLATES.get(event.kind)
    address = getattr(user, "email", "")
    if template is None or not address:
        return
    # Plain values captured now: the callback must not depend on objects that
    # change (or are deleted) after the transaction.
    context = {
        "name": user.get_short_name() if hasattr(user, "get_short_name") else address,
        "email": address,
        "product_name": settings.PRODUCT_NAME,
        "occurred_at": event.created_at,
        "ip": event.ip,
        "browser": describe_user_agent(event.user_agent) if event.user_agent else "",
        "detail": event.detail,
        **(extra or {}),
    }
    transaction.on_commit(
        partial(send_notification, template=template, to=address, user_id=user.pk, context=context)
    )


def send_notification(*, template: str, to: str, user_id: object, context: dict) -> bool:
    """Render and send one notification; False (and a logged traceback) if that failed."""
    try:
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
    except Exception:
        # The user id, not the address: log lines stay free of personal data.
        logger.exception("Could not send the %s e-mail to user %s", template, user_id)
        return False
    return True
