"""Device cookies: the owner's own browsers stay out of a stranger's password lock.

OWASP's "Slow down online guessing attacks with device cookies": a browser that
has completed a login for an account carries a signed token for that account.
Password failures from such a browser are charged to that token's own small
budget; failures from every other browser are charged to the account's shared
"unknown browsers" budget (and the client network's). So someone guessing from
elsewhere can lock out unknown browsers only, never the laptop the owner always
uses. A device cookie never skips a step (not the password, not the code): it
only decides whose budget a failure counts against.

One cookie holds the tokens of the last few accounts logged in on the browser.
It is signed (a forged or edited cookie is simply ignored), HttpOnly, and names
accounts only by an HMAC, so the cookie does not list whoever used the browser.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import DeviceToken, normalize_email_address

SIGNING_SALT = "accounts.device_cookies"
MAX_ACCOUNTS = 5
MAX_TOKENS_PER_ACCOUNT = 20
MAX_AGE = timedelta(days=365)
# Set on the request when a login completes (remember_login): the cookie's new tokens,
# already stored; the middleware sends them.
ISSUE_ATTR = "device_cookie_tokens"


def account_tag(email: str | None) -> str:
    """The account as the throttle and the cookie name it: an HMAC of the normalised address."""
    return salted_hmac(
        "accounts.device_cookies.account", normalize_email_address(email or ""), algorithm="sha256"
    ).hexdigest()[:32]


def device_token(request: HttpRequest, *, email: str | None) -> str | None:
    """This browser's token for the account, if it has completed a login for it, the
    token was not revoked since, and it is among the account's newest
    MAX_TOKENS_PER_ACCOUNT (one indexed lookup, only when the cookie names the account)."""
    tag = account_tag(email)
    # Asked twice per attempt (the login page's own check, then the password check):
    # the answer is kept for the request, one lookup.
    known = request.__dict__.setdefault("_device_tokens", {})
    if tag not in known:
        token = _read(request).get(tag)
        if token is not None and _hash(token) not in _counted_hashes(tag):
            token = None
        known[tag] = token
    return known[tag]


def _newest(tag: str) -> QuerySet[DeviceToken]:
    return DeviceToken.objects.filter(account=tag).order_by("-created_at", "-pk")


def _counted_hashes(tag: str) -> list[str]:
    # The bound is kept here, where a token is read: only completed logins add tokens,
    # so nothing short of one (a stranger's right password, say) can push an owner's
    # browser out of it. Rows past it are deleted by trim_tokens, whenever.
    return list(_newest(tag).values_list("token_hash", flat=True)[:MAX_TOKENS_PER_ACCOUNT])


def revoke_all(*, email: str) -> None:
    """Every browser of the account is unknown again (a reset, "sign out everywhere")."""
    DeviceToken.objects.filter(account=account_tag(email)).delete()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def remember_login(request: HttpRequest, *, email: str) -> None:
    """Called when a login completes: a fresh token for this browser and account (OWASP:
    a new one at every login; the old one is revoked, so a copy of the old cookie loses
    its budget). Stored now, in the transaction of the login's other writes where there
    is one (the user_logged_in receiver), and sent with the response."""
    tag = account_tag(email)
    tokens = getattr(request, ISSUE_ATTR, None) or _read(request)  # two logins, one request
    old = tokens.pop(tag, None)
    tokens[tag] = secrets.token_urlsafe(16)
    _store(tag, tokens[tag], replacing=old)
    while len(tokens) > MAX_ACCOUNTS:
        tokens.pop(next(iter(tokens)))  # the account logged in longest ago
    setattr(request, ISSUE_ATTR, tokens)


def trim_tokens(*, email: str) -> None:
    """Delete the account's tokens past its newest MAX_TOKENS_PER_ACCOUNT, which count for
    nothing already (device_token). Called where a right password was just hashed, or a
    passkey alone signed in, so the rows stay bounded; not in the code step that stores a
    token, so each new browser's code step since the last such call leaves a row over."""
    tag = account_tag(email)
    DeviceToken.objects.filter(account=tag).exclude(
        pk__in=_newest(tag).values("pk")[:MAX_TOKENS_PER_ACCOUNT]
    ).delete()


def _read(request: HttpRequest) -> dict[str, str]:
    raw = request.COOKIES.get(settings.DEVICE_COOKIE_NAME)
    if not raw:
        return {}
    try:
        tokens = signing.loads(raw, salt=SIGNING_SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return {}
    if not isinstance(tokens, dict) or not all(
        isinstance(tag, str) and isinstance(token, str) for tag, token in tokens.items()
    ):
        return {}
    return tokens


def _store(tag: str, token: str, *, replacing: str | None) -> None:
    # One statement: the browser's live token takes the new value (a returning browser),
    # or the new token is added (a new browser, or one whose token was revoked).
    if replacing and DeviceToken.objects.filter(account=tag, token_hash=_hash(replacing)).update(
        token_hash=_hash(token), created_at=timezone.now()
    ):
        return
    DeviceToken.objects.create(account=tag, token_hash=_hash(token))


class DeviceCookieMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        tokens = getattr(request, ISSUE_ATTR, None)
        # Not on a server error: the login's transaction (with the new token) rolled back,
        # and the browser must keep the token the database still knows.
        if tokens is not None and response.status_code < 500:
            response.set_cookie(
                settings.DEVICE_COOKIE_NAME,
                signing.dumps(tokens, salt=SIGNING_SALT, compress=True),
                max_age=int(MAX_AGE.total_seconds()),
                secure=settings.SECURE_COOKIES,
                httponly=True,
                samesite="Lax",
            )
        return response
