import base64
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from twofactor import crypto

# WebAuthn caps a credential id at 1023 bytes; unpadded base64url of that is 1364 characters.
CREDENTIAL_ID_MAX_BYTES = 1023
CREDENTIAL_ID_MAX_LENGTH = 1364
CREDENTIAL_NAME_MAX_LENGTH = 64


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
        verbose_name = _("TOTP device")
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


def encode_credential_id(raw: bytes) -> str:
    """The stored form of a credential id: unpadded base64url, one spelling per id, so the
    unique index compares ids, not spellings."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_credential_id(stored: str) -> bytes:
    return base64.urlsafe_b64decode(stored + "=" * (-len(stored) % 4))


class WebAuthnCredentialQuerySet(models.QuerySet["WebAuthnCredential"]):
    def with_raw_id(self, raw: bytes) -> "WebAuthnCredentialQuerySet":
        """The credential whose id (as the authenticator sends it) is `raw`: at most one row,
        across all users."""
        return self.filter(credential_id=encode_credential_id(raw))


class WebAuthnCredential(models.Model):
    """A passkey or security key: a public key the user's authenticator signs challenges for.

    Many per user. Nothing here is secret (the private key never leaves the
    authenticator); what must hold is that one credential belongs to one account
    (credential_id is unique across all users) and that a counting key's
    sign_count only moves forward (checked and stored in one conditional UPDATE).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webauthn_credentials"
    )
    # Unpadded base64url of the raw id (encode_credential_id), not a BinaryField: Django's
    # BinaryField is not meant for lookups and a unique index on BLOB/bytea is not portable,
    # while a varchar of ASCII is unique-indexed and compared byte for byte (case matters)
    # by both SQLite and PostgreSQL, and it is the form the browser sends the id in.
    credential_id = models.CharField(max_length=CREDENTIAL_ID_MAX_LENGTH, unique=True)
    public_key = models.BinaryField()  # COSE_Key, as the authenticator encoded it
    # 0 for authenticators that do not count (most synced passkeys): no clone detection then.
    sign_count = models.PositiveBigIntegerField(default=0)
    # Hints for the browser (usb, nfc, ble, hybrid, internal), given back in allowCredentials.
    transports = models.JSONField(default=list, blank=True)
    # The authenticator model ("00000000-0000-0000-0000-000000000000" when it does not say).
    aaguid = models.CharField(max_length=36, blank=True)
    backup_eligible = models.BooleanField(default=False)  # may be synced (a passkey)
    backup_state = models.BooleanField(default=False)  # is synced, as of its last use
    name = models.CharField(max_length=CREDENTIAL_NAME_MAX_LENGTH)
    # Not auto_now_add: the service passes its own clock, as enrollment does.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = WebAuthnCredentialQuerySet.as_manager()

    class Meta:
        verbose_name = _("WebAuthn credential")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"WebAuthn credential {self.name!r} of user {self.user_id}"

    @property
    def raw_credential_id(self) -> bytes:
        return decode_credential_id(self.credential_id)

    @property
    def is_passkey(self) -> bool:
        """Synced (backup eligible) or built into a device or phone: what people call a
        passkey; otherwise a security key on a keyring. Only for words on a page."""
        return self.backup_eligible or bool({"internal", "hybrid"} & set(self.transports))


class SpentWebAuthnChallenge(models.Model):
    """A WebAuthn challenge that has been answered: its SHA-256, unique.

    A challenge kept in a session is popped by the request that answers it, but parallel
    requests with one cookie each load their own copy of the session; the unique row is
    what makes the challenge single use across them (the second insert fails, on any
    server). Rows are useless once the challenge would have expired anyway, and each new
    use deletes those.
    """

    digest = models.CharField(max_length=64, unique=True)
    spent_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"WebAuthn challenge spent at {self.spent_at:%Y-%m-%d %H:%M:%S}"


def two_factor_active_q(user_ref: str = "pk") -> Exists:
    """An Exists() expression: does the user row (OuterRef(user_ref)) have an active device?

    For annotating or filtering any user queryset in one indexed query.
    """
    return Exists(TOTPDevice.objects.confirmed().filter(user=OuterRef(user_ref)))


# Every logged-in request reads the policy: it is kept in the cache (one for every app
# server where that is Redis) and replaced when it is saved. A copy that a save cannot
# reach (another process's local-memory cache; Redis unreachable at that moment) lives at
# most this long.
POLICY_CACHE_KEY = "twofactor:policy"
POLICY_CACHE_SECONDS = 30


class TwoFactorPolicy(models.Model):
    """Who must have two-factor authentication, and what a browser may remember: one row.

    Read with TwoFactorPolicy.current() (the row is made with the defaults on first use;
    cached), changed only through services.update_policy (audited, superusers), which
    saves it (save() replaces the cached copy; a queryset's update() would not). The defaults are
    the safe ones for a portal whose staff can read every customer's account: 2FA
    required for staff, optional for customers.
    """

    require_for_staff = models.BooleanField(
        _("Require 2FA for staff"), default=True, db_default=True
    )
    require_for_everyone = models.BooleanField(
        _("Require 2FA for every user"), default=False, db_default=False
    )
    # 0: setup is forced at the first sign-in under the requirement.
    grace_period_days = models.PositiveSmallIntegerField(
        _("Grace period (days)"), default=7, db_default=7
    )
    allow_trusted_browsers = models.BooleanField(
        _("Let users trust a browser"), default=True, db_default=True
    )
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("two-factor policy")
        verbose_name_plural = _("two-factor policy")

    def __str__(self) -> str:
        return "Two-factor policy"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        # Forgotten now (the rest of this transaction reads the row), and at the commit
        # the committed row is put in its place: a request that read the old row before
        # the commit only adds what it read where nothing is (current()), so it cannot
        # put the old policy back over the new one.
        cache.delete(POLICY_CACHE_KEY)
        policies = type(self).objects
        transaction.on_commit(
            lambda: cache.set(POLICY_CACHE_KEY, policies.get(pk=self.pk), POLICY_CACHE_SECONDS)
        )

    @classmethod
    def current(cls, *, cached: bool = True) -> "TwoFactorPolicy":
        """The policy; `cached=False` reads the row itself (the page that edits it)."""
        policy = cache.get(POLICY_CACHE_KEY) if cached else None
        if not isinstance(policy, cls):
            policy, _ = cls.objects.get_or_create(pk=1)
            cache.add(POLICY_CACHE_KEY, policy, POLICY_CACHE_SECONDS)  # not over a newer one
        return policy

    def applies_to(self, user: Any) -> bool:
        """Does the requirement cover `user` (whether or not their 2FA is on)?"""
        if self.require_for_everyone:
            return True
        is_staff = getattr(user, "is_staff", False) or getattr(user, "is_superuser", False)
        return self.require_for_staff and is_staff


class PolicyDeadline(models.Model):
    """When a user's 2FA deadline started: the first time the requirement applied to them
    and they were seen without 2FA (as GitLab's grace period does: it starts at the first
    sign-in under the rule, not when a superuser ticked a box while the user was away).
    Kept once made, so switching the policy off and on again gives no new grace."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_deadline"
    )
    required_since = models.DateTimeField()

    def __str__(self) -> str:
        return f"2FA required of user {self.user_id} since {self.required_since:%Y-%m-%d}"


class TrustedBrowserQuerySet(models.QuerySet["TrustedBrowser"]):
    def valid(self, *, now: datetime) -> "TrustedBrowserQuerySet":
        return self.filter(expires_at__gt=now)


class TrustedBrowser(models.Model):
    """A browser whose owner said "Don't ask for a code on this browser": it skips the code
    step after the password (never the password) until expires_at.

    The browser holds a random token in a cookie; the server keeps only its SHA-256
    (the token is 256 random bits, so a fast hash is enough: nothing to brute-force)
    and a fingerprint of the account's password, sessions and second factor, so a
    password change or reset, "sign out everywhere" or a new second factor void the
    trust even where no code path deleted the row.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_browsers"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    fingerprint = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    objects = TrustedBrowserQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "expires_at"], name="twofactor_trusted_user_idx")]

    def __str__(self) -> str:
        return f"Trusted browser of user {self.user_id} (until {self.expires_at:%Y-%m-%d})"
