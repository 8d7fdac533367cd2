"""Deploy checks for the e-mail accounts sends: password resets and security notices.

The embedded defaults (console e-mail, no SMTP server) suit `make run`. In
production they fail silently: the portal says "we have sent you a link", the
reset link goes to a log nobody reads, and a "2FA was turned off" notice
reaches no one. So `check --deploy` (and with it `make serve`) warns.
"""

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.dummy import EmailBackend as DummyBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.utils.module_loading import import_string

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# Backends that keep the message on this machine (a log, memory, a folder) or drop it.
NON_DELIVERING = (ConsoleBackend, LocmemBackend, DummyBackend, FileBackend)
SET_SMTP = (
    f"Set EMAIL_BACKEND={SMTP_BACKEND} and EMAIL_HOST (with EMAIL_PORT, EMAIL_HOST_USER, "
    "EMAIL_HOST_PASSWORD and EMAIL_USE_TLS as your mail server needs) in the environment."
)


@register(Tags.security, deploy=True)
def check_email_delivery(app_configs, **kwargs) -> list[CheckMessage]:
    # Every problem at once, so one round of fixing the environment is enough.
    messages = _backend_problems()
    if _domain(settings.DEFAULT_FROM_EMAIL) in {"", "localhost", "localhost.localdomain"}:
        messages.append(
            Warning(
                f"DEFAULT_FROM_EMAIL is {settings.DEFAULT_FROM_EMAIL!r}: mail servers refuse or "
                "bin mail from a sender with no real domain.",
                hint="Set DEFAULT_FROM_EMAIL to an address of your domain, e.g. "
                "'Customer Portal <no-reply@portal.example.com>'.",
                id="accounts.W003",
            )
        )
    if not settings.SITE_URL.startswith(("https://", "http://")):
        messages.append(
            Warning(
                "SITE_URL is not set: links in e-mails (password reset, e-mail change) would "
                "take their host from the request's Host header, which the client chooses.",
                hint="Set SITE_URL to the portal's public address, e.g. https://portal.example.com.",
                id="accounts.W005",
            )
        )
    if not (settings.SUPPORT_URL or settings.SUPPORT_EMAIL):
        messages.append(
            Warning(
                "Neither SUPPORT_URL nor SUPPORT_EMAIL is set: a user who lost their phone "
                "and their backup codes is told to contact support, with nowhere to go.",
                hint="Set SUPPORT_URL (a help page) or SUPPORT_EMAIL in the environment.",
                id="accounts.W004",
            )
        )
    return messages


def _backend_problems() -> list[CheckMessage]:
    try:
        backend = import_string(settings.EMAIL_BACKEND)
    except ImportError:
        return [_undelivered("cannot be imported")]
    if issubclass(backend, NON_DELIVERING):
        return [_undelivered("delivers no e-mail")]
    # Empty means the environment never named a server (portal/settings.py has no
    # default): "localhost" would be a guess that fails only when a mail is due.
    if issubclass(backend, SmtpBackend) and not settings.EMAIL_HOST:
        return [
            Warning(
                "EMAIL_BACKEND is SMTP but EMAIL_HOST is not set: no e-mail can be sent.",
                hint=SET_SMTP,
                id="accounts.W002",
            )
        ]
    return []


def _undelivered(problem: str) -> Warning:
    return Warning(
        f"EMAIL_BACKEND {settings.EMAIL_BACKEND!r} {problem}: password resets and "
        "security notices would reach no one.",
        hint=SET_SMTP,
        id="accounts.W001",
    )


def _domain(address: str) -> str:
    # "Name <user@host>" or "user@host" -> "host"; no "@" at all -> ""
    _, at, domain = address.strip().rstrip(">").rpartition("@")
    return domain.strip().lower() if at else ""
