"""Signing a user out of their sessions when their second factor changes under them.

Sessions carry a hash of the user's password and session_generation (see
User._get_session_auth_hash); Django ends any session whose hash no longer
matches on its next request. Bumping the generation ends them all at once,
without a list of sessions to search (database sessions are not indexed by user).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import F
from django.dispatch import receiver

from accounts import device_cookies
from twofactor import signals as twofactor_signals


def end_all_sessions(*, user: AbstractBaseUser) -> None:
    get_user_model()._default_manager.filter(pk=user.pk).update(
        session_generation=F("session_generation") + 1
    )
    # Signed out everywhere: no browser is "known" to the password lock any more either.
    device_cookies.revoke_all(email=user.get_username())
    user.refresh_from_db(fields=["session_generation"])


@receiver(twofactor_signals.two_factor_enabled, dispatch_uid="sign_out_2fa_enabled")
def on_two_factor_enabled(sender, *, user, **kwargs) -> None:
    # A session opened with the password alone before 2FA was on would stay logged in
    # for weeks: it may be exactly the intruder the user turned 2FA on against. The
    # session that turned it on just proved the code and is kept by the enable view
    # (update_session_auth_hash).
    end_all_sessions(user=user)


@receiver(twofactor_signals.two_factor_disabled, dispatch_uid="sign_out_2fa_reset")
def on_two_factor_reset(sender, *, user, actor=None, reason="", **kwargs) -> None:
    # A reset by support (web or command line, always with a reason) follows a lost
    # or stolen phone: whoever holds that phone's sessions is signed out with it.
    # Turning 2FA off oneself, from a session that passed it, signs out no one.
    if actor is not None or reason:
        end_all_sessions(user=user)
