"""Reading a user's two-factor state (no changes). For many users at once: twofactor.queries."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from twofactor.models import BackupCode, TOTPDevice, WebAuthnCredential
from twofactor.user_model import AuthUser


@dataclass(frozen=True)
class TwoFactorStatus:
    """A user's second factors. "Activated" means an app or a key proves the second factor;
    keys are added beside the app (finish_registration refuses, under the app's row lock,
    when it is not on) and go with it (Disable 2FA, a reset), so "an app or a key" is "an
    app", and `active` is asked of the app alone: one truth for every page and guard."""

    active: bool
    has_app: bool
    keys: int  # passkeys and security keys
    enabled_at: datetime | None
    unused_backup_codes: int
    has_backup_codes: bool


def get_status(*, user: AuthUser) -> TwoFactorStatus:
    device = TOTPDevice.objects.confirmed().filter(user=user).first()
    keys = WebAuthnCredential.objects.filter(user=user).count()
    codes = list(BackupCode.objects.filter(user=user).values_list("used_at", flat=True))
    return TwoFactorStatus(
        active=device is not None,
        has_app=device is not None,
        keys=keys,
        enabled_at=device.confirmed_at if device else None,
        unused_backup_codes=sum(1 for used_at in codes if used_at is None),
        has_backup_codes=bool(codes),
    )


def is_two_factor_enabled(*, user: AuthUser) -> bool:
    """Is 2FA on? An app or a key; a key never exists without the app (TwoFactorStatus)."""
    return TOTPDevice.objects.confirmed().filter(user=user).exists()


def unused_backup_code_count(*, user: AuthUser) -> int:
    return BackupCode.objects.unused().filter(user=user).count()


def code_entry_locked_until(*, user: AuthUser, now: datetime | None = None) -> datetime | None:
    """When code entry unlocks, if it is locked now (too many wrong codes); else None."""
    return (
        TOTPDevice.objects.locked(now=now or timezone.now())
        .filter(user=user)
        .values_list("locked_until", flat=True)
        .first()
    )
