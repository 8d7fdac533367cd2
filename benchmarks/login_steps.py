"""The CPU of each request of a 2FA login, in process, beside one production password check.

    .venv/bin/python benchmarks/login_steps.py [--logins 150]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/login_steps.py

What benchmarks/login.py's load run spends besides the password hash, without gunicorn
and the load generator around it: Django's test client, DEBUG off, the test settings'
fast password hasher (so the password step is its Django work only), one user per login.
Prints this process's CPU time per request at p50 (the login page, the password, the code
page, the code, then My profile), their sum for the four requests of a login, and that
sum as a share of one check with the production hasher (PBKDF2, measured in this run).
SQLite runs in memory; with DATABASE_URL, a database of its own is created and dropped.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark users' password
STEPS = ["login page (GET)", "password (POST)", "code page (GET)", "code (POST)"]


def production_check_seconds() -> float:
    """Median of 5 checks with the production hasher (the settings' PBKDF2)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    encoded = hasher.encode(PASSWORD, hasher.salt())
    samples = []
    for _ in range(5):
        started = time.process_time()
        hasher.verify(PASSWORD, encoded)
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def one_login(client, email: str, secret: str):
    """The five requests, each made when it is reached (the code is read just before)."""
    import pyotp

    yield STEPS[0], partial(client.get, "/accounts/login/")
    yield (
        STEPS[1],
        partial(client.post, "/accounts/login/", {"username": email, "password": PASSWORD}),
    )
    yield STEPS[2], partial(client.get, "/2fa/login/")
    yield STEPS[3], partial(client.post, "/2fa/login/", {"code": pyotp.TOTP(secret).now()})
    yield "My profile (GET)", partial(client.get, "/accounts/profile/")


def measure(logins: int) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import pyotp
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from twofactor import services

    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    enrolled_at = timezone.now() - timezone.timedelta(minutes=5)
    users = []
    for number in range(logins + 5):  # five to warm up
        user = get_user_model().objects.create_user(
            email=f"steps{number}@example.com", password=PASSWORD, language="en"
        )
        session: dict = {}
        device = services.begin_enrollment(user=user, session=session, now=enrolled_at)
        code = pyotp.TOTP(device.secret).at(enrolled_at)
        services.confirm_enrollment(user=user, session=session, code=code, now=enrolled_at)
        users.append((user.email, device.secret))

    cpu: dict[str, list[float]] = {name: [] for name in [*STEPS, "My profile (GET)"]}
    for index, (email, secret) in enumerate(users):
        for name, request in one_login(Client(), email, secret):
            started = time.process_time()
            response = request()
            spent = time.process_time() - started
            assert response.status_code in (200, 302), (name, response.status_code)
            if index >= 5:
                cpu[name].append(spent * 1000)

    check = production_check_seconds() * 1000
    for name, samples in cpu.items():
        print(f"{name:<18} {statistics.median(samples):6.2f} ms CPU at p50")
    login = sum(statistics.median(cpu[name]) for name in STEPS)
    print(f"the four requests of a login: {login:.1f} ms")
    print(f"one production password check: {check:.1f} ms CPU")
    print(f"a login's Django work / one check: {login / check:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=150)
    args = parser.parse_args()
    source = os.environ.get("DATABASE_URL", "")
    if not source.startswith(("postgres://", "postgresql://")):
        os.environ["DATABASE_URL"] = "sqlite://:memory:"
        measure(args.logins)
        return
    database = "bench_login_steps"
    server = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", "--if-exists", *server, database], check=True)
    subprocess.run(["createdb", *server, database], check=True)
    os.environ["DATABASE_URL"] = f"{source.rsplit('/', 1)[0]}/{database}"
    try:
        measure(args.logins)
    finally:
        from django.db import connections

        connections.close_all()
        subprocess.run(["dropdb", "--if-exists", *server, database], check=True)


if __name__ == "__main__":
    main()
