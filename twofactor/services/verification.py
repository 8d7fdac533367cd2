"""Checking a second factor (app code, backup code or key) for an active device: the
replay guard and the throttle.

The throttle's protocol, in one place (verify_code):
  allowed?   not while the device's locked_until is in the future, checked
             first, before any HMAC or key derivation (a lock costs no CPU);
  why not?   MAX_FAILURES failures in a row, app codes, backup codes and keys
             together (verify_key: a key's answer that was checked and refused);
  until?     locked_until: 5 minutes, doubling with each lock, at most an hour.
A right code (or key) resets the count. Everything happens under the device's row lock,
so concurrent attempts on any server take turns and cannot race past the limit.
"""

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from twofactor import crypto, otp, signals
from twofactor.models import BackupCode, TOTPDevice
from twofactor.services.errors import (
    AccountLocked,
    ClockDrift,
    CodeReplayed,
    InvalidBackupCode,
    InvalidCode,
    InvalidWebAuthnResponse,
    NotEnrolled,
    SignCountRegressed,
    TwoFactorError,
)
from twofactor.services.webauthn import finish_authentication
from twofactor.signals import Method, Outcome
from twofactor.user_model import AuthUser

MAX_FAILURES = 5
FIRST_LOCK = timedelta(minutes=5)
LONGEST_LOCK = timedelta(hours=1)


@dataclass(frozen=True)
class Verification:
    method: Method
    remaining_backup_codes: int | None = None


def verify_code(
    *,
    user: AuthUser,
    code: str,
    now: datetime | None = None,
    device_id: int | None = None,
) -> Verification:
    """Check an app code or a backup code (told apart by shape) for an active device.

    With `device_id`, only that device counts (a pending login names the device
    that was active at its password step; a replaced one is NotEnrolled).
    """
    now = now or timezone.now()
    # No savepoint inside a caller's transaction (a login's): nothing is raised out of
    # this block, so there is nothing for one to roll back, and the caller's own writes
    # stand whatever the answer.
    with transaction.atomic(savepoint=False):
        outcome = _check_code(user, code, now=now, device_id=device_id)
    # Raised here, after the transaction has committed, not inside it: an exception
    # inside would roll back the failure count (and a lock) that was just written.
    if isinstance(outcome, TwoFactorError):
        raise outcome
    return outcome


def _check_code(
    user: AuthUser, code: str, *, now: datetime, device_id: int | None
) -> Verification | TwoFactorError:
    try:
        device = _locked_device(user, device_id=device_id, now=now)
    except TwoFactorError as refused:  # locked, or no active device
        return refused
    totp_code = otp.normalize_totp_code(code)
    if totp_code is not None:
        method = Method.TOTP
        checked = _check_totp(device, totp_code, now=now)
    else:
        method = Method.BACKUP
        checked = _check_backup_code(user, code, now=now)

    if isinstance(checked, Verification):
        _clear_failures(device)
        if method == Method.BACKUP:
            signals.backup_code_used.send(
                sender=type(user), user=user, remaining=checked.remaining_backup_codes
            )
        return checked
    return _record_failure(device, user=user, method=method, error=checked, now=now)


def verify_key(
    *,
    user: AuthUser,
    session: MutableMapping[str, Any],
    bound_to: str,
    response_json: str,
    now: datetime | None = None,
    device_id: int | None = None,
) -> Verification:
    """Check a passkey's or security key's answer (services.webauthn) as a second factor,
    under the same row lock and throttle as codes: a refused answer counts as one failure
    towards the lock, an accepted one clears the count.

    A lock stops codes, not keys: it is there because six digits can be guessed, and a
    key's signature cannot. So a stranger who has the password and guessed codes until
    the lock cannot keep the owner's key out; while locked, a refused key is not counted
    again (and is refused with the lock). An answer to no challenge of this session (none
    issued, used, or expired) is not counted either: it was never checked.
    """
    now = now or timezone.now()
    with transaction.atomic():
        device = _locked_device(user, device_id=device_id, now=now, enforce_lock=False)
        locked_until = _locked_until(device, now=now)
        try:
            finish_authentication(
                user=user, session=session, bound_to=bound_to, response_json=response_json, now=now
            )
        except InvalidWebAuthnResponse as refused:
            # A sign count that went backwards (a copied key?) is logged where it is found.
            outcome = (
                Outcome.SIGN_COUNT
                if isinstance(refused, SignCountRegressed)
                else Outcome.KEY_REFUSED
            )
            if locked_until is not None:
                raise AccountLocked(locked_until) from None
            error = _record_failure(
                device, user=user, method=Method.WEBAUTHN, error=refused, outcome=outcome, now=now
            )
        else:
            _clear_failures(device)
            return Verification(method=Method.WEBAUTHN)
    raise error  # after the commit, as in verify_code


def _locked_device(
    user: AuthUser, *, device_id: int | None, now: datetime, enforce_lock: bool = True
) -> TOTPDevice:
    """The user's active device under its row lock; AccountLocked while code entry is
    locked (unless `enforce_lock` is False: keys).

    With `device_id`, only that device counts (a pending login names the device that was
    active at its password step; a replaced one is NotEnrolled).
    """
    devices = TOTPDevice.objects.confirmed().select_for_update().filter(user=user)
    if device_id is not None:
        devices = devices.filter(pk=device_id)
    device = devices.first()
    if device is None:
        raise NotEnrolled
    # Refuse before any HMAC or key derivation: a locked account costs no CPU.
    if enforce_lock and (locked_until := _locked_until(device, now=now)) is not None:
        raise AccountLocked(locked_until)
    return device


def _locked_until(device: TOTPDevice, *, now: datetime) -> datetime | None:
    """When code entry unlocks, if it is locked at `now`."""
    if device.locked_until is not None and device.locked_until > now:
        return device.locked_until
    return None


def _clear_failures(device: TOTPDevice) -> None:
    if device.failure_count or device.lock_count or device.locked_until:
        TOTPDevice.objects.filter(pk=device.pk).update(
            failure_count=0, lock_count=0, locked_until=None
        )


def use_backup_code(*, user: AuthUser, code: str, now: datetime | None = None) -> int:
    """Spend one backup code (throttled like any code); returns how many remain."""
    if otp.normalize_backup_code(code) is None:
        raise InvalidCode
    return verify_code(user=user, code=code, now=now).remaining_backup_codes or 0


def match_step(device: TOTPDevice, code: str, *, now: datetime) -> int | TwoFactorError:
    """The time step a (normalised) app code is for, or why it is refused.

    A code from a clock that is off is refused with ClockDrift. If it is from a
    step still to come, the message has just told whoever typed it that it will
    be valid in `drift` steps (a guesser would wait and resend it), so that one
    step is burnt; the steps before it stay usable, so the owner who corrects
    their clock logs in at once with the code their phone shows now.
    Callers hold the device's row lock.
    """
    step = otp.match_totp(device.secret, code, now=now.timestamp())
    if step is None:
        drift = otp.find_drift(device.secret, code, now=now.timestamp())
        if drift is None:
            return InvalidCode()
        if drift > 0:
            _burn_step(device, otp.time_step(now.timestamp()) + drift, now=now)
        return ClockDrift(drift)
    if step <= device.last_used_step or step in device.burnt_steps:
        return CodeReplayed()
    return step


def _burn_step(device: TOTPDevice, step: int, *, now: datetime) -> None:
    # Only steps that can still come are kept, so the list stays as short as the
    # drift window.
    current = otp.time_step(now.timestamp())
    kept = {s for s in device.burnt_steps if s >= current - otp.ACCEPT_WINDOW}
    device.burnt_steps = sorted(kept | {step})
    TOTPDevice.objects.filter(pk=device.pk).update(burnt_steps=device.burnt_steps)


def _check_totp(device: TOTPDevice, code: str, *, now: datetime) -> Verification | TwoFactorError:
    step = match_step(device, code, now=now)
    if isinstance(step, TwoFactorError):
        return step
    # Conditional UPDATE: only a step newer than every accepted one wins, even
    # on a database where select_for_update is a no-op.
    advanced = TOTPDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(
        last_used_step=step, burnt_steps=[s for s in device.burnt_steps if s > step]
    )
    if not advanced:
        return CodeReplayed()
    return Verification(method=Method.TOTP)


def _check_backup_code(
    user: AuthUser, code: str, *, now: datetime
) -> Verification | TwoFactorError:
    normalized = otp.normalize_backup_code(code)
    if normalized is None:
        return InvalidBackupCode()
    # The whole set, used codes too: the check costs the same whether a code is right,
    # wrong or already used (one derivation), and the count left needs no second query.
    rows = list(
        BackupCode.objects.filter(user=user)
        .order_by("pk")
        .values_list("pk", "code_hash", "used_at")
    )
    matched = otp.match_backup_code(
        normalized, [code_hash for _, code_hash, _ in rows], keys=crypto.backup_code_keys()
    )
    if matched is None:
        return InvalidBackupCode()
    pk = rows[matched][0]
    # Conditional UPDATE: of two requests with the same code, one spends it.
    if BackupCode.objects.unused().filter(pk=pk).update(used_at=now) != 1:
        return InvalidBackupCode()
    # Read under the device's row lock: every change to the set takes it (or deletes the row).
    remaining = sum(1 for other, _, used_at in rows if used_at is None and other != pk)
    return Verification(method=Method.BACKUP, remaining_backup_codes=remaining)


OUTCOMES = {ClockDrift: Outcome.DRIFT, CodeReplayed: Outcome.REPLAYED}


def _record_failure(
    device: TOTPDevice,
    *,
    user: AuthUser,
    method: Method,
    error: TwoFactorError,
    now: datetime,
    outcome: Outcome | None = None,
) -> TwoFactorError:
    failures = device.failure_count + 1
    outcome = outcome or OUTCOMES.get(type(error), Outcome.INVALID)
    signals.code_verification_failed.send(
        sender=type(user), user=user, method=method, outcome=outcome
    )
    if isinstance(error, ClockDrift):
        # The right code from a wrong clock is the owner's phone, not a guess (a
        # random guess lands in the drift window one time in 50,000): it does not
        # count towards the lock, so following the clock advice never locks anyone
        # out nor sends "someone may know your password".
        return error
    if failures < MAX_FAILURES:
        TOTPDevice.objects.filter(pk=device.pk).update(failure_count=F("failure_count") + 1)
        if isinstance(error, InvalidCode) and MAX_FAILURES - failures == 1:
            error.attempts_left = 1
        return error
    # 5 min, then 10, 20, 40, capped at an hour for an attacker who keeps coming back.
    duration = min(FIRST_LOCK * (2**device.lock_count), LONGEST_LOCK)
    until = now + duration
    TOTPDevice.objects.filter(pk=device.pk).update(
        failure_count=0, lock_count=F("lock_count") + 1, locked_until=until
    )
    signals.account_locked.send(sender=type(user), user=user, until=until)
    return AccountLocked(until)
