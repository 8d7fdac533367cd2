"""Trusted browsers: "Don't ask for a code on this browser for 30 days".

The browser keeps random tokens in one cookie (several accounts may trust one
browser, each with its own token); the server keeps each token's SHA-256, the
browser's description, and a fingerprint of the account (password, sessions,
second factor). A trusted browser skips the code step *after* the password:
the cookie alone, copied to another machine, opens nothing.

Voided by: Remove / Remove all, turning 2FA off or a reset, a new set of backup
codes (services.delete_second_factors, backup_codes), the policy switching the
feature off, and (through the fingerprint, whatever path did it) a new password
or "sign out everywhere".
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from twofactor import signals
from twofactor.client import request_ip, request_user_agent
from twofactor.conf import app_settings
from twofactor.models import TrustedBrowser, TwoFactorPolicy
from twofactor.services.status import confirmed_app_id
from twofactor.user_model import AuthUser

# Each account that trusts this browser has one token in the cookie; more than
# this and the oldest is dropped (its row stays until it expires or is removed).
MAX_TOKENS_PER_COOKIE = 5
TOKEN_SEPARATOR = "."  # noqa: S105 - not in base64url, not a password


class TrustNotOffered(Exception):
    """The security policy does not let browsers be trusted (switched off just now)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _fingerprint(user: AuthUser) -> str:
    """Changes with the password, "sign out everywhere" (the session auth hash covers
    both) and a second factor enrolled anew: any of them voids every trust."""
    device_id = confirmed_app_id(user=user)
    return salted_hmac(
        "twofactor.services.trusted_browsers",
        f"{user.get_session_auth_hash()}:{device_id}",
        algorithm="sha256",
    ).hexdigest()


def _cookie_tokens(request: HttpRequest) -> list[str]:
    value = request.COOKIES.get(app_settings.TRUSTED_BROWSER_COOKIE_NAME, "")
    # A forged cookie of any size costs one bounded query: at most this many hashes.
    tokens = [token for token in value.split(TOKEN_SEPARATOR) if 20 <= len(token) <= 64]
    return tokens[-MAX_TOKENS_PER_COOKIE:]


def is_trust_offered(*, policy: TwoFactorPolicy | None = None) -> bool:
    """May a browser be trusted now? The policy allows it, and trust lasts at least a day
    (TWOFACTOR_TRUSTED_BROWSER_DAYS = 0 switches the feature off from the settings)."""
    if app_settings.TRUSTED_BROWSER_DAYS < 1:
        return False
    return (policy or TwoFactorPolicy.current()).allow_trusted_browsers


def find_trusted_browser(
    *, request: HttpRequest, user: AuthUser, now: datetime | None = None
) -> TrustedBrowser | None:
    """This browser's trust for `user` if it holds one that is still good; its use is
    recorded on it (the login that follows is in the security log, as "trusted browser")."""
    tokens = _cookie_tokens(request)
    if not tokens or not is_trust_offered():
        return None
    now = now or timezone.now()
    browser = (
        TrustedBrowser.objects.valid(now=now)
        .filter(user=user, token_hash__in=[_hash(token) for token in tokens])
        .filter(fingerprint=_fingerprint(user))
        .first()
    )
    if browser is None:
        return None
    browser.last_used_at = now
    browser.ip = request_ip(request)
    browser.save(update_fields=["last_used_at", "ip"])
    return browser


def trust_browser(
    *, request: HttpRequest, response: HttpResponse, user: AuthUser, now: datetime | None = None
) -> TrustedBrowser:
    """Remember this browser for `user`: a new token in the cookie, its hash in a row.
    A token this browser already held for `user` is replaced (one row per browser)."""
    now = now or timezone.now()
    days = app_settings.TRUSTED_BROWSER_DAYS
    token = secrets.token_urlsafe(32)
    held = _cookie_tokens(request)
    with transaction.atomic():
        # Under the policy row's lock, read again: a superuser switching trust off at this
        # moment deletes every row under the same lock, so none is made after it.
        policy = TwoFactorPolicy.objects.select_for_update().filter(pk=1).first()
        if policy is not None and not is_trust_offered(policy=policy):
            raise TrustNotOffered
        TrustedBrowser.objects.filter(user=user, token_hash__in=[_hash(t) for t in held]).delete()
        alive = set(
            TrustedBrowser.objects.valid(now=now)
            .filter(token_hash__in=[_hash(t) for t in held])
            .values_list("token_hash", flat=True)
        )
        browser = TrustedBrowser.objects.create(
            user=user,
            token_hash=_hash(token),
            fingerprint=_fingerprint(user),
            user_agent=request_user_agent(request),
            ip=request_ip(request),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        signals.trusted_browser_added.send(sender=type(user), user=user, browser=browser)
    kept = [t for t in held if _hash(t) in alive][-(MAX_TOKENS_PER_COOKIE - 1) :]
    response.set_cookie(
        app_settings.TRUSTED_BROWSER_COOKIE_NAME,
        TOKEN_SEPARATOR.join([*kept, token]),
        max_age=int(timedelta(days=days).total_seconds()),
        path="/",  # what the __Host- prefix requires, with Secure and no Domain
        secure=app_settings.TRUSTED_BROWSER_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return browser


def prune_trusted_browsers(*, now: datetime | None = None) -> int:
    """Delete the trusts that have expired (their cookies are worth nothing already)."""
    deleted, _ = TrustedBrowser.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def renew_trusted_browser(*, user: AuthUser, pk: int) -> None:
    """Keep one trust through a change of the account's fingerprint that its own browser
    made ("sign out all other sessions" from it): its fingerprint is brought up to date."""
    TrustedBrowser.objects.filter(user=user, pk=pk).update(fingerprint=_fingerprint(user))


def list_trusted_browsers(*, user: AuthUser, now: datetime | None = None) -> list[TrustedBrowser]:
    """The user's trusted browsers that still count (a voided fingerprint is dropped here)."""
    now = now or timezone.now()
    return list(
        TrustedBrowser.objects.valid(now=now).filter(user=user, fingerprint=_fingerprint(user))
    )


def current_browser_trust(*, request: HttpRequest, user: AuthUser) -> int | None:
    """The id of this browser's trust for `user` (to mark "this browser" in the list)."""
    tokens = _cookie_tokens(request)
    if not tokens:
        return None
    return (
        TrustedBrowser.objects.filter(user=user, token_hash__in=[_hash(t) for t in tokens])
        .values_list("pk", flat=True)
        .first()
    )


def remove_trusted_browser(*, user: AuthUser, pk: int) -> bool:
    """Remove one of `user`'s trusted browsers (another user's id removes nothing)."""
    with transaction.atomic():
        count, _ = TrustedBrowser.objects.filter(user=user, pk=pk).delete()
        if count:
            signals.trusted_browsers_removed.send(sender=type(user), user=user, count=count)
    return bool(count)


def forget_trusted_browsers(
    *, user: AuthUser, announce: bool = True, keep: int | None = None
) -> int:
    """Every browser `user` trusted (but `keep`, an id) asks for a code again. `announce`:
    the user did this (Remove all); callers that void trust as part of a change with an
    event of its own ("sign out everywhere", a new password) pass False."""
    with transaction.atomic():
        browsers = TrustedBrowser.objects.filter(user=user)
        if keep is not None:
            browsers = browsers.exclude(pk=keep)
        count, _ = browsers.delete()
        if count and announce:
            signals.trusted_browsers_removed.send(sender=type(user), user=user, count=count)
    return count
