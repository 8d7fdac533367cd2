"""All users at scale: our page against the Django admin changelist, same data, same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/all_users.py                  # 1,000,000 users
    .venv/bin/python benchmarks/all_users.py --sizes 100000       # SQLite

Seeds a separate database with `manage.py seed_demo --users N --with-2fa 0.3`
(SQLite: a temporary file; PostgreSQL: a database named by --db-name, default
bench_all_users, on the server of DATABASE_URL, created and dropped by this
script), then gives the bulk users what seed_demo does not, so that every filter
and sort has deep pages: a last login for five users in seven (the others never
logged in: NULL), a passkey for every fifth user with 2FA, and a deadline 30 days
old for every tenth user without 2FA under a policy that requires 2FA of everyone
with 14 days of grace.

For each filter value (All, Activated, Not activated, Passkey or security key,
Past the 2FA deadline) it requests, through the real URLs and views (Django's test
Client, DEBUG off, a logged-in staff superuser whose session passed the second factor):

- first:  /accounts/users/?two_factor=F            /admin/accounts/user/?two_factor=F
- 1000:   page 1,000 as the interface reaches it: the Next link of page 999 (whose own
          cursor is made here, from the row an OFFSET query finds once, untimed);
          checked to hold the same users as page=1000 (OFFSET) does
                                                   admin: &p=1000
- last:   the Last link (&page=last)               admin: &p=<its last page>
- search: &q=<each --search term>                  admin: &q=<the same>

and then page 1,000 and the last page of every sort order (the admin sorts three of
them: email, name, date joined). It prints p50/p95 milliseconds, the SQL queries per
request (all of them, and in brackets the list's own: accounts/user_list.py, the
count and the rows), and the ratio ours/admin (below 1: ours is faster). "ours" is
the usual request (the count cached); "cold" empties the cache before each request,
so the count is computed every time. Each case gets a time budget so a slow one
cannot hold the machine for long.
"""

import argparse
import importlib
import io
import os
import re
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from html import unescape
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE_SIZE = 50
DEEP_PAGE = 1000
LIST_URL = "/accounts/users/"
ADMIN_URL = "/admin/accounts/user/"
FILTERS = [
    ("All", ""),
    ("Activated", "activated"),
    ("Not activated", "not_activated"),
    ("Keys", "keys"),
    ("Past deadline", "past_deadline"),
]
# The admin's ?o= for the sorts it offers (list_display positions, from 1).
ADMIN_ORDER = {"email": "1", "name": "2", "date_joined": "7"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated user counts, ascending")
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per case")
    parser.add_argument(
        "--budget", type=float, default=15.0, help="seconds per case at most (fewer repeats)"
    )
    parser.add_argument(
        "--search",
        default="0123456,user0123",
        help="comma-separated search terms (default: a part of one address of a million, "
        "and a part of 1,000 addresses made of trigrams that every address has)",
    )
    parser.add_argument("--db-name", default="bench_all_users", help="PostgreSQL database")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a kept database (seed only what is missing)"
    )
    parser.add_argument("--no-sorts", action="store_true", help="skip the sort orders' table")
    return parser.parse_args()


# --- The separate database ----------------------------------------------------------------
def bench_database_url(source_url: str, name: str) -> str:
    if source_url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(source_url)
        return urlunsplit(parts._replace(path=f"/{name}"))
    return f"sqlite:///{Path(tempfile.gettempdir()) / f'{name}.sqlite3'}"


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


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"--db-name {name!r}: lowercase letters, digits and _ only")
    return name


def create_database(source_url: str, bench_url: str, name: str, *, reuse: bool) -> None:
    if bench_url.startswith("sqlite"):
        path = Path(urlsplit(bench_url).path)
        if not reuse:
            path.unlink(missing_ok=True)
        return
    with _admin_connection(source_url) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists and reuse:
            return
        connection.execute(f"DROP DATABASE IF EXISTS {_check_name(name)} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {_check_name(name)}")


def drop_database(source_url: str, bench_url: str, name: str) -> None:
    if bench_url.startswith("sqlite"):
        Path(urlsplit(bench_url).path).unlink(missing_ok=True)
        return
    with _admin_connection(source_url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {_check_name(name)} WITH (FORCE)")


# --- Seeding (Django is set up by then) ---------------------------------------------------
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


def seed_extras() -> None:
    """Last logins, keys and deadlines for the bulk users that lack them (idempotent)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db.models import Exists, F, OuterRef
    from django.utils import timezone

    from twofactor.models import PolicyDeadline, TOTPDevice, TwoFactorPolicy, WebAuthnCredential

    User = get_user_model()
    bulk = User.objects.filter(email__startswith="user").annotate(
        by7=F("id") % 7, by5=F("id") % 5, by10=F("id") % 10
    )
    bulk.filter(last_login__isnull=True, by7__lt=5).update(
        last_login=F("date_joined") + timedelta(hours=1)
    )
    app = Exists(TOTPDevice.objects.confirmed().filter(user=OuterRef("pk")))
    keyless = bulk.filter(app, by5=0).exclude(
        Exists(WebAuthnCredential.objects.filter(user=OuterRef("pk")))
    )
    now = timezone.now()
    _bulk_create(
        WebAuthnCredential,
        (
            WebAuthnCredential(
                user_id=pk,
                credential_id=f"bench-{pk}",
                public_key=b"\0",
                name="Bench key",
                backup_eligible=True,
                backup_state=True,
            )
            for pk in keyless.values_list("pk", flat=True).iterator()
        ),
    )
    free = bulk.filter(~app, by10=1).exclude(
        Exists(PolicyDeadline.objects.filter(user=OuterRef("pk")))
    )
    _bulk_create(
        PolicyDeadline,
        (
            PolicyDeadline(user_id=pk, required_since=now - timedelta(days=30))
            for pk in free.values_list("pk", flat=True).iterator()
        ),
    )
    TwoFactorPolicy.objects.filter(pk=TwoFactorPolicy.current().pk).update(
        require_for_everyone=True, grace_period_days=14
    )


def _bulk_create(model, objects, batch: int = 5_000) -> None:
    chunk = []
    for instance in objects:
        chunk.append(instance)
        if len(chunk) == batch:
            model.objects.bulk_create(chunk)
            chunk = []
    if chunk:
        model.objects.bulk_create(chunk)


def seed_to(size: int) -> float:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.user_list import forget_counts
    from twofactor.models import WebAuthnCredential

    bulk = get_user_model().objects.filter(email__startswith="user").count()
    started = time.monotonic()
    if bulk < size or not WebAuthnCredential.objects.exists():
        # Each insert or update of a user updates the two trigram GIN indexes;
        # building them once afterwards is several times faster.
        trigram_indexes(connection, drop=True)
        if bulk < size:
            call_command("seed_demo", users=size - bulk, with_2fa=0.3, stdout=io.StringIO())
        seed_extras()
        trigram_indexes(connection, drop=False)
        forget_counts()
    # Fresh statistics (and, on PostgreSQL, a visibility map for index-only
    # scans), as autovacuum would have done on a real table.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in (
                "accounts_user",
                "twofactor_totpdevice",
                "twofactor_webauthncredential",
                "twofactor_policydeadline",
            ):
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")
    return time.monotonic() - started


# --- Measuring ----------------------------------------------------------------------------
class QueryCounter:
    """Counts the SQL statements run (an execute wrapper: works with DEBUG off), and
    those run from accounts/user_list.py (the list's count and rows)."""

    def __init__(self) -> None:
        self.count = 0
        self.own = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if any(
            frame.filename.endswith("accounts/user_list.py") for frame in traceback.extract_stack()
        ):
            self.own += 1
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
        "own": counter.own,
    }


def _url(base: str, **params: str) -> str:
    params = {key: value for key, value in params.items() if value}
    return f"{base}?{urlencode(params)}" if params else base


NEXT_LINK = re.compile(r'<a href="([^"]+)" rel="next"')


def deep_page_url(client, value: str, sort: str, number: int) -> str:
    """The URL the interface offers for page `number`: the Next link of the page before,
    which is opened with a cursor made here for the last row of the page before that."""
    from accounts import user_list

    query = user_list.UserListQuery(two_factor=value, sort=sort)
    users = user_list.matching_users(query).order_by(*user_list.ordering(sort))
    columns = user_list.SORTS[sort.removeprefix("-")]
    before = (number - 2) * PAGE_SIZE - 1  # the last row of page number - 2
    key = users.values_list(*columns)[before]
    cursor = user_list.Cursor(key=tuple(key), before=False, number=number - 1)
    sort_param = "" if sort == user_list.DEFAULT_SORT else sort
    previous = _url(
        LIST_URL,
        two_factor=value,
        sort=sort_param,
        cursor=user_list.make_cursor(query, cursor),
    )
    html = client.get(previous).content.decode()
    link = NEXT_LINK.search(html)
    if link is None:
        raise SystemExit(f"page {number - 1} ({previous}) has no Next link")
    url = unescape(link.group(1))
    # The page the link opens holds the users page=N (OFFSET) holds.
    offset = (number - 1) * PAGE_SIZE
    expected = list(users.values_list("email", flat=True)[offset : offset + PAGE_SIZE])
    listed = [
        cell.replace("<wbr>", "") for cell in EMAIL_CELL.findall(client.get(url).content.decode())
    ]
    if listed != expected:
        raise SystemExit(f"{url} is not page {number}")
    return url


# An address wraps after its @ (a <wbr>: accounts.templatetags.addresses).
EMAIL_CELL = re.compile(r'<td data-label="Email" class="col-email">((?:[^<]|<wbr>)*)</td>')
PAGE_OF = re.compile(r"Page [\d,]+ of ([\d,]+)")


def pages_of(client, value: str) -> int:
    # Read from the page (the test Client keeps no context outside a test run).
    found = PAGE_OF.search(client.get(_url(LIST_URL, two_factor=value)).content.decode())
    return int(found.group(1).replace(",", "")) if found else 1


def _row(label: str, page: str, ours: dict, cold: dict | None, admin: dict | None) -> str:
    def cell(result: dict | None) -> str:
        if result is None:
            return f"{'—':>8} {'':>7} {'':>6}"
        queries = f"{result['queries']}({result['own']})" if "own" in result else ""
        return f"{result['p50']:>8.1f} {result['p95']:>7.1f} {queries:>6}"

    def ratio(result: dict | None) -> str:
        return f"{result['p50'] / admin['p50']:>6.2f}" if result and admin else f"{'—':>6}"

    return (
        f"{label:<14} {page:>13} | {cell(ours)} | {cell(cold)} | {cell(admin)} | "
        f"{ratio(ours)} {ratio(cold)}"
    )


HEADER = (
    f"{'filter':<14} {'page':>13} | {'ours p50':>8} {'p95':>7} {'q':>6} | "
    f"{'cold p50':>8} {'p95':>7} {'q':>6} | {'admin p50':>8} {'p95':>7} {'q':>6} | "
    f"{'ours/a':>6} {'cold/a':>6}"
)


def run(args: argparse.Namespace, sizes: list[int]) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts import user_list
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

    def timed(url: str, *, cold: bool = False) -> dict:
        return measure(client, url, repeat=args.repeat, budget=args.budget, cold=cold)

    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    for size in sizes:
        seconds = seed_to(size)
        total = User.objects.count()
        active = TOTPDevice.objects.confirmed().count()
        print(
            f"\n{total:,} users, {active:,} with 2FA ({active / total:.0%}); "
            f"seeding and ANALYZE took {seconds:.0f} s"
        )
        print(HEADER)
        print("-" * len(HEADER))
        for label, value in FILTERS:
            pages = pages_of(client, value)
            deep = min(DEEP_PAGE, pages)
            cases = [
                ("first", _url(LIST_URL, two_factor=value), _url(ADMIN_URL, two_factor=value)),
                (
                    f"{deep:,}" if deep == DEEP_PAGE else f"{deep:,} (last)",
                    deep_page_url(client, value, user_list.DEFAULT_SORT, deep)
                    if deep > 2
                    else _url(LIST_URL, two_factor=value, page=str(deep)),
                    _url(ADMIN_URL, two_factor=value, p=str(deep)),
                ),
                (
                    f"last ({pages:,})",
                    _url(LIST_URL, two_factor=value, page="last"),
                    _url(ADMIN_URL, two_factor=value, p=str(pages)),
                ),
            ] + [
                (
                    f"q={term}",
                    _url(LIST_URL, two_factor=value, q=term),
                    _url(ADMIN_URL, two_factor=value, q=term),
                )
                for term in args.search.split(",")
            ]
            for page, ours_url, admin_url in cases:
                ours = timed(ours_url)
                cold = timed(ours_url, cold=True)
                admin = timed(admin_url)
                print(_row(label, page, ours, cold, admin), flush=True)
        if not args.no_sorts:
            print(f"\nAll users, every sort order (ours: count cached; admin: ?o=, {ADMIN_URL})")
            print(HEADER.replace("filter        ", "sort          "))
            print("-" * len(HEADER))
            pages = pages_of(client, "")
            deep = min(DEEP_PAGE, pages)
            for sort in user_list.SORT_CHOICES:
                base = sort.removeprefix("-")
                order = ADMIN_ORDER.get(base)
                admin_order = f"-{order}" if order and sort.startswith("-") else order
                sort_param = "" if sort == user_list.DEFAULT_SORT else sort
                ours = timed(deep_page_url(client, "", sort, deep))
                admin = timed(_url(ADMIN_URL, o=admin_order, p=str(deep))) if order else None
                print(_row(sort, f"{deep:,}", ours, None, admin), flush=True)
                ours = timed(_url(LIST_URL, sort=sort_param, page="last"))
                admin = timed(_url(ADMIN_URL, o=admin_order, p=str(pages))) if order else None
                print(_row(sort, f"last ({pages:,})", ours, None, admin), flush=True)
    print(
        "\nms per request (test Client, DEBUG off); q = SQL queries per request, in brackets\n"
        "those of accounts/user_list.py (the count and the rows; the rest is the session,\n"
        "its record and the staff member with their own 2FA in one query; the security\n"
        "policy comes from the cache, and cold from the database). ours: the count comes\n"
        "from the cache (as for every request after the first until a user or a 2FA\n"
        "status changes); cold: the cache is emptied before each request."
    )


def main() -> None:
    args = parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    source_url = os.environ.get("DATABASE_URL", "")
    name = _check_name(args.db_name)
    bench_url = bench_database_url(source_url, name)
    create_database(source_url, bench_url, name, reuse=args.reuse)

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
            drop_database(source_url, bench_url, name)


if __name__ == "__main__":
    main()
