"""All users (staff): access, filters, constant query counts, the 2FA reset, CSV export."""

import csv
import io
import re
from datetime import timedelta

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import user_list
from tests.conftest import PASSWORD
from tests.keys import add_keys
from twofactor import queries as twofactor_queries
from twofactor import services, signals
from twofactor.bulk import activate_devices_for
from twofactor.models import BackupCode, TOTPDevice, TwoFactorPolicy

LIST_URL = "/accounts/users/"
CSV_URL = "/accounts/users/export.csv"
LOGIN_URL = "/accounts/login/"


def reset_url(user) -> str:
    return f"/accounts/users/{user.pk}/reset-2fa/"


def emails_in_page(response) -> list[str]:
    return [row.email for row in response.context["page"].rows]


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def staff_client(client, staff_user, log_in_verified):
    log_in_verified(client, staff_user)
    return client


def staff_permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename=codename)


@pytest.fixture
def reset_staff(make_user, enrolled):
    """Support staff (view_user and reset_two_factor) with 2FA on, as staff pages need."""
    staff = make_user("support@example.com", name="Sue Support", is_staff=True)
    enrolled(staff, at=timezone.now() - timedelta(days=2))
    staff.user_permissions.add(staff_permission("view_user"), staff_permission("reset_two_factor"))
    return get_user_model().objects.get(pk=staff.pk)  # fresh: permissions are cached


@pytest.fixture
def viewer_staff(make_user):
    """Staff who may look at All users (view_user) but not reset anyone's 2FA."""
    staff = make_user("viewer@example.com", name="Vic Viewer", is_staff=True)
    staff.user_permissions.add(staff_permission("view_user"))
    return get_user_model().objects.get(pk=staff.pk)


@pytest.fixture
def mix(make_user, enrolled, staff_user):
    """A known mix: ann, eve and the staff member with 2FA on, cid with a pending
    (unconfirmed) device, bob and dee without."""
    now = timezone.now()
    users = {
        "ann": make_user("ann@example.com", name="Ann Archer"),
        "bob": make_user("bob@example.com", name="Bob Baker"),
        "cid": make_user("cid@example.com", name="Cid Cooper"),
        "dee": make_user("dee@example.com", name="Dee Danvers"),
        "eve": make_user("eve@example.org", name="Eve Anderson"),
    }
    enrolled(users["ann"], at=now - timedelta(days=3))
    enrolled(users["eve"], at=now - timedelta(days=1))
    # Started enrolling but never typed a code: NOT activated.
    services.begin_enrollment(user=users["cid"], session={}, now=now)
    if not services.is_two_factor_enabled(user=staff_user):  # staff_client may have done it
        enrolled(staff_user, at=now - timedelta(days=2))  # staff pages need the staff's 2FA
    users["staff"] = staff_user
    return users


@pytest.fixture
def mix_with_keys(mix):
    """The mix, and ann with two passkeys or security keys, eve with one."""
    add_keys(mix["ann"], 2)
    add_keys(mix["eve"], 1)
    return mix


def methods_cells(html: str) -> dict[str, str]:
    """Each row's Methods cell, by the row's address."""
    cells = re.findall(
        r'<td data-label="Email"[^>]*>([^<]*<wbr>[^<]*)</td>.*?'
        r'<td data-label="Methods"[^>]*>([^<]*)</td>',
        html,
        re.S,
    )
    return {email.replace("<wbr>", ""): methods for email, methods in cells}


# --- Who can see it ---------------------------------------------------------------------
@pytest.mark.parametrize("url", [LIST_URL, CSV_URL])
def test_anonymous_user_is_sent_to_login_not_shown_data(client, mix, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN_URL}?next=")


@pytest.mark.parametrize("url", [LIST_URL, CSV_URL])
def test_logged_in_non_staff_user_gets_403_and_no_data(client, mix, url):
    client.force_login(mix["bob"])
    response = client.get(url)
    assert response.status_code == 403
    assert b"ann@example.com" not in response.content


@pytest.fixture
def password_only_staff(client, make_user):
    """A session of a staff member (allowed to look and reset) that passed no second factor."""
    staff = make_user("nofactor@example.com", name="Nat Nofactor", is_staff=True)
    staff.user_permissions.add(staff_permission("view_user"), staff_permission("reset_two_factor"))
    client.force_login(staff)
    return client


def test_staff_pages_send_a_session_without_a_second_factor_to_turn_it_on(password_only_staff, mix):
    client = password_only_staff
    ann = mix["ann"]
    urls = [LIST_URL, CSV_URL, f"/accounts/users/{ann.pk}/security/", reset_url(ann)]
    for url in urls:
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, "/accounts/profile/")
    answer = {"sudo": "1", "password": PASSWORD, "reason": "Lost phone"}
    assert client.post(reset_url(ann), answer)["Location"] == "/accounts/profile/"
    assert TOTPDevice.objects.filter(user=ann, confirmed_at__isnull=False).exists()
    profile = client.get("/accounts/profile/").content.decode()
    assert "Staff pages need two-factor authentication." in profile
    assert "Turn on 2FA below, then open All users again." in profile


def test_a_staff_session_without_the_code_step_is_not_enough(client, mix):
    client.force_login(mix["staff"])  # 2FA on, but this session had the password alone
    assert client.get(LIST_URL)["Location"] == "/accounts/profile/"
    htmx = client.get(LIST_URL, {"q": "ann"}, headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == "/accounts/profile/"
    profile = client.get("/accounts/profile/").content.decode()
    assert "Log out, then log in again with your code." in profile


def test_staff_sees_every_user_with_their_2fa_status(staff_client, mix):
    response = staff_client.get(LIST_URL)
    assert response.status_code == 200
    page = response.context["page"]
    assert page.count == 6
    status = {row.email: row.two_factor_active for row in page.rows}
    assert status == {
        "ann@example.com": True,
        "bob@example.com": False,
        "cid@example.com": False,
        "dee@example.com": False,
        "eve@example.org": True,
        "staff@example.com": True,  # staff pages need the staff member's own 2FA
    }
    html = response.content.decode()
    assert html.count(">Activated</span>") == 3
    assert html.count(">Not activated</span>") == 3


def test_all_users_menu_item_is_shown_to_staff_who_may_view_users(client, mix, log_in_verified):
    client.force_login(mix["bob"])
    assert b'href="/accounts/users/"' not in client.get("/accounts/profile/").content
    log_in_verified(client, mix["staff"])
    assert b'href="/accounts/users/">All users</a>' in client.get("/accounts/profile/").content


def test_staff_without_a_second_factor_see_no_staff_menu(client, mix):
    # Staff rights count only in a session that passed 2FA: the password alone shows
    # the portal as a customer sees it (the pages refuse too: test_staff_pages_*).
    client.force_login(mix["staff"])
    assert b'href="/accounts/users/"' not in client.get("/accounts/profile/").content


# --- Filter, search, sort, pages ------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ["ann@example.com", "bob@example.com", "cid@example.com", "dee@example.com",
              "eve@example.org", "staff@example.com"]),
        ("activated", ["ann@example.com", "eve@example.org", "staff@example.com"]),
        ("not_activated", ["bob@example.com", "cid@example.com", "dee@example.com"]),
    ],
)  # fmt: skip
def test_two_factor_filter_returns_exactly_the_matching_users(staff_client, mix, value, expected):
    response = staff_client.get(LIST_URL, {"two_factor": value})
    assert emails_in_page(response) == expected
    assert response.context["page"].count == len(expected)
    assert f"<strong>{len(expected)}</strong> users" in response.content.decode()


def test_search_is_case_insensitive_on_email_and_name(staff_client, mix):
    by_name = staff_client.get(LIST_URL, {"q": "ANDERSON"})
    by_email = staff_client.get(LIST_URL, {"q": "Example.ORG"})
    assert emails_in_page(by_name) == ["eve@example.org"]
    assert emails_in_page(by_email) == ["eve@example.org"]


def test_search_combines_with_the_filter_and_the_count_follows(staff_client, mix):
    # "an" matches Ann Archer, Dee Danvers and Eve Anderson; only Ann and Eve have 2FA.
    response = staff_client.get(LIST_URL, {"q": "an", "two_factor": "activated"})
    assert emails_in_page(response) == ["ann@example.com", "eve@example.org"]
    assert response.context["page"].count == 2
    response = staff_client.get(LIST_URL, {"q": "an", "two_factor": "not_activated"})
    assert emails_in_page(response) == ["dee@example.com"]
    assert response.context["page"].count == 1


def test_sort_by_name_descending_combines_with_the_filter(staff_client, mix):
    response = staff_client.get(LIST_URL, {"two_factor": "not_activated", "sort": "-name"})
    names = [row.name for row in response.context["page"].rows]
    assert names == ["Dee Danvers", "Cid Cooper", "Bob Baker"]


def test_sort_by_date_joined_breaks_ties_by_id(staff_client, make_user, staff_user):
    joined = timezone.now() - timedelta(days=30)
    twins = [make_user(f"twin{i}@example.com", date_joined=joined) for i in (3, 1, 2)]
    response = staff_client.get(LIST_URL, {"sort": "date_joined"})
    # Same timestamp: creation order (id), never an arbitrary order that shifts between pages.
    assert emails_in_page(response)[:3] == [twin.email for twin in twins]


def test_sortable_headers_are_links_that_keep_the_filter_and_flip_the_direction(staff_client, mix):
    html = staff_client.get(LIST_URL, {"two_factor": "activated", "sort": "name"}).content
    html = html.decode()
    assert 'href="/accounts/users/?two_factor=activated&amp;sort=-name"' in html
    assert 'href="/accounts/users/?two_factor=activated&amp;sort=date_joined"' in html
    assert 'aria-sort="ascending"' in html


def test_pages_hold_50_users_and_the_last_page_the_rest(staff_client, staff_user, db):
    User = get_user_model()
    User.objects.bulk_create(User(email=f"u{i:03d}@example.com") for i in range(119))
    first = staff_client.get(LIST_URL)
    third = staff_client.get(LIST_URL, {"page": 3})
    assert len(first.context["page"].rows) == 50
    assert first.context["page"].count == 120
    assert len(third.context["page"].rows) == 20
    assert "101–120 of <strong>120</strong> users" in third.content.decode()
    assert emails_in_page(third)[-1] == "u118@example.com"


def test_row_shows_the_date_2fa_was_enabled_and_unused_backup_codes(staff_client, mix):
    services.regenerate_backup_codes(user=mix["ann"])
    BackupCode.objects.filter(user=mix["ann"]).filter(
        pk=BackupCode.objects.filter(user=mix["ann"]).first().pk
    ).update(used_at=timezone.now())
    rows = {row.email: row for row in staff_client.get(LIST_URL).context["page"].rows}
    ann_device = TOTPDevice.objects.get(user=mix["ann"])
    assert rows["ann@example.com"].two_factor_enabled_at == ann_device.confirmed_at
    assert rows["ann@example.com"].unused_backup_codes == 4
    assert rows["bob@example.com"].two_factor_enabled_at is None
    assert rows["bob@example.com"].unused_backup_codes == 0


def test_methods_column_names_the_app_and_counts_the_keys(staff_client, mix_with_keys):
    html = staff_client.get(LIST_URL).content.decode()
    assert '<th scope="col">\n                Methods\n' in html
    assert methods_cells(html) == {
        "ann@example.com": "Authenticator app, 2 passkeys or security keys",
        "bob@example.com": "—",  # as the table shows every missing value
        "cid@example.com": "—",  # a pending device is not a method
        "dee@example.com": "—",
        "eve@example.org": "Authenticator app, 1 passkey or security key",
        "staff@example.com": "Authenticator app",
    }


def test_an_address_wraps_after_its_at_sign_not_inside_a_word(staff_client, mix):
    html = staff_client.get(LIST_URL).content.decode()
    assert '<td data-label="Email" class="col-email">ann@<wbr>example.com</td>' in html


def test_the_wrapping_filter_escapes_the_address():
    from accounts.templatetags.addresses import break_after_at

    assert break_after_at('a<b>"@x.example') == "a&lt;b&gt;&quot;@<wbr>x.example"
    assert break_after_at("no-at-sign<") == "no-at-sign&lt;"


def test_the_empty_table_spans_the_methods_column_too(staff_client, mix):
    html = staff_client.get(LIST_URL, {"q": "nobody-here"}).content.decode()
    headers = html.count('<th scope="col"')
    assert headers == 9  # seven columns, Methods, and the actions
    assert f'<td colspan="{headers}" class="empty">No users match.' in html


def test_keys_filter_lists_exactly_the_users_with_a_key_and_counts_them(mix_with_keys):
    # Through user_list (what the page and the export call).
    page = user_list.get_page(user_list.UserListQuery(two_factor=twofactor_queries.KEYS), 1)
    assert [row.email for row in page.rows] == ["ann@example.com", "eve@example.org"]
    assert page.count == 2  # users, not keys: ann has two
    searched = user_list.UserListQuery(two_factor=twofactor_queries.KEYS, search="anderson")
    assert user_list.count_users_now(searched) == 1
    assert [row.email for row in user_list.get_page(searched, 1).rows] == ["eve@example.org"]


def test_a_keys_page_is_one_query_for_the_count_and_one_for_the_rows_then_cached(
    mix_with_keys, django_assert_num_queries
):
    query = user_list.UserListQuery(two_factor=twofactor_queries.KEYS)
    policy = TwoFactorPolicy.current()  # a view has read it already (request_policy)
    with django_assert_num_queries(2):
        rows = user_list.get_page(query, 1, policy=policy).rows
        methods = [row.two_factor_methods for row in rows]  # no query per row
    with django_assert_num_queries(1):  # the count comes from the cache now
        user_list.get_page(query, 1, policy=policy)
    assert methods == [
        "Authenticator app, 2 passkeys or security keys",
        "Authenticator app, 1 passkey or security key",
    ]


# --- Constant query count ----------------------------------------------------------------
def _bulk_users(count: int, with_2fa_every: int = 3) -> None:
    User = get_user_model()
    users = User.objects.bulk_create(
        User(email=f"bulk{i:04d}@example.com", name=f"Bulk {i}") for i in range(count)
    )
    ids = User.objects.filter(email__startswith="bulk").values_list("pk", flat=True)
    activate_devices_for(list(ids)[::with_2fa_every])
    assert len(users) == count


def _queries_for(client, params: dict) -> int:
    cache.clear()  # the worst case: the count is not cached yet
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, params)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "params",
    [{}, {"two_factor": "activated"}, {"two_factor": "not_activated", "sort": "-date_joined"}],
)
def test_a_page_takes_the_same_number_of_queries_for_10_and_500_users(
    staff_client, staff_user, params
):
    _bulk_users(10)
    with_10 = _queries_for(staff_client, params)
    get_user_model().objects.filter(email__startswith="bulk").delete()
    _bulk_users(500)
    with_500 = _queries_for(staff_client, params)
    deep_page = _queries_for(staff_client, {**params, "page": 3})
    assert with_10 == with_500 == deep_page
    # session, user, the viewer's session record (accounts.session_records), the security
    # policy and whether it is met (twofactor.middleware), the viewer's own 2FA (the page
    # and the menu each ask: staff pages need it), count, rows, and the viewer's
    # permissions (user + group) for the Reset 2FA links: the status is never one query
    # per row.
    assert with_500 <= 11


def _tables(client, url: str) -> list[str]:
    """The table each query of a request reads first (its outermost FROM), in order."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    tables = []
    for query in queries.captured_queries:
        sql, depth = query["sql"], 0
        for index, char in enumerate(sql):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and sql.startswith(" FROM ", index):
                tables.append(sql[index + 6 :].split()[0].strip('"'))
                break
    return tables


def test_a_page_is_four_queries_for_a_superuser_and_five_for_support_staff(
    client, staff_user, log_in_verified
):
    # Beside the rows (the count is cached after the first request): the session, its
    # record, the user with their own 2FA in one query (ThrottleBackend.get_user), and for
    # staff who are not superusers their rights in one more. The security policy is cached.
    _bulk_users(60)
    root = get_user_model().objects.create_superuser("root@example.com", "irrelevant")
    request = ["django_session", "accounts_usersession", "accounts_user"]
    for viewer, rights in [(root, []), (staff_user, ["auth_permission"])]:
        log_in_verified(client, viewer)
        client.get(LIST_URL)
        assert _tables(client, LIST_URL) == [*request, *rights, "accounts_user"]


@pytest.mark.parametrize("params", [{}, {"two_factor": "activated"}, {"q": "bulk"}])
def test_keys_add_no_query_to_a_page(staff_client, staff_user, params):
    _bulk_users(60)
    without_keys = _queries_for(staff_client, params)
    users = get_user_model().objects.filter(email__startswith="bulk")
    for user in users.filter(totp_device__confirmed_at__isnull=False):
        add_keys(user, 2)
    page = staff_client.get(LIST_URL, params).context["page"]
    assert any(row.webauthn_credential_count == 2 for row in page.rows)  # keys on this page
    assert _queries_for(staff_client, params) == without_keys
    assert without_keys <= 11  # as test_a_page_takes_the_same_number_of_queries... says


def _count_queries(queries) -> list[str]:
    # The page's count (the rows query counts backup codes in a subquery: not this).
    return [q["sql"] for q in queries if q["sql"].startswith(("SELECT COUNT(", "SELECT (COUNT("))]


def test_a_cached_count_saves_its_query(staff_client, mix):
    with CaptureQueriesContext(connection) as first:
        staff_client.get(LIST_URL, {"two_factor": "activated"})
    with CaptureQueriesContext(connection) as second:
        response = staff_client.get(LIST_URL, {"two_factor": "activated"})
    assert len(_count_queries(first)) == 1
    assert _count_queries(second) == []
    assert response.context["page"].count == 3


def test_the_count_follows_a_2fa_reset_at_once(staff_client, mix, reset_staff):
    assert staff_client.get(LIST_URL, {"two_factor": "activated"}).context["page"].count == 4
    services.reset_two_factor(user=mix["ann"], actor=reset_staff, reason="Lost phone")
    assert staff_client.get(LIST_URL, {"two_factor": "activated"}).context["page"].count == 3
    assert staff_client.get(LIST_URL, {"two_factor": "not_activated"}).context["page"].count == 4


def test_the_count_follows_a_new_2fa_user_at_once(staff_client, mix, enrolled):
    assert staff_client.get(LIST_URL, {"two_factor": "activated"}).context["page"].count == 3
    enrolled(mix["bob"])
    assert staff_client.get(LIST_URL, {"two_factor": "activated"}).context["page"].count == 4


def test_the_count_follows_a_new_user_but_not_a_login(staff_client, mix, make_user):
    assert staff_client.get(LIST_URL, {"q": "example"}).context["page"].count == 6
    bob = Client()
    login = bob.post(LOGIN_URL, {"username": "bob@example.com", "password": PASSWORD})
    assert login.status_code == 302  # and last_login was saved
    with CaptureQueriesContext(connection) as after_login:
        staff_client.get(LIST_URL, {"q": "example"})
    assert _count_queries(after_login) == []  # still cached: a login changes no count
    make_user("new@example.com")
    assert staff_client.get(LIST_URL, {"q": "example"}).context["page"].count == 7


# --- Bad values ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"two_factor": "maybe"}, "Unknown two-factor authentication filter “maybe”"),
        ({"sort": "password"}, "Unknown sort “password”"),
        ({"page": "abc"}, "The page must be a whole number, 1 or more."),
        ({"page": "0"}, "The page must be a whole number, 1 or more."),
        ({"page": "99"}, "There is no page 99: the last page is 1."),
        ({"q": "x" * 101}, "Search for at most 100 characters."),
    ],
)
def test_bad_query_values_get_a_clear_message_not_a_500(staff_client, mix, params, message):
    response = staff_client.get(LIST_URL, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert b"ann@example.com" not in response.content


def test_bad_value_inside_the_page_comes_back_with_200_for_htmx_to_show(staff_client, mix):
    response = staff_client.get(LIST_URL, {"two_factor": "maybe"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Unknown two-factor authentication filter" in response.content.decode()


def test_csv_with_a_bad_filter_is_refused_with_a_message(staff_client, mix):
    response = staff_client.get(CSV_URL, {"two_factor": "maybe"})
    assert response.status_code == 400
    assert b"Unknown two-factor authentication filter" in response.content


# --- htmx and no-JS --------------------------------------------------------------------
def test_htmx_request_gets_only_the_table_region(staff_client, mix):
    response = staff_client.get(
        LIST_URL,
        {"two_factor": "activated"},
        headers={"HX-Request": "true", "HX-Target": "users-region"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="users-region"')
    assert "<html" not in html
    assert "ann@example.com" in html and "bob@example.com" not in html


def test_full_page_holds_the_same_region_and_a_plain_get_form(staff_client, mix):
    html = staff_client.get(LIST_URL).content.decode()
    assert "<html" in html and 'id="users-region"' in html
    # Without JavaScript the form is an ordinary GET to the same URL; htmx uses the same one.
    assert 'method="get" action="/accounts/users/"' in html
    assert 'hx-get="/accounts/users/"' in html and 'hx-push-url="true"' in html


def test_history_restore_after_a_cache_miss_gets_the_full_page(staff_client, mix):
    response = staff_client.get(
        LIST_URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


# --- Export CSV ----------------------------------------------------------------------
def test_csv_export_streams_the_current_filter_search_and_sort(staff_client, mix):
    response = staff_client.get(CSV_URL, {"two_factor": "activated", "q": "a", "sort": "-email"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="users-')
    rows = csv_rows(response)
    assert [row["email"] for row in rows] == [
        "staff@example.com",
        "eve@example.org",
        "ann@example.com",
    ]
    assert {row["two_factor_status"] for row in rows} == {"Activated"}


def test_csv_export_holds_no_secrets(staff_client, mix):
    services.regenerate_backup_codes(user=mix["ann"])
    response = staff_client.get(CSV_URL)
    text = b"".join(response.streaming_content).decode()
    header = text.splitlines()[0].split(",")
    assert header == user_list.EXPORT_HEADER
    device = TOTPDevice.objects.get(user=mix["ann"])
    assert device.encrypted_secret not in text
    assert device.secret not in text
    assert mix["ann"].password not in text
    for code_hash in BackupCode.objects.values_list("code_hash", flat=True):
        assert code_hash not in text


def test_csv_export_defuses_spreadsheet_formulas_in_names(staff_client, make_user, staff_user):
    make_user("mallory@example.com", name='=HYPERLINK("https://evil.example","x")')
    rows = csv_rows(staff_client.get(CSV_URL, {"q": "mallory"}))
    assert rows[0]["name"] == '\'=HYPERLINK("https://evil.example","x")'


# --- Reset 2FA ---------------------------------------------------------------------------
def test_reset_asks_for_the_staff_members_own_password_first(
    client, mix, reset_staff, log_in_verified
):
    log_in_verified(client, reset_staff)
    shown = client.get(reset_url(mix["ann"]))
    posted = client.post(reset_url(mix["ann"]), {"reason": "Lost phone"})
    assert "Confirm it's you first." in shown.content.decode()
    assert "Confirm it's you first." in posted.content.decode()
    assert TOTPDevice.objects.filter(user=mix["ann"]).exists()

    code = pyotp.TOTP(TOTPDevice.objects.get(user=reset_staff).secret).now()
    wrong = client.post(reset_url(mix["ann"]), {"sudo": "1", "password": "not it", "code": code})
    assert "That password is not right." in wrong.content.decode()
    assert TOTPDevice.objects.filter(user=mix["ann"]).exists()


def test_the_staff_members_own_password_and_code_confirm_it_is_them(
    client, reset_staff, log_in_verified
):
    secret = log_in_verified(client, reset_staff)
    answer = {"sudo": "1", "password": PASSWORD, "code": pyotp.TOTP(secret).now()}
    assert client.post(reset_url(reset_staff), answer).status_code == 302


def test_reset_needs_the_dedicated_permission_not_just_view_user(
    client, mix, viewer_staff, log_in_verified
):
    log_in_verified(client, viewer_staff)
    get = client.get(reset_url(mix["ann"]))
    post = client.post(reset_url(mix["ann"]), {"reason": "Lost phone"})
    assert get.status_code == 403
    assert post.status_code == 403
    assert b"ann@example.com" not in get.content + post.content
    assert TOTPDevice.objects.filter(user=mix["ann"]).exists()


def test_reset_link_is_shown_only_to_staff_with_the_permission(
    client, mix, reset_staff, viewer_staff, log_in_verified
):
    log_in_verified(client, viewer_staff)
    assert b"Reset 2FA" not in client.get(LIST_URL).content
    log_in_verified(client, reset_staff)
    html = client.get(LIST_URL).content.decode()
    assert f'href="{reset_url(mix["ann"])}?next=' in html
    assert f'hx-get="{reset_url(mix["ann"])}?next=' in html
    assert 'hx-target="#dialog-host"' in html


def test_reset_dialog_asks_for_a_reason_and_a_get_changes_nothing(
    client, mix, reset_staff, log_in_with_sudo
):
    log_in_with_sudo(client, reset_staff)
    response = client.get(reset_url(mix["ann"]), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<dialog")
    assert 'name="reason"' in html
    assert TOTPDevice.objects.filter(user=mix["ann"]).exists()


def test_reset_without_a_reason_is_refused_with_a_message(
    client, mix, reset_staff, log_in_with_sudo
):
    log_in_with_sudo(client, reset_staff)
    response = client.post(reset_url(mix["ann"]), {"reason": "   "})
    assert response.status_code == 200
    assert "Enter the reason for the reset." in response.content.decode()
    assert TOTPDevice.objects.filter(user=mix["ann"], confirmed_at__isnull=False).exists()


def test_after_a_reset_the_user_logs_in_with_the_password_alone(
    client, mix, reset_staff, log_in_with_sudo
):
    services.regenerate_backup_codes(user=mix["ann"])
    log_in_with_sudo(client, reset_staff)
    response = client.post(reset_url(mix["ann"]), {"reason": "Lost phone, called back"})
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    assert not TOTPDevice.objects.filter(user=mix["ann"]).exists()
    assert not BackupCode.objects.filter(user=mix["ann"]).exists()

    ann = Client()
    login = ann.post(LOGIN_URL, {"username": "ann@example.com", "password": PASSWORD})
    assert login.status_code == 302
    assert login["Location"] == "/accounts/profile/"
    assert ann.get("/accounts/profile/").context["user"].email == "ann@example.com"


def test_reset_signal_carries_the_acting_staff_user_and_the_reason(
    client, mix, reset_staff, log_in_with_sudo
):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    signals.two_factor_reset.connect(receiver)
    try:
        log_in_with_sudo(client, reset_staff)
        client.post(reset_url(mix["ann"]), {"reason": "Lost phone, called back"})
    finally:
        signals.two_factor_reset.disconnect(receiver)
    assert len(received) == 1
    assert received[0]["user"].pk == mix["ann"].pk
    assert received[0]["actor"].pk == reset_staff.pk
    assert received[0]["reason"] == "Lost phone, called back"


def test_staff_cannot_reset_their_own_2fa_here(client, reset_staff, log_in_with_sudo):
    log_in_with_sudo(client, reset_staff)
    response = client.post(reset_url(reset_staff), {"reason": "I lost my phone"})
    assert response.status_code == 403
    assert "You cannot reset your own two-factor authentication here" in response.content.decode()
    assert TOTPDevice.objects.filter(user=reset_staff).exists()


def test_reset_is_refused_without_the_csrf_token(mix, reset_staff, log_in_with_sudo):
    client = Client(enforce_csrf_checks=True)
    signed_in = Client()
    log_in_with_sudo(signed_in, reset_staff)
    client.cookies = signed_in.cookies  # same session, but this client sends no CSRF token
    response = client.post(reset_url(mix["ann"]), {"reason": "Lost phone"})
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=mix["ann"]).exists()


def test_reset_returns_to_the_list_as_it_was_but_never_to_another_site(
    client, mix, reset_staff, log_in_with_sudo
):
    log_in_with_sudo(client, reset_staff)
    kept = client.post(
        reset_url(mix["ann"]), {"reason": "Lost phone", "next": "/accounts/users/?page=1"}
    )
    evil = client.post(
        reset_url(mix["eve"]), {"reason": "Lost phone", "next": "https://evil.example/"}
    )
    assert kept["Location"] == "/accounts/users/?page=1"
    assert evil["Location"] == LIST_URL


def test_htmx_reset_reloads_the_list_so_table_and_message_refresh(
    client, mix, reset_staff, log_in_with_sudo
):
    log_in_with_sudo(client, reset_staff)
    response = client.post(
        reset_url(mix["ann"]), {"reason": "Lost phone"}, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == LIST_URL


# --- Admin and PostgreSQL ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("activated", {"ann@example.com", "eve@example.org", "staff@example.com",
                    "support@example.com"}),
     ("not_activated", {"bob@example.com", "cid@example.com", "dee@example.com"})],
)  # fmt: skip
def test_admin_changelist_has_the_same_two_factor_filter(
    client, mix, reset_staff, enrolled, log_in_with_code, value, expected
):
    admin = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    secret = enrolled(admin, at=timezone.now() - timedelta(minutes=2))
    log_in_with_code(client, admin, secret)  # the admin needs a verified second factor
    if value == "activated":
        expected = expected | {"root@example.com"}  # root has 2FA now too
    response = client.get("/admin/accounts/user/", {"two_factor": value})
    assert response.status_code == 200
    shown = {user.email for user in response.context["cl"].result_list}
    assert shown == expected


@pytest.fixture
def admin_client_verified(client, enrolled, log_in_with_code):
    admin = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    secret = enrolled(admin, at=timezone.now() - timedelta(minutes=2))
    log_in_with_code(client, admin, secret)  # the admin needs a verified second factor
    return client


def test_admin_changelist_filters_users_with_a_key(admin_client_verified, mix_with_keys):
    response = admin_client_verified.get("/admin/accounts/user/", {"two_factor": "keys"})
    assert response.status_code == 200
    shown = {user.email for user in response.context["cl"].result_list}
    assert shown == {"ann@example.com", "eve@example.org"}
    assert "Passkey or security key" in response.content.decode()


def test_admin_changelist_shows_each_users_methods(admin_client_verified, mix_with_keys):
    html = admin_client_verified.get("/admin/accounts/user/").content.decode()
    assert (
        '<td class="field-two_factor_methods">Authenticator app, 2 passkeys or security keys<'
        in html
    )
    assert (
        '<td class="field-two_factor_methods">Authenticator app, 1 passkey or security key<' in html
    )
    assert '<td class="field-two_factor_methods">-</td>' in html  # bob, cid, dee: the admin's mark


@pytest.mark.postgres  # pg_trgm
def test_postgresql_has_trigram_indexes_for_the_search(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'accounts_user' "
            "AND indexdef LIKE '%%gin_trgm_ops%%'"
        )
        names = {name for (name,) in cursor.fetchall()}
    assert names == {"accounts_user_email_trgm", "accounts_user_name_trgm"}


def test_support_staff_cannot_reset_a_superusers_2fa(
    client, enrolled, reset_staff, log_in_with_sudo
):
    root = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    enrolled(root, at=timezone.now() - timedelta(minutes=5))
    log_in_with_sudo(client, reset_staff)
    response = client.post(reset_url(root), {"reason": "Asked nicely on the phone"})
    assert response.status_code == 403
    assert "Only a superuser can reset" in response.content.decode()
    assert TOTPDevice.objects.filter(user=root).exists()


def test_a_user_whose_code_entry_is_locked_shows_locked_until(staff_client, make_user, enrolled):
    from twofactor.models import TOTPDevice

    ann = make_user("ann@example.com", name="Ann Archer")
    enrolled(ann)
    until = timezone.now() + timedelta(minutes=5)
    TOTPDevice.objects.filter(user=ann).update(locked_until=until)
    page = staff_client.get("/accounts/users/").content.decode()
    assert f"Locked until {timezone.localtime(until):%H:%M} UTC" in page
    TOTPDevice.objects.filter(user=ann).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert "Locked until" not in staff_client.get("/accounts/users/").content.decode()


def test_support_cannot_reset_a_colleagues_2fa(
    client, reset_staff, make_user, enrolled, log_in_with_sudo
):
    colleague = make_user("colleague@example.com", name="Cole League", is_staff=True)
    enrolled(colleague)
    log_in_with_sudo(client, reset_staff)
    response = client.post(f"/accounts/users/{colleague.pk}/reset-2fa/", {"reason": "lost phone"})
    assert (
        "Only a superuser can reset the two-factor authentication of a staff member."
        in response.content.decode()
    )
    assert services.is_two_factor_enabled(user=colleague)


def test_a_reason_of_invisible_characters_is_refused_on_the_page(
    client, mix, reset_staff, log_in_with_sudo
):
    log_in_with_sudo(client, reset_staff)
    response = client.post(reset_url(mix["ann"]), {"reason": "\u200b"})
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    assert TOTPDevice.objects.filter(user=mix["ann"], confirmed_at__isnull=False).exists()


def test_cancel_on_reset_2fas_confirm_step_goes_back_to_the_list_as_it_was(
    client, mix, reset_staff, log_in_verified
):
    log_in_verified(client, reset_staff)  # logged in with the code, no recent proof
    back = "/accounts/users/?two_factor=activated&page=1"
    page = client.get(reset_url(mix["ann"]), {"next": back}).content.decode()
    assert "Confirm it" in page
    assert (
        'href="/accounts/users/?two_factor=activated&amp;page=1" data-close-dialog>Cancel' in page
    )


def test_keys_filter_on_the_page_lists_the_users_with_a_key(staff_client, mix_with_keys):
    response = staff_client.get(LIST_URL, {"two_factor": "keys"})
    assert emails_in_page(response) == ["ann@example.com", "eve@example.org"]
    html = response.content.decode()
    assert "<strong>2</strong> users" in html
    assert '<option value="keys" selected>Passkey or security key</option>' in html
    assert _queries_for(staff_client, {"two_factor": "keys"}) <= 11
    rows = csv_rows(staff_client.get(CSV_URL, {"two_factor": "keys"}))
    assert [row["email"] for row in rows] == ["ann@example.com", "eve@example.org"]
