"""Fixed-window counters in the database, for limits that must hold everywhere.

Two uses, one table (accounts.models.RateWindow):

* attempts (`reserve`, then `refund` if it succeeded): an attempt is counted
  before the work it limits (hashing a password), so requests in flight at
  the same time cannot all slip under the limit; the one that reaches the
  limit blocks the key until a full period after it. A blocked attempt is
  refused and not counted, so retrying during a lock never pushes its end
  back.
* quotas (`take`): an action (sending an e-mail) is allowed only while every
  window it belongs to has room, and only an allowed action is counted.

Each change is one row under a row lock (select_for_update; SQLite serialises
writers anyway), so concurrent requests on any number of servers cannot count
past a limit. Rows are small and are pruned by `prune`.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import RateWindow

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    period: timedelta

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """ "20/h", "1/5m", "24/d": at most `limit` in `period`."""
        match = _RATE.match(text or "")
        if not match or int(match[1]) < 1:
            raise ValueError(f"Not a rate: {text!r} (expected e.g. '20/h' or '1/5m').")
        seconds = int(match[2] or 1) * _UNITS[match[3]]
        return cls(limit=int(match[1]), period=timedelta(seconds=seconds))


@dataclass(frozen=True)
class Window:
    key: str
    rate: Rate
    account: str = ""


def blocked_until(keys: list[str], *, now: datetime | None = None) -> datetime | None:
    """The latest end of a block on any of `keys`, or None. One query, counts nothing."""
    now = now or timezone.now()
    ends = RateWindow.objects.filter(key__in=keys, blocked_until__gt=now).values_list(
        "blocked_until", flat=True
    )
    # The filter leaves out NULL; the type of a nullable column's values does not know that.
    return max((end for end in ends if end is not None), default=None)


def reserve(windows: list[Window], *, now: datetime | None = None) -> datetime | None:
    """Count one attempt in every window, unless one is blocked: then its end (counting nothing).

    All rows are locked in key order for the check and the count together.
    """
    now = now or timezone.now()
    with transaction.atomic():
        rows = [_locked_row(window, now=now) for window in sorted(windows, key=lambda w: w.key)]
        blocked = [
            row.blocked_until
            for row in rows
            if row.blocked_until is not None and row.blocked_until > now
        ]
        if blocked:
            return max(blocked)
        by_key = {row.key: row for row in rows}
        for window in windows:
            row = by_key[window.key]
            if row.window_started_at + window.rate.period <= now:
                row.count, row.window_started_at, row.blocked_until = 0, now, None
            row.count += 1
            if row.count >= window.rate.limit:
                row.blocked_until = now + window.rate.period
            row.save(update_fields=["count", "window_started_at", "blocked_until"])
    return None


def refund(windows: list[Window], *, now: datetime | None = None) -> None:
    """Take back a reserved attempt that turned out fine (the right password).

    One conditional UPDATE per window, no read: a window at 0 is left alone (nothing to
    take back), and a block the attempt set goes with it (that attempt was no failure).
    """
    for window in sorted(windows, key=lambda w: w.key):
        RateWindow.objects.filter(key=window.key, count__gt=0).update(
            count=F("count") - 1,
            blocked_until=Case(
                When(count__lte=window.rate.limit, then=Value(None)),
                default=F("blocked_until"),
            ),
        )


def take(windows: list[Window], *, now: datetime | None = None) -> bool:
    """Count one action in every window if all have room; False (counting nothing) if not."""
    now = now or timezone.now()
    with transaction.atomic():
        # Locked in key order, so two requests sharing windows cannot deadlock.
        rows = [_locked_row(window, now=now) for window in sorted(windows, key=lambda w: w.key)]
        by_key = {row.key: row for row in rows}
        for window in windows:
            row = by_key[window.key]
            if row.window_started_at + window.rate.period <= now:
                row.count, row.window_started_at = 0, now
            if row.count >= window.rate.limit:
                return False
        for row in rows:
            row.count += 1
            row.save(update_fields=["count", "window_started_at"])
    return True


def forget_account(account: str) -> int:
    """Lift every lock and counter of one account (a completed password reset)."""
    deleted, _ = RateWindow.objects.filter(account=account).delete()
    return deleted


def prune(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete windows that ended long ago and block nothing."""
    cutoff = (now or timezone.now()) - older_than
    stale = Q(window_started_at__lt=cutoff) & (
        Q(blocked_until__isnull=True) | Q(blocked_until__lt=cutoff)
    )
    deleted, _ = RateWindow.objects.filter(stale).delete()
    return deleted


def _locked_row(window: Window, *, now: datetime) -> RateWindow:
    row = RateWindow.objects.select_for_update().filter(key=window.key).first()
    if row is not None:
        return row
    try:
        # A savepoint: on PostgreSQL a lost race must not abort the outer transaction.
        with transaction.atomic():
            return RateWindow.objects.create(
                key=window.key, account=window.account, count=0, window_started_at=now
            )
    except IntegrityError:
        # Another request created it between our SELECT and INSERT: lock theirs.
        return RateWindow.objects.select_for_update().get(key=window.key)
