"""The client's IP address, as far as it can be trusted."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies are known to append to X-Forwarded-For.

    Each trusted proxy appends the address it saw, so the client is the entry
    that many places from the right; anything left of it is client-supplied and
    could be forged to dodge per-IP rate limits.
    """
    remote_addr = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote_addr
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if len(forwarded) < hops:
        return remote_addr
    return forwarded[-hops]
