"""Encryption of TOTP secrets at rest, and the keys of backup-code hashes.

MultiFernet with the keys from TWOFACTOR_ENCRYPTION_KEYS (newest first): the
first key encrypts, every key decrypts, so keys rotate without downtime
(`manage.py twofactor_rotate_keys` then re-encrypts old rows). Without
configured keys a key is derived from SECRET_KEY, for development only.

Backup codes are keyed the same way (TWOFACTOR_BACKUP_CODE_KEYS, newest first: the
first keys new sets, every key still checks the sets it made). A hash cannot be
re-keyed without its code, so an old key stays until the sets made with it are gone.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from twofactor.conf import app_settings
from twofactor.otp import BackupCodeKey

__all__ = [
    "InvalidToken",
    "backup_code_keys",
    "decrypt_secret",
    "encrypt_secret",
    "reset_keys",
    "rotate_secret",
]


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
    _backup_code_keys.cache_clear()


@lru_cache(maxsize=4)
def _backup_code_keys(
    keys: tuple[str, ...], secret_keys: tuple[str, ...]
) -> tuple[BackupCodeKey, ...]:
    # The configured keys first (the first makes new sets); then one derived from
    # SECRET_KEY and one from each of SECRET_KEY_FALLBACKS, which make new sets only where
    # no key is configured, and after that still check the sets they made: configuring keys
    # on a running site must not turn every owner's right codes into failures and a lock.
    # Derived: domain-separated from the Fernet key and from Django's own uses.
    configured = tuple(BackupCodeKey(key.encode()) for key in keys)
    derived = tuple(
        BackupCodeKey(hashlib.sha256(b"twofactor.backup-codes.v1:" + key.encode()).digest())
        for key in secret_keys
    )
    return configured + derived


def backup_code_keys() -> tuple[BackupCodeKey, ...]:
    """The keys of backup-code hashes, newest first: the first keys new sets."""
    secret_keys = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return _backup_code_keys(tuple(app_settings.BACKUP_CODE_KEYS), secret_keys)


def encrypt_secret(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode("ascii")


def decrypt_secret(token: str, *, ttl: int | None = None) -> str:
    """The plain text; InvalidToken if it was tampered with (or is older than `ttl` seconds)."""
    return _current().decrypt(token.encode("ascii"), ttl=ttl).decode()


def rotate_secret(token: str) -> str:
    """Re-encrypt `token` with the current (first) key."""
    return _current().rotate(token.encode("ascii")).decode("ascii")
