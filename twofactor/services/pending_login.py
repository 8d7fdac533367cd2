"""The two-step login: after the password, before the code. Needs the session and login().

The user is NOT logged in between the steps: the session holds only who is half-way
in (under PENDING_LOGIN_SESSION_KEY), and only login() at the end makes them a user.
"""

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from twofactor import otp, signals
from twofactor.services.errors import (
    AccountLocked,
    ClockDrift,
    CodeReplayed,
    InvalidBackupCode,
    InvalidCode,
    NotEnrolled,
    PendingLoginExpired,
    PendingLoginMissing,
    PendingLoginVoided,
    TwoFactorError,
)
from twofactor.services.status import (
    code_entry_locked_until,
    confirmed_app_id,
    is_two_factor_enabled,
)
from twofactor.services.trusted_browsers import find_trusted_browser
from twofactor.services.verification import Verification, verify_code, verify_key
from twofactor.services.webauthn import finish_passkey_sign_in
from twofactor.signals import Method
from twofactor.user_model import AuthUser

PENDING_LOGIN_SESSION_KEY = "twofactor_pending_login"
# The code the code step refused last: an HMAC of it with its time step, and how it was
# refused (complete_pending_login).
REFUSED_CODE_SESSION_KEY = "twofactor_refused_code"
PENDING_LOGIN_TTL = timedelta(minutes=10)
# Set when this session proved the second factor (code step or enrollment): who, and how.
VERIFIED_SESSION_KEY = "twofactor_verified"


@dataclass(frozen=True)
class PendingLogin:
    user: AuthUser
    backend: str
    next_url: str
    device_id: int


def _pending_fingerprint(user: AuthUser, device_id: int) -> str:
    """What the password step saw of the account, as a salted HMAC (never a hash itself).

    The user's session auth hash covers the password hash (Django's own) and whatever
    the user model adds to it (this project's "sign out everywhere" generation); the
    device id covers a second factor that was reset and enrolled again.
    """
    return salted_hmac(
        "twofactor.services.pending_login",
        f"{user.get_session_auth_hash()}:{device_id}",
        algorithm="sha256",
    ).hexdigest()


def safe_next_url(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def begin_pending_login(
    *, request: HttpRequest, user: AuthUser, next_url: str, now: datetime | None = None
) -> None:
    """After a correct password: remember who is half-way in, without logging them in.

    Only the user id, the backend, when it started, the validated next URL and a
    fingerprint of the account's password and second factor are kept: no password,
    nothing that would let another session finish it, and nothing that outlives a
    password change, a reset, a "sign out everywhere" or a new second factor.
    """
    now = now or timezone.now()
    device_id = confirmed_app_id(user=user)
    if device_id is None:
        raise NotEnrolled
    session = request.session
    session.cycle_key()  # a fixed session id planted before step 1 is worthless after it
    session.pop(REFUSED_CODE_SESSION_KEY, None)
    session[PENDING_LOGIN_SESSION_KEY] = {
        "user_id": str(user.pk),
        "backend": getattr(user, "backend", ""),  # set by authenticate()
        "started_at": now.timestamp(),
        "next": safe_next_url(request, next_url),
        "device_id": device_id,
        "fingerprint": _pending_fingerprint(user, device_id),
    }


def get_pending_login(*, request: HttpRequest, now: datetime | None = None) -> PendingLogin:
    now = now or timezone.now()
    session = request.session
    data = session.get(PENDING_LOGIN_SESSION_KEY)
    if not isinstance(data, dict):
        raise PendingLoginMissing
    started_at = data.get("started_at", 0)
    if (
        now.timestamp() - started_at > PENDING_LOGIN_TTL.total_seconds()
        or started_at > now.timestamp()
    ):
        clear_pending_login(session=session)
        raise PendingLoginExpired
    if data.get("backend") not in settings.AUTHENTICATION_BACKENDS:
        clear_pending_login(session=session)
        raise PendingLoginMissing
    user_id = data.get("user_id")
    user = (
        get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
        if user_id is not None
        else None  # what the lookup would find: pk=None matches no row
    )
    if user is None:
        clear_pending_login(session=session)
        raise PendingLoginMissing
    device_id = data.get("device_id")
    fingerprint = data.get("fingerprint")
    if (
        not isinstance(device_id, int)
        or not isinstance(fingerprint, str)
        or not constant_time_compare(fingerprint, _pending_fingerprint(user, device_id))
    ):
        clear_pending_login(session=session)
        raise PendingLoginVoided
    return PendingLogin(
        user=user, backend=data["backend"], next_url=data.get("next", ""), device_id=device_id
    )


def clear_pending_login(*, session: MutableMapping[str, Any]) -> None:
    session.pop(PENDING_LOGIN_SESSION_KEY, None)
    session.pop(REFUSED_CODE_SESSION_KEY, None)


def pending_login_binding(*, session: MutableMapping[str, Any]) -> str:
    """What a key's challenge at the code step is bound to (services.webauthn's `bound_to`):
    changes with every password step (a new start, a new fingerprint), so a challenge never
    outlives the half-finished login it was issued for.

    Read after get_pending_login() accepted the pending login; it is not checked again here.
    """
    data = session.get(PENDING_LOGIN_SESSION_KEY)
    if not isinstance(data, dict):
        raise PendingLoginMissing
    return salted_hmac(
        "twofactor.services.webauthn.pending_login",
        f"{data.get('user_id')}:{data.get('started_at')}:{data.get('fingerprint')}",
        algorithm="sha256",
    ).hexdigest()


def complete_pending_login(
    *, request: HttpRequest, pending: PendingLogin, code: str, now: datetime | None = None
) -> Verification:
    """Step 2: check the code for the pending user (from get_pending_login) and, if it
    is right, log them in. The caller redirects to safe_next_url(request, pending.next_url)."""
    now = now or timezone.now()
    mark = _refusal_mark(code, session=request.session, now=now)
    refused_before = request.session.get(REFUSED_CODE_SESSION_KEY)
    if isinstance(refused_before, dict) and refused_before.get("mark") == mark:
        # The code refused a moment ago, in the same 30 seconds: a reload that posted the
        # form again, or a second press. The answer cannot have changed, and it is no new
        # guess: refused again without counting towards the lock (the lock still stands).
        locked_until = code_entry_locked_until(user=pending.user, now=now)
        if locked_until is not None:
            raise AccountLocked(locked_until)
        again = _REFUSALS.get(str(refused_before.get("kind")), InvalidCode)()
        again.attempts_left = refused_before.get("left")
        raise again
    try:
        return _check_then_log_in(
            request,
            pending,
            lambda: verify_code(user=pending.user, code=code, now=now, device_id=pending.device_id),
        )
    except ClockDrift:
        raise  # not counted anyway, and its advice is worth reading again: checked again
    except InvalidCode as refused:
        request.session[REFUSED_CODE_SESSION_KEY] = {
            "mark": mark,
            "kind": type(refused).__name__,
            "left": refused.attempts_left,
        }
        raise


# The refusals complete_pending_login repeats, by name (a session holds JSON).
_REFUSALS: dict[str, type[InvalidCode]] = {
    cls.__name__: cls for cls in (InvalidCode, InvalidBackupCode, CodeReplayed)
}


def _refusal_mark(code: str, *, session: MutableMapping[str, Any], now: datetime) -> str:
    # Of this pending login only: another user's, or a new password step's, is not it.
    data = session.get(PENDING_LOGIN_SESSION_KEY) or {}
    login = f"{data.get('user_id')}:{data.get('started_at')}"
    typed = otp.normalize_totp_code(code) or otp.normalize_backup_code(code) or code.strip()
    step = otp.time_step(now.timestamp())
    return salted_hmac(
        "twofactor.pending_login.refused", f"{login}:{step}:{typed}", algorithm="sha256"
    ).hexdigest()


def complete_pending_login_with_key(
    *, request: HttpRequest, pending: PendingLogin, response_json: str, now: datetime | None = None
) -> Verification:
    """Step 2 with a passkey or security key: the browser's answer to the challenge that
    begin_authentication(bound_to=pending_login_binding(...)) issued for this pending login."""
    now = now or timezone.now()
    return _check_then_log_in(
        request,
        pending,
        lambda: verify_key(
            user=pending.user,
            session=request.session,
            bound_to=pending_login_binding(session=request.session),
            response_json=response_json,
            now=now,
            device_id=pending.device_id,
        ),
    )


def _check_then_log_in(
    request: HttpRequest, pending: PendingLogin, check: Callable[[], Verification]
) -> Verification:
    """The second factor's check and the login's writes in one transaction, one commit.
    A refusal leaves the transaction as it ends, committed with its failure count (and a
    lock), and is raised only after: raised inside, it would roll them back."""
    refusal: TwoFactorError | None = None
    with transaction.atomic():
        try:
            verification = check()
        except TwoFactorError as error:
            refusal = error
        else:
            _log_in(request, pending.user, backend=pending.backend, method=verification.method)
    if isinstance(refusal, NotEnrolled):
        # 2FA was switched off (a support reset) after the password step: that
        # half-finished login is void; the user starts again.
        clear_pending_login(session=request.session)
        raise PendingLoginMissing from None
    if refusal is not None:
        raise refusal
    return verification


def log_in_with_passkey(
    *, request: HttpRequest, binding: str, response_json: str, now: datetime | None = None
) -> AuthUser:
    """ "Sign in with a passkey": the answer to begin_passkey_sign_in, verified with user
    verification (a PIN or biometrics on the authenticator), stands for both factors; the
    user it belongs to is logged in. Raises WebAuthnError (every refusal looks the same to
    the caller's page)."""
    credential = finish_passkey_sign_in(binding=binding, response_json=response_json, now=now)
    user = credential.user
    backend = settings.AUTHENTICATION_BACKENDS[0]
    _log_in(request, user, backend=backend, method=Method.PASSKEY)
    return user


def log_in_trusted_browser(
    *, request: HttpRequest, user: AuthUser, now: datetime | None = None
) -> bool:
    """After a correct password for `user` (with 2FA on): if this browser holds a trust
    for them that still counts, log them in without a code and return True."""
    if find_trusted_browser(request=request, user=user, now=now) is None:
        return False
    _log_in(request, user, backend=getattr(user, "backend", ""), method=Method.TRUSTED_BROWSER)
    return True


def _log_in(request: HttpRequest, user: AuthUser, *, backend: str, method: Method) -> None:
    session = request.session
    clear_pending_login(session=session)
    # Marked before login(), so user_logged_in's listeners can ask verified_method()
    # how this login passed; and again after, in case login() flushed a stale session.
    mark_session_verified(session=session, user=user, method=method)
    # One transaction for what a login writes (last_login, and the project's listeners:
    # a log event, a session record...): they commit together, with one commit, not one
    # each. The code was already spent and committed by its own check.
    with transaction.atomic(savepoint=False):  # the check's transaction, where there is one
        login(request, user, backend=backend)  # rotates the session key
        mark_session_verified(session=request.session, user=user, method=method)
        signals.two_factor_login.send(sender=type(user), user=user, method=method, request=request)


def mark_session_verified(
    *, session: MutableMapping[str, Any], user: AuthUser, method: Method
) -> None:
    session[VERIFIED_SESSION_KEY] = {"user_id": str(user.pk), "method": str(method)}


def verified_method(*, session: MutableMapping[str, Any], user: AuthUser) -> Method | None:
    """How this session passed the second factor for `user` (None: it did not)."""
    marker = session.get(VERIFIED_SESSION_KEY)
    if not isinstance(marker, dict) or marker.get("user_id") != str(user.pk):
        return None
    method = marker.get("method")
    if not isinstance(method, str):
        return None  # what Method() of a non-string ends in (ValueError) below
    try:
        return Method(method)
    except ValueError:
        return None


def is_session_verified(*, request: HttpRequest) -> bool:
    """Did this session pass a second factor for the logged-in user (login code or enrollment),
    and is that second factor still on?"""
    user = request.user
    return (
        user.is_authenticated
        and verified_method(session=request.session, user=user) is not None
        and is_two_factor_enabled(user=user)
    )
