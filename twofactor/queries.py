"""Two-factor status for many users at once, as SQL expressions.

Staff lists (the All users page, the admin changelist, the CSV export) need
every row's status. Asking twofactor.services per row would be one query per
user; these helpers put the status into the caller's own query instead, as
correlated subqueries the database answers from twofactor's indexes.

The caller passes its user queryset in: twofactor never imports accounts.
"""

from django.db.models import (
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Now

from twofactor.models import BackupCode, TOTPDevice, two_factor_active_q

ACTIVATED = "activated"
NOT_ACTIVATED = "not_activated"


def _confirmed_devices() -> QuerySet:
    # Matches the partial index twofactor_confirmed_idx (user_id, confirmed_at)
    # WHERE confirmed_at IS NOT NULL, so each probe is one small index lookup.
    return TOTPDevice.objects.confirmed().filter(user=OuterRef("pk"))


def with_two_factor_status(users: QuerySet) -> QuerySet:
    """`users` annotated with two_factor_active, two_factor_enabled_at, unused_backup_codes,
    and two_factor_locked_until (when code entry is locked now, else None)."""
    unused_codes = (
        BackupCode.objects.unused()
        .filter(user=OuterRef("pk"))
        .order_by()
        .values("user")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return users.annotate(
        two_factor_active=two_factor_active_q("pk"),
        two_factor_enabled_at=Subquery(_confirmed_devices().values("confirmed_at")[:1]),
        unused_backup_codes=Coalesce(Subquery(unused_codes, output_field=IntegerField()), Value(0)),
        two_factor_locked_until=Subquery(
            _confirmed_devices().filter(locked_until__gt=Now()).values("locked_until")[:1]
        ),
    )


def filter_by_two_factor(users: QuerySet, status: str) -> QuerySet:
    """Only the users whose 2FA is ACTIVATED or NOT_ACTIVATED; any other value: all of them."""
    if status == ACTIVATED:
        return users.filter(Exists(_confirmed_devices()))
    if status == NOT_ACTIVATED:
        return users.filter(~Exists(_confirmed_devices()))
    return users


def activated_count() -> Subquery:
    """An expression: how many users have 2FA on, counted on the partial index alone.

    Cheaper than an EXISTS per user when the question is about every user (a
    device always belongs to an existing user: on_delete=CASCADE, one per user).
    """
    count = Func(F("pk"), function="COUNT", output_field=IntegerField())
    return Subquery(TOTPDevice.objects.confirmed().order_by().annotate(count=count).values("count"))


def count_activated() -> int:
    """How many users have 2FA on (the whole user table)."""
    return TOTPDevice.objects.confirmed().count()
