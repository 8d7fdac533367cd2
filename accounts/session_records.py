"""The list of a user's sessions ("Where you're signed in"), and signing one of them out.

Each logged-in session has a UserSession record; the session data holds its id
(under SESSION_RECORD_KEY), so the record follows the session through every key
rotation. SessionRecordMiddleware checks it at each request of a logged-in user: an
ended (or deleted) record logs that browser out there and then, on whichever app
server it reaches; the database is the only thing the servers share. Activity is
written at most once a minute per session, so a busy page costs one indexed read.
"""

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from accounts.middleware import origin_from_request
from accounts.models import User, UserSession
from portal.middleware import DATABASE_ERRORS, database_outage_response

logger = logging.getLogger("portal.outage")

SESSION_RECORD_KEY = "accounts_session_record"
# The record id the middleware found for this request (start_record reads it back).
RECORD_ATTR = "session_record_id"
ACTIVITY_WRITE_INTERVAL = timedelta(minutes=1)
SIGNED_OUT_MESSAGE = _("This browser was signed out from another session. Please log in again.")


def _auth_tag(user: User) -> str:
    return salted_hmac(
        "accounts.session_records", user.get_session_auth_hash(), algorithm="sha256"
    ).hexdigest()


def start_record(request: HttpRequest, user: User, *, now: datetime | None = None) -> None:
    """A login: a new record for this session (the one it replaces, if any, is ended)."""
    now = now or timezone.now()
    # The record this browser had: in the session, or, when login() has just emptied
    # the session for another user (someone else logs in on a shared browser), as the
    # middleware read it at the start of the request.
    candidates = (request.session.get(SESSION_RECORD_KEY), getattr(request, RECORD_ATTR, None))
    previous = {pk for pk in candidates if isinstance(pk, int)}
    if previous:
        UserSession.objects.open().filter(pk__in=previous).update(ended_at=now)
    origin = origin_from_request(request)
    record = UserSession.objects.create(
        user=user,
        auth_tag=_auth_tag(user),
        created_at=now,
        last_activity=now,
        ip=origin.ip,
        user_agent=origin.user_agent,
    )
    request.session[SESSION_RECORD_KEY] = record.pk


def end_record(request: HttpRequest, *, now: datetime | None = None) -> None:
    """A logout: this session's record is ended."""
    record_id = request.session.get(SESSION_RECORD_KEY)
    if record_id is not None:
        UserSession.objects.open().filter(pk=record_id).update(ended_at=now or timezone.now())


def current_record_id(request: HttpRequest) -> int | None:
    value = request.session.get(SESSION_RECORD_KEY)
    return value if isinstance(value, int) else None


def open_sessions(*, user: User, now: datetime | None = None) -> list[UserSession]:
    """The user's sessions that can still be used, most recently active first."""
    now = now or timezone.now()
    idle_limit = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return list(
        UserSession.objects.open().filter(
            user=user, auth_tag=_auth_tag(user), last_activity__gte=idle_limit
        )
    )


def prune(*, now: datetime | None = None) -> int:
    """Delete the records no session can use any more: ended, or idle past the session age."""
    now = now or timezone.now()
    idle_limit = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    deleted, _ = UserSession.objects.filter(
        Q(ended_at__isnull=False) | Q(last_activity__lt=idle_limit)
    ).delete()
    return deleted


def end_sessions(*, user: User, keep: int | None = None, only: int | None = None) -> int:
    """End the user's open sessions (all but `keep`, or just `only`); how many ended.
    Each is logged out at its next request."""
    sessions = UserSession.objects.open().filter(user=user)
    if only is not None:
        sessions = sessions.filter(pk=only)
    if keep is not None:
        sessions = sessions.exclude(pk=keep)
    return sessions.update(ended_at=timezone.now())


class SessionRecordMiddleware:
    """After AuthenticationMiddleware and MessageMiddleware.

    In process_view, not __call__: only a request that reaches a view reads the
    session and the user (a refused body's 400 page, a 404 of a static file do not),
    and a database outage met here is answered by the 503 handler like any other.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *args: Any) -> HttpResponse | None:
        try:
            _check_record(request)
        except DATABASE_ERRORS as error:
            # Not a view's exception, so DatabaseOutageMiddleware does not see it: the
            # same plain 503 is answered here.
            logger.error("Database unavailable (%s): answered 503", type(error).__name__)
            return database_outage_response()
        return None


def _check_record(request: HttpRequest, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    # The record is read from the session before request.user is: a session ended with a
    # new "sign out everywhere" generation too would otherwise be emptied by Django's own
    # auth hash check first, and its browser would not hear why it was signed out.
    record_id = current_record_id(request)
    setattr(request, RECORD_ATTR, record_id)
    row = (
        UserSession.objects.filter(pk=record_id)
        .values_list("user_id", "ended_at", "last_activity", "auth_tag")
        .first()
        if record_id is not None
        else None
    )
    user = request.user
    if row is not None and row[1] is not None:
        logout(request)  # flushes the session: this request goes on as anonymous
        messages.info(request, SIGNED_OUT_MESSAGE)
        return
    if not user.is_authenticated:
        return
    assert isinstance(user, User)  # noqa: S101 - checked just above
    if record_id is None:
        # A session from before records existed (or logged in by a path that sent no
        # user_logged_in): it gets one now rather than being thrown out.
        start_record(request, user, now=now)
        return
    if row is None or row[0] != user.pk:  # its record was deleted (pruned, or a closed account)
        logout(request)
        messages.info(request, SIGNED_OUT_MESSAGE)
        return
    _, _, last_activity, auth_tag = row
    tag = _auth_tag(user)
    if now - last_activity >= ACTIVITY_WRITE_INTERVAL or auth_tag != tag:
        # Django accepted this session's auth hash, so a new tag is this session's own
        # password change (update_session_auth_hash), not a stale session.
        origin = origin_from_request(request)
        UserSession.objects.filter(pk=record_id).update(
            last_activity=now, ip=origin.ip, auth_tag=tag
        )
        # Saved again, so the session lasts SESSION_COOKIE_AGE from its last use (within
        # a minute), as the list assumes; without this it would end that long after it
        # was last changed, however busy, and the list would show it for up to twice that.
        request.session.modified = True


def describe(sessions: Iterable[UserSession], *, current: int | None) -> list[dict]:
    """For a template: each session with its words, "this browser" first."""
    rows = [{"session": s, "is_current": s.pk == current} for s in sessions]
    return sorted(rows, key=lambda row: not row["is_current"])
