"""Passkeys and security keys as rows, for tests that need keys to exist, not to work
(the ceremonies themselves: tests/twofactor/soft_authenticator.py)."""

import secrets

from twofactor.models import WebAuthnCredential, encode_credential_id


def add_keys(user, count: int) -> None:
    """`count` keys for `user`, named "Key 1", "Key 2"... (a random id, a token public key)."""
    for number in range(count):
        WebAuthnCredential.objects.create(
            user=user,
            credential_id=encode_credential_id(secrets.token_bytes(16)),
            public_key=b"\xa5\x01\x02\x03\x26",
            name=f"Key {number + 1}",
        )
