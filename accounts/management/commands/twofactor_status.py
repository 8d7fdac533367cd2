"""How two-factor authentication is doing: counts for everyone, or one user's state and log.

Read-only: looking does not change an account, so it writes no security event
(a support lookup in every user's log would bury the events that matter).
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts import security_log
from accounts.models import normalize_email_address
from twofactor import services as twofactor_services
from twofactor.models import BackupCode, TOTPDevice


def summary_counts(*, now=None) -> dict[str, int]:
    now = now or timezone.now()
    active = TOTPDevice.objects.confirmed()
    unused_code = BackupCode.objects.unused().filter(user=OuterRef("user"))
    return {
        "Users": get_user_model()._default_manager.count(),
        "With 2FA": active.count(),
        "Pending enrollments": TOTPDevice.objects.pending()
        .filter(created_at__gt=now - twofactor_services.PENDING_ENROLLMENT_TTL)
        .count(),
        "Locked now": TOTPDevice.objects.locked(now=now).count(),
        "With 2FA and no unused backup code": active.filter(~Exists(unused_code)).count(),
    }


class Command(BaseCommand):
    help = "Two-factor authentication summary; --user EMAIL for one user's state and events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", default="", metavar="EMAIL", help="Show one user.")

    def handle(self, *args, user: str, **options) -> None:
        if user:
            self.show_user(user)
            return
        counts = summary_counts()
        width = max(len(label) for label in counts)
        for label, count in counts.items():
            self.stdout.write(f"{label + ':':<{width + 1}} {count}")

    def show_user(self, email: str) -> None:
        user = (
            get_user_model()
            ._default_manager.filter(email_key=normalize_email_address(email))
            .first()
        )
        if user is None:
            raise CommandError(f"No user with the e-mail {email}.")
        now = timezone.now()
        status = twofactor_services.get_status(user=user)
        device = TOTPDevice.objects.filter(user=user).first()
        self.stdout.write(f"User: {user.email}")
        if status.active:
            self.stdout.write(f"2FA: Activated since {status.enabled_at:%Y-%m-%d %H:%M} UTC")
            self.stdout.write(f"Unused backup codes: {status.unused_backup_codes}")
        else:
            pending = device is not None and device.confirmed_at is None
            self.stdout.write("2FA: Not activated" + (" (enrollment started)" if pending else ""))
        if device is not None and device.locked_until and device.locked_until > now:
            self.stdout.write(f"Locked until: {device.locked_until:%Y-%m-%d %H:%M} UTC")
        if device is not None and device.failure_count:
            self.stdout.write(f"Failed codes in a row: {device.failure_count}")
        self.stdout.write("Recent events:")
        events = security_log.recent_events(user=user)
        if not events:
            self.stdout.write("  (none)")
        for event in events:
            place = ", ".join(
                part
                for part in (
                    event.ip or "",
                    event.browser if event.user_agent else "",
                    f"by {event.actor.email}" if event.actor else "",
                )
                if part
            )
            line = f"  {event.created_at:%Y-%m-%d %H:%M:%S} UTC  {event.description}"
            self.stdout.write(line + (f"  [{place}]" if place else ""))
