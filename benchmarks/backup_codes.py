"""Backup codes: a login with one next to a login with an app code, and "Generate backup code".

    .venv/bin/python benchmarks/backup_codes.py [--logins 300] [--generates 100]   # ~1 min

In process, through the real URLs and views (Django's test Client; portal.settings as
`make serve` has them, DEBUG off, database sessions, the database task queue, a
local-memory cache), on a temporary SQLite database of its own.

In interleaved rounds (the order rotating, so no kind always meets a cold cache), it times:

- a login with an app code:   POST /accounts/login/ (password), GET /2fa/login/, POST the code;
- a login with a backup code: the same three requests, the backup code in the code field;
- "Generate backup code":     POST /2fa/backup-codes/ (makes a new set, in sudo mode), then
                              the GET of the page that shows it (timed apart);

and prints p50/p90 of each, every figure also as a ratio against the app-code login's p50 of
this run. App-code users are bulk-created (one per login: an app code works once per 30 s
step); backup-code users get their sets through the services, five logins per user.

Then, apart from the rounds: how many key derivations one code step costs (a right, a wrong
and a used code) and one new set (hashlib.scrypt and hashlib.pbkdf2_hmac counted); the
crypto alone (one derivation, checking a code against a stored set of five, hashing a set);
the same for a set in the old format (Django's PBKDF2 hasher at its full 1,000,000
iterations, as sets made before issue 20 are stored) and a few logins with such a set; and
one production password check.

Password hasher: the test settings' MD5PasswordHasher (portal/settings_test.py), put in with
override_settings, so the password step costs the same small amount in both logins and does
not drown what differs (as in benchmarks/key_step.py); everything else is portal.settings.
A real login adds one production password check (printed) to both kinds alike.
"""

import argparse
import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.key_step import (  # noqa: E402
    FAST_HASHER,
    LOGIN,
    PROFILE,
    STEP,
    Recorder,
    expect,
    load_average,
    percentile,
    production_password_check,
)
from benchmarks.login import PASSWORD, create_users  # noqa: E402
from tests.integration.servers import collected_static, production_env  # noqa: E402

BACKUP_URL, NEW_CODES_URL = "/2fa/backup-codes/", "/2fa/backup-codes/new/"
SHOWN_CODE = re.compile(r"<li><code>([^<]+)</code></li>")
KINDS = ("app", "backup", "generate")
CODES_PER_SET = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=300, help="timed logins of each kind")
    parser.add_argument("--generates", type=int, default=100, help="timed new sets")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first")
    parser.add_argument(
        "--old-logins", type=int, default=5, help="logins with a set in the old format"
    )
    return parser.parse_args()


# --- setup (Django is set up by then) ------------------------------------------------------
def backup_users(users: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(email, code): five logins per user, each with one code of a set made by the services."""
    from django.contrib.auth import get_user_model

    from twofactor import services

    User = get_user_model()
    logins = []
    for email, _secret in users:
        codes = services.regenerate_backup_codes(user=User.objects.get(email=email))
        logins += [(email, code) for code in codes]
    return logins


def old_format_users(users: list[tuple[str, str]], hasher_path: str) -> list[tuple[str, str]]:
    """(email, code): sets stored as before issue 20, with Django's hasher (one salt a set)."""
    from django.contrib.auth import get_user_model
    from django.utils.module_loading import import_string

    from twofactor import otp
    from twofactor.models import BackupCode

    hasher = import_string(hasher_path)()
    logins = []
    for email, _secret in users:
        user = get_user_model().objects.get(email=email)
        codes, salt = otp.generate_backup_codes(), hasher.salt()
        BackupCode.objects.bulk_create(
            [BackupCode(user=user, code_hash=hasher.encode(code, salt)) for code in codes]
        )
        logins += [(email, code) for code in codes]
    return logins


# --- one request sequence of each kind -------------------------------------------------------
def log_in(record: Recorder, client, email: str, code: str) -> None:
    fields = {"username": email, "password": PASSWORD}
    expect(record("password", lambda: client.post(LOGIN, fields)), 302, STEP)
    expect(record("page", lambda: client.get(STEP)), 200)
    expect(record("answer", lambda: client.post(STEP, {"code": code})), 302, PROFILE)


class Generator:
    """One browser, logged in and in sudo mode, that makes new sets; "confirm it's you" is
    answered again (untimed) with a code of the last set whenever its 10 minutes lapse."""

    def __init__(self, client, email: str, secret: str) -> None:
        import pyotp
        from django.contrib.auth import get_user_model

        from twofactor import services

        self.client = client
        log_in(Recorder(), client, email, pyotp.TOTP(secret).now())
        owner = get_user_model().objects.get(email=email)
        self.last_code = services.regenerate_backup_codes(user=owner)[0]
        self.confirm()

    def confirm(self) -> None:
        proof = {"sudo": "1", "password": PASSWORD, "code": self.last_code}
        expect(self.client.post(BACKUP_URL, proof), 302)

    def __call__(self, record: Recorder) -> None:
        response = record("post", lambda: self.client.post(BACKUP_URL, {"generate": "1"}))
        if response.status_code == 200:  # sudo lapsed: answer it, then time the POST again
            self.confirm()
            response = record("post", lambda: self.client.post(BACKUP_URL, {"generate": "1"}))
        expect(response, 302, NEW_CODES_URL)
        page = record("page", lambda: self.client.get(NEW_CODES_URL))
        expect(page, 200)
        codes = SHOWN_CODE.findall(page.content.decode())
        if len(codes) != CODES_PER_SET:
            raise SystemExit(f"the new-codes page showed {len(codes)} codes")
        self.last_code = codes[0]


def rounds(
    client, app_logins, backup_logins, generator, *, count: int, generates: int, record
) -> dict[str, list[dict[str, float]]]:
    """`count` rounds of one login of each kind (and a new set while `generates` lasts), the
    kind that goes first moving on each round. Each login starts in a browser that has never
    been here (cookies emptied) but in the same Client, as in benchmarks/key_step.py."""
    import pyotp

    timed: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for n in range(count):
        for kind in KINDS[n % 3 :] + KINDS[: n % 3]:
            recorder = record()
            if kind == "generate":
                if n >= generates:
                    continue
                generator(recorder)
            else:
                client.cookies.clear()
                if kind == "app":
                    email, secret = app_logins[n]
                    code = pyotp.TOTP(secret).now()
                else:
                    email, code = backup_logins[n]
                log_in(recorder, client, email, code)
            timed[kind].append(recorder.queries if recorder.count_queries else recorder.ms)
    return timed


# --- the crypto alone ---------------------------------------------------------------------
@contextmanager
def counted_derivations() -> Iterator[dict[str, int]]:
    """Counts hashlib.scrypt and hashlib.pbkdf2_hmac calls (the key derivations of both
    formats; the MD5 password hasher of this run calls neither)."""
    counts = {"scrypt": 0, "pbkdf2_hmac": 0}
    originals = {name: getattr(hashlib, name) for name in counts}

    def counting(name: str) -> Callable:
        def call(*args, **kwargs):
            counts[name] += 1
            return originals[name](*args, **kwargs)

        return call

    for name in counts:
        setattr(hashlib, name, counting(name))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(hashlib, name, original)


def derivations_per_attempt(client, logins: list[tuple[str, str]]) -> dict[str, int]:
    """Key derivations in the code step's POST for a right, a wrong and an already-used code
    (three logins of one user's set: the wrong one refused, then the right one twice)."""
    email, right = logins[0]
    found = {}
    for label, code, answer in [
        ("wrong", "aaaaa-aaaaa", 200),
        ("right", right, 302),
        ("used", right, 200),
    ]:
        client.cookies.clear()
        fields = {"username": email, "password": PASSWORD}
        expect(client.post(LOGIN, fields), 302, STEP)
        with counted_derivations() as counts:
            expect(client.post(STEP, {"code": code}), answer)
        found[label] = sum(counts.values())
    return found


def median_ms(call: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def crypto_alone(hasher_path: str) -> dict[str, float]:
    """Median ms: one derivation, one check of a typed code against a stored set of five, the
    hashing of a new set (the new format); the check and the hashing of a set as they were
    before (Django's PBKDF2 at full cost)."""
    from django.utils.module_loading import import_string

    from twofactor import crypto, otp

    codes = otp.generate_backup_codes()
    keys = crypto.backup_code_keys()
    salt = otp.new_backup_code_salt()
    stored = [otp.hash_backup_code(code, salt=salt, key=keys[0]) for code in codes]
    hasher = import_string(hasher_path)()
    old_salt = hasher.salt()
    old_stored = [hasher.encode(code, old_salt) for code in codes]
    return {
        "derivation": median_ms(lambda: otp.derive_backup_code(codes[0], salt=salt), 21),
        "check": median_ms(lambda: otp.match_backup_code(codes[3], stored, keys=keys), 21),
        "set": median_ms(
            lambda: [otp.hash_backup_code(c, salt=salt, key=keys[0]) for c in codes], 11
        ),
        "old check": median_ms(lambda: otp.match_backup_code(codes[3], old_stored, keys=keys), 5),
        "old set": median_ms(lambda: [hasher.encode(c, old_salt) for c in codes], 3),
    }


# --- the run ---------------------------------------------------------------------------------
def summed(logins: list[dict[str, float]], parts: list[str]) -> list[float]:
    return [sum(login[part] for part in parts) for login in logins]


def print_table(timed, queries, old, crypto, derivations, production_check: float) -> None:
    app_login = summed(timed["app"], ["password", "page", "answer"])
    base = percentile(app_login, 0.5)
    rows = [
        ("login, app code (baseline)", app_login, "app", ["password", "page", "answer"]),
        (
            "login, backup code",
            summed(timed["backup"], ["password", "page", "answer"]),
            "backup",
            ["password", "page", "answer"],
        ),
        ("  code step POST, app code", summed(timed["app"], ["answer"]), "app", ["answer"]),
        (
            "  code step POST, backup code",
            summed(timed["backup"], ["answer"]),
            "backup",
            ["answer"],
        ),
        ("Generate backup code: POST", summed(timed["generate"], ["post"]), "generate", ["post"]),
        ("  then its page: GET", summed(timed["generate"], ["page"]), "generate", ["page"]),
        (
            "login, old-format backup code",
            summed(old, ["password", "page", "answer"]),
            "backup",
            ["password", "page", "answer"],
        ),
    ]
    header = f"{'':<34} {'p50 ms':>8} {'p90 ms':>8} {'p50/base':>8} {'p90/base':>8}  queries"
    print(header)
    print("-" * len(header))
    for label, samples, kind, parts in rows:
        p50, p90 = percentile(samples, 0.5), percentile(samples, 0.9)
        counts = [queries[kind][part] for part in parts]
        shown = str(counts[0]) if len(counts) == 1 else "+".join(map(str, counts))
        if len(counts) > 1:
            shown += f" = {sum(counts)}"
        print(f"{label:<34} {p50:>8.2f} {p90:>8.2f} {p50 / base:>8.3f} {p90 / base:>8.3f}  {shown}")
    print()
    for label, value in [
        ("one derivation (scrypt), median", crypto["derivation"]),
        ("check a code against a set of 5", crypto["check"]),
        ("hash a new set of 5", crypto["set"]),
        ("old format: check (PBKDF2, 1M it.)", crypto["old check"]),
        ("old format: hash a set of 5", crypto["old set"]),
        ("one production password check", production_check),
    ]:
        print(f"{label:<34} {value:>8.2f} {'':>8} {value / base:>8.3f}")
    backup_p50 = percentile(summed(timed["backup"], ["password", "page", "answer"]), 0.5)
    print(
        f"\nbase = login with an app code, p50 of this run ({base:.2f} ms); "
        f"{len(timed['app'])} timed logins of each kind, {len(timed['generate'])} new sets, "
        f"{len(old)} old-format logins (after the rounds).\n"
        f"key derivations per code step POST: right {derivations['right']}, "
        f"wrong {derivations['wrong']}, already used {derivations['used']}; "
        f"per new set (Generate): {derivations['new set']}.\n"
        f"with one production password check added to both logins: backup / app = "
        f"{(backup_p50 + production_check) / (base + production_check):.3f}"
    )


def run(args: argparse.Namespace, production_hasher: str) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", "--no-input", "--skip-checks", verbosity=0)
    started = time.perf_counter()
    rounds_needed = args.logins + args.warmup + 1  # the last one is for counting queries
    sets_needed = -(-rounds_needed // CODES_PER_SET) + 1  # and one for the derivation count
    old_sets = -(-args.old_logins // CODES_PER_SET)
    users = create_users(rounds_needed + sets_needed + old_sets + 1)
    app_logins = users[:rounds_needed]
    backup_logins = backup_users(users[rounds_needed : rounds_needed + sets_needed])
    old_logins = old_format_users(users[-1 - old_sets : -1], production_hasher)
    generator = Generator(Client(), *users[-1])
    setup_seconds = time.perf_counter() - started
    print(
        f"settings: {connection.vendor}, DEBUG={settings.DEBUG}, hasher "
        f"{settings.PASSWORD_HASHERS[0].rsplit('.', 1)[1]}, sessions "
        f"{settings.SESSION_ENGINE.rsplit('.', 1)[1]}, tasks {settings.TASKS['default']['BACKEND']}"
    )
    print(f"          setup {setup_seconds:.1f} s; {args.warmup} untimed rounds first")
    client = Client()
    rounds(
        client,
        app_logins,
        backup_logins,
        generator,
        count=args.warmup,
        generates=0,
        record=Recorder,
    )
    started = time.perf_counter()
    timed = rounds(
        client,
        app_logins[args.warmup :],
        backup_logins[args.warmup :],
        generator,
        count=args.logins,
        generates=args.generates,
        record=Recorder,
    )
    print(f"timed rounds: {time.perf_counter() - started:.1f} s\n")
    counted = rounds(
        client,
        app_logins[-1:],
        backup_logins[rounds_needed - 1 :],
        generator,
        count=1,
        generates=1,
        record=lambda: Recorder(count_queries=True),
    )
    queries = {kind: counted[kind][0] for kind in KINDS}
    # Apart from the rounds: these take a quarter of a second each (old format, password).
    derivations = derivations_per_attempt(client, backup_logins[rounds_needed:])
    with counted_derivations() as counts:
        generator(Recorder())
    derivations["new set"] = sum(counts.values())
    old = []
    for email, code in old_logins[: args.old_logins]:
        recorder = Recorder()
        client.cookies.clear()
        log_in(recorder, client, email, code)
        old.append(recorder.ms)
    crypto = crypto_alone(production_hasher)
    check = production_password_check(production_hasher)
    print_table(timed, queries, old, crypto, derivations, check)


def main() -> None:
    args = parse_args()
    wall = time.perf_counter()
    print(f"load average at start: {load_average()} ({len(os.sched_getaffinity(0))} cores)")
    folder = tempfile.mkdtemp(prefix="bench-backup-codes-")
    database_url = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    collected_static()  # production settings serve the manifest storage: it needs the files
    os.environ.update(
        production_env(DATABASE_URL=database_url, ALLOWED_HOSTS="testserver", LOG_LEVEL="WARNING")
    )
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections
    from django.test.utils import override_settings

    production_hasher = settings.PASSWORD_HASHERS[0]
    try:
        # The production hasher stays listed (not first): sets in the old format name it.
        with override_settings(PASSWORD_HASHERS=[FAST_HASHER, production_hasher]):
            run(args, production_hasher)
    finally:
        connections.close_all()
    for leftover in Path(folder).iterdir():  # the SQLite file and its -wal/-shm
        leftover.unlink()
    Path(folder).rmdir()
    print(f"\nload average at end: {load_average()}; {time.perf_counter() - wall:.0f} s in all")


if __name__ == "__main__":
    main()
