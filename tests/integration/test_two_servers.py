"""Two gunicorn servers sharing one PostgreSQL database and one Redis, as behind a load balancer.

Each request below names the server it goes to: the login state, the throttle
and the replay guard must live in the shared stores, not in a server's memory.
Runs in CI's PostgreSQL + Redis pass; skipped (with the reason) on SQLite.
"""

import json
import os
import time
from pathlib import Path

import pyotp
import pytest

from tests.integration.servers import (
    Browser,
    manage,
    start_gunicorn,
    start_task_worker,
    stop,
    stop_task_worker,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI's PostgreSQL + Redis pass)"
    ),
]

PASSWORD = "correct horse battery staple"
LOGIN = "/accounts/login/"
CODE_STEP = "/2fa/login/"
PROFILE = "/accounts/profile/"
USERS = ["across@example.com", "locked@example.com", "replay@example.com", "reset@example.com"]

# Runs inside `manage.py shell` against the servers' database, with their
# SECRET_KEY, so the secrets are encrypted with the key the servers decrypt with.
CREATE_USERS = """
import json
from datetime import timedelta
import pyotp
from django.contrib.auth import get_user_model
from django.utils import timezone
from twofactor import services
enrolled_at = timezone.now() - timedelta(minutes=2)
secrets = {}
for email in EMAILS:
    user = get_user_model().objects.create_user(email=email, password=PASSWORD, name="Two Servers")
    session = {}
    secret = services.begin_enrollment(user=user, session=session, now=enrolled_at).secret
    code = pyotp.TOTP(secret).at(enrolled_at)
    services.confirm_enrollment(user=user, session=session, code=code, now=enrolled_at)
    secrets[email] = secret
print("SECRETS=" + json.dumps(secrets))
"""


@pytest.fixture(scope="module")
def mail_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sent-mail")


@pytest.fixture(scope="module")
def cluster(postgres_env, mail_folder):
    script = f"EMAILS = {USERS!r}\nPASSWORD = {PASSWORD!r}\n" + CREATE_USERS
    output = manage(postgres_env, "shell", "-c", script)
    secrets = json.loads(output.rsplit("SECRETS=", 1)[1])
    # The servers only queue e-mail; the one task worker sends it, into files here.
    worker = start_task_worker(
        {
            **postgres_env,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_folder),
        }
    )
    server_a = start_gunicorn(postgres_env)
    try:
        server_b = start_gunicorn(postgres_env)
    except Exception:
        stop(server_a)
        stop_task_worker(worker)
        raise
    try:
        yield server_a, server_b, secrets
    finally:
        stop(server_a)
        stop(server_b)
        stop_task_worker(worker)


def password_step(browser: Browser, server, email: str) -> None:
    response = browser.submit(server, LOGIN, {"username": email, "password": PASSWORD})
    assert response.status == 302, response.text
    assert response.location == CODE_STEP


def test_password_on_one_server_and_code_on_the_other_logs_in(cluster):
    server_a, server_b, secrets = cluster
    browser = Browser()
    password_step(browser, server_a, "across@example.com")

    code = pyotp.TOTP(secrets["across@example.com"]).now()
    response = browser.submit(server_b, CODE_STEP, {"code": code})

    assert response.status == 302, response.text
    assert response.location == PROFILE
    for server in (server_a, server_b):
        profile = browser.get(server, PROFILE)
        assert profile.status == 200
        assert "across@example.com" in profile.text


def test_failures_on_both_servers_add_up_to_one_lock(cluster, wrong_code):
    server_a, server_b, secrets = cluster
    browser = Browser()
    password_step(browser, server_a, "locked@example.com")
    wrong = wrong_code(secrets["locked@example.com"])

    answers = [
        browser.submit(server, CODE_STEP, {"code": wrong})
        for server in (server_a, server_b, server_a, server_b, server_a)
    ]

    assert all("That code is not right" in answer.text for answer in answers[:4])
    assert "Too many wrong codes" in answers[4].text
    # The lock holds on the other server, even for the right code.
    right = pyotp.TOTP(secrets["locked@example.com"]).now()
    refused = browser.submit(server_b, CODE_STEP, {"code": right})
    assert refused.status == 200
    assert "Too many wrong codes" in refused.text
    assert browser.get(server_b, PROFILE).status == 302  # still not logged in


def test_code_used_on_one_server_is_refused_on_the_other(cluster):
    server_a, server_b, secrets = cluster
    first, second = Browser(), Browser()
    password_step(first, server_a, "replay@example.com")
    password_step(second, server_b, "replay@example.com")
    code = pyotp.TOTP(secrets["replay@example.com"]).now()

    accepted = first.submit(server_a, CODE_STEP, {"code": code})
    replayed = second.submit(server_b, CODE_STEP, {"code": code})

    assert accepted.status == 302
    assert replayed.status == 200
    assert "That code has already been used" in replayed.text
    assert second.get(server_b, PROFILE).status == 302


def sent_mail(folder: Path, *needles: str, timeout: float = 20) -> list[str]:
    """The messages the worker wrote that contain every needle, waiting for the first one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        texts = [
            part for f in folder.glob("*.log") for part in f.read_text().split("\n" + "-" * 79)
        ]
        found = [text for text in texts if all(needle in text for needle in needles)]
        if found:
            return found
        time.sleep(0.2)
    return []


def test_a_reset_email_asked_for_on_one_server_is_sent_by_the_worker(cluster, mail_folder):
    server_a, server_b, _ = cluster
    browser = Browser()
    response = browser.submit(server_a, "/accounts/password-reset/", {"email": "reset@example.com"})
    assert response.status == 302, response.text
    messages = sent_mail(mail_folder, "To: reset@example.com", "password-reset/")
    assert len(messages) == 1
    assert "/accounts/password-reset/" in messages[0]
    # Spaced out across servers: a second request on the other server sends nothing.
    Browser().submit(server_b, "/accounts/password-reset/", {"email": "reset@example.com"})
    time.sleep(2)
    assert len(sent_mail(mail_folder, "To: reset@example.com", "password-reset/")) == 1


def test_a_lock_on_two_servers_is_mailed_once_by_the_worker(cluster, mail_folder):
    # Relies on test_failures_on_both_servers_add_up_to_one_lock having run first.
    messages = sent_mail(
        mail_folder, "To: locked@example.com", "Subject: Someone failed the two-factor code"
    )
    assert len(messages) == 1
