"""Shared by the security log, notification and user-agent tests: a browser-like client, the
events it leaves, and enabling 2FA through the pages. (Sudo mode without the dialog and codes
that are certainly wrong are fixtures in tests/conftest.py: log_in_with_sudo, wrong_code.)"""

import pyotp
from django.test import Client

from accounts.models import SecurityEvent
from twofactor.models import TOTPDevice

IP = "203.0.113.7"
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
BROWSER = "Firefox on Windows"

ENABLE_URL = "/2fa/enable/"
DISABLE_URL = "/2fa/disable/"
BACKUP_CODES_URL = "/2fa/backup-codes/"
LOGIN_URL = "/accounts/login/"
LOGIN_CODE_URL = "/2fa/login/"
PROFILE_URL = "/accounts/profile/"
HISTORY_URL = "/accounts/security/"


def browser_client() -> Client:
    """A test client whose every request comes from IP with USER_AGENT."""
    return Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT)


def events(user=None) -> list[SecurityEvent]:
    queryset = SecurityEvent.objects.order_by("id")
    if user is not None:
        queryset = queryset.filter(user=user)
    return list(queryset)


def kinds(user=None) -> list[str]:
    return [event.kind for event in events(user)]


def enable_through_pages(client: Client, user) -> str:
    """Enable 2FA the way a user does (open the dialog, type the code); returns the secret."""
    client.get(ENABLE_URL)
    secret = TOTPDevice.objects.get(user=user).secret  # the one the dialog shows
    response = client.post(ENABLE_URL, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret
