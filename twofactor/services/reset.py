"""Support's reset, for a user who lost their phone: 2FA off, done by someone else.

The rules live here, whichever entry point (the staff page, the command line)
asks: reset_two_factor raises ResetRefused, and reset_refusal lets a page say
so before it shows a form.
"""

from django.db import transaction
from django.utils.translation import gettext

from twofactor import signals
from twofactor.services.enrollment import delete_second_factors
from twofactor.services.errors import ResetRefused, ResetRule
from twofactor.user_model import AuthUser


def reset_refusal(*, user: AuthUser, actor: AuthUser | None) -> ResetRefused | None:
    """Why `actor` may not reset `user`'s 2FA, or None when they may.

    actor=None is the command line: an operator with shell access, who has no
    account in the portal to compare with.
    """
    if actor is None:
        return None
    if actor.pk == user.pk:
        # Resetting yourself would skip the password and code that Disable 2FA asks for.
        return ResetRefused(
            ResetRule.OWN_ACCOUNT,
            gettext(
                "You cannot reset your own two-factor authentication here. "
                "Use Disable 2FA on your profile."
            ),
        )
    if not getattr(actor, "is_superuser", False) and (
        getattr(user, "is_staff", False) or getattr(user, "is_superuser", False)
    ):
        # Support may help customers, not strip a colleague's (or an administrator's)
        # second factor: that colleague may hold rights the actor does not.
        return ResetRefused(
            ResetRule.STAFF_TARGET,
            gettext("Only a superuser can reset the two-factor authentication of a staff member."),
        )
    return None


def reset_two_factor(*, user: AuthUser, actor: AuthUser | None, reason: str) -> None:
    """Remove `user`'s device and backup codes; `reason` is required (the user is told it)."""
    reason = (reason or "").strip()
    # Words, not just whitespace or invisible characters (a zero-width space strips to
    # itself): the user is told the reason.
    if not any(character.isalnum() for character in reason):
        raise ResetRefused(
            ResetRule.NO_REASON,
            gettext("A reason is required: it is recorded and the user is told."),
        )
    refusal = reset_refusal(user=user, actor=actor)
    if refusal is not None:
        raise refusal
    with transaction.atomic():
        # Announced only by the request that removed something: two staff members
        # resetting at once record (and e-mail, and sign out) once, naming who did it.
        if delete_second_factors(user=user):
            signals.two_factor_reset.send(sender=type(user), user=user, actor=actor, reason=reason)
