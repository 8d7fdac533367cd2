"""Password-reset e-mails: queued as a task after the commit, spaced out, never silenced.

A stranger can only space the owner's reset e-mails out (each request of theirs
that is allowed sends the owner a working link); the daily and network caps do
not apply to the owner's own browsers. The reset form does the same work for
known and unknown addresses: the worker looks the address up.
"""

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import PASSWORD

RESET_URL = "/accounts/password-reset/"
SENT_URL = "/accounts/password-reset/sent/"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(freeze_clock):
    return freeze_clock(START)


@pytest.fixture
def ask(django_capture_on_commit_callbacks):
    """ask(email, client=None, ip=...): post the reset form as a real commit would run it."""

    def post(email: str, *, client: Client | None = None, ip: str = "203.0.113.9"):
        with django_capture_on_commit_callbacks(execute=True):
            return (client or Client()).post(RESET_URL, {"email": email}, REMOTE_ADDR=ip)

    return post


def test_one_reset_mail_per_address_every_few_minutes(user, clock, ask, mailoutbox):
    pages = [ask(user.email) for _ in range(10)]
    assert {(page.status_code, page["Location"]) for page in pages} == {(302, SENT_URL)}
    assert len(mailoutbox) == 1
    clock.advance(minutes=5)
    ask(user.email, ip="198.51.100.4")
    assert len(mailoutbox) == 2


def test_a_stranger_cannot_silence_the_owners_reset_mails_for_an_hour(user, clock, ask, mailoutbox):
    for _ in range(12):  # a stranger asks every five minutes for an hour
        ask(user.email, ip="203.0.113.66")
        clock.advance(minutes=5)
        ask(user.email, ip="198.51.100.4")  # the owner, just after the stranger
    # The stranger's requests went out as mails too: the owner's inbox got a working
    # link at least every five minutes, and every owner request after a gap went out.
    assert len(mailoutbox) >= 12
    assert all(message.to == [user.email] for message in mailoutbox)


def test_the_daily_cap_spares_the_owners_own_browser(user, clock, ask, mailoutbox, settings):
    settings.RESET_MAIL_RATE_PER_ADDRESS = "3/d"
    owner = Client()
    owner.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    owner.post("/accounts/logout/")
    for _ in range(5):
        ask(user.email, ip="203.0.113.66")
        clock.advance(minutes=6)
    assert len(mailoutbox) == 3  # the cap, for unknown browsers
    ask(user.email, client=owner, ip="198.51.100.4")
    assert len(mailoutbox) == 4


def test_reset_mails_are_limited_per_network(make_user, clock, ask, mailoutbox, settings):
    settings.RESET_MAIL_RATE_PER_NETWORK = "4/h"
    for n in range(6):
        make_user(f"user{n}@example.com")
        ask(f"user{n}@example.com", ip="203.0.113.66")
    assert len(mailoutbox) == 4
    make_user("someone@example.com")
    ask("someone@example.com", ip="198.51.100.4")
    assert len(mailoutbox) == 5


def test_every_spelling_of_an_address_reaches_the_one_account(user, clock, ask, mailoutbox):
    ask("ＡＮＮ@EXAMPLE.com")
    assert [message.to for message in mailoutbox] == [[user.email]]
    ask("Ann@Example.com")  # the same address: spaced like the first
    assert len(mailoutbox) == 1


def test_the_mail_is_sent_after_the_commit_not_in_the_request(user, clock, mailoutbox):
    # Without a commit (the test's transaction never commits) nothing is sent.
    Client().post(RESET_URL, {"email": user.email})
    assert mailoutbox == []


def test_known_and_unknown_addresses_do_the_same_work(user, clock):
    def statements(email: str, ip: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = Client().post(RESET_URL, {"email": email}, REMOTE_ADDR=ip)
        assert response.status_code == 302
        # Same shape whatever the address: the values differ, the statements do not.
        shapes = [re.sub(r"'[^']*'", "?", query["sql"]) for query in captured.captured_queries]
        return [re.sub(r'"s\d+_x\d+"|\b\d+\b', "N", shape) for shape in shapes]

    assert statements(user.email, "203.0.113.1") == statements("nobody@example.com", "203.0.113.2")


def test_an_unknown_address_gets_the_same_page_and_no_mail(db, clock, ask, mailoutbox):
    response = ask("nobody@example.com")
    assert (response.status_code, response["Location"]) == (302, SENT_URL)
    assert mailoutbox == []


def test_the_reset_link_uses_site_url_not_the_host_header(user, clock, ask, mailoutbox, settings):
    settings.SITE_URL = "https://portal.example.com"
    with_port = Client(HTTP_HOST="testserver:31337")
    ask(user.email, client=with_port)
    assert "https://portal.example.com/accounts/password-reset/" in mailoutbox[0].body
    assert "31337" not in mailoutbox[0].body + mailoutbox[0].subject
