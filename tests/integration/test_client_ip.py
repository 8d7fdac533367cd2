"""X-Forwarded-For is a client-writable header: trusted only for the configured proxy hops."""

import pytest
from django.test import RequestFactory

from portal.client_ip import client_ip
from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"


def request_from(rf: RequestFactory, remote_addr: str, forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return rf.get("/", **extra)


def test_forwarded_for_is_ignored_without_a_trusted_proxy(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from(rf, "203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_behind_one_proxy_the_address_it_appended_is_the_client(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client forged the first entry; the proxy appended what it really saw.
    request = request_from(rf, "10.0.0.2", "198.51.100.1, 203.0.113.9")
    assert client_ip(request) == "203.0.113.9"


def test_behind_two_proxies_the_second_entry_from_the_right_is_the_client(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    request = request_from(rf, "10.0.0.3", "198.51.100.1, 203.0.113.9, 10.0.0.2")
    assert client_ip(request) == "203.0.113.9"


def test_ipv4_mapped_addresses_are_the_ipv4_client(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from(rf, "::ffff:203.0.113.9")) == "203.0.113.9"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request_from(rf, "10.0.0.2", "::ffff:198.51.100.1")) == "198.51.100.1"
    assert client_ip(request_from(rf, "10.0.0.2", "2001:db8::1")) == "2001:db8::1"


def test_short_forwarded_for_falls_back_to_the_peer_address(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request_from(rf, "10.0.0.3", "203.0.113.9")) == "10.0.0.3"


def spray(client, count: int, forwarded_for) -> None:
    """Wrong passwords at `count` different accounts (the per-network limit is what stops it)."""
    for attempt in range(count):
        client.post(
            LOGIN,
            {"username": f"someone{attempt}@example.com", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=forwarded_for(attempt),
        )


def test_rotating_forged_forwarded_for_does_not_dodge_the_password_lock(client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "4/h"
    spray(client, 4, lambda attempt: f"198.51.100.{attempt + 1}")
    response = client.post(
        LOGIN,
        {"username": user.email, "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert response.status_code == 429
    assert client.get("/accounts/profile/").status_code == 302


def test_behind_a_trusted_proxy_the_lock_follows_the_real_client(client, user, settings):
    # With one trusted proxy the forged left-hand entries change nothing: the
    # proxy-appended address (the same each time) is what gets locked.
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "4/h"
    spray(client, 4, lambda attempt: f"198.51.100.{attempt + 1}, 203.0.113.9")
    locked = client.post(
        LOGIN,
        {"username": user.email, "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.77, 203.0.113.9",
    )
    elsewhere = client.post(
        LOGIN,
        {"username": user.email, "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    assert locked.status_code == 429
    assert elsewhere.status_code == 302


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("unknown", "10.0.0.2"),
        ("x" * 300, "10.0.0.2"),
    ],
)
def test_a_forwarded_entry_counts_only_as_a_bare_address(rf, settings, forwarded, client):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request_from(rf, "10.0.0.2", forwarded)) == client


def test_a_long_junk_forwarded_entry_is_no_server_error(client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    response = client.post(
        LOGIN, {"username": user.email, "password": "wrong"}, HTTP_X_FORWARDED_FOR="y" * 300
    )
    assert response.status_code == 200
