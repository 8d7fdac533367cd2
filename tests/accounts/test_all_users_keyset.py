"""All users' pager: keyset (seek) pages for First, Previous, Next and Last, on every sort,
with the filter and the search; cursors that were changed are refused with a message."""

import base64
import re
import zlib
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import user_list
from tests.keys import add_keys
from twofactor import queries as twofactor_queries
from twofactor.bulk import activate_devices_for
from twofactor.models import PolicyDeadline, TwoFactorPolicy

LIST_URL = "/accounts/users/"
CURSOR_MESSAGE = "This page link was changed or is out of date."
LINK = r'<a href="([^"]*)"{rel} hx-get="([^"]*)"[^>]*>{label}</a>'


@pytest.fixture
def staff_client(client, staff_user, log_in_verified):
    log_in_verified(client, staff_user)
    return client


@pytest.fixture
def crowd(db, staff_user):
    """130 users (with the staff member, 131: three pages) with ties on every sortable
    column but the address, and a third who never logged in (last_login NULL)."""
    User = get_user_model()
    joined = timezone.now() - timedelta(days=400)
    users = User.objects.bulk_create(
        User(
            email=f"u{i:03d}@example.com",
            email_key=f"u{i:03d}@example.com",
            name=f"Name {i % 7}",  # ties: the id decides
            date_joined=joined + timedelta(days=i % 5),
            last_login=None if i % 3 == 0 else joined + timedelta(days=i % 4),
        )
        for i in range(130)
    )
    activate_devices_for([user.pk for user in users[::4]])
    return users


def test_last_login_newest_first_opens_with_the_latest_logins_and_ends_with_never(
    staff_client, crowd
):
    first = staff_client.get(LIST_URL, {"sort": "-last_login"}).context["page"].rows
    newest = get_user_model().objects.exclude(last_login=None).order_by("-last_login")[0].last_login
    assert first[0].last_login == newest
    last = staff_client.get(LIST_URL, {"sort": "-last_login", "page": "last"}).context["page"]
    assert all(row.last_login is None for row in last.rows)  # "Never" at the end
    oldest_first = staff_client.get(LIST_URL, {"sort": "last_login"}).context["page"].rows
    assert oldest_first[0].last_login is None  # never logged in: before the oldest login


def require_for_everyone(everyone: bool = True, *, grace_period_days: int) -> None:
    policy = TwoFactorPolicy.objects.get(pk=TwoFactorPolicy.current().pk)
    policy.require_for_everyone = everyone
    policy.grace_period_days = grace_period_days
    policy.save()  # forgets the cached copy, as update_policy's save does


def link(html: str, label: str, rel: str = "") -> str | None:
    """The href of the pager link `label` (None if there is none); its hx-get is the same."""
    found = re.search(LINK.format(rel=f' rel="{rel}"' if rel else "", label=label), html)
    if found is None:
        return None
    href, hx_get = (unescape(part) for part in found.groups())
    assert href == hx_get  # the same URL with and without JavaScript
    return href


def emails(response) -> list[str]:
    assert response.status_code == 200, response.content.decode()[:500]
    return [row.email for row in response.context["page"].rows]


def expected_order(sort: str, **filters) -> list[str]:
    """The list's order worked out here in Python, not by the code under test: NULL (never
    logged in) before every date ascending, after them descending; ties by id."""
    base = sort.removeprefix("-")
    users = list(get_user_model().objects.filter(**filters))

    def key(user):
        value = getattr(user, base)
        return (value is not None, value if value is not None else 0, user.pk)

    users.sort(key=key)  # descending is the same order read from the end
    if sort.startswith("-"):
        users.reverse()
    return [user.email for user in users]


def walk_forward(client, url: str) -> list[str]:
    seen = []
    while url:
        response = client.get(url)
        seen += emails(response)
        url = link(response.content.decode(), "Next", "next")
    return seen


def walk_back(client, url: str) -> list[str]:
    seen = []
    while url:
        response = client.get(url)
        seen = emails(response) + seen
        url = link(response.content.decode(), "Previous", "prev")
    return seen


# --- Walking the pages ---------------------------------------------------------------------
@pytest.mark.parametrize("sort", user_list.SORT_CHOICES)
def test_next_links_walk_every_user_once_in_the_order_of_each_sort(staff_client, crowd, sort):
    assert walk_forward(staff_client, f"{LIST_URL}?sort={sort}") == expected_order(sort)


@pytest.mark.parametrize("sort", user_list.SORT_CHOICES)
def test_previous_links_from_the_last_page_walk_back_to_the_first(staff_client, crowd, sort):
    assert walk_back(staff_client, f"{LIST_URL}?sort={sort}&page=last") == expected_order(sort)


def test_the_pager_links_carry_a_cursor_or_last_never_a_deep_page_number(staff_client, crowd):
    first = staff_client.get(LIST_URL, {"q": "u", "sort": "-name"})
    second = staff_client.get(link(first.content.decode(), "Next", "next"))
    html = second.content.decode()
    for label, rel in [("Previous", "prev"), ("Next", "next")]:
        query = parse_qs(urlsplit(link(html, label, rel)).query)
        assert set(query) == {"q", "sort", "cursor"}  # the search and the sort kept
    assert parse_qs(urlsplit(link(html, "Last")).query) == {
        "q": ["u"],
        "sort": ["-name"],
        "page": ["last"],
    }
    assert link(html, "First") == f"{LIST_URL}?q=u&sort=-name"
    assert "Page 2 of 3" in html


def test_the_last_link_opens_the_rest_numbered_as_the_pages_before(staff_client, crowd):
    response = staff_client.get(LIST_URL, {"page": "last"})
    html = response.content.decode()
    assert emails(response) == expected_order("email")[100:]
    assert "101–131 of <strong>131</strong> users" in html
    assert "Page 3 of 3" in html
    assert link(html, "Next", "next") is None and link(html, "Last") is None
    previous = staff_client.get(link(html, "Previous", "prev"))
    assert emails(previous) == expected_order("email")[50:100]
    assert "Page 2 of 3" in previous.content.decode()


def test_previous_from_the_second_page_is_the_first_page(staff_client, crowd):
    second = staff_client.get(link(staff_client.get(LIST_URL).content.decode(), "Next", "next"))
    first = staff_client.get(link(second.content.decode(), "Previous", "prev"))
    assert emails(first) == expected_order("email")[:50]
    assert first.context["page"].number == 1
    assert link(first.content.decode(), "Previous", "prev") is None


def test_the_search_and_the_filter_combine_with_the_cursor(staff_client, crowd):
    # u000..u099 with 2FA (every fourth user), searched by "u0": 25 - a page and a half.
    params = {"two_factor": "activated", "q": "u0", "sort": "-date_joined"}
    first = staff_client.get(LIST_URL, params)
    assert first.context["page"].count == 25
    params["q"] = "u"
    first = staff_client.get(LIST_URL, params)
    expected = expected_order(
        "-date_joined", email__startswith="u", totp_device__confirmed_at__isnull=False
    )
    assert (
        walk_forward(staff_client, first.request["PATH_INFO"] + "?" + first.request["QUERY_STRING"])
        == expected
    )
    assert len(expected) == 33


def test_keys_and_past_deadline_filters_page_with_the_cursor(staff_client, crowd, staff_user):
    User = get_user_model()
    with_app = User.objects.filter(totp_device__confirmed_at__isnull=False, email__startswith="u")
    for user in with_app:
        add_keys(user, 1)
    assert walk_forward(staff_client, f"{LIST_URL}?two_factor=keys&sort=name") == expected_order(
        "name", email__startswith="u", totp_device__confirmed_at__isnull=False
    )
    require_for_everyone(grace_period_days=7)
    without = User.objects.filter(email__startswith="u").exclude(
        totp_device__confirmed_at__isnull=False
    )
    PolicyDeadline.objects.bulk_create(
        PolicyDeadline(user=user, required_since=timezone.now() - timedelta(days=8))
        for user in without
    )
    url = f"{LIST_URL}?two_factor=past_deadline&sort=-last_login"
    assert walk_forward(staff_client, url) == expected_order(
        "-last_login", pk__in=[user.pk for user in without]
    )


def test_users_added_before_the_cursor_shift_nothing_after_it(staff_client, crowd, make_user):
    second = link(staff_client.get(LIST_URL).content.decode(), "Next", "next")
    expected = expected_order("email")[50:100]
    make_user("a-newcomer@example.com")  # sorts before every u... address
    # OFFSET would now show u049..u098; the cursor still starts after the row it named.
    assert emails(staff_client.get(second)) == expected


def test_when_every_user_after_the_cursor_is_gone_next_shows_the_last_page(staff_client, crowd):
    second = link(staff_client.get(LIST_URL).content.decode(), "Next", "next")
    last_shown = expected_order("email")[49]
    get_user_model().objects.filter(email__gt=last_shown).delete()
    response = staff_client.get(second)
    assert emails(response) == expected_order("email")[:50]  # what is left: one page
    assert response.context["page"].number == response.context["page"].num_pages


def test_when_less_than_a_page_is_left_before_the_cursor_previous_shows_the_first_page(
    staff_client, crowd
):
    last = staff_client.get(LIST_URL, {"page": "last"}).content.decode()
    previous = link(last, "Previous", "prev")
    users = get_user_model().objects.filter(email__startswith="u")
    users.filter(email__lt="u060@example.com").delete()
    response = staff_client.get(previous)
    assert emails(response) == expected_order("email")[:50]
    assert response.context["page"].number == 1


def test_old_page_number_bookmarks_still_open(staff_client, crowd):
    response = staff_client.get(LIST_URL, {"page": "2"})
    assert emails(response) == expected_order("email")[50:100]
    assert "Page 2 of 3" in response.content.decode()


# --- Changed cursors ------------------------------------------------------------------------
def _next_cursor(client, **params) -> str:
    href = link(client.get(LIST_URL, params).content.decode(), "Next", "next")
    return parse_qs(urlsplit(href).query)["cursor"][0]


@pytest.mark.parametrize(
    "change",
    [
        lambda cursor: cursor[:-1] + ("A" if cursor[-1] != "A" else "B"),  # the MAC
        lambda cursor: cursor[:30] + ("X" if cursor[30] != "X" else "W") + cursor[31:],  # data
        lambda cursor: cursor[: len(cursor) // 2],  # cut short
        lambda cursor: "",  # empty: simply the first page (checked below)
        lambda cursor: "not-a-cursor",
        lambda cursor: "x" * 4097,
        lambda cursor: "%00:%ff",
    ],
    ids=["mac", "payload", "truncated", "empty", "garbage", "too long", "bytes"],
)
def test_a_changed_cursor_gets_a_clear_message_and_a_400_never_a_500(staff_client, crowd, change):
    cursor = change(_next_cursor(staff_client))
    response = staff_client.get(LIST_URL, {"cursor": cursor})
    if not cursor:
        assert emails(response) == expected_order("email")[:50]
        return
    assert response.status_code == 400
    html = response.content.decode()
    assert CURSOR_MESSAGE in html
    assert "u000@example.com" not in html  # no rows for a link the list did not make
    assert f'<a href="{LIST_URL}">Show all users</a>' in html


def test_a_cursor_does_not_show_the_row_it_points_at(staff_client, crowd):
    # It holds the address of the page's last row: encrypted, so that no address, log or
    # history shows it (base64 of a signed payload would).
    cursor = _next_cursor(staff_client)
    readable = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"@example.com" not in readable and b"@example.com" not in zlib_variants(readable)


@pytest.mark.parametrize("value", [2**70, -(2**70)])
def test_a_cursor_holding_an_id_no_column_holds_is_refused(staff_client, crowd, value):
    # Only the list makes cursors; still, what one holds is checked against its column
    # (SQLite cannot even bind an integer past 64 bits: a 500).
    query = user_list.UserListQuery(sort="name")
    cursor = user_list.make_cursor(
        query, user_list.Cursor(key=("Ann", value), before=False, number=2)
    )
    response = staff_client.get(LIST_URL, {"sort": "name", "cursor": cursor})
    assert response.status_code == 400
    assert CURSOR_MESSAGE in response.content.decode()


def zlib_variants(data: bytes) -> bytes:
    """What the bytes unzip to, wherever a zlib stream starts in them (b"" for none)."""
    found = b""
    for start in range(len(data)):
        try:
            found += zlib.decompressobj().decompress(data[start:])
        except zlib.error:
            continue
    return found


@pytest.mark.parametrize(
    "other",
    [{"sort": "-email"}, {"sort": "name"}, {"two_factor": "activated"}, {"q": "u1"}],
    ids=["other direction", "other column", "other filter", "other search"],
)
def test_a_cursor_made_for_another_sort_filter_or_search_is_refused(staff_client, crowd, other):
    cursor = _next_cursor(staff_client)
    response = staff_client.get(LIST_URL, {**other, "cursor": cursor})
    assert response.status_code == 400
    assert CURSOR_MESSAGE in response.content.decode()


def test_a_cursor_signed_with_another_secret_key_is_refused(staff_client, crowd):
    with override_settings(SECRET_KEY="another-secret-key-entirely-0123456789"):
        forged = user_list.make_cursor(
            user_list.UserListQuery(),
            user_list.Cursor(key=("u010@example.com",), before=False, number=2),
        )
    response = staff_client.get(LIST_URL, {"cursor": forged})
    assert response.status_code == 400
    assert CURSOR_MESSAGE in response.content.decode()


def test_a_changed_cursor_inside_the_page_comes_back_with_200_for_htmx(staff_client, crowd):
    response = staff_client.get(LIST_URL, {"cursor": "changed"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert CURSOR_MESSAGE in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("name", ("😀" * 150, 2**62)),  # the longest name, each character a JSON escape pair
        ("-email", ("ü" * 64 + "@" + "ü" * 189,)),  # the longest address (254)
        ("last_login", (None, 7)),
        ("-date_joined", (timezone.now(), 7)),
    ],
)
def test_a_cursor_on_the_longest_values_fits_the_link_and_opens(staff_client, crowd, sort, key):
    query = user_list.UserListQuery(sort=sort)
    cursor = user_list.make_cursor(query, user_list.Cursor(key=key, before=False, number=2))
    assert user_list.read_cursor(cursor, query) == user_list.Cursor(key, before=False, number=2)
    assert staff_client.get(LIST_URL, {"sort": sort, "cursor": cursor}).status_code == 200


@pytest.mark.parametrize("value", ["last", "1", "3"])
def test_page_accepts_a_number_or_last(staff_client, crowd, value):
    assert staff_client.get(LIST_URL, {"page": value}).status_code == 200


@pytest.mark.parametrize("value", ["first", "-1", "1.5", "²", "9" * 21])
def test_other_page_values_get_the_page_message(staff_client, crowd, value):
    response = staff_client.get(LIST_URL, {"page": value})
    assert response.status_code == 400
    assert "The page must be a whole number, 1 or more." in response.content.decode()


# --- What the links drop -----------------------------------------------------------------
def test_sort_headers_and_the_csv_link_start_again_without_the_cursor(staff_client, crowd):
    second = link(staff_client.get(LIST_URL, {"sort": "name"}).content.decode(), "Next", "next")
    html = staff_client.get(second).content.decode()
    headers = re.findall(r'<th scope="col" aria-sort="[^"]*">\s*<a href="([^"]*)"', html)
    assert len(headers) == 4 and all("cursor" not in href for href in headers)
    csv_link = re.search(r'href="(/accounts/users/export\.csv[^"]*)"', html).group(1)
    assert unescape(csv_link) == "/accounts/users/export.csv?sort=name"


# --- Cost --------------------------------------------------------------------------------
def _list_queries(client, url: str) -> int:
    """The queries the list itself runs (accounts.user_list: the count and the rows)."""
    import traceback

    own = []

    def count(execute, sql, params, many, context):
        stack = traceback.extract_stack()
        if any(frame.filename.endswith("accounts/user_list.py") for frame in stack):
            own.append(sql)
        return execute(sql, params, many, context)

    cache.clear()  # the worst case: the count is not cached yet
    with connection.execute_wrapper(count):
        assert client.get(url).status_code == 200
    return len(own)


@pytest.mark.parametrize("sort", ["email", "-name", "last_login", "-last_login"])
def test_every_page_the_pager_offers_costs_what_the_first_page_costs(staff_client, crowd, sort):
    first_url = f"{LIST_URL}?sort={sort}"
    first = staff_client.get(first_url).content.decode()
    second_url = link(first, "Next", "next")
    last_url = link(first, "Last")
    back_url = link(staff_client.get(last_url).content.decode(), "Previous", "prev")
    counts = {}
    for name, url in [
        ("first", first_url),
        ("next", second_url),
        ("last", last_url),
        ("previous", back_url),
    ]:
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(url).status_code == 200
        counts[name] = len(queries)
    # The count and the rows (a second read of rows where a page runs from the last
    # logins into the users who never logged in); the rest is per request, not per page.
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(
        _list_queries(staff_client, url) <= 3 for url in [first_url, second_url, last_url, back_url]
    )
    assert counts["first"] <= 11  # as test_a_page_takes_the_same_number_of_queries... says


def test_a_cursor_page_reads_the_count_and_the_rows_only(crowd):
    query = user_list.UserListQuery(two_factor=twofactor_queries.NOT_ACTIVATED, sort="-name")
    policy = TwoFactorPolicy.current()  # a view has read it already (request_policy)
    first = user_list.get_page(query, 1, policy=policy)
    cursor = user_list.read_cursor(first.next_cursor, query)
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        page = user_list.get_page(query, cursor=cursor, policy=policy)
        [row.two_factor_methods for row in page.rows]  # no query per row
    assert len(queries) == 2
    with CaptureQueriesContext(connection) as queries:
        user_list.get_page(query, cursor=cursor, policy=policy)
    assert len(queries) == 1  # the count comes from the cache


@pytest.mark.parametrize("everyone", [False, True], ids=["staff", "everyone"])
def test_the_past_deadline_count_is_the_number_of_users_the_filter_lists(
    crowd, staff_user, everyone
):
    User = get_user_model()
    require_for_everyone(everyone, grace_period_days=7)
    User.objects.filter(email__in=["u001@example.com", "u002@example.com"]).update(is_staff=True)
    for i, user in enumerate(User.objects.filter(email__startswith="u")):
        days = 8 if i % 2 else 6  # half past the 7 days of grace, half inside them
        PolicyDeadline.objects.create(
            user=user, required_since=timezone.now() - timedelta(days=days)
        )
    policy = TwoFactorPolicy.current()
    query = user_list.UserListQuery(two_factor=twofactor_queries.PAST_DEADLINE)
    listed = user_list.matching_users(query, policy=policy)
    assert twofactor_queries.count_past_deadline(policy=policy) == listed.count()
    assert user_list.count_users_now(query, policy=policy) == listed.count() > 0


@pytest.mark.parametrize("limit", [10_000, 1], ids=["few matches", "many matches"])
def test_a_search_pages_alike_whether_it_sorts_its_matches_or_walks_the_index(
    staff_client, crowd, monkeypatch, limit
):
    monkeypatch.setattr(user_list, "SEARCH_COLLECT_LIMIT", limit)
    with CaptureQueriesContext(connection) as queries:
        walked = walk_forward(staff_client, f"{LIST_URL}?q=u0&sort=-last_login")
    assert walked == expected_order("-last_login", email__startswith="u0")
    rows = [q["sql"] for q in queries if "LIMIT 51" in q["sql"] or "LIMIT 50" in q["sql"]]
    # Few matches: ordered by an expression no index matches, so the database
    # collects the matches (trigram indexes) and sorts them, never walks the index.
    assert rows and all(("ORDER BY COALESCE(" in sql) == (limit > 1) for sql in rows)


def test_each_rows_action_links_lead_to_that_users_pages(staff_client, crowd, staff_user):
    html = staff_client.get(LIST_URL).content.decode()
    for user in get_user_model().objects.filter(email__in=["u000@example.com", "u001@example.com"]):
        row = re.search(
            rf"{re.escape(user.email.replace('@', '@<wbr>'))}</td>.*?</tr>", html, re.S
        ).group(0)
        assert f'href="/accounts/users/{user.pk}/sessions/?next=' in row
        assert f'href="/accounts/users/{user.pk}/security/"' in row
        has_2fa = user.email == "u000@example.com"  # crowd: every fourth user from u000
        assert (f'href="/accounts/users/{user.pk}/reset-2fa/?next=' in row) == has_2fa
