"""The client's IP address, as far as it can be trusted."""

import ipaddress

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
        return _unmapped(remote_addr)
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if len(forwarded) < hops:
        return _unmapped(remote_addr)
    # What a proxy wrote may carry a port ("203.0.113.9:51234", "[2001:db8::1]:443")
    # or be no address at all ("unknown"): only a real address counts, else the peer.
    return _unmapped(_bare_address(forwarded[-hops]) or remote_addr)


def _bare_address(entry: str) -> str:
    """The IP address in a forwarded entry, without brackets or port; "" if there is none."""
    candidates = [entry]
    if entry.startswith("[") and "]" in entry:
        candidates.append(entry[1 : entry.index("]")])
    elif entry.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        candidates.append(entry.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return ""


def _unmapped(address: str) -> str:
    """An IPv4 client seen through a dual-stack socket or proxy as ::ffff:a.b.c.d is a.b.c.d.

    Left mapped, every IPv4 client would share one IPv6 /64 rate-limit bucket.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # not an address
        return address
    mapped = parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else None
    return str(mapped) if mapped is not None else address
