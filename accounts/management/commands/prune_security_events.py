from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import security_log


class Command(BaseCommand):
    help = (
        "Delete security events older than SECURITY_EVENT_RETENTION_DAYS (default 365). "
        "Run it daily, e.g. from cron."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days instead of the SECURITY_EVENT_RETENTION_DAYS setting.",
        )

    def handle(self, *args, days: int | None, **options) -> None:
        days = settings.SECURITY_EVENT_RETENTION_DAYS if days is None else days
        try:
            deleted = security_log.prune_events(older_than_days=days)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Deleted {deleted} security event(s) older than {days} days.")
