"""Limits on password guessing and on password-reset e-mails, kept in the database.

Password failures are charged to one of two budgets (accounts.device_cookies):

* a browser that has completed a login for the account (it holds that
  account's device cookie) has a small budget of its own;
* every other browser shares the account's "unknown browsers" budget and its
  client network's (IPv4 address or IPv6 /64; spraying many accounts).

A spent budget blocks only the browsers charged to it: a stranger's guesses
lock out unknown browsers, never the owner's own. Past a limit the attempt is
refused before any password is hashed, and such a refused attempt is not
counted again. Known and unknown e-mail addresses are counted alike, so the
limits say nothing about which accounts exist. A completed password reset
lifts every lock of the account.

The limits hold for every password check, not only the login page: the
ThrottleBackend below is the password check (Django's ModelBackend with the
limits around it), so "confirm it's you" and Change password are limited too.

Everything lives in the database (accounts.rate_windows), so the limits hold
on every app server, through a cache flush and while Redis is down.
"""

import ipaddress
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Q
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from accounts import device_cookies, rate_windows
from accounts.rate_windows import Rate, Window
from portal.client_ip import client_ip
from twofactor import services as twofactor_services
from twofactor.services import AUTHENTICATION_THROTTLED_ATTR

# Set on the request when a lock refused the attempt, so a page can say until when.
BLOCKED_UNTIL_ATTR = "password_blocked_until"


def client_network(request: HttpRequest) -> str:
    """The client's IPv4 address, or its IPv6 /64 (one subscriber's whole allocation)."""
    address = client_ip(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _network_tag(request: HttpRequest) -> str:
    # Hashed: a fixed length whatever the network text is, and no address kept in clear.
    return salted_hmac(
        "accounts.login_throttle.network", client_network(request), algorithm="sha256"
    ).hexdigest()[:32]


def _password_windows(request: HttpRequest, username: str | None) -> list[Window]:
    account = device_cookies.account_tag(username)
    token = device_cookies.device_token(request, email=username)
    if token is not None:
        rate = Rate.parse(settings.LOGIN_FAILURE_RATE_PER_DEVICE)
        return [Window(f"device:{token}", rate, account=account)]
    return [
        Window(f"account:{account}", Rate.parse(settings.LOGIN_FAILURE_RATE_PER_ACCOUNT), account),
        Window(
            f"network:{_network_tag(request)}",
            Rate.parse(settings.LOGIN_FAILURE_RATE_PER_NETWORK),
        ),
    ]


def blocked_until(request: HttpRequest, *, username: str | None) -> datetime | None:
    """When this browser may try a password for this account again (None: now). Counts nothing."""
    windows = _password_windows(request, username)
    return rate_windows.blocked_until([window.key for window in windows])


def lift_account_locks(*, email: str) -> None:
    """After a completed password reset: the owner proved the mailbox; every lock goes,
    and so does every device cookie (a stolen copy among them)."""
    rate_windows.forget_account(device_cookies.account_tag(email))
    device_cookies.revoke_all(email=email)


class ThrottleBackend(ModelBackend):
    """Django's ModelBackend with the limits around the password check.

    The attempt is counted before the password is hashed (and taken back if the
    password is right), so parallel guesses cannot all pass a check that none
    of them has counted yet; past a limit it is refused before any hashing.
    Every refusal raises PermissionDenied, which ends authenticate() at once:
    no later backend checks the same password again, and Django sends
    user_login_failed as for any failure.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password=None, **kwargs
    ):
        if request is None:  # no client to limit (a shell, a management command)
            return super().authenticate(request, username, password, **kwargs)
        windows = _password_windows(request, username)
        until = rate_windows.reserve(windows)
        if until is not None:
            # So a page can say why, and until when (authenticate() just returns None).
            setattr(request, AUTHENTICATION_THROTTLED_ATTR, True)
            setattr(request, BLOCKED_UNTIL_ATTR, until)
            raise PermissionDenied
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            raise PermissionDenied  # counted already; ModelBackend below must not hash again
        rate_windows.refund(windows)
        # Tokens past the bound (they count for nothing) are deleted here, beside the
        # hashing, not in the code step.
        device_cookies.trim_tokens(email=user.get_username())
        return user

    def get_user(self, user_id):
        # Every logged-in request loads its user here: with the user's app in the same
        # query, as the policy middleware, the page guards and the menu ask about it.
        users = twofactor_services.with_app_ids(get_user_model()._default_manager.all())
        try:
            user = users.get(pk=user_id)
        except ObjectDoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        # A staff page asks for the staff member's rights: their own and their groups' in
        # one query, not ModelBackend's two (a superuser's are every right, as there).
        if (
            user_obj.is_superuser
            or not user_obj.is_active
            or user_obj.is_anonymous
            or obj is not None
            or hasattr(user_obj, "_perm_cache")
        ):
            return super().get_all_permissions(user_obj, obj)
        rights = (
            Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
            .values_list("content_type__app_label", "codename")
            .order_by()
            .distinct()
        )
        user_obj._perm_cache = {f"{app}.{codename}" for app, codename in rights}
        return user_obj._perm_cache


# --- Password-reset e-mails --------------------------------------------------------------
def is_email_change_mail_allowed(*, user, new_email: str) -> bool:
    """Count one confirmation link; False when it would come too soon or too often.

    The link goes to an address nobody has confirmed yet: without a limit, anyone
    with an account could make the portal mail a stranger again and again.
    """
    target = device_cookies.account_tag(new_email)
    windows = [
        Window(f"email-change-to:{target}", Rate.parse(settings.RESET_MAIL_SPACING)),
        Window(f"email-change-by:{user.pk}", Rate.parse(settings.EMAIL_CHANGE_RATE_PER_ACCOUNT)),
    ]
    return rate_windows.take(windows)


def is_reset_mail_allowed(request: HttpRequest, email: str) -> bool:
    """Count one reset e-mail; False when it would come too soon or too often.

    Per address: at most one every few minutes and a daily cap; per network: an
    hourly cap (one sender spraying many inboxes). A stranger's requests can
    only space the owner's e-mails out: every request they make that is allowed
    sends the owner a working link. The owner's own browsers (device cookie)
    are exempt from the daily and network caps, so a stranger cannot use those
    caps to silence the owner's own requests.
    """
    account = device_cookies.account_tag(email)
    windows = [Window(f"reset-mail:{account}", Rate.parse(settings.RESET_MAIL_SPACING), account)]
    if device_cookies.device_token(request, email=email) is None:
        windows += [
            Window(
                f"reset-mail-day:{account}",
                Rate.parse(settings.RESET_MAIL_RATE_PER_ADDRESS),
                account,
            ),
            Window(
                f"reset-mail-net:{_network_tag(request)}",
                Rate.parse(settings.RESET_MAIL_RATE_PER_NETWORK),
            ),
        ]
    return rate_windows.take(windows)
