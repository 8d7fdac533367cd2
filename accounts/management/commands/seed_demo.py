import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import normalize_email_address

DEMO_USERS = [
    # email, name, password, is_staff
    ("admin@example.com", "Ada Admin", "demo-admin-pass", True),
    ("alice@example.com", "Alice Customer", "demo-alice-pass", False),
    ("bob@example.com", "Bob Customer", "demo-bob-pass", False),
    ("carol@example.com", "Carol Customer", "demo-carol-pass", False),
]
# Staff rights are permissions: the demo staff get theirs from this group, as real
# support staff would (All users, its CSV and histories; Reset 2FA).
SUPPORT_GROUP = "Support"
SUPPORT_PERMISSIONS = ["view_user", "reset_two_factor"]
BULK_PASSWORD = "demo-bulk-pass"  # noqa: S105 - printed for the demo on purpose
BATCH_SIZE = 10_000
_INSERT_USER_SQL = (
    "INSERT INTO accounts_user "
    "(email, email_key, name, password, is_staff, is_superuser, is_active, date_joined) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def _bulk_email(index: int) -> str:
    return f"user{index:07d}@example.com"


def _user_rows(first: int, count: int, password_hash: str, now: datetime) -> Iterator[tuple]:
    adapt = connection.ops.adapt_datetimefield_value
    for index in range(first, first + count):
        # Spread over the past: sorting by "Date joined" then means something.
        joined = adapt(now - timedelta(minutes=index))
        email = _bulk_email(index)  # already in normal form: it is its own key
        yield (email, email, f"Demo User {index}", password_hash, False, False, True, joined)


class Command(BaseCommand):
    help = "Create demo users (idempotent); --users N adds N bulk users quickly."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=0, help="Bulk-create N extra users.")
        parser.add_argument(
            "--with-2fa",
            type=float,
            default=0.0,
            metavar="FRACTION",
            help="Fraction (0-1) of the bulk users that get an active authenticator device.",
        )

    def handle(self, *args, users: int, with_2fa: float, **options) -> None:
        User = get_user_model()
        support = self._support_group()
        for email, name, password, is_staff in DEMO_USERS:
            user = User.objects.filter(email_key=normalize_email_address(email)).first()
            created = user is None
            if user is None:
                # One save with the password: the security log shows no "password changed".
                user = User.objects.create_user(
                    email, password, name=name, is_staff=is_staff, is_superuser=is_staff
                )
            if is_staff:
                user.groups.add(support)  # also for a demo staff member from an older seed
            self.stdout.write(f"{'created' if created else 'exists '}  {email:<22} {password}")
        staff_email = next(email for email, _, _, is_staff in DEMO_USERS if is_staff)
        self.stdout.write(
            f"Group {SUPPORT_GROUP} (All users and histories, Reset 2FA): {staff_email}."
        )
        self.stdout.write(
            "Staff pages (All users) and the admin need the staff member's own 2FA: "
            f"log in as {staff_email} and turn it on under Profile first."
        )
        if users > 0:
            self._bulk_create(users, with_2fa=with_2fa)

    def _support_group(self) -> Group:
        """The Support group with its two permissions; created once, completed if need be."""
        content_type = ContentType.objects.get_for_model(get_user_model())
        permissions = list(
            Permission.objects.filter(content_type=content_type, codename__in=SUPPORT_PERMISSIONS)
        )
        if len(permissions) != len(SUPPORT_PERMISSIONS):
            raise CommandError("The accounts permissions are missing: run manage.py migrate first.")
        group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
        group.permissions.add(*permissions)  # adding a permission it has already is a no-op
        return group

    def _bulk_create(self, count: int, *, with_2fa: float) -> None:
        from twofactor.bulk import activate_devices_for  # accounts -> twofactor is allowed

        User = get_user_model()
        # One hash for all: hashing 100,000 passwords one by one would take hours.
        password_hash = make_password(BULK_PASSWORD)
        start_index = User.objects.filter(email__startswith="user").count()
        started = time.monotonic()
        now = timezone.now()
        created = 0
        every_nth = round(1 / with_2fa) if with_2fa > 0 else 0
        while created < count:
            batch = min(BATCH_SIZE, count - created)
            first = start_index + created
            with transaction.atomic():
                # Plain INSERTs with executemany: a million model instances and
                # their SQL compilation cost more than the database work itself.
                with connection.cursor() as cursor:
                    # A list, as DB-API asks (a sequence): one batch, BATCH_SIZE rows.
                    rows = list(_user_rows(first, batch, password_hash, now))
                    cursor.executemany(_INSERT_USER_SQL, rows)
                if every_nth:
                    # The emails are zero-padded, so the batch is one index range.
                    ids = (
                        User.objects.filter(
                            email__gte=_bulk_email(first), email__lte=_bulk_email(first + batch - 1)
                        )
                        .order_by("email")
                        .values_list("pk", flat=True)
                    )
                    activate_devices_for(list(ids)[::every_nth], now=now)
            created += batch
            self._progress(created, count, started)
        # Plain INSERTs send no signals: tell All users its cached counts are stale.
        from accounts.user_list import forget_counts

        forget_counts()
        self.stdout.write(
            f"\nbulk users: {count} created (password {BULK_PASSWORD}) "
            f"in {time.monotonic() - started:.1f} s"
        )

    def _progress(self, done: int, total: int, started: float) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed else 0.0
        left = (total - done) / rate if rate else 0.0
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        line = f"\r[{bar}] {done}/{total} users  {rate:,.0f}/s  {left:,.0f} s left"
        stream = self.stdout if sys.stdout.isatty() or done == total else None
        if stream is not None:
            stream.write(line, ending="")
            stream.flush()
