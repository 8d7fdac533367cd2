from django.core.checks import CheckMessage, Tags, Warning, register

from twofactor.conf import app_settings


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs, **kwargs) -> list[CheckMessage]:
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
