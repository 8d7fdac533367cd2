"""Turning 2FA on (a pending device, then its first code) and off, by the user themselves.

The pending device belongs to the session that asked for it: the caller passes
that session's mapping, nothing else of the request.
"""

from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from twofactor import otp, signals
from twofactor.models import BackupCode, TOTPDevice, TrustedBrowser, WebAuthnCredential
from twofactor.services.errors import (
    AlreadyEnabled,
    InvalidCode,
    NotEnrolled,
    TwoFactorError,
    TwoFactorRequired,
)
from twofactor.services.policy import is_two_factor_required
from twofactor.services.status import forget_app
from twofactor.services.verification import match_step
from twofactor.user_model import AuthUser

# The pending device this session is enrolling; no other session can see or confirm it.
ENROLLMENT_SESSION_KEY = "twofactor_enrollment"
PENDING_ENROLLMENT_TTL = timedelta(minutes=10)


def begin_enrollment(
    *, user: AuthUser, session: MutableMapping[str, Any], now: datetime | None = None
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
    user: AuthUser,
    session: MutableMapping[str, Any],
    code: str,
    now: datetime | None = None,
) -> TOTPDevice:
    """Activate this session's pending device if `code` is valid; the code's step is burnt."""
    now = now or timezone.now()
    normalized = otp.normalize_totp_code(code)
    device_id = session.get(ENROLLMENT_SESSION_KEY)
    if device_id is None:
        raise NotEnrolled  # nothing pending in this session (pk=None matches no row)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.pending()
            .select_for_update()
            .filter(
                pk=device_id,
                user=user,
                created_at__gt=now - PENDING_ENROLLMENT_TTL,
            )
            .first()
        )
        if device is None:
            raise NotEnrolled
        if normalized is None:
            raise InvalidCode
        matched = match_step(device, normalized, now=now)
        error = matched if isinstance(matched, TwoFactorError) else None
        if not isinstance(matched, TwoFactorError):
            activated = (
                TOTPDevice.objects.pending()
                .filter(pk=device.pk)
                .update(
                    confirmed_at=now,
                    last_used_step=matched,
                    burnt_steps=[s for s in device.burnt_steps if s > matched],
                    failure_count=0,
                    locked_until=None,
                )
            )
            if not activated:
                raise NotEnrolled
            device.refresh_from_db()
            forget_app(user=user)
            signals.two_factor_enabled.send(sender=type(user), user=user)
    if error is not None:
        # Raised after the block, not inside it: a step that a drift message burnt
        # is saved, not rolled back with the refusal.
        raise error
    session.pop(ENROLLMENT_SESSION_KEY, None)
    return device


def disable_two_factor(*, user: AuthUser) -> None:
    """Turn 2FA off: the app, every key and every backup code go, in one transaction.
    Refused (TwoFactorRequired) while the security policy requires 2FA of the user;
    support's reset (services.reset_two_factor) still works for a lost phone."""
    if is_two_factor_required(user=user):
        raise TwoFactorRequired
    with transaction.atomic():
        if delete_second_factors(user=user):
            signals.two_factor_disabled.send(sender=type(user), user=user)


def delete_second_factors(*, user: AuthUser) -> bool:
    """Remove the app, every passkey and security key, and every backup code; True if
    there was a second factor (an app or a key) to remove.

    No signal of its own: callers say what happened (disabled, reset, or an
    account being closed, whose owner needs no separate news about its 2FA).
    """
    with transaction.atomic():
        devices, _ = TOTPDevice.objects.filter(user=user).delete()
        keys, _ = WebAuthnCredential.objects.filter(user=user).delete()
        BackupCode.objects.filter(user=user).delete()
        # Trust was earned with these factors: it goes with them.
        TrustedBrowser.objects.filter(user=user).delete()
    forget_app(user=user)
    return bool(devices or keys)


def _lock_user_row(user: AuthUser) -> None:
    list(get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values_list("pk"))
