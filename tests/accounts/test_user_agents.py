"""The browser shown in security e-mails and the security log: family and system from a
fixed vocabulary, never a word of the User-Agent header itself."""

import html

import pytest
from django.test import Client

from accounts import user_agents
from accounts.user_agents import describe_user_agent
from tests.accounts.security_helpers import (
    BROWSER,
    HISTORY_URL,
    IP,
    USER_AGENT,
    enable_through_pages,
)

REAL_BROWSERS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Chrome on Windows",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36",
        "Chrome Mobile on Android",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox on Windows",
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Safari on macOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mobile Safari on iOS",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        "Edge on Windows",
    ),
]

# Header -> a piece of it that must not be shown anywhere.
HOSTILE = {
    "Call +1 555 0100 now Bot/1.0": "555 0100",
    "Your account is locked, call +1 555 0100 Spider/2.0": "555 0100",
    "<script>alert(1)</script>": "alert(1)",
    "curl/8.5.0": "curl",
    "python-requests/2.31.0": "requests",
    "Mozilla/5.0 (compatible; EvilCorpCrawler/1.0; +https://evil.example/)": "evil",
    "Firefox<script>/1 (Windows NT 10.0)": "<script>",
    "visit-evil.example " * 15: "evil.example",
}


@pytest.mark.parametrize(("header", "expected"), REAL_BROWSERS)
def test_real_browsers_are_named_by_family_and_system(header, expected):
    assert describe_user_agent(header) == expected


@pytest.mark.parametrize("header", ["", *HOSTILE])
def test_anything_but_a_known_browser_reads_unknown_browser(header):
    assert describe_user_agent(header) == "Unknown browser"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (USER_AGENT, BROWSER),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1",
            "Chrome Mobile on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome Mobile on Android",
        ),
        ("", "Unknown browser"),
        ("command line (manage.py twofactor_reset)", "Unknown browser"),  # a header: not believed
    ],
)
def test_user_agent_is_described_in_a_few_words(user_agent, expected):
    assert describe_user_agent(user_agent) == expected


def test_no_version_number_is_shown():
    header = REAL_BROWSERS[2][0]  # Firefox/128.0 on Windows NT 10.0
    assert not any(char.isdigit() for char in describe_user_agent(header))


def test_a_known_browser_on_an_unknown_system_is_the_browser_alone():
    assert describe_user_agent("Mozilla/5.0 (Hacked OS 1.0; rv:128.0) Firefox/128.0") == "Firefox"


def test_every_word_shown_comes_from_the_fixed_vocabulary():
    vocabulary = set(user_agents.BROWSERS.values()) | set(user_agents.SYSTEMS.values())
    for header, _ in REAL_BROWSERS:
        shown = describe_user_agent(header)
        assert set(shown.split(" on ")) <= vocabulary


def test_parsing_is_cached_per_header():
    header = REAL_BROWSERS[0][0] + " cache-probe"
    describe_user_agent(header)
    hits = user_agents._describe.cache_info().hits
    describe_user_agent(header)
    assert user_agents._describe.cache_info().hits == hits + 1


def test_the_cache_is_bounded():
    assert user_agents._describe.cache_info().maxsize == user_agents._CACHE_SIZE


def whole_mail(message) -> str:
    return "\n".join([message.subject, message.body, *(part for part, _ in message.alternatives)])


# --- Through the pages: the e-mail and the security history ---------------------------------
@pytest.mark.parametrize("header", HOSTILE)
def test_a_hostile_user_agent_reaches_neither_the_email_nor_the_history_page(
    db, user, header, mailoutbox, django_capture_on_commit_callbacks, log_in_with_sudo
):
    client = log_in_with_sudo(Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=header), user)
    with django_capture_on_commit_callbacks(execute=True):
        enable_through_pages(client, user)
    assert len(mailoutbox) == 1
    mail = whole_mail(mailoutbox[0])
    page = client.get(HISTORY_URL).content.decode()
    telltale = HOSTILE[header]
    for shown in (mail, page, html.unescape(page)):
        assert telltale.lower() not in shown.lower()
    assert f"{IP} (Unknown browser)" in mailoutbox[0].body
    assert "Unknown browser" in page


def test_a_real_browser_is_named_in_the_email_and_on_the_history_page(
    db, user, mailoutbox, django_capture_on_commit_callbacks, log_in_with_sudo
):
    header, expected = REAL_BROWSERS[1]
    client = log_in_with_sudo(Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=header), user)
    with django_capture_on_commit_callbacks(execute=True):
        enable_through_pages(client, user)
    assert f"{IP} ({expected})" in mailoutbox[0].body
    assert expected in client.get(HISTORY_URL).content.decode()
