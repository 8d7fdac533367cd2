"""All users at scale: our page against the Django admin changelist, same data, same run.

    .venv/bin/python benchmarks/all_users.py                      # SQLite, 100k then 1M users
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/all_users.py --sizes 100000,1000000

Seeds a separate database with `manage.py seed_demo --users N --with-2fa 0.3`
(SQLite: a temporary file; PostgreSQL: a database named bench_all_users on the
server of DATABASE_URL, created and dropped by this script), growing it from one
size to the next. For each size it requests, through the real URLs and views
(Django's test Client, DEBUG off, a logged-in staff superuser):

- ours:  /accounts/users/?two_factor=<activated|not_activated>&page=<1|1000>
- admin: /admin/accounts/user/?two_factor=<activated|not_activated>&p=<1|1000>
  (UserAdmin has the equivalent "Two-Factor authentication" list filter and the
  same 50 rows per page)

and prints p50/p95 milliseconds, the number of SQL queries per request and the
ratio ours/admin (below 1: ours is faster). Each case gets a time budget so a
slow one cannot hold the machine for long.
"""

import argparse
import importlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB_NAME = "bench_all_users"
PAGE_SIZE = 50
DEEP_PAGE = 1000
# (label, filter value, 2FA fraction of the matching users, deep?)
CASES = [
    ("Activated", "activated", False),
    ("Activated", "activated", True),
    ("Not activated", "not_activated", False),
    ("Not activated", "not_activated", True),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated user counts, ascending (default: 100000,1000000)",
    )
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per case")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds per case at most (fewer repeats)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a kept database (seed only what is missing)"
    )
    return parser.parse_args()


# --- The separate database ----------------------------------------------------------------
def bench_database_url(source_url: str) -> str:
    if source_url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(source_url)
        return urlunsplit(parts._replace(path=f"/{BENCH_DB_NAME}"))
    return f"sqlite:///{Path(tempfile.gettempdir()) / 'bench_all_users.sqlite3'}"


def _admin_connection(source_url: str):
    import psycopg

    parts = urlsplit(source_url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres",
        autocommit=True,
    )


def create_database(source_url: str, bench_url: str, *, reuse: bool) -> None:
    if bench_url.startswith("sqlite"):
        path = Path(urlsplit(bench_url).path)
        if not reuse:
            path.unlink(missing_ok=True)
        return
    with _admin_connection(source_url) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB_NAME]
        ).fetchone()
        if exists and reuse:
            return
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DB_NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DB_NAME}")


def drop_database(source_url: str, bench_url: str) -> None:
    if bench_url.startswith("sqlite"):
        Path(urlsplit(bench_url).path).unlink(missing_ok=True)
        return
    with _admin_connection(source_url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DB_NAME} WITH (FORCE)")


# --- Seeding and measuring (Django is set up by then) ------------------------------------
def trigram_indexes(connection, *, drop: bool) -> None:
    if connection.vendor != "postgresql":
        return
    migration = importlib.import_module("accounts.migrations.0003_all_users_search")
    with connection.cursor() as cursor:
        for name, expression in migration.INDEXES.items():
            if drop:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
            else:
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON accounts_user USING gin ({expression})"
                )


def seed_to(size: int) -> float:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    bulk = get_user_model().objects.filter(email__startswith="user").count()
    started = time.monotonic()
    if bulk < size:
        # Each insert updates the two trigram GIN indexes; building them once
        # afterwards is several times faster than maintaining them row by row.
        trigram_indexes(connection, drop=True)
        call_command("seed_demo", users=size - bulk, with_2fa=0.3, stdout=io.StringIO())
        trigram_indexes(connection, drop=False)
    # Fresh statistics (and, on PostgreSQL, a visibility map for index-only
    # scans), as autovacuum would have done on a real table.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE accounts_user")
            cursor.execute("VACUUM ANALYZE twofactor_totpdevice")
        else:
            cursor.execute("ANALYZE")
    return time.monotonic() - started


class QueryCounter:
    """Counts the SQL statements run (an execute wrapper: works with DEBUG off)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(client, url: str, *, repeat: int, budget: float, cold: bool = False) -> dict:
    """p50/p95 ms of GET url; cold: the cache is emptied before each request."""
    from django.core.cache import cache
    from django.db import connection

    cache.clear()
    started = time.perf_counter()
    response = client.get(url)  # warm-up (and the time budget's yardstick)
    first = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    runs = max(3, min(repeat, int(budget / max(first, 1e-3))))
    timings = []
    for _ in range(runs):
        if cold:
            cache.clear()
        started = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
    counter = QueryCounter()
    if cold:
        cache.clear()
    with connection.execute_wrapper(counter):
        client.get(url)
    timings.sort()
    return {
        "p50": statistics.median(timings),
        "p95": timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))],
        "queries": counter.count,
        "runs": runs,
    }


def run(args: argparse.Namespace, sizes: list[int]) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from twofactor import services
    from twofactor.bulk import activate_devices_for
    from twofactor.models import TOTPDevice
    from twofactor.signals import Method

    call_command("migrate", verbosity=0)
    User = get_user_model()
    staff, _ = User.objects.get_or_create(
        email="bench-staff@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    # The admin opens only for a session that passed the second factor; the
    # benchmark measures the changelist, not the login, so it marks the session.
    if not TOTPDevice.objects.confirmed().filter(user=staff).exists():
        activate_devices_for([staff.pk])
    session = client.session
    services.mark_session_verified(session=session, user=staff, method=Method.TOTP)
    session.save()

    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    header = (
        f"{'users':>9} {'filter':<13} {'page':>5} | {'ours p50':>8} {'p95':>7} {'q':>2} | "
        f"{'cold p50':>8} {'p95':>7} {'q':>2} | {'admin p50':>9} {'p95':>7} {'q':>2} | "
        f"{'ours/admin':>10} {'cold/admin':>10}"
    )
    for size in sizes:
        seconds = seed_to(size)
        total = User.objects.count()
        active = TOTPDevice.objects.confirmed().count()
        print(
            f"\n{total:,} users, {active:,} with 2FA ({active / total:.0%}); "
            f"seeding and ANALYZE took {seconds:.0f} s"
        )
        print(header)
        print("-" * len(header))
        for label, value, deep in CASES:
            matching = active if value == "activated" else total - active
            # Page 1,000, or the last page when there are fewer (100k users: 667 pages).
            page = min(DEEP_PAGE, -(-matching // PAGE_SIZE)) if deep else 1
            url = f"/accounts/users/?two_factor={value}&page={page}"
            ours = measure(client, url, repeat=args.repeat, budget=args.budget)
            cold = measure(client, url, repeat=args.repeat, budget=args.budget, cold=True)
            admin = measure(
                client,
                f"/admin/accounts/user/?two_factor={value}&p={page}",
                repeat=args.repeat,
                budget=args.budget,
            )
            print(
                f"{total:>9,} {label:<13} {page:>5} | "
                f"{ours['p50']:>8.1f} {ours['p95']:>7.1f} {ours['queries']:>2} | "
                f"{cold['p50']:>8.1f} {cold['p95']:>7.1f} {cold['queries']:>2} | "
                f"{admin['p50']:>9.1f} {admin['p95']:>7.1f} {admin['queries']:>2} | "
                f"{ours['p50'] / admin['p50']:>10.2f} {cold['p50'] / admin['p50']:>10.2f}",
                flush=True,
            )
    print(
        "\nms per request (test Client, DEBUG off); q = SQL queries per request.\n"
        "ours: the count comes from the cache (as for every request after the first\n"
        "until a user or a 2FA status changes); cold: the cache is emptied before\n"
        "each request, so the count is computed every time."
    )


def main() -> None:
    args = parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    source_url = os.environ.get("DATABASE_URL", "")
    bench_url = bench_database_url(source_url)
    create_database(source_url, bench_url, reuse=args.reuse)

    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ["DEBUG"] = "0"  # no query log, production template caching
    # Test settings for the static files storage (no collectstatic manifest needed)
    # and ALLOWED_HOSTS for the test Client; everything else is portal.settings.
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic here
    import django

    django.setup()
    try:
        run(args, sizes)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(source_url, bench_url)


if __name__ == "__main__":
    main()
