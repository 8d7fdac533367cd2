"""Password guessing limits on top of django-axes' (email, IP) lock.

Axes locks one e-mail address from one IP after a few failures. That alone
lets an attacker with many addresses (an IPv6 /64 holds 2**64) keep guessing
one account, or one address spray a few guesses over every account. So failed
logins are also counted per account and per client network (django-ratelimit,
in the shared cache), and past either limit the login form refuses before any
password is hashed. Known and unknown e-mail addresses are counted alike, so
the limit says nothing about which accounts exist.

The limits hold for every password check, not only the login page: the
ThrottleBackend below refuses inside authenticate() (so "confirm it's you"
before a 2FA change is limited too), and failures are counted from Django's
user_login_failed signal, which every failed authenticate() sends.
"""

import ipaddress

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

from accounts.models import normalize_email_address
from portal.client_ip import client_ip
from twofactor.services import AUTHENTICATION_THROTTLED_ATTR

ACCOUNT_GROUP = "login-failures-account"
NETWORK_GROUP = "login-failures-network"
RESET_MAIL_ADDRESS_GROUP = "password-reset-mail-address"
RESET_MAIL_NETWORK_GROUP = "password-reset-mail-network"


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


def _network_key(group: str, request: HttpRequest) -> str:
    return client_network(request)


def _limits(username: str | None) -> list[tuple[str, object, str]]:
    account = normalize_email_address(username or "")
    return [
        (ACCOUNT_GROUP, lambda group, request: account, settings.LOGIN_FAILURE_RATE_PER_ACCOUNT),
        (NETWORK_GROUP, _network_key, settings.LOGIN_FAILURE_RATE_PER_NETWORK),
    ]


def is_throttled(request: HttpRequest, *, username: str | None) -> bool:
    """Has this account or this network failed too often lately? (Counts nothing.)"""
    return any(
        is_ratelimited(request, group=group, key=key, rate=rate, increment=False)
        for group, key, rate in _limits(username)
    )


def record_failure(request: HttpRequest, *, username: str | None) -> None:
    for group, key, rate in _limits(username):
        is_ratelimited(request, group=group, key=key, rate=rate, increment=True)


class ThrottleBackend:
    """Listed before ModelBackend: a throttled attempt is refused before any hashing.

    It never logs anyone in; raising PermissionDenied stops authenticate() at once
    (Django then sends user_login_failed, which counts the attempt like any other).
    Deliberately not a BaseBackend: without get_user() it can never be the backend
    a session is tied to (the test client's force_login picks the first that has one).
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, **kwargs
    ) -> None:
        if request is not None and is_throttled(request, username=username):
            # So a page can say why (authenticate() itself just returns None).
            setattr(request, AUTHENTICATION_THROTTLED_ATTR, True)
            raise PermissionDenied
        return None


@receiver(user_login_failed, dispatch_uid="login_throttle_count_failure")
def on_user_login_failed(
    sender, *, credentials: dict, request: HttpRequest | None, **kwargs
) -> None:
    # An attempt refused by the throttle itself is not counted again: retrying the
    # right password while throttled does not push the end of the throttle back.
    if request is not None and not getattr(request, AUTHENTICATION_THROTTLED_ATTR, False):
        record_failure(request, username=credentials.get("username"))


def is_reset_mail_allowed(request: HttpRequest, email: str) -> bool:
    """Count one password-reset request; False once the address or network asked too often."""
    address = normalize_email_address(email)
    limits = [
        (
            RESET_MAIL_ADDRESS_GROUP,
            lambda group, request: address,
            settings.RESET_MAIL_RATE_PER_ADDRESS,
        ),
        (RESET_MAIL_NETWORK_GROUP, _network_key, settings.RESET_MAIL_RATE_PER_NETWORK),
    ]
    limited = [
        is_ratelimited(request, group=group, key=key, rate=rate, increment=True)
        for group, key, rate in limits
    ]
    return not any(limited)
