"""What a login costs the database, as production runs it (issue 20): the statements of
each step, without the test transaction's savepoints."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import device_cookies
from accounts.models import DeviceToken
from tests.conftest import PASSWORD, request_with_cookies_of

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(CONTROL)]


@pytest.fixture
def returning_user(make_user, enrolled):
    user = make_user(language="en")  # not a first login: nothing to keep on the profile
    return user, enrolled(user)


@pytest.fixture
def clock(freeze_clock):
    return freeze_clock(timezone.now())


def test_the_code_step_takes_nine_statements_at_most(returning_user, totp_code):
    user, secret = returning_user
    client = Client()
    client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/2fa/login/", {"code": totp_code(secret, steps=1)})
    assert response.status_code == 302
    # The session, the user, the device locked and its replay guard, the login event, the
    # device token, the session record, last_login, the session saved (the device
    # tokens' bound was kept at the password step).
    assert len(statements(queries)) <= 9, statements(queries)


@pytest.mark.django_db(transaction=True)
def test_the_code_step_is_one_transaction_and_the_sessions_save(make_user, enrolled, totp_code):
    # The code's check and the login's writes (the event, the session record, last_login,
    # the device token) in one transaction, without savepoints; the session's save at the
    # end of the request, one statement that commits alone.
    user = make_user(language="en")
    secret = enrolled(user)
    client = Client()
    client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/2fa/login/", {"code": totp_code(secret, steps=1)})
    assert response.status_code == 302
    sql = [q["sql"] for q in queries.captured_queries]
    control = [s.split()[0] for s in sql if s.startswith(CONTROL)]  # SQLite: BEGIN IMMEDIATE
    assert control == ["BEGIN", "COMMIT"], sql
    assert sql[-1].startswith('UPDATE "django_session"') and sql.index("COMMIT") < len(sql) - 1


@pytest.mark.django_db(transaction=True)
def test_a_wrong_code_is_counted_though_the_login_shares_its_transaction(
    make_user, enrolled, totp_code
):
    from twofactor.models import TOTPDevice

    user = make_user(language="en")
    secret = enrolled(user)
    client = Client()
    client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    wrong = f"{(int(totp_code(secret, steps=1)) + 1) % 1_000_000:06d}"
    assert client.post("/2fa/login/", {"code": wrong}).status_code == 200
    assert TOTPDevice.objects.get(user=user).failure_count == 1


def test_the_password_step_writes_the_new_session_once(returning_user):
    user, _secret = returning_user
    with CaptureQueriesContext(connection) as queries:
        Client().post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    sessions = [sql for sql in statements(queries) if "django_session" in sql]
    # A session that had no row: one INSERT, no lookup of the random key first.
    assert len(sessions) == 1 and sessions[0].startswith("INSERT")


def test_a_browser_swapping_its_own_token_adds_none(user):
    client = Client()
    for _ in range(3):
        client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        client.post("/accounts/logout/")
    assert DeviceToken.objects.count() == 1


def known(browser, user) -> bool:
    return (
        device_cookies.device_token(request_with_cookies_of(browser), email=user.email) is not None
    )


def test_each_account_knows_its_newest_browsers_only(user, monkeypatch, clock):
    monkeypatch.setattr(device_cookies, "MAX_TOKENS_PER_ACCOUNT", 3)
    browsers = []
    for _ in range(5):  # five browsers, each logging in once
        clock.advance(seconds=1)
        browser = Client()
        browser.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        browsers.append(browser)
    assert [known(b, user) for b in browsers] == [False, False, True, True, True]
    # The rows past the bound go at the next right password: one over at most.
    assert DeviceToken.objects.filter(account=device_cookies.account_tag(user.email)).count() == 4


def test_the_bound_holds_for_two_factor_logins_and_keeps_the_newest(
    returning_user, totp_code, monkeypatch, clock
):
    user, secret = returning_user
    monkeypatch.setattr(device_cookies, "MAX_TOKENS_PER_ACCOUNT", 3)
    browsers = []
    for _ in range(5):  # five browsers, each logging in once, a code apart
        clock.advance(seconds=30)
        browser = Client()
        browser.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        assert browser.post("/2fa/login/", {"code": totp_code(secret)}).status_code == 302
        browsers.append(browser)
    assert [known(b, user) for b in browsers] == [False, False, True, True, True]
    assert DeviceToken.objects.filter(account=device_cookies.account_tag(user.email)).count() <= 4


def test_a_right_password_without_the_code_pushes_no_browser_out(
    returning_user, totp_code, monkeypatch, clock
):
    # A stranger who has the password but not the code must not make the owner's
    # browsers strangers to the password lock (then lock them out with wrong passwords).
    user, secret = returning_user
    monkeypatch.setattr(device_cookies, "MAX_TOKENS_PER_ACCOUNT", 3)
    owners = []
    for _ in range(3):
        clock.advance(seconds=30)
        browser = Client()
        browser.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        browser.post("/2fa/login/", {"code": totp_code(secret)})
        owners.append(browser)
    for _ in range(3):  # the stranger's password steps, never a code
        clock.advance(seconds=1)
        Client().post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert all(known(b, user) for b in owners)


def test_the_code_step_of_a_returning_browser_swaps_its_token_in_one_statement(
    returning_user, totp_code, clock
):
    user, secret = returning_user
    browser = Client()
    for _ in range(2):
        clock.advance(seconds=30)
        browser.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        with CaptureQueriesContext(connection) as queries:
            browser.post("/2fa/login/", {"code": totp_code(secret)})
        tokens = [sql for sql in statements(queries) if "devicetoken" in sql]
        browser.post("/accounts/logout/")  # the next request empties the query log
    assert len(tokens) == 1 and tokens[0].startswith("UPDATE"), tokens
    assert DeviceToken.objects.count() == 1


def test_a_login_that_failed_on_the_server_keeps_the_browsers_device_token(user, monkeypatch):
    # The login's transaction rolled back with its new token: the browser must keep the
    # one the database still knows, or it would be a stranger to the password lock.
    from django.conf import settings

    from accounts import session_records

    browser = Client(raise_request_exception=False)
    browser.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    browser.post("/accounts/logout/")
    known = browser.cookies[settings.DEVICE_COOKIE_NAME].value

    def broken(*args, **kwargs):
        raise RuntimeError("the session record could not be written")

    monkeypatch.setattr(session_records, "start_record", broken)
    response = browser.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 500
    assert settings.DEVICE_COOKIE_NAME not in response.cookies
    assert browser.cookies[settings.DEVICE_COOKIE_NAME].value == known
