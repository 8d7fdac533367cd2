from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from twofactor import crypto


class TOTPDeviceQuerySet(models.QuerySet["TOTPDevice"]):
    def confirmed(self) -> "TOTPDeviceQuerySet":
        """Active devices: their first code was right (matches twofactor_confirmed_idx)."""
        return self.filter(confirmed_at__isnull=False)

    def pending(self) -> "TOTPDeviceQuerySet":
        """Devices shown in an enable dialog whose first code has not come yet."""
        return self.filter(confirmed_at__isnull=True)

    def locked(self, *, now: datetime) -> "TOTPDeviceQuerySet":
        """Active devices whose code entry is locked at `now` (too many wrong codes)."""
        return self.confirmed().filter(locked_until__gt=now)


class BackupCodeQuerySet(models.QuerySet["BackupCode"]):
    def unused(self) -> "BackupCodeQuerySet":
        return self.filter(used_at__isnull=True)


class TOTPDevice(models.Model):
    """A user's authenticator app: one per user, pending until the first valid code.

    The replay guard (last_used_step) and the throttle (failure_count,
    locked_until) live on this row, next to the secret they protect, so one row
    lock serialises every check for the account across all app servers.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    encrypted_secret = models.TextField(editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Highest time step ever accepted (enrollment included); -1: none yet.
    last_used_step = models.BigIntegerField(default=-1)
    # Future steps whose codes a "your clock is off" message revealed as valid later:
    # each is refused when its time comes, without blocking the steps before it.
    burnt_steps = models.JSONField(default=list, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    lock_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Not auto_now_add: enrollment passes its own clock, which the 10-minute expiry uses.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TOTPDeviceQuerySet.as_manager()

    class Meta:
        verbose_name = "TOTP device"
        indexes = [
            # "Activated" filters and sorts on this; partial so it stays small.
            models.Index(
                fields=["user", "confirmed_at"],
                name="twofactor_confirmed_idx",
                condition=Q(confirmed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        state = "active" if self.confirmed_at else "pending"
        return f"TOTP device of user {self.user_id} ({state})"

    @property
    def secret(self) -> str:
        return crypto.decrypt_secret(self.encrypted_secret)

    @secret.setter
    def secret(self, value: str) -> None:
        self.encrypted_secret = crypto.encrypt_secret(value)


class BackupCode(models.Model):
    """One single-use backup code, stored only as a salted hash (all five share the salt)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backup_codes"
    )
    code_hash = models.CharField(max_length=255)
    used_at = models.DateTimeField(null=True, blank=True)
    # When the set was shown (once): claimed by one UPDATE, so two pages opened at
    # once in one session cannot both show it.
    shown_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BackupCodeQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "code_hash"], name="twofactor_backup_lookup_idx")]

    def __str__(self) -> str:
        return f"Backup code of user {self.user_id} ({'used' if self.used_at else 'unused'})"


def two_factor_active_q(user_ref: str = "pk") -> Exists:
    """An Exists() expression: does the user row (OuterRef(user_ref)) have an active device?

    For annotating or filtering any user queryset in one indexed query.
    """
    return Exists(TOTPDevice.objects.confirmed().filter(user=OuterRef(user_ref)))
