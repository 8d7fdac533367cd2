import ipaddress
from typing import Any
from urllib.parse import urlsplit

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


# Shorter than this, a key could be guessed: and with the key, a stolen database tests
# backup-code guesses again (at the scrypt's cost), which the key is there to prevent.
MIN_BACKUP_CODE_KEY_LENGTH = 32


@register(Tags.security)
def check_backup_code_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for position, key in enumerate(app_settings.BACKUP_CODE_KEYS, start=1):
        if not isinstance(key, str) or len(key.strip()) < MIN_BACKUP_CODE_KEY_LENGTH:
            errors.append(
                Error(
                    f"TWOFACTOR_BACKUP_CODE_KEYS: key {position} is shorter than "
                    f"{MIN_BACKUP_CODE_KEY_LENGTH} characters.",
                    hint="Each key is a random string: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                    id="twofactor.E004",
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


@register(Tags.security, deploy=True)
def check_backup_code_keys_set(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    # Derived from SECRET_KEY, the key still keeps a stolen database from testing guesses;
    # but a leaked SECRET_KEY would give it away, and rotating SECRET_KEY without keeping
    # the old one in SECRET_KEY_FALLBACKS would void every set.
    if app_settings.BACKUP_CODE_KEYS:
        return []
    return [
        Warning(
            "TWOFACTOR_BACKUP_CODE_KEYS is not set: backup codes are keyed with a key derived "
            "from SECRET_KEY.",
            hint="Set TWOFACTOR_BACKUP_CODE_KEYS to one or more random keys, newest first; "
            "sets made with the derived key keep working.",
            id="twofactor.W003",
        )
    ]


# Cookie names that browsers keep only from https, and only with Secure.
SECURE_ONLY_PREFIXES = ("__Host-", "__Secure-")


@register(Tags.security)
def check_trusted_browser_cookie(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A __Host- or __Secure- name without Secure is dropped by every browser: "Don't ask
    for a code on this browser" would be offered, recorded, and never work."""
    name = app_settings.TRUSTED_BROWSER_COOKIE_NAME
    if app_settings.TRUSTED_BROWSER_COOKIE_SECURE or not name.startswith(SECURE_ONLY_PREFIXES):
        return []
    return [
        Error(
            f"TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME {name!r} needs "
            "TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE: browsers drop a cookie of that name "
            "unless it is Secure.",
            hint="Over https keep both defaults; on a plain-http development server set "
            'the name without the prefix too (e.g. "twofactor_trusted").',
            id="twofactor.E005",
        )
    ]


@register(Tags.security)
def check_webauthn_relying_party(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Passkeys can only work where the RP id is a host name and every origin is on it:
    a browser refuses the rest, so a mistake here would only show as "nothing happens"."""
    rp_id = app_settings.WEBAUTHN_RP_ID
    errors: list[CheckMessage] = []
    if not _is_host_name(rp_id):
        errors.append(
            Error(
                f"TWOFACTOR_WEBAUTHN_RP_ID {rp_id!r} is not a host name: browsers accept "
                "only a domain (no scheme, port, path or IP address) as the WebAuthn RP id.",
                hint='Set it to the host the portal is served from, e.g. "portal.example.com".',
                id="twofactor.E002",
            )
        )
        return errors
    for origin in app_settings.WEBAUTHN_ORIGINS:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        on_rp = host == rp_id or host.endswith("." + rp_id)
        if parts.scheme not in ("https", "http") or not on_rp or parts.path not in ("", "/"):
            errors.append(
                Error(
                    f"TWOFACTOR_WEBAUTHN_ORIGINS entry {origin!r} is not an origin on "
                    f"the RP id {rp_id!r}.",
                    hint="Each entry is scheme://host[:port], with the host equal to the "
                    "RP id or under it.",
                    id="twofactor.E003",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_webauthn_deployment(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if app_settings.WEBAUTHN_RP_ID != "localhost":
        return []
    return [
        Warning(
            'TWOFACTOR_WEBAUTHN_RP_ID is "localhost": passkeys and security keys cannot be '
            "used on any other host, and keys registered under it never will be.",
            hint="Set TWOFACTOR_WEBAUTHN_RP_ID (and TWOFACTOR_WEBAUTHN_ORIGINS) to the "
            "production host before anyone adds a key.",
            id="twofactor.W002",
        )
    ]


def _is_host_name(value: str) -> bool:
    if not value or value != value.strip().lower() or "/" in value or ":" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return all(label and len(label) <= 63 for label in value.split("."))
    return False
