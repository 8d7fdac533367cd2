"""Two gunicorn servers sharing one PostgreSQL database and one Redis, as behind a load balancer.

Each request below names the server it goes to: the login state, the throttle
and the replay guard must live in the shared stores, not in a server's memory.
Runs in CI's PostgreSQL + Redis pass; skipped (with the reason) on SQLite.
"""

import json
import os
import re
import time
from pathlib import Path

import pyotp
import pytest

from tests.integration.servers import (
    CSRF_INPUT,
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
    secret = secrets["locked@example.com"]

    answers = [
        browser.submit(server, CODE_STEP, {"code": wrong_code(secret)})
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


# --- Sessions: ended on one server, logged out on the other --------------------------------------
SIGNED_OUT = "This browser was signed out from another session. Please log in again."
SESSIONS_SUPPORT = "sessions-support@example.com"
SESSIONS_CUSTOMERS = ["sessions-everywhere@example.com", "sessions-twice@example.com"]
SIGN_OUT_FORM = re.compile(r'action="(/accounts/profile/sessions/\d+/sign-out/)"')

# Customers with the password alone, and support staff (All users and "Sign out
# everywhere") with 2FA, whose staff pages need a session that passed the code.
CREATE_SESSION_PEOPLE = """
import json
from datetime import timedelta
import pyotp
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from twofactor import services
User = get_user_model()
pks = {}
for email in CUSTOMERS:
    pks[email] = User.objects.create_user(email=email, password=PASSWORD, name="Two Servers").pk
staff = User.objects.create_user(
    email=STAFF, password=PASSWORD, name="Sessions Support", is_staff=True
)
staff.user_permissions.add(*Permission.objects.filter(
    content_type__app_label="accounts", codename__in=["view_user", "reset_two_factor"]
))
enrolled_at = timezone.now() - timedelta(minutes=2)
session = {}
secret = services.begin_enrollment(user=staff, session=session, now=enrolled_at).secret
code = pyotp.TOTP(secret).at(enrolled_at)
services.confirm_enrollment(user=staff, session=session, code=code, now=enrolled_at)
print("PEOPLE=" + json.dumps({"secret": secret, "pks": pks}))
"""


@pytest.fixture(scope="module")
def session_people(cluster, postgres_env) -> dict:
    script = (
        f"CUSTOMERS = {SESSIONS_CUSTOMERS!r}\nSTAFF = {SESSIONS_SUPPORT!r}\n"
        f"PASSWORD = {PASSWORD!r}\n" + CREATE_SESSION_PEOPLE
    )
    output = manage(postgres_env, "shell", "-c", script)
    return json.loads(output.rsplit("PEOPLE=", 1)[1])


def password_login(browser: Browser, server, email: str) -> Browser:
    """A customer without 2FA: the password alone logs in."""
    response = browser.submit(server, LOGIN, {"username": email, "password": PASSWORD})
    assert (response.status, response.location) == (302, PROFILE), response.text
    return browser


def is_sent_to_login(response) -> bool:
    return response.status == 302 and response.location.startswith(LOGIN)


def staff_signs_out_everywhere(server, people: dict, pk: int, reason: str) -> Browser:
    """Support logs in with the code, confirms it's them, and signs user `pk` out."""
    totp = pyotp.TOTP(people["secret"])
    staff = Browser()
    password_step(staff, server, SESSIONS_SUPPORT)
    assert staff.submit(server, CODE_STEP, {"code": totp.now()}).status == 302
    sessions_page = staff.get(server, f"/accounts/users/{pk}/sessions/")
    assert sessions_page.status == 200, sessions_page.text
    assert sessions_page.text.count('<li class="key">') == 2  # both servers' sessions listed
    end = f"/accounts/users/{pk}/sessions/end/"
    # The next step's code: the login spent this one (the replay guard).
    confirmed = staff.submit(
        server,
        end,
        {"sudo": "1", "password": PASSWORD, "code": totp.at(time.time(), counter_offset=1)},
    )
    assert (confirmed.status, confirmed.location) == (302, end), confirmed.text
    done = staff.submit(server, end, {"reason": reason})
    assert (done.status, done.location) == (302, "/accounts/users/"), done.text
    return staff


def test_staff_on_one_server_sign_a_user_out_everywhere_and_the_other_server_logs_them_out(
    cluster, session_people, mail_folder
):
    server_a, server_b, _ = cluster
    email = SESSIONS_CUSTOMERS[0]
    on_a = password_login(Browser(), server_a, email)
    on_b = password_login(Browser(), server_b, email)
    reason = "Laptop stolen, reported by phone"

    staff = staff_signs_out_everywhere(
        server_b, session_people, session_people["pks"][email], reason
    )

    assert is_sent_to_login(on_a.get(server_a, PROFILE))
    assert is_sent_to_login(on_b.get(server_b, PROFILE))
    after = staff.get(server_b, f"/accounts/users/{session_people['pks'][email]}/sessions/")
    assert "Not signed in anywhere." in after.text
    assert len(sent_mail(mail_folder, f"To: {email}", f"Reason given: {reason}")) == 1


def test_a_session_signed_out_on_one_server_is_logged_out_on_the_other(cluster, session_people):
    server_a, server_b, _ = cluster
    email = SESSIONS_CUSTOMERS[1]
    mine = password_login(Browser(), server_a, email)
    other = password_login(Browser(), server_b, email)
    profile = mine.get(server_a, PROFILE)
    [sign_out] = SIGN_OUT_FORM.findall(profile.body)  # the other browser's, not this one's
    token = CSRF_INPUT.search(profile.body).group(1)

    answer = mine.request(server_a, "POST", sign_out, {"csrfmiddlewaretoken": token})
    assert answer.status == 302, answer.text

    signed_out = other.get(server_b, PROFILE)
    assert is_sent_to_login(signed_out)
    assert SIGNED_OUT in other.get(server_b, signed_out.location).text
    assert mine.get(server_a, PROFILE).status == 200
    assert mine.get(server_b, PROFILE).status == 200
