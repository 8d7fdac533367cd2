"""Bulk helpers for demo data and benchmarks (not used by the request path)."""

from collections.abc import Sequence

from django.utils import timezone

from twofactor import crypto, otp
from twofactor.models import TOTPDevice


def activate_devices_for(user_ids: Sequence[int]) -> int:
    """Give each user an active device (random secret each, encrypted), in one bulk insert."""
    now = timezone.now()
    devices = []
    for user_id in user_ids:
        devices.append(
            TOTPDevice(
                user_id=user_id,
                encrypted_secret=crypto.encrypt_secret(otp.generate_secret()),
                confirmed_at=now,
            )
        )
    TOTPDevice.objects.bulk_create(devices, batch_size=5_000)
    return len(devices)
