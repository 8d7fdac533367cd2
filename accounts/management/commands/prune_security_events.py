from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import rate_windows, security_log, session_records
from twofactor import services as twofactor_services

# Rate-limit windows last an hour or a day; a day after they ended they count nothing.
RATE_WINDOW_RETENTION = timedelta(days=2)


class Command(BaseCommand):
    help = (
        "Delete security events older than SECURITY_EVENT_RETENTION_DAYS (default 365) "
        "and rate-limit windows, session records and trusted browsers that ended. "
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
        windows = rate_windows.prune(older_than=RATE_WINDOW_RETENTION)
        self.stdout.write(f"Deleted {windows} expired rate-limit window(s).")
        # Where someone was signed in (IP, browser) is kept only while it can be used.
        records = session_records.prune()
        self.stdout.write(f"Deleted {records} ended or expired session record(s).")
        browsers = twofactor_services.prune_trusted_browsers()
        self.stdout.write(f"Deleted {browsers} expired trusted browser(s).")
        # Finished e-mail tasks keep their arguments (addresses, names, links): a day is
        # enough to look into a failed send.
        if settings.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend":
            call_command(
                "prune_db_task_results", min_age_days=1, failed_min_age_days=7, stdout=self.stdout
            )
