"""Reading a user's two-factor state (no changes). For many users at once: twofactor.queries."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, QuerySet, Subquery
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


# The user's confirmed app (its id, or None) is asked by the page guards, the account menu
# and the trusted-browser check of one request. It is read once per request onto
# request.user: with the user, where the auth backend loads them with_app_ids, else by the
# policy middleware (remember_app); as Django's ModelBackend keeps permissions on
# the instance (_perm_cache); the services that confirm or delete an app forget it on the
# instance they were given, so a page rendered after Disable sees 2FA off. An instance
# that no request remembered for (a task, a command, a test) asks the database each time.
_APP_ID_CACHE = "_twofactor_app_id_cache"
_UNKNOWN = object()


def _read_app_id(user: AuthUser) -> int | None:
    return TOTPDevice.objects.confirmed().filter(user=user).values_list("pk", flat=True).first()


def confirmed_app_id(*, user: AuthUser) -> int | None:
    app_id = getattr(user, _APP_ID_CACHE, _UNKNOWN)
    if app_id is _UNKNOWN:
        return _read_app_id(user)
    return app_id  # type: ignore[return-value]  # an int or None, as remember_app kept it


def with_app_ids(users: QuerySet) -> QuerySet:
    """`users`, each read with its confirmed app's id in the same query (what remember_app
    would read): the auth backend loads a request's user so, one query instead of two."""
    apps = TOTPDevice.objects.confirmed().filter(user=OuterRef("pk")).order_by("pk")
    return users.annotate(**{_APP_ID_CACHE: Subquery(apps.values("pk")[:1])})


def remember_app(*, user: AuthUser) -> None:
    """Read the user's app once, for the rest of the request that loaded `user` (already
    read if the user was loaded with_app_ids)."""
    if not hasattr(user, _APP_ID_CACHE):
        setattr(user, _APP_ID_CACHE, _read_app_id(user))


def forget_app(*, user: AuthUser) -> None:
    """The user's app was confirmed or deleted: the next question asks the database."""
    try:
        delattr(user, _APP_ID_CACHE)  # through request.user's lazy proxy too
    except AttributeError:
        pass


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
    return confirmed_app_id(user=user) is not None


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
