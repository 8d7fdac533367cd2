"""Signing a user out of every session at once (their second factor changed, or they asked).

Sessions carry a hash of the user's password and session_generation (see
User._get_session_auth_hash); Django ends any session whose hash no longer
matches on its next request. Bumping the generation ends them all at once,
without a list of sessions to search (database sessions are not indexed by user).
"""

from django.contrib.auth import get_user_model
from django.db.models import F

from accounts import device_cookies
from accounts.models import User
from twofactor import services as twofactor_services


def end_all_sessions(
    *, user: User, forget_browsers: bool = True, keep_trust: int | None = None
) -> int:
    """Every session of `user` ends (and so drops out of their list of sessions, whose
    records follow the session auth hash), and every browser they trusted asks for a
    code again; with forget_browsers, no browser is "known" to the password lock any
    more either (its device cookie is revoked). `keep_trust`: the id of one trusted
    browser that stays (the caller's own, whose session it keeps). Returns how many
    trusted browsers were forgotten."""
    get_user_model()._default_manager.filter(pk=user.pk).update(
        session_generation=F("session_generation") + 1
    )
    untrusted = twofactor_services.forget_trusted_browsers(
        user=user, announce=False, keep=keep_trust
    )
    if forget_browsers:
        device_cookies.revoke_all(email=user.get_username())
    user.refresh_from_db(fields=["session_generation"])
    if keep_trust is not None:
        # Its fingerprint covered the old generation: the browser it belongs to stays trusted.
        twofactor_services.renew_trusted_browser(user=user, pk=keep_trust)
    return untrusted
