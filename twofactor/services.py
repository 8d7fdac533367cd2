"""The actions that change two-factor state. Each one is atomic.

Views call these and turn the exceptions below into messages. Nothing here
reads a request except the pending-login and sudo helpers, which need the
session (and Django's login()); enrollment takes the session it belongs to.
"""

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from twofactor import crypto, otp, signals
from twofactor.models import BackupCode, TOTPDevice

PENDING_LOGIN_SESSION_KEY = "twofactor_pending_login"
SUDO_SESSION_KEY = "twofactor_sudo"
# The pending device this session is enrolling; no other session can see or confirm it.
ENROLLMENT_SESSION_KEY = "twofactor_enrollment"
# Set when this session proved the second factor (code step or enrollment).
VERIFIED_SESSION_KEY = "twofactor_verified"
# New backup codes between the POST that made them and the one GET that shows them.
NEW_BACKUP_CODES_SESSION_KEY = "twofactor_new_backup_codes"
NEW_BACKUP_CODES_TTL = timedelta(minutes=10)

PENDING_ENROLLMENT_TTL = timedelta(minutes=10)
PENDING_LOGIN_TTL = timedelta(minutes=10)
SUDO_TTL = timedelta(minutes=10)

MAX_FAILURES = 5
FIRST_LOCK = timedelta(minutes=5)
LONGEST_LOCK = timedelta(hours=1)

METHOD_TOTP = "totp"
METHOD_BACKUP = "backup"


# --- Exceptions the views turn into messages --------------------------------------
class TwoFactorError(Exception):
    """Base class: a user-caused refusal, never a server error."""


class InvalidCode(TwoFactorError):
    pass


class InvalidBackupCode(InvalidCode):
    """Not one of the account's unused backup codes (wrong, or already spent)."""


class CodeReplayed(InvalidCode):
    """The code's time step was already used (by this login or an earlier one)."""


class ClockDrift(InvalidCode):
    """The code belongs to a step outside the accepted window: the device clock is off."""

    def __init__(self, offset_steps: int) -> None:
        super().__init__(offset_steps)
        self.offset_steps = offset_steps
        self.offset_seconds = offset_steps * otp.PERIOD


class AccountLocked(TwoFactorError):
    def __init__(self, until: datetime) -> None:
        super().__init__(until)
        self.until = until


class NotEnrolled(TwoFactorError):
    """No pending (or no active) device where one is needed."""


class AlreadyEnabled(TwoFactorError):
    pass


class PendingLoginMissing(TwoFactorError):
    pass


class PendingLoginExpired(PendingLoginMissing):
    pass


class PendingLoginVoided(PendingLoginMissing):
    """Since the password step the password changed, the user was signed out everywhere,
    or the second factor was reset or replaced: the half-finished login is worthless."""


class WrongPassword(TwoFactorError):
    pass


class TooManyPasswordAttempts(WrongPassword):
    """An authentication backend refused before checking: too many recent failures."""


# Set to True on the request by an authentication backend that refuses an attempt
# because of earlier failures (accounts' ThrottleBackend), so the page can say so.
AUTHENTICATION_THROTTLED_ATTR = "authentication_throttled"


# The `purpose` credential of authenticate() calls that are not a login (the
# password of "confirm it's you"); backends ignore it, listeners can tell.
PURPOSE_CONFIRM = "confirm_identity"


# --- Reading state -------------------------------------------------------------------
@dataclass(frozen=True)
class TwoFactorStatus:
    active: bool
    enabled_at: datetime | None
    unused_backup_codes: int
    has_backup_codes: bool


def get_status(*, user: AbstractBaseUser) -> TwoFactorStatus:
    device = TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    codes = list(BackupCode.objects.filter(user=user).values_list("used_at", flat=True))
    return TwoFactorStatus(
        active=device is not None,
        enabled_at=device.confirmed_at if device else None,
        unused_backup_codes=sum(1 for used_at in codes if used_at is None),
        has_backup_codes=bool(codes),
    )


def code_entry_locked_until(
    *, user: AbstractBaseUser, now: datetime | None = None
) -> datetime | None:
    """When code entry unlocks, if it is locked now (too many wrong codes); else None."""
    now = now or timezone.now()
    return (
        TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False, locked_until__gt=now)
        .values_list("locked_until", flat=True)
        .first()
    )


def is_two_factor_enabled(*, user: AbstractBaseUser) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def unused_backup_code_count(*, user: AbstractBaseUser) -> int:
    return BackupCode.objects.filter(user=user, used_at__isnull=True).count()


# --- Enrollment ----------------------------------------------------------------------
def begin_enrollment(
    *, user: AbstractBaseUser, session: MutableMapping[str, Any], now: datetime | None = None
) -> TOTPDevice:
    """The pending device to show in this session's enable dialog: the same secret for 10 min.

    A pending secret belongs to the session that asked for it. Another session
    (another browser, or someone else who has the password) gets a fresh secret,
    which voids the first: nobody is ever shown a secret that is on another screen.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The user's row, not the device's: while there is no device yet there is no
        # device row to lock, and two browsers opening the dialog at once would both
        # INSERT one (an IntegrityError, a 500). This way they take turns.
        _lock_user_row(user)
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed_at is not None:
            raise AlreadyEnabled
        if (
            device is not None
            and device.pk == session.get(ENROLLMENT_SESSION_KEY)
            and device.created_at > now - PENDING_ENROLLMENT_TTL
        ):
            return device
        if device is not None:
            device.delete()  # expired or another session's: never show it here
        device = TOTPDevice(user=user, created_at=now)
        device.secret = otp.generate_secret()
        device.save()
    session[ENROLLMENT_SESSION_KEY] = device.pk
    return device


def confirm_enrollment(
    *,
    user: AbstractBaseUser,
    session: MutableMapping[str, Any],
    code: str,
    now: datetime | None = None,
) -> TOTPDevice:
    """Activate this session's pending device if `code` is valid; the code's step is burnt."""
    now = now or timezone.now()
    normalized = otp.normalize_totp_code(code)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(
                pk=session.get(ENROLLMENT_SESSION_KEY),
                user=user,
                confirmed_at__isnull=True,
                created_at__gt=now - PENDING_ENROLLMENT_TTL,
            )
            .first()
        )
        if device is None:
            raise NotEnrolled
        if normalized is None:
            raise InvalidCode
        step, error = _match_step(device, normalized, now=now)
        if error is None:
            activated = TOTPDevice.objects.filter(pk=device.pk, confirmed_at__isnull=True).update(
                confirmed_at=now,
                last_used_step=step,
                burnt_steps=[s for s in device.burnt_steps if s > step],
                failure_count=0,
                locked_until=None,
            )
            if not activated:
                raise NotEnrolled
            device.refresh_from_db()
            signals.two_factor_enabled.send(sender=type(user), user=user)
    if error is not None:
        raise error  # after the block: a burnt step is saved, not rolled back
    session.pop(ENROLLMENT_SESSION_KEY, None)
    return device


def disable_two_factor(*, user: AbstractBaseUser) -> None:
    """Turn 2FA off: the device and every backup code go, in one transaction."""
    with transaction.atomic():
        deleted, _ = TOTPDevice.objects.filter(user=user).delete()
        BackupCode.objects.filter(user=user).delete()
        if deleted:
            signals.two_factor_disabled.send(sender=type(user), user=user, actor=None, reason="")


def delete_second_factors(*, user: AbstractBaseUser) -> None:
    """Remove every second factor of an account that is being closed.

    No signal: nothing about the account's 2FA changed that its owner needs to
    hear of separately; the caller records and announces the closing itself.
    """
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        BackupCode.objects.filter(user=user).delete()


def reset_two_factor(
    *, user: AbstractBaseUser, actor: AbstractBaseUser | None, reason: str
) -> None:
    """Support's reset for a user who lost their phone: like disable, done by someone else.

    actor=None is the command line (an operator with shell access, no account
    in the portal); the reason is still required, so the signal still says
    "reset" and not "the user disabled it".
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A reason is required.")
    if actor is not None and actor.pk == user.pk:
        raise PermissionError("Staff cannot reset their own two-factor authentication.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        BackupCode.objects.filter(user=user).delete()
        signals.two_factor_disabled.send(sender=type(user), user=user, actor=actor, reason=reason)


# --- Backup codes --------------------------------------------------------------------------
def regenerate_backup_codes(*, user: AbstractBaseUser, at_enrollment: bool = False) -> list[str]:
    """A new set of five codes; the old set is gone in the same transaction.

    The plain codes are returned once, for the page to show; only hashes are kept.
    `at_enrollment`: the first set, made as 2FA is turned on (said in the signal).
    """
    codes, _marker = _regenerate(user=user, at_enrollment=at_enrollment)
    return codes


def regenerate_and_stash_backup_codes(
    *, user: AbstractBaseUser, session: MutableMapping[str, Any], at_enrollment: bool = False
) -> None:
    """A new set, kept (encrypted) in this session for the one page that shows it."""
    codes, marker = _regenerate(user=user, at_enrollment=at_enrollment)
    payload = json.dumps({"codes": codes, "at_enrollment": at_enrollment, "set": marker})
    session[NEW_BACKUP_CODES_SESSION_KEY] = crypto.encrypt_secret(payload)


def _regenerate(*, user: AbstractBaseUser, at_enrollment: bool) -> tuple[list[str], str]:
    """The new codes, and one of their stored hashes (the set's marker)."""
    codes = otp.generate_backup_codes()
    salt = otp.new_backup_code_salt()
    with transaction.atomic():
        # The device row lock makes concurrent requests take turns: each deletes
        # the set the one before it committed, so exactly one set of five survives
        # (the last one shown), never ten codes from two interleaved requests.
        device = TOTPDevice.objects.select_for_update().filter(
            user=user, confirmed_at__isnull=False
        )
        if device.first() is None:
            raise NotEnrolled
        BackupCode.objects.filter(user=user).delete()
        rows = [BackupCode(user=user, code_hash=otp.hash_backup_code(c, salt=salt)) for c in codes]
        BackupCode.objects.bulk_create(rows)
        signals.backup_codes_generated.send(
            sender=type(user), user=user, count=len(codes), at_enrollment=at_enrollment
        )
    return codes, rows[0].code_hash


def _lock_user_row(user: AbstractBaseUser) -> None:
    list(get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values_list("pk"))


@dataclass(frozen=True)
class NewBackupCodes:
    codes: list[str]
    at_enrollment: bool


def take_new_backup_codes(
    *, user: AbstractBaseUser, session: MutableMapping[str, Any], now: datetime | None = None
) -> NewBackupCodes | None:
    """The codes stashed for this page, once: a reload, or a second request at the same
    moment (each has its own copy of the session), finds None."""
    token = session.pop(NEW_BACKUP_CODES_SESSION_KEY, None)
    if not isinstance(token, str):
        return None
    try:
        payload = json.loads(
            crypto.decrypt_secret(token, ttl=int(NEW_BACKUP_CODES_TTL.total_seconds()))
        )
    except (crypto.InvalidToken, ValueError):
        return None
    # Claimed by one UPDATE of the set's marker row: a second request at once finds it
    # claimed, and a set replaced meanwhile (by another browser) is not shown at all.
    claimed = BackupCode.objects.filter(
        user=user, code_hash=payload.get("set"), shown_at__isnull=True
    ).update(shown_at=now or timezone.now())
    if not claimed:
        return None
    return NewBackupCodes(codes=payload["codes"], at_enrollment=payload["at_enrollment"])


# --- Verification (login step, sudo) -------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    method: str
    remaining_backup_codes: int | None = None


def verify_code(
    *,
    user: AbstractBaseUser,
    code: str,
    now: datetime | None = None,
    device_id: int | None = None,
) -> Verification:
    """Check an app code or a backup code (told apart by shape) for an active device.

    With `device_id`, only that device counts (a pending login names the device
    that was active at its password step; a replaced one is NotEnrolled).

    Throttled per account in the database: after MAX_FAILURES consecutive
    failures every attempt, even a correct one, is refused until the lock ends.
    The device row is locked for the whole check, so concurrent attempts on
    any server are serialised and the count cannot be raced past the limit.
    """
    now = now or timezone.now()
    error: TwoFactorError | None = None
    with transaction.atomic():
        devices = TOTPDevice.objects.select_for_update().filter(
            user=user, confirmed_at__isnull=False
        )
        if device_id is not None:
            devices = devices.filter(pk=device_id)
        device = devices.first()
        if device is None:
            raise NotEnrolled
        # Refuse before any HMAC or key derivation: a locked account costs no CPU.
        if device.locked_until is not None and device.locked_until > now:
            raise AccountLocked(device.locked_until)

        totp_code = otp.normalize_totp_code(code)
        if totp_code is not None:
            method = METHOD_TOTP
            result, error = _check_totp(device, totp_code, now=now)
        else:
            method = METHOD_BACKUP
            result, error = _check_backup_code(user, code, now=now)

        if error is None:
            if device.failure_count or device.lock_count or device.locked_until:
                TOTPDevice.objects.filter(pk=device.pk).update(
                    failure_count=0, lock_count=0, locked_until=None
                )
            if method == METHOD_BACKUP:
                signals.backup_code_used.send(
                    sender=type(user), user=user, remaining=result.remaining_backup_codes
                )
            return result

        error = _record_failure(device, user=user, method=method, error=error, now=now)
    raise error


def _match_step(
    device: TOTPDevice, code: str, *, now: datetime
) -> tuple[int | None, TwoFactorError | None]:
    """The time step a (normalised) app code is for, or why it is refused.

    A code from a clock that is off is refused with ClockDrift. If it is from a
    step still to come, the message has just told whoever typed it that it will
    be valid in `drift` steps (a guesser would wait and resend it), so that one
    step is burnt; the steps before it stay usable, so the owner who corrects
    their clock logs in at once with the code their phone shows now.
    """
    step = otp.match_totp(device.secret, code, now=now.timestamp())
    if step is None:
        drift = otp.find_drift(device.secret, code, now=now.timestamp())
        if drift is None:
            return None, InvalidCode()
        if drift > 0:
            _burn_step(device, otp.time_step(now.timestamp()) + drift, now=now)
        return None, ClockDrift(drift)
    if step <= device.last_used_step or step in device.burnt_steps:
        return None, CodeReplayed()
    return step, None


def _burn_step(device: TOTPDevice, step: int, *, now: datetime) -> None:
    # Under the device row lock (callers hold it). Only steps that can still come
    # are kept, so the list stays as short as the drift window.
    current = otp.time_step(now.timestamp())
    kept = {s for s in device.burnt_steps if s >= current - otp.ACCEPT_WINDOW}
    device.burnt_steps = sorted(kept | {step})
    TOTPDevice.objects.filter(pk=device.pk).update(burnt_steps=device.burnt_steps)


def use_backup_code(*, user: AbstractBaseUser, code: str, now: datetime | None = None) -> int:
    """Spend one backup code (throttled like any code); returns how many remain."""
    if otp.normalize_backup_code(code) is None:
        raise InvalidCode
    return verify_code(user=user, code=code, now=now).remaining_backup_codes or 0


def _check_totp(
    device: TOTPDevice, code: str, *, now: datetime
) -> tuple[Verification | None, TwoFactorError | None]:
    step, error = _match_step(device, code, now=now)
    if error is not None:
        return None, error
    # Conditional UPDATE: only a step newer than every accepted one wins, even
    # on a database where select_for_update is a no-op.
    advanced = TOTPDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(
        last_used_step=step, burnt_steps=[s for s in device.burnt_steps if s > step]
    )
    if not advanced:
        return None, CodeReplayed()
    return Verification(method=METHOD_TOTP), None


def _check_backup_code(
    user: AbstractBaseUser, code: str, *, now: datetime
) -> tuple[Verification | None, TwoFactorError | None]:
    normalized = otp.normalize_backup_code(code)
    reference = BackupCode.objects.filter(user=user).values_list("code_hash", flat=True).first()
    if normalized is None or reference is None:
        return None, InvalidBackupCode()
    code_hash = otp.hash_backup_code_like(normalized, reference=reference)
    spent = BackupCode.objects.filter(user=user, code_hash=code_hash, used_at__isnull=True).update(
        used_at=now
    )
    if spent != 1:
        return None, InvalidBackupCode()
    remaining = unused_backup_code_count(user=user)
    return Verification(method=METHOD_BACKUP, remaining_backup_codes=remaining), None


def _record_failure(
    device: TOTPDevice, *, user: AbstractBaseUser, method: str, error: TwoFactorError, now: datetime
) -> TwoFactorError:
    failures = device.failure_count + 1
    reason = {ClockDrift: "drift", CodeReplayed: "replayed"}.get(type(error), "invalid")
    signals.code_verification_failed.send(
        sender=type(user), user=user, method=method, reason=reason
    )
    if isinstance(error, ClockDrift):
        # The right code from a wrong clock is the owner's phone, not a guess (a
        # random guess lands in the drift window one time in 50,000): it does not
        # count towards the lock, so following the clock advice never locks anyone
        # out nor sends "someone may know your password".
        return error
    if failures < MAX_FAILURES:
        TOTPDevice.objects.filter(pk=device.pk).update(failure_count=F("failure_count") + 1)
        return error
    # 5 min, then 10, 20, 40, capped at an hour for an attacker who keeps coming back.
    duration = min(FIRST_LOCK * (2**device.lock_count), LONGEST_LOCK)
    until = now + duration
    TOTPDevice.objects.filter(pk=device.pk).update(
        failure_count=0, lock_count=F("lock_count") + 1, locked_until=until
    )
    signals.account_locked.send(sender=type(user), user=user, until=until)
    return AccountLocked(until)


# --- Two-step login ----------------------------------------------------------------------
@dataclass(frozen=True)
class PendingLogin:
    user: AbstractBaseUser
    backend: str
    next_url: str
    device_id: int


def _pending_fingerprint(user: AbstractBaseUser, device_id: int) -> str:
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
    *, request: HttpRequest, user: AbstractBaseUser, next_url: str, now: datetime | None = None
) -> None:
    """After a correct password: remember who is half-way in, without logging them in.

    Only the user id, the backend, when it started, the validated next URL and a
    fingerprint of the account's password and second factor are kept: no password,
    nothing that would let another session finish it, and nothing that outlives a
    password change, a reset, a "sign out everywhere" or a new second factor.
    """
    now = now or timezone.now()
    device_id = (
        TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False)
        .values_list("pk", flat=True)
        .first()
    )
    if device_id is None:
        raise NotEnrolled
    session = request.session
    session.cycle_key()  # a fixed session id planted before step 1 is worthless after it
    session[PENDING_LOGIN_SESSION_KEY] = {
        "user_id": str(user.pk),
        "backend": user.backend,
        "started_at": now.timestamp(),
        "next": safe_next_url(request, next_url),
        "device_id": device_id,
        "fingerprint": _pending_fingerprint(user, device_id),
    }


def get_pending_login(*, request: HttpRequest, now: datetime | None = None) -> PendingLogin:
    now = now or timezone.now()
    data = request.session.get(PENDING_LOGIN_SESSION_KEY)
    if not isinstance(data, dict):
        raise PendingLoginMissing
    started_at = data.get("started_at", 0)
    if (
        now.timestamp() - started_at > PENDING_LOGIN_TTL.total_seconds()
        or started_at > now.timestamp()
    ):
        clear_pending_login(session=request.session)
        raise PendingLoginExpired
    if data.get("backend") not in settings.AUTHENTICATION_BACKENDS:
        clear_pending_login(session=request.session)
        raise PendingLoginMissing
    user = get_user_model()._default_manager.filter(pk=data.get("user_id"), is_active=True).first()
    if user is None:
        clear_pending_login(session=request.session)
        raise PendingLoginMissing
    device_id = data.get("device_id")
    fingerprint = data.get("fingerprint")
    if (
        not isinstance(device_id, int)
        or not isinstance(fingerprint, str)
        or not constant_time_compare(fingerprint, _pending_fingerprint(user, device_id))
    ):
        clear_pending_login(session=request.session)
        raise PendingLoginVoided
    return PendingLogin(
        user=user, backend=data["backend"], next_url=data.get("next", ""), device_id=device_id
    )


def clear_pending_login(*, session: SessionBase) -> None:
    session.pop(PENDING_LOGIN_SESSION_KEY, None)


def complete_pending_login(
    *, request: HttpRequest, pending: PendingLogin, code: str, now: datetime | None = None
) -> Verification:
    """Step 2: check the code for the pending user (from get_pending_login) and, if it
    is right, log them in. The caller redirects to safe_next_url(request, pending.next_url)."""
    now = now or timezone.now()
    try:
        verification = verify_code(
            user=pending.user, code=code, now=now, device_id=pending.device_id
        )
    except NotEnrolled:
        # 2FA was switched off (a support reset) after the password step: that
        # half-finished login is void; the user starts again from the password.
        clear_pending_login(session=request.session)
        raise PendingLoginMissing from None
    clear_pending_login(session=request.session)
    login(request, pending.user, backend=pending.backend)  # rotates the session key
    mark_session_verified(request=request)
    signals.two_factor_login.send(
        sender=type(pending.user), user=pending.user, method=verification.method
    )
    return verification


def mark_session_verified(*, request: HttpRequest) -> None:
    request.session[VERIFIED_SESSION_KEY] = str(request.user.pk)


def is_session_verified(*, request: HttpRequest) -> bool:
    """Did this session pass a second factor for the logged-in user (login code or enrollment)?"""
    user = request.user
    return (
        user.is_authenticated
        and request.session.get(VERIFIED_SESSION_KEY) == str(user.pk)
        and is_two_factor_enabled(user=user)
    )


# --- Sudo mode ----------------------------------------------------------------------------
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


def prove_identity(
    *,
    request: HttpRequest,
    password: str,
    code: str | None,
    now: datetime | None = None,
) -> None:
    """Enter sudo mode. Raises WrongPassword, or the code's exception when 2FA is active."""
    now = now or timezone.now()
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
    if is_two_factor_enabled(user=user):
        verify_code(user=user, code=code or "", now=now)
    request.session[SUDO_SESSION_KEY] = {"user_id": str(user.pk), "at": now.timestamp()}


def end_sudo(*, request: HttpRequest) -> None:
    request.session.pop(SUDO_SESSION_KEY, None)
