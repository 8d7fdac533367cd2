"""Concurrent requests on PostgreSQL (real row locks, one connection per thread).

Several browsers of one user press the same button at the same moment: no 500,
and never two of anything.
"""

import re

import pytest
from django.test import Client

from tests.concurrency import all_at_once
from twofactor import crypto, otp, signals
from twofactor.models import BackupCode, TOTPDevice

BROWSERS = 8
CODE = re.compile(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_enable_2fa_opened_in_many_browsers_at_once_leaves_one_pending_device(
    user, log_in_with_sudo
):
    clients = [log_in_with_sudo(Client(), user) for _ in range(BROWSERS)]
    responses = all_at_once(clients, lambda c: c.get("/2fa/enable/"))
    assert [r.status_code for r in responses] == [200] * BROWSERS
    assert all(">Check</button>" in r.content.decode() for r in responses)
    assert TOTPDevice.objects.filter(user=user).count() == 1
    assert TOTPDevice.objects.get(user=user).confirmed_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_generate_backup_codes_in_many_browsers_at_once_keeps_exactly_one_set(
    user, enrolled, log_in_with_sudo
):
    enrolled(user)
    clients = [log_in_with_sudo(Client(), user) for _ in range(BROWSERS)]
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
    shown = [CODE.findall(r.content.decode())[:5] for r in responses]
    stored_set, keys = sorted(stored), crypto.backup_code_keys()
    winners = [
        codes
        for codes in shown
        if {otp.match_backup_code(code, stored_set, keys=keys) for code in codes} == set(range(5))
    ]
    assert len(winners) == 1
