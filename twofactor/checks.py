from typing import Any

from cryptography.fernet import Fernet
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from twofactor.conf import app_settings


@register(Tags.security)
def check_encryption_keys_are_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    # A key that is no Fernet key would make every page that reads a secret a 500:
    # said by every check (runserver, migrate, check --deploy), not at the first login.
    errors: list[CheckMessage] = []
    for position, key in enumerate(app_settings.ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"TWOFACTOR_ENCRYPTION_KEYS: key {position} is not a Fernet key.",
                    hint="Each key is 32 random bytes, url-safe base64: "
                    "python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'",
                    id="twofactor.E001",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    # The fallback key is derived from SECRET_KEY: rotating SECRET_KEY would make
    # every stored TOTP secret unreadable, and a leaked SECRET_KEY would expose them.
    if app_settings.ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "TWOFACTOR_ENCRYPTION_KEYS is not set: TOTP secrets are encrypted with a key "
            "derived from SECRET_KEY (development only).",
            hint="Set TWOFACTOR_ENCRYPTION_KEYS to one or more Fernet keys, newest first.",
            id="twofactor.W001",
        )
    ]
