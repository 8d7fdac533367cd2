"""Login's second step with a passkey or security key, next to the same step with an app code.

    .venv/bin/python benchmarks/key_step.py [--users 300] [--warmup 10]   # SQLite, ~40 s
    .venv/bin/python benchmarks/key_step.py \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres          # ~65 s
    .venv/bin/python benchmarks/key_step.py --production-hasher --users 10  # ~20 s

In process, through the real URLs and views (Django's test Client; portal.settings as
`make serve` has them, DEBUG off, database sessions, the database task queue, a
local-memory cache), on a database of its own: a temporary SQLite file by default, or,
with --database-url, a PostgreSQL database created on that server and dropped at the end.

It makes --users users of each kind: app only (bulk-created as benchmarks/login.py does,
one per login: an app code works once per 30-second step), and app plus one key (turned
on and registered through the services, each with its own SoftAuthenticator from
tests/twofactor/soft_authenticator.py). Then, in interleaved rounds (one login of each
kind per round, the order rotating), it logs in:

- with a code: POST /accounts/login/ (password), GET /2fa/login/, POST the code;
- with a key:  the password, GET /2fa/login/ (its data-webauthn-options carry the
  challenge), POST the authenticator's answer;
- with "Sign in with a passkey" (the key users again): POST /2fa/passkey/options/,
  POST the answer to /accounts/login/;

and prints p50/p90 of each step, every figure also as a ratio against the code step's
POST p50 of this run, and the SQL queries of each request (one more login of each kind,
untimed, under CaptureQueriesContext). Times are the server's work as the test Client sees
it; the authenticator's signing is the browser's side and is left out.

Password hasher: the test settings' MD5PasswordHasher (portal/settings_test.py), put in
with override_settings; everything else is portal.settings. The production one (Django's
PBKDF2, 1,000,000 iterations) takes 0.3 to 0.6 s per check on a 2-core machine, so the
2 x --users password steps would take minutes; the steps compared here hash no password.
The run times one production check as well and shows it under the table;
--production-hasher gives the users' passwords that hasher instead (with a small --users).
"""

import argparse
import html
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.login import PASSWORD, create_users  # noqa: E402
from tests.integration.servers import (  # noqa: E402
    collected_static,
    postgres_database,
    production_env,
)
from tests.twofactor.soft_authenticator import ORIGIN, RP_ID, SoftAuthenticator  # noqa: E402

LOGIN, STEP, PASSKEY_OPTIONS = "/accounts/login/", "/2fa/login/", "/2fa/passkey/options/"
PROFILE = "/accounts/profile/"
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"
KEY_OPTIONS = re.compile(r'data-webauthn-options="([^"]*)"')
KINDS = ("code", "key", "passkey")


@dataclass
class KeyUser:
    email: str
    authenticator: SoftAuthenticator


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300, help="timed logins of each kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server to create the benchmark database on (default: SQLite)",
    )
    parser.add_argument(
        "--production-hasher",
        action="store_true",
        help="users' passwords with the production hasher (about 0.5 s per password step)",
    )
    return parser.parse_args()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- setup (Django is set up by then) ------------------------------------------------------
def create_key_users(count: int) -> list[KeyUser]:
    """Users with the app on and one key, both through the services (as a person would)."""
    import pyotp
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from twofactor import services

    User = get_user_model()
    password_hash = make_password(PASSWORD)  # one hash, shared by every user
    users = User.objects.bulk_create(
        [
            User(email=f"key{i}@example.com", name=f"Key User{i}", password=password_hash)
            for i in range(count)
        ],
        batch_size=1000,
    )
    # Turned on five minutes ago, as create_users does for the app users: that step is burnt.
    enabled = timezone.now() - timezone.timedelta(minutes=5)
    key_users = []
    for user in users:
        session: dict = {}
        device = services.begin_enrollment(user=user, session=session, now=enabled)
        code = pyotp.TOTP(device.secret).at(enabled)
        services.confirm_enrollment(user=user, session=session, code=code, now=enabled)
        authenticator = SoftAuthenticator()
        options = services.begin_registration(user=user, session=session)
        services.finish_registration(
            user=user, session=session, response_json=authenticator.create(options)
        )
        key_users.append(KeyUser(email=user.email, authenticator=authenticator))
    return key_users


def production_password_check(hasher_path: str) -> float:
    """Median time of one check with the production hasher, in ms."""
    from django.utils.module_loading import import_string

    hasher = import_string(hasher_path)()
    encoded = hasher.encode(PASSWORD, hasher.salt())
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        hasher.verify(PASSWORD, encoded)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# --- one login of each kind ----------------------------------------------------------------
class Recorder:
    """Times each request of a login (ms), or, with count_queries, counts its SQL instead:
    CaptureQueriesContext turns on the debug cursor, which would slow the timed requests."""

    def __init__(self, *, count_queries: bool = False) -> None:
        self.count_queries = count_queries
        self.ms: dict[str, float] = {}
        self.queries: dict[str, int] = {}

    def __call__(self, name: str, request):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        if self.count_queries:
            with CaptureQueriesContext(connection) as captured:
                response = request()
            self.queries[name] = len(captured)
            return response
        start = time.perf_counter()
        response = request()
        self.ms[name] = (time.perf_counter() - start) * 1000
        return response


def expect(response, status: int, location: str | None = None) -> None:
    if response.status_code != status or (location and response.get("Location") != location):
        raise SystemExit(
            f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']} answered "
            f"{response.status_code} {response.get('Location', '')}, not {status} {location or ''}"
        )


def password_step(record: Recorder, client, email: str) -> None:
    fields = {"username": email, "password": PASSWORD}
    expect(record("password", lambda: client.post(LOGIN, fields)), 302, STEP)


def log_in_with_code(record: Recorder, client, email: str, secret: str) -> None:
    import pyotp

    password_step(record, client, email)
    expect(record("page", lambda: client.get(STEP)), 200)
    fields = {"code": pyotp.TOTP(secret).now()}
    expect(record("answer", lambda: client.post(STEP, fields)), 302, PROFILE)


def log_in_with_key(record: Recorder, client, user: KeyUser) -> None:
    password_step(record, client, user.email)
    page = record("page", lambda: client.get(STEP))
    expect(page, 200)
    match = KEY_OPTIONS.search(page.content.decode())
    if not match:
        raise SystemExit(f"no key options on the code step of {user.email}")
    fields = {"credential": user.authenticator.get(html.unescape(match.group(1)))}
    expect(record("answer", lambda: client.post(STEP, fields)), 302, PROFILE)


def sign_in_with_passkey(record: Recorder, client, user: KeyUser) -> None:
    options = record("options", lambda: client.post(PASSKEY_OPTIONS))
    expect(options, 200)
    fields = {"credential": user.authenticator.get(options.content.decode())}
    expect(record("answer", lambda: client.post(LOGIN, fields)), 302, PROFILE)


# --- the run ---------------------------------------------------------------------------------
def rounds(
    client, code_users, key_users, *, count: int, record
) -> dict[str, list[dict[str, float]]]:
    """`count` rounds of one login of each kind; whichever kind went first moves on each round
    so none is always the one that meets a cold cache or a fresh WAL checkpoint.

    Each login starts in a browser that has never been here (the Client's cookies emptied),
    but in the same Client: a new one loads the middleware again on its first request, and
    WhiteNoise's then walks every collected static file (tens of ms), which a server does
    once per worker, not once per login."""
    logins: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for n in range(count):
        for kind in KINDS[n % 3 :] + KINDS[: n % 3]:
            recorder = record()
            client.cookies.clear()
            if kind == "code":
                log_in_with_code(recorder, client, *code_users[n])
            elif kind == "key":
                log_in_with_key(recorder, client, key_users[n])
            else:
                sign_in_with_passkey(recorder, client, key_users[n])
            logins[kind].append(recorder.queries if recorder.count_queries else recorder.ms)
    return logins


# (label, kind, requests of that kind's login summed per login)
ROWS = [
    ("code step: POST (baseline)", "code", ["answer"]),
    ("code step: GET + POST", "code", ["page", "answer"]),
    ("key step: POST", "key", ["answer"]),
    ("key step: GET + POST", "key", ["page", "answer"]),
    ("password step: POST", "code", ["password"]),
    ("full login, app code", "code", ["password", "page", "answer"]),
    ("full login, key", "key", ["password", "page", "answer"]),
    ("passkey sign-in: options + POST", "passkey", ["options", "answer"]),
]


def print_table(logins, queries, *, production_check: float | None) -> None:
    baseline = percentile([login["answer"] for login in logins["code"]], 0.5)
    header = (
        f"{'':<32} {'p50 ms':>7} {'p90 ms':>7} {'p50/base':>8} {'p90/base':>8}  queries per request"
    )
    print(header)
    print("-" * len(header))
    for label, kind, parts in ROWS:
        sums = [sum(login[part] for part in parts) for login in logins[kind]]
        p50, p90 = percentile(sums, 0.5), percentile(sums, 0.9)
        counts = [queries[kind][part] for part in parts]
        shown = str(counts[0]) if len(counts) == 1 else "+".join(map(str, counts))
        if len(counts) > 1:
            shown += f" = {sum(counts)}"
        print(
            f"{label:<32} {p50:>7.2f} {p90:>7.2f} {p50 / baseline:>8.2f} {p90 / baseline:>8.2f}  "
            f"{shown}"
        )
    if production_check is not None:
        print(
            f"{'one production password check':<32} {production_check:>7.1f} {'':>7} "
            f"{production_check / baseline:>8.1f}  (the hasher alone, median of 5)"
        )
    print(
        f"\nbase = code step POST p50 of this run ({baseline:.2f} ms); "
        f"{len(logins['code'])} timed logins of each kind.\n"
        "GET = the code step's page (for a key user it carries the challenge; for an app user\n"
        "the plain code form). Full login = password POST + that GET + the step's POST;\n"
        "passkey sign-in = the options POST + the answer's POST (nothing typed, no password)."
    )


def run(args: argparse.Namespace, production_hasher: str) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", "--no-input", "--skip-checks", verbosity=0)
    started = time.perf_counter()
    needed = args.users + args.warmup + 1  # the last one is for counting queries
    code_users = create_users(needed)
    key_users = create_key_users(needed)
    setup_seconds = time.perf_counter() - started
    print(
        f"settings: {connection.vendor} ({connection.settings_dict['NAME']}), "
        f"DEBUG={settings.DEBUG}, hasher {settings.PASSWORD_HASHERS[0].rsplit('.', 1)[1]}, "
        f"sessions {settings.SESSION_ENGINE.rsplit('.', 1)[1]}, "
        f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[1]}, "
        f"tasks {settings.TASKS['default']['BACKEND']}"
    )
    print(
        f"          RP id {settings.TWOFACTOR_WEBAUTHN_RP_ID}, origins "
        f"{','.join(settings.TWOFACTOR_WEBAUTHN_ORIGINS)}; {args.users} timed logins of each "
        f"kind after {args.warmup} untimed rounds; setup {setup_seconds:.1f} s "
        f"({needed} users of each kind)"
    )
    client = Client()
    rounds(client, code_users, key_users, count=args.warmup, record=Recorder)
    started = time.perf_counter()
    timed = rounds(
        client,
        code_users[args.warmup :],
        key_users[args.warmup :],
        count=args.users,
        record=Recorder,
    )
    timed_seconds = time.perf_counter() - started
    counted = rounds(
        client,
        code_users[-1:],
        key_users[-1:],
        count=1,
        record=lambda: Recorder(count_queries=True),
    )
    queries = {kind: counted[kind][0] for kind in KINDS}
    # Unless the users have it already, the production check is measured on its own, after
    # the rounds, so that its half second per check does not sit between timed requests.
    check = None if args.production_hasher else production_password_check(production_hasher)
    print(f"timed rounds: {timed_seconds:.1f} s\n")
    print_table(timed, queries, production_check=check)


def main() -> None:
    args = parse_args()
    wall = time.perf_counter()
    print(f"load average at start: {load_average()} ({len(os.sched_getaffinity(0))} cores)")
    folder = tempfile.mkdtemp(prefix="bench-key-step-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
    collected_static()  # production settings serve the manifest storage: it needs the files
    with (
        postgres_database(f"bench_key_step_{os.getpid()}")
        if args.database_url
        else nullcontext(os.environ["DATABASE_URL"])
    ) as database_url:
        os.environ.update(
            production_env(
                DATABASE_URL=database_url,
                ALLOWED_HOSTS="testserver",
                LOG_LEVEL="WARNING",
                TWOFACTOR_WEBAUTHN_RP_ID=RP_ID,
                TWOFACTOR_WEBAUTHN_ORIGINS=ORIGIN,
            )
        )
        import django

        django.setup()
        from django.conf import settings
        from django.db import connections
        from django.test.utils import override_settings

        production_hasher = settings.PASSWORD_HASHERS[0]
        try:
            if args.production_hasher:
                run(args, production_hasher)
            else:
                with override_settings(PASSWORD_HASHERS=[FAST_HASHER]):
                    run(args, production_hasher)
        finally:
            connections.close_all()
    for leftover in Path(folder).iterdir():  # the SQLite file and its -wal/-shm
        leftover.unlink()
    Path(folder).rmdir()
    print(f"\nload average at end: {load_average()}; {time.perf_counter() - wall:.0f} s in all")


if __name__ == "__main__":
    main()
