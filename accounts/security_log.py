"""The security log: what happened to an account, as SecurityEvents, and how to read it.

The receivers that write events live in accounts.receivers (every signal the
project listens to, in one place); this module holds the writing and reading.
Events are written in the transaction of the change they describe (twofactor's
signals are sent inside it), so a change that rolls back leaves no event, and
an event that fails to save rolls the change back. Callers pass words, never a
secret or a code.
"""

from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.utils import timezone

from accounts.middleware import ActionOrigin, current_origin
from accounts.models import SecurityEvent, User
from twofactor.signals import Method, Outcome

# The detail of a login, a failed code: words for the signal contract's names.
PASSWORD_ONLY = "password only"  # noqa: S105 - words, not a password
FAILURE_WORDS = {
    (Method.TOTP, Outcome.INVALID): "wrong authenticator code",
    (Method.TOTP, Outcome.REPLAYED): "authenticator code already used",
    (Method.TOTP, Outcome.DRIFT): "authenticator code from a device with a wrong clock",
    (Method.BACKUP, Outcome.INVALID): "wrong or used backup code",
    (Method.WEBAUTHN, Outcome.KEY_REFUSED): "passkey or security key not accepted",
    # A genuine key only counts up: a counter that went backwards means another
    # authenticator holds the same key. Shown in parentheses: no parentheses inside.
    (Method.WEBAUTHN, Outcome.SIGN_COUNT): (
        "signature counter of a passkey or security key went backwards: "
        "the key may have been copied"
    ),
    # A passkey alone (no password) is refused for the same two reasons; the method's own
    # label ("passkey, without a password") would not say what went wrong.
    (Method.PASSKEY, Outcome.KEY_REFUSED): "passkey not accepted",
    (Method.PASSKEY, Outcome.SIGN_COUNT): (
        "signature counter of a passkey went backwards: the passkey may have been copied"
    ),
}
DETAIL_MAX_LENGTH = SecurityEvent._meta.get_field("detail").max_length
RECENT_EVENTS = 20
HISTORY_PAGE_SIZE = 50


def record_event(
    *,
    user: User,
    kind: str,
    detail: str = "",
    actor: User | None = None,
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


def recent_events(*, user: User, limit: int = RECENT_EVENTS) -> list[SecurityEvent]:
    """Newest first, for "Recent security activity" on My profile."""
    return list(SecurityEvent.objects.filter(user=user).select_related("actor")[:limit])


def history_page(*, user: User, number: int | str | None) -> Page:
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


def login_detail(method: Method | None) -> str:
    """How a login passed, in the contract's words: "authenticator app", "backup code",
    "passkey or security key" (after the password), "passkey, without a password", or
    "password only" (no second factor)."""
    return method.label if method is not None else PASSWORD_ONLY


def failure_detail(method: Method, outcome: Outcome) -> str:
    return FAILURE_WORDS.get((method, outcome), method.label)
