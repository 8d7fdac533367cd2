"""Links in e-mails point at the portal's configured address, not at the request's Host.

A Host header is the client's word: ALLOWED_HOSTS checks the name but not the
port, so a reset link built from it could point at another port (or, behind a
proxy that passes any Host, another site). With SITE_URL set, every link in a
mail uses it; without (development), the request's own address.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest


def absolute_url(request: HttpRequest, path: str) -> str:
    if settings.SITE_URL:
        return settings.SITE_URL.rstrip("/") + path
    return request.build_absolute_uri(path)


def domain_and_scheme(request: HttpRequest) -> tuple[str, bool]:
    """(host[:port], https?) for Django's password-reset e-mail."""
    if settings.SITE_URL:
        parts = urlsplit(settings.SITE_URL)
        return parts.netloc, parts.scheme == "https"
    return request.get_host(), request.is_secure()
