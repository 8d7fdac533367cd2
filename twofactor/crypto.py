"""Encryption of TOTP secrets at rest.

MultiFernet with the keys from TWOFACTOR_ENCRYPTION_KEYS (newest first): the
first key encrypts, every key decrypts, so keys rotate without downtime
(`manage.py twofactor_rotate_keys` then re-encrypts old rows). Without
configured keys a key is derived from SECRET_KEY, for development only.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from twofactor.conf import app_settings

__all__ = ["InvalidToken", "decrypt_secret", "encrypt_secret", "rotate_secret", "reset_keys"]


def _derived_development_key(secret_key: str) -> bytes:
    # Domain-separated so the Fernet key is not SECRET_KEY's plain hash.
    digest = hashlib.sha256(b"twofactor.crypto.v1:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    raw_keys = [key.encode() for key in keys] or [_derived_development_key(secret_key)]
    return MultiFernet([Fernet(key) for key in raw_keys])


def _current() -> MultiFernet:
    return _fernet(tuple(app_settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def reset_keys() -> None:
    """Forget cached key sets (tests that override the keys call this)."""
    _fernet.cache_clear()


def encrypt_secret(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode("ascii")


def decrypt_secret(token: str, *, ttl: int | None = None) -> str:
    """The plain text; InvalidToken if it was tampered with (or is older than `ttl` seconds)."""
    return _current().decrypt(token.encode("ascii"), ttl=ttl).decode()


def rotate_secret(token: str) -> str:
    """Re-encrypt `token` with the current (first) key."""
    return _current().rotate(token.encode("ascii")).decode("ascii")
