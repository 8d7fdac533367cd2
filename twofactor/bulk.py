"""Bulk helpers for demo data and benchmarks (not used by the request path)."""

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from twofactor import crypto
from twofactor.models import TOTPDevice


def _fast_secret() -> str:
    # The same 160 random bits as otp.generate_secret(), in one read:
    # pyotp.random_base32 draws each of the 32 characters separately (~0.25 ms),
    # which is over a minute for the 300,000 devices of a million-user benchmark.
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def activate_devices_for(user_ids: Sequence[int], *, now: datetime | None = None) -> int:
    """Give each user an active device (random secret each, encrypted), in one bulk insert."""
    now = now or timezone.now()
    devices = []
    for user_id in user_ids:
        devices.append(
            TOTPDevice(
                user_id=user_id,
                encrypted_secret=crypto.encrypt_secret(_fast_secret()),
                confirmed_at=now,
            )
        )
    TOTPDevice.objects.bulk_create(devices, batch_size=5_000)
    return len(devices)
