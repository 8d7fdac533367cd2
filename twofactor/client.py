"""Who is asking, for the record of a trusted browser: its IP address and browser.

twofactor does not know the project's proxies: TWOFACTOR_CLIENT_IP names the function
that does (the project's own), else REMOTE_ADDR is taken as it is.
"""

import ipaddress
import re

from django.http import HttpRequest
from django.utils.module_loading import import_string

from twofactor.conf import app_settings


def request_ip(request: HttpRequest) -> str | None:
    path = app_settings.CLIENT_IP
    value = import_string(path)(request) if path else request.META.get("REMOTE_ADDR", "")
    try:
        # Client-controlled behind some proxies: junk must not reach an inet column.
        return str(ipaddress.ip_address(str(value or "").strip()))
    except ValueError:
        return None


# NUL and the other control characters: PostgreSQL refuses NUL in a text column (a 500,
# and with it a refused code's count rolled back), and none belongs in a browser's name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
USER_AGENT_MAX_LENGTH = 300


def request_user_agent(request: HttpRequest) -> str:
    """The browser's User-Agent as a record may keep it: cleaned and cut to its column."""
    return _CONTROL.sub("", request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX_LENGTH]
