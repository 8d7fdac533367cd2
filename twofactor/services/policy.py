"""The security policy: who must turn 2FA on, by when, and whether browsers may be trusted.

One row (TwoFactorPolicy), changed by superusers through update_policy. A user under
the requirement without 2FA has a deadline: their own, from the first time they were
seen under it (PolicyDeadline), plus the grace period as it is now. Before it they
see a reminder; after it every page but setup leads to setup (twofactor.middleware).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from twofactor import signals
from twofactor.models import PolicyDeadline, TrustedBrowser, TwoFactorPolicy
from twofactor.services.status import is_two_factor_enabled
from twofactor.user_model import AuthUser

# What a superuser may change, with the words the log, the e-mail and the page use for it
# (in English for the log: policy_changed; in the superuser's language on the page).
POLICY_FIELDS = {
    "require_for_staff": _("2FA required for staff"),
    "require_for_everyone": _("2FA required for every user"),
    "grace_period_days": _("grace period"),
    "allow_trusted_browsers": _("trusted browsers allowed"),
}
MAX_GRACE_PERIOD_DAYS = 365


@dataclass(frozen=True)
class Requirement:
    """A user must turn 2FA on by `deadline` (they do not have it yet)."""

    deadline: datetime

    def is_past(self, *, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.deadline


def get_policy(*, cached: bool = True) -> TwoFactorPolicy:
    """The policy (from the cache; `cached=False`: the row itself, for the page that edits
    it, so a form is never filled from a copy older than the last save)."""
    return TwoFactorPolicy.current(cached=cached)


def two_factor_requirement(
    *, user: AuthUser, now: datetime | None = None, policy: TwoFactorPolicy | None = None
) -> Requirement | None:
    """The requirement `user` is under and has not met yet, or None (not required, or on)."""
    policy = policy or get_policy()
    if not policy.applies_to(user) or is_two_factor_enabled(user=user):
        return None
    now = now or timezone.now()
    since = _required_since(user=user, now=now)
    return Requirement(deadline=since + timedelta(days=policy.grace_period_days))


def is_two_factor_required(*, user: AuthUser, policy: TwoFactorPolicy | None = None) -> bool:
    """Must `user` keep 2FA on (so Disable is refused)? Regardless of whether it is on now."""
    return (policy or get_policy()).applies_to(user)


def _required_since(*, user: AuthUser, now: datetime) -> datetime:
    row = PolicyDeadline.objects.filter(user=user).values_list("required_since", flat=True).first()
    if row is not None:
        return row
    try:
        # Its own savepoint: a parallel request that made the row first is not an error
        # of the caller's transaction (the unique user column decides, on any server).
        with transaction.atomic():
            PolicyDeadline.objects.create(user=user, required_since=now)
    except IntegrityError:
        return PolicyDeadline.objects.get(user=user).required_since
    return now


def update_policy(*, actor: AuthUser, now: datetime | None = None, **values: object) -> list[str]:
    """Change the policy (only the POLICY_FIELDS given); returns the words for what changed,
    in the active language, for the page. policy_changed announces them with the actor in
    English, as the log keeps them. Nothing changed: nothing announced."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"Not policy fields: {', '.join(sorted(unknown))}")
    grace = values.get("grace_period_days")
    if grace is not None and not (isinstance(grace, int) and 0 <= grace <= MAX_GRACE_PERIOD_DAYS):
        raise ValueError(f"The grace period is 0 to {MAX_GRACE_PERIOD_DAYS} days.")
    with transaction.atomic():
        TwoFactorPolicy.current(cached=False)  # the row exists before it is locked
        policy = TwoFactorPolicy.objects.select_for_update().get(pk=1)
        changed = [name for name, value in values.items() if getattr(policy, name) != value]
        if not changed:
            return []
        for name in changed:
            setattr(policy, name, values[name])
        policy.updated_at = now or timezone.now()
        policy.updated_by = actor
        policy.save()
        if "allow_trusted_browsers" in changed and not policy.allow_trusted_browsers:
            # Off means off: no trust left behind to come back if it is switched on again.
            TrustedBrowser.objects.all().delete()
        with translation.override("en"):
            recorded = [_describe(policy, name) for name in changed]
        signals.policy_changed.send(sender=type(actor), user=actor, changes=recorded, policy=policy)
    return [_describe(policy, name) for name in changed]


def _describe(policy: TwoFactorPolicy, name: str) -> str:
    value = getattr(policy, name)
    setting = POLICY_FIELDS[name]
    if name == "grace_period_days":
        return ngettext("%(setting)s: %(days)s day", "%(setting)s: %(days)s days", value) % {
            "setting": setting,
            "days": value,
        }
    if value:
        return gettext("%(setting)s: on") % {"setting": setting}
    return gettext("%(setting)s: off") % {"setting": setting}
