"""Password guessing limits on top of django-axes' (email, IP) lock.

Axes locks one e-mail address from one IP after a few failures. That alone
lets an attacker with many addresses (an IPv6 /64 holds 2**64) keep guessing
one account, or one address spray a few guesses over every account. So failed
logins are also counted per account and per client network (django-ratelimit,
in the shared cache), and past either limit the login form refuses before any
password is hashed. Known and unknown e-mail addresses are counted alike, so
the limit says nothing about which accounts exist.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

from accounts.models import normalize_email_address
from portal.client_ip import client_ip

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


def _account_key(group: str, request: HttpRequest) -> str:
    return normalize_email_address(request.POST.get("username", ""))


def _network_key(group: str, request: HttpRequest) -> str:
    return client_network(request)


def _limits() -> list[tuple[str, object, str]]:
    return [
        (ACCOUNT_GROUP, _account_key, settings.LOGIN_FAILURE_RATE_PER_ACCOUNT),
        (NETWORK_GROUP, _network_key, settings.LOGIN_FAILURE_RATE_PER_NETWORK),
    ]


def is_throttled(request: HttpRequest) -> bool:
    """Has this account or this network failed too often lately? (Counts nothing.)"""
    return any(
        is_ratelimited(request, group=group, key=key, rate=rate, increment=False)
        for group, key, rate in _limits()
    )


def record_failure(request: HttpRequest) -> None:
    for group, key, rate in _limits():
        is_ratelimited(request, group=group, key=key, rate=rate, increment=True)


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
