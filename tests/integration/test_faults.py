"""Faults: the database or Redis goes away, and comes back.

Database down -> a plain 503 page (no traceback, nothing half-saved), and the
portal serves again by itself once the database is back. Redis down -> cache
calls fail quietly (django-redis IGNORE_EXCEPTIONS), so login still works, and
the code throttle, the password limits and the reset-mail limits, which live in
the database, still hold (and reset e-mails still go out).
"""

import shutil
import subprocess
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import InterfaceError, OperationalError
from django.test import Client, RequestFactory

from portal.middleware import server_error
from tests.conftest import PASSWORD
from tests.integration.servers import (
    Browser,
    TcpRelay,
    free_port,
    manage,
    start_gunicorn,
    stop,
)

LOGIN = "/accounts/login/"
CODE_STEP = "/2fa/login/"
PROFILE = "/accounts/profile/"
OUTAGE_TEXT = "Temporarily unavailable"


@pytest.fixture
def database_down(db):
    """Every new query fails as Django fails when it cannot reach the server.

    ensure_connection() is where Django (re)connects before each cursor; raising
    there is what an unreachable host or a refused port produces. up() brings
    the database back; teardown always does, before the test database rolls back.
    """

    def unreachable():
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed')

    class Switch:
        def down(self) -> None:
            connections[DEFAULT_DB_ALIAS].ensure_connection = unreachable

        def up(self) -> None:
            connections[DEFAULT_DB_ALIAS].__dict__.pop("ensure_connection", None)

    switch = Switch()
    yield switch
    switch.up()


def assert_plain_outage_page(response) -> None:
    body = response.content.decode()
    assert response.status_code == 503
    assert OUTAGE_TEXT in body
    assert "Traceback" not in body and "OperationalError" not in body
    assert response["Retry-After"]


def test_database_outage_answers_a_plain_503_page(client, user, database_down):
    client.force_login(user)
    database_down.down()
    assert_plain_outage_page(client.get(PROFILE))


def test_login_during_a_database_outage_answers_503_not_a_wrong_password(
    client, user, database_down
):
    database_down.down()
    response = client.post(LOGIN, {"username": user.email, "password": PASSWORD})
    assert_plain_outage_page(response)
    assert "do not match an account" not in response.content.decode()


def test_portal_serves_again_once_the_database_returns(client, user, database_down):
    client.force_login(user)
    database_down.down()
    assert client.get(PROFILE).status_code == 503
    database_down.up()
    response = client.get(PROFILE)
    assert response.status_code == 200
    assert user.email in response.content.decode()


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_database_error_outside_a_view_also_gets_the_503_page(rf: RequestFactory, error):
    # Django calls handler500 inside its except block, e.g. for a failed session save.
    try:
        raise error("server closed the connection unexpectedly")
    except error:
        response = server_error(rf.get(PROFILE))
    assert_plain_outage_page(response)


def test_other_server_errors_stay_a_500(rf: RequestFactory):
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(rf.get(PROFILE))
    assert response.status_code == 500


# --- Redis unreachable --------------------------------------------------------------------
@pytest.fixture
def redis_down(settings):
    """The production cache settings, pointed at a port where nothing listens."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }


def log_in_with_password(client, user):
    response = client.post(LOGIN, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == CODE_STEP


def test_two_factor_login_works_while_redis_is_down(client, user_with_totp, totp_code, redis_down):
    from django.core.cache import cache

    assert cache.set("probe", 1) is None and cache.get("probe") is None  # Redis really is down
    user, secret = user_with_totp
    log_in_with_password(client, user)
    response = client.post(CODE_STEP, {"code": totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == PROFILE
    assert user.email in client.get(PROFILE).content.decode()


def test_code_throttle_still_locks_while_redis_is_down(
    client, user_with_totp, totp_code, wrong_code, redis_down
):
    user, secret = user_with_totp
    log_in_with_password(client, user)
    for _ in range(5):
        client.post(CODE_STEP, {"code": wrong_code(secret)})
    response = client.post(CODE_STEP, {"code": totp_code(secret)})
    assert "Too many wrong codes" in response.content.decode()
    assert client.get(PROFILE).status_code == 302


@pytest.fixture
def redis_that_stops(settings, tmp_path):
    """A Redis of this test's own as the cache; .stop() shuts it down mid-test."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - a fixed command line
        [
            shutil.which("redis-server") or "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    from django.core.cache import cache

    deadline = time.monotonic() + 10
    while not cache.set("probe", 1) and cache.get("probe") != 1:
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)

    class Switch:
        def stop(self) -> None:
            server.terminate()
            server.wait(timeout=10)
            assert cache.get("probe") is None  # really gone: reads fail quietly

    yield Switch()
    server.kill()
    server.wait(timeout=10)


def test_password_limits_hold_when_redis_stops(user, redis_that_stops, settings):
    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "6/h"
    owner = Client()
    assert owner.post(LOGIN, {"username": user.email, "password": PASSWORD}).status_code == 302
    owner.post("/accounts/logout/")
    for n in range(3):
        Client().post(
            LOGIN, {"username": user.email, "password": "x"}, REMOTE_ADDR=f"203.0.113.{n}"
        )
    redis_that_stops.stop()
    for n in range(3, 6):
        Client().post(
            LOGIN, {"username": user.email, "password": "x"}, REMOTE_ADDR=f"203.0.113.{n}"
        )
    stranger = Client().post(LOGIN, {"username": user.email, "password": PASSWORD})
    assert stranger.status_code == 429  # the per-account limit held through the outage
    assert owner.post(LOGIN, {"username": user.email, "password": PASSWORD}).status_code == 302


def test_network_limit_holds_while_redis_is_down(make_user, redis_down, settings):
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "4/h"
    victim = make_user("victim@example.com")
    for n in range(4):
        Client().post(LOGIN, {"username": f"x{n}@example.com", "password": "x"})
    response = Client().post(LOGIN, {"username": victim.email, "password": PASSWORD})
    assert response.status_code == 429


def test_reset_emails_are_sent_and_spaced_when_redis_stops(
    user, redis_that_stops, mailoutbox, django_capture_on_commit_callbacks
):
    redis_that_stops.stop()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            Client().post("/accounts/password-reset/", {"email": user.email})
    assert [message.to for message in mailoutbox] == [[user.email]]  # sent, and only once


# --- A real server losing its real database ------------------------------------------------
@pytest.mark.postgres
def test_gunicorn_answers_503_while_postgres_is_cut_off_and_recovers_by_itself(postgres_env):
    manage(
        postgres_env,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; get_user_model().objects"
        f".create_user(email='cut@example.com', password={PASSWORD!r}, name='Cut Off')",
    )
    direct = urlsplit(postgres_env["DATABASE_URL"])
    relay = TcpRelay((direct.hostname or "127.0.0.1", direct.port or 5432))
    relay.start()
    relayed_url = urlunsplit(direct._replace(netloc=f"{direct.username}@127.0.0.1:{relay.port}"))
    server = start_gunicorn({**postgres_env, "DATABASE_URL": relayed_url})
    try:
        browser = Browser()
        logged_in = browser.submit(
            server, LOGIN, {"username": "cut@example.com", "password": PASSWORD}
        )
        assert logged_in.status == 302 and logged_in.location == PROFILE

        relay.stop()
        during = [browser.get(server, PROFILE) for _ in range(4)]
        relay.start()
        after = [browser.get(server, PROFILE) for _ in range(4)]
    finally:
        stop(server)
        relay.stop()

    for response in during:
        assert response.status == 503
        assert OUTAGE_TEXT in response.text and "Traceback" not in response.text
    # Back on the first request after the database returns, still logged in.
    assert [response.status for response in after] == [200, 200, 200, 200]
    assert "cut@example.com" in after[0].text
