"""Password-reset form: does a known address take longer than an unknown one?

    .venv/bin/python benchmarks/reset_timing.py [--tries 40]

Posts the reset form through Django's test client against a throw-away SQLite
database (or DATABASE_URL), alternating a known and an unknown address, and
prints the median server time of each and their ratio. Two runs: with the
limits out of the way (every request queues its e-mail task), and with the
default limits (after the first request, each one is spaced out). The e-mail
itself is sent by the worker, not measured here: that is the point.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_folder = tempfile.mkdtemp(prefix="reset-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_folder}/bench.sqlite3")
os.environ["ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from accounts.models import RateWindow  # noqa: E402

KNOWN = "known@example.com"
UNKNOWN = "unknown@example.com"


def measure(tries: int) -> tuple[list[float], list[float]]:
    known, unknown = [], []
    for n in range(tries):
        pair = [(KNOWN, known), (UNKNOWN, unknown)]
        for email, samples in pair if n % 2 else reversed(pair):  # neither always goes first
            client = Client(REMOTE_ADDR=f"203.0.113.{n % 250 + 1}")
            started = time.perf_counter()
            response = client.post("/accounts/password-reset/", {"email": email})
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 302, response.status_code
    return known, unknown


def report(title: str, known: list[float], unknown: list[float]) -> None:
    k, u = statistics.median(known), statistics.median(unknown)
    print(f"{title}")
    print(
        f"  known address   median {k:6.2f} ms  (p90 {statistics.quantiles(known, n=10)[-1]:.2f})"
    )
    print(
        f"  unknown address median {u:6.2f} ms  (p90 {statistics.quantiles(unknown, n=10)[-1]:.2f})"
    )
    print(f"  ratio known/unknown: {k / u:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=40)
    args = parser.parse_args()
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(KNOWN, "a long benchmark passphrase")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.tries} tries per address, interleaved; database {os.environ['DATABASE_URL']}")
    measure(5)  # warm-up: templates, connections
    with override_settings(
        RESET_MAIL_SPACING="100000/5m",
        RESET_MAIL_RATE_PER_ADDRESS="100000/d",
        RESET_MAIL_RATE_PER_NETWORK="100000/h",
    ):
        RateWindow.objects.all().delete()
        report("every request queues its e-mail task:", *measure(args.tries))
    RateWindow.objects.all().delete()
    report("default limits (spaced out after the first):", *measure(args.tries))


if __name__ == "__main__":
    main()
