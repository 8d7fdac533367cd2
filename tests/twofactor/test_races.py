"""Concurrent requests on PostgreSQL (real row locks, one connection per thread).

Several browsers of one user press the same button at the same moment: no 500,
and never two of anything.
"""

import re

import pytest
from django.db import connection
from django.test import Client

from tests.accounts.security_helpers import log_in_with_sudo
from tests.concurrency import all_at_once
from tests.conftest import PASSWORD
from twofactor import otp, signals
from twofactor.models import BackupCode, TOTPDevice

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs real row locks and concurrent connections: run with DATABASE_URL=postgres://...",
)
BROWSERS = 8
CODE = re.compile(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b")


def browsers_with_sudo(user, count: int) -> list[Client]:
    return [log_in_with_sudo(Client(), user) for _ in range(count)]


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_enable_2fa_opened_in_many_browsers_at_once_leaves_one_pending_device(user):
    responses = all_at_once(browsers_with_sudo(user, BROWSERS), lambda c: c.get("/2fa/enable/"))
    assert [r.status_code for r in responses] == [200] * BROWSERS
    assert all(">Check</button>" in r.content.decode() for r in responses)
    assert TOTPDevice.objects.filter(user=user).count() == 1
    assert TOTPDevice.objects.get(user=user).confirmed_at is None


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_generate_backup_codes_in_many_browsers_at_once_keeps_exactly_one_set(user, enrolled):
    enrolled(user)
    clients = browsers_with_sudo(user, BROWSERS)
    generations: list[set[str]] = []

    def on_generated(sender, *, user, **kwargs) -> None:
        # Sent inside the transaction, under the device row lock: the true order.
        generations.append(
            set(BackupCode.objects.filter(user=user).values_list("code_hash", flat=True))
        )

    signals.backup_codes_generated.connect(on_generated)
    try:
        responses = all_at_once(clients, lambda c: c.post("/2fa/backup-codes/", {"generate": "1"}))
    finally:
        signals.backup_codes_generated.disconnect(on_generated)
    assert [r.status_code for r in responses] == [302] * BROWSERS  # on to the page of codes
    responses = [client.get("/2fa/backup-codes/new/") for client in clients]
    stored = set(BackupCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 5
    assert len(generations) == BROWSERS and all(len(g) == 5 for g in generations)
    assert generations[-1] == stored  # the last set generated is the one that survives
    # ...and exactly one page showed it, all five codes of it.
    reference = next(iter(stored))
    shown = [CODE.findall(r.content.decode())[:5] for r in responses]
    winners = [
        codes
        for codes in shown
        if {otp.hash_backup_code_like(code, reference=reference) for code in codes} == stored
    ]
    assert len(winners) == 1


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_wrong_passwords_at_once_count_exactly(user, settings):
    from accounts.models import RateWindow

    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "5/h"
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "1000/h"
    clients = [Client() for _ in range(BROWSERS)]
    responses = all_at_once(
        clients,
        lambda c: c.post("/accounts/login/", {"username": user.email, "password": "wrong"}),
    )
    assert {r.status_code for r in responses} <= {200, 429}
    window = RateWindow.objects.get(key__startswith="account:")
    # Counted before hashing, under the row lock: exactly the limit's worth of
    # passwords were checked, however many arrived at once; the rest were refused.
    assert window.count == 5 and window.blocked_until is not None
    assert sum(1 for r in responses if r.status_code == 429) == BROWSERS - 5
    right = Client().post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert right.status_code == 429
