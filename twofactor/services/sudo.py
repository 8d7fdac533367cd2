"""Sudo mode: "confirm it's you" (password, and a code with 2FA) lasts 10 minutes."""

from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils import timezone

from twofactor.services.errors import NotEnrolled, TooManyPasswordAttempts, WrongPassword
from twofactor.services.status import is_two_factor_enabled
from twofactor.services.verification import verify_code, verify_key
from twofactor.services.webauthn import begin_authentication
from twofactor.user_model import AuthUser

SUDO_SESSION_KEY = "twofactor_sudo"
SUDO_TTL = timedelta(minutes=10)
# What a key's challenge for "confirm it's you" is bound to: not usable at a login step.
SUDO_KEY_BINDING = "twofactor.sudo"

# The `purpose` credential of authenticate() calls that are not a login (the
# password of "confirm it's you"); backends ignore it, listeners of
# user_login_failed can tell it from a failed login.
PURPOSE_CONFIRM = "confirm_identity"

# twofactor's contract with the project's authentication backends: a backend
# that refuses an attempt because of earlier failures (before checking the
# password) sets this attribute to True on the request, so the page can say
# "too many attempts" instead of "wrong password". authenticate() itself only
# returns None either way.
AUTHENTICATION_THROTTLED_ATTR = "authentication_throttled"


def has_recent_proof(*, request: HttpRequest, now: datetime | None = None) -> bool:
    """Did this user prove who they are (password, and a code with 2FA) in the last 10 min?"""
    now = now or timezone.now()
    proof = request.session.get(SUDO_SESSION_KEY)
    if not isinstance(proof, dict) or proof.get("user_id") != str(request.user.pk):
        return False
    proven_at = proof.get("at", 0)
    return 0 <= now.timestamp() - proven_at <= SUDO_TTL.total_seconds()


def had_proof(*, request: HttpRequest) -> bool:
    """Did this user prove who they are in this session before (now too long ago)?"""
    proof = request.session.get(SUDO_SESSION_KEY)
    return isinstance(proof, dict) and proof.get("user_id") == str(request.user.pk)


def confirm_identity(
    *,
    request: HttpRequest,
    password: str,
    code: str | None,
    key_answer: str | None = None,
    now: datetime | None = None,
) -> None:
    """Check the password (and, with 2FA, the code or a key's answer to the challenge of
    begin_sudo_key) of the logged-in user; writes nothing to the session but spends the
    challenge. Raises WrongPassword, or the code's or key's exception when 2FA is active.
    A key is checked even while code entry is locked (verify_key), so a stranger who
    locked the codes cannot keep the owner from confirming it's them."""
    user = request.user
    # authenticate() rather than check_password(): the project's authentication
    # backends count and limit password guesses made here exactly like those at login.
    # `purpose` reaches user_login_failed's credentials: a wrong password here is
    # recorded as such, not as a failed login.
    authenticated = authenticate(
        request, username=user.get_username(), password=password, purpose=PURPOSE_CONFIRM
    )
    if authenticated is None or authenticated.pk != user.pk:
        if getattr(request, AUTHENTICATION_THROTTLED_ATTR, False):
            raise TooManyPasswordAttempts
        raise WrongPassword
    if not is_two_factor_enabled(user=user):
        return
    if key_answer:
        verify_key(
            user=user,
            session=request.session,
            bound_to=SUDO_KEY_BINDING,
            response_json=key_answer,
            now=now,
        )
    else:
        verify_code(user=user, code=code or "", now=now)


def begin_sudo_key(*, user: AuthUser, session: MutableMapping[str, Any]) -> str:
    """navigator.credentials.get() options for "confirm it's you" with a key ("" when the
    user has none)."""
    try:
        return begin_authentication(user=user, session=session, bound_to=SUDO_KEY_BINDING)
    except NotEnrolled:
        return ""


def start_sudo(*, request: HttpRequest, now: datetime | None = None) -> None:
    """After confirm_identity: the next 10 minutes need no new proof."""
    now = now or timezone.now()
    request.session[SUDO_SESSION_KEY] = {"user_id": str(request.user.pk), "at": now.timestamp()}


def end_sudo(*, request: HttpRequest) -> None:
    request.session.pop(SUDO_SESSION_KEY, None)
