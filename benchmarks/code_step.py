"""The code step (the POST of the six-digit code) against another commit, in the same run.

    .venv/bin/python benchmarks/code_step.py --baseline b3aaf1d [--logins 100] [--rounds 10]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/code_step.py --baseline b3aaf1d

Checks the baseline commit out in a git worktree of its own (removed at the end), then
runs the two trees side by side, one core each, `--rounds` times, each in a fresh process with
a fresh database (SQLite in memory, so no COMMIT's fsync times the disk; or a PostgreSQL
database created and dropped on the server of DATABASE_URL). A round logs `--logins`
users in through the real URLs with Django's test client (DEBUG off, the test settings'
fast password hasher, so the password step does not drown the step measured) and times
the code POST alone: wall time, and this process's CPU time (with SQLite in memory all
the work is in the process, so other programs on the machine do not inflate it). It
counts the SQL statements of a code step (not BEGIN/COMMIT/SAVEPOINT), outside any test
transaction, as production runs it, on one login of its own (the query log that counts
them is not on in production, and is not timed). Prints p50 and p90 per round, and this tree's p50
over the baseline's as the median ratio of the rounds (below 1: faster).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark users' password
CONTROL_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def child(logins: int) -> None:
    """One round, in the tree this process was started in: prints its figures as JSON."""
    sys.path.insert(0, os.getcwd())
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    import django

    django.setup()
    import pyotp
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from twofactor import services

    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    User = django.apps.apps.get_model(settings.AUTH_USER_MODEL)
    users = []
    enrolled_at = timezone.now() - timezone.timedelta(minutes=5)
    # Returning users: a tree that keeps a language on the user has it already (the first
    # login's one-time save of it is not the step measured).
    known = {"language": "en"} if any(f.name == "language" for f in User._meta.fields) else {}
    for number in range(logins + 2):  # one to warm up, one to count statements
        user = User.objects.create_user(
            email=f"bench{number}@example.com", password=PASSWORD, **known
        )
        session: dict = {}
        device = services.begin_enrollment(user=user, session=session, now=enrolled_at)
        secret = device.secret
        code = pyotp.TOTP(secret).at(enrolled_at)
        services.confirm_enrollment(user=user, session=session, code=code, now=enrolled_at)
        users.append((user.email, secret))

    def log_in(email: str, secret: str, *, count: bool = False) -> tuple[float, float, list[str]]:
        client = Client()
        response = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        code = pyotp.TOTP(secret).now()
        # The statements are counted on a login of their own, not timed: Django's query
        # log (a debug cursor) costs time per statement that production does not spend.
        with CaptureQueriesContext(connection) if count else nullcontext() as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            response = client.post("/2fa/login/", {"code": code})
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - started_cpu
        assert response.status_code == 302, response.status_code
        # Statements, not transaction control (SQLite logs its BEGIN and COMMIT).
        statements = [
            query["sql"]
            for query in (queries.captured_queries if count else [])
            if not query["sql"].startswith(CONTROL_STATEMENTS)
        ]
        return elapsed, cpu, statements

    profiler = None
    if os.environ.get("PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
    log_in(*users[0])  # warm: imports, templates, the first connection
    _, _, statements = log_in(*users[1], count=True)
    if os.environ.get("SHOW_QUERIES"):
        print("\n".join(sql[:150] for sql in statements), file=sys.stderr)
    timings, cpu_timings = [], []
    for email, secret in users[2:]:
        elapsed, cpu, _ = log_in(email, secret)
        timings.append(elapsed * 1000)
        cpu_timings.append(cpu * 1000)
    timings.sort()
    if profiler:
        import pstats

        pstats.Stats(profiler, stream=sys.stderr).sort_stats(
            os.environ.get("PROFILE_SORT", "tottime")
        ).print_stats(os.environ.get("PROFILE_FILTER", ""), 45)
    print(
        json.dumps(
            {
                "p50": statistics.median(timings),
                "cpu_p50": statistics.median(cpu_timings),
                "p90": timings[int(len(timings) * 0.9)],
                "queries": len(statements),
            }
        )
    )


def worktree_of(commit: str, into: Path) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-f", str(into), commit],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (into / ".venv").symlink_to(ROOT / ".venv")
    # The catalogs, compiled as `make` would (the baseline may have none).
    import polib

    for po in list(into.glob("locale/*/LC_MESSAGES/*.po")) + list(
        into.glob("twofactor/locale/*/LC_MESSAGES/*.po")
    ):
        polib.pofile(str(po)).save_as_mofile(str(po.with_suffix(".mo")))
    return into


def run_round(tree: Path, logins: int, database_url: str | None, label: str) -> dict:
    env = dict(os.environ)
    scratch = Path(tempfile.mkdtemp(prefix="code-step-"))
    database = None
    try:
        if database_url and database_url.startswith("postgres"):
            database = f"bench_code_step_{label}"
            base = database_url.rsplit("/", 1)[0]
            subprocess.run(
                ["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", database], check=True
            )
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
            env["DATABASE_URL"] = f"{base}/{database}"
        else:
            # In memory: a COMMIT's fsync would time the disk, not the code.
            env["DATABASE_URL"] = "sqlite://:memory:"
        env.pop("REDIS_URL", None)  # local-memory cache in both trees
        result = subprocess.run(
            [
                str(ROOT / ".venv/bin/python"),
                str(ROOT / "benchmarks/code_step.py"),
                "--child",
                str(logins),
            ],
            cwd=tree,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if database:
            subprocess.run(
                ["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", database], check=True
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", help="the commit to compare against")
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if not args.baseline:
        parser.error("--baseline COMMIT is required")
    database_url = os.environ.get("DATABASE_URL")
    with open("/proc/loadavg") as load:
        print(f"load average before: {load.read().split()[:3]}")
    with tempfile.TemporaryDirectory(prefix="code-step-baseline-") as scratch:
        baseline = worktree_of(args.baseline, Path(scratch) / "tree")
        try:
            results: dict[str, list[dict]] = {"baseline": [], "this tree": []}
            trees = (("baseline", baseline), ("this tree", ROOT))
            for round_number in range(args.rounds):
                # The two trees at the same time, one core each (the machine has two):
                # whatever the machine does meanwhile (other programs, a slower clock)
                # slows both alike, and the ratio of the round holds.
                with ThreadPoolExecutor(max_workers=2) as pool:
                    futures = {
                        label: pool.submit(
                            run_round, tree, args.logins, database_url, label.replace(" ", "_")
                        )
                        for label, tree in trees
                    }
                for label, _tree in trees:
                    figures = futures[label].result()
                    results[label].append(figures)
                    print(
                        f"round {round_number + 1} {label:>9}: p50 {figures['p50']:.2f} ms "
                        f"(CPU {figures['cpu_p50']:.2f} ms), p90 {figures['p90']:.2f} ms, "
                        f"{figures['queries']} statements",
                        flush=True,
                    )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False
            )
    database = "PostgreSQL" if database_url else "SQLite in memory"
    print(f"database: {database}; baseline {args.baseline}")
    for figure, label in (("p50", "wall time"), ("cpu_p50", "CPU time of this process")):
        ratios = [
            ours[figure] / theirs[figure]
            for ours, theirs in zip(results["this tree"], results["baseline"], strict=True)
        ]
        print(
            f"code step p50 ({label}), this tree / baseline: median of {len(ratios)} rounds "
            f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}–{max(ratios):.2f})"
        )
    print(
        f"statements: baseline {results['baseline'][0]['queries']}, "
        f"this tree {results['this tree'][0]['queries']}"
    )
    with open("/proc/loadavg") as load:
        print(f"load average after: {load.read().split()[:3]}")


if __name__ == "__main__":
    main()
