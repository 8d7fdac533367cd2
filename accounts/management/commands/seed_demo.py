import sys
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

DEMO_USERS = [
    # email, name, password, is_staff
    ("admin@example.com", "Ada Admin", "demo-admin-pass", True),
    ("alice@example.com", "Alice Customer", "demo-alice-pass", False),
    ("bob@example.com", "Bob Customer", "demo-bob-pass", False),
    ("carol@example.com", "Carol Customer", "demo-carol-pass", False),
]
BULK_PASSWORD = "demo-bulk-pass"  # noqa: S105 - printed for the demo on purpose
BATCH_SIZE = 5_000


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
        for email, name, password, is_staff in DEMO_USERS:
            user, created = User.objects.get_or_create(
                email=email, defaults={"name": name, "is_staff": is_staff}
            )
            if created:
                user.set_password(password)
                if is_staff:
                    user.is_superuser = True
                user.save()
            self.stdout.write(f"{'created' if created else 'exists '}  {email:<22} {password}")
        if users > 0:
            self._bulk_create(users, with_2fa=with_2fa)

    def _bulk_create(self, count: int, *, with_2fa: float) -> None:
        from twofactor.bulk import activate_devices_for  # accounts -> twofactor is allowed

        User = get_user_model()
        # One hash for all: hashing 100,000 passwords one by one would take hours.
        password_hash = make_password(BULK_PASSWORD)
        start_index = User.objects.filter(email__startswith="user").count()
        started = time.monotonic()
        created = 0
        every_nth = round(1 / with_2fa) if with_2fa > 0 else 0
        while created < count:
            batch = min(BATCH_SIZE, count - created)
            first = start_index + created
            with transaction.atomic():
                new_users = User.objects.bulk_create(
                    [
                        User(
                            email=f"user{first + i:07d}@example.com",
                            name=f"Demo User {first + i}",
                            password=password_hash,
                        )
                        for i in range(batch)
                    ],
                    batch_size=BATCH_SIZE,
                )
                if every_nth:
                    emails = [u.email for u in new_users[::every_nth]]
                    ids = User.objects.filter(email__in=emails).values_list("pk", flat=True)
                    activate_devices_for(list(ids))
            created += batch
            self._progress(created, count, started)
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
