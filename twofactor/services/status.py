"""Reading a user's two-factor state (no changes). For many users at once: twofactor.queries."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from twofactor.models import BackupCode, TOTPDevice
from twofactor.user_model import AuthUser


@dataclass(frozen=True)
class TwoFactorStatus:
    active: bool
    enabled_at: datetime | None
    unused_backup_codes: int
    has_backup_codes: bool


def get_status(*, user: AuthUser) -> TwoFactorStatus:
    device = TOTPDevice.objects.confirmed().filter(user=user).first()
    codes = list(BackupCode.objects.filter(user=user).values_list("used_at", flat=True))
    return TwoFactorStatus(
        active=device is not None,
        enabled_at=device.confirmed_at if device else None,
        unused_backup_codes=sum(1 for used_at in codes if used_at is None),
        has_backup_codes=bool(codes),
    )


def is_two_factor_enabled(*, user: AuthUser) -> bool:
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
