"""The security policy on the portal's own pages: staff rights only with 2FA (the staff pages,
the admin and the account menu), the 2FA reset of a user the policy requires it of, and who is
past their deadline on All users (filter value and status cell).

The clock is frozen (freeze_clock) and deadlines are PolicyDeadline rows set in the past.
"""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.conftest import PASSWORD, FrozenClock
from twofactor import services
from twofactor.models import PolicyDeadline, TOTPDevice, TwoFactorPolicy

LOGIN_URL = "/accounts/login/"
PROFILE_URL = "/accounts/profile/"
LIST_URL = "/accounts/users/"
CSV_URL = "/accounts/users/export.csv"
ADMIN_URL = "/admin/"
POLICY_URL = "/2fa/policy/"
START = datetime(2025, 3, 14, 9, 0, 15, tzinfo=UTC)
STAFF_PAGES_MESSAGE = "Staff pages need two-factor authentication."
ADMIN_MESSAGE = "The admin needs two-factor authentication."


def page(response) -> str:
    return response.content.decode()


def set_policy(**fields: object) -> None:
    policy = TwoFactorPolicy.objects.get(pk=TwoFactorPolicy.current().pk)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()  # forgets the cached copy, as update_policy's save does


def sessions_url(user) -> str:
    return f"/accounts/users/{user.pk}/sessions/"


def reset_url(user) -> str:
    return f"/accounts/users/{user.pk}/reset-2fa/"


def log_in_with_password(client: Client, user) -> Client:
    """The real login form, e-mail and password (the user has no second factor to ask for)."""
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, page(response)[:2000]
    assert response["Location"] == PROFILE_URL
    return client


def staff_permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename=codename)


@pytest.fixture
def clock(freeze_clock) -> FrozenClock:
    return freeze_clock(START)


@pytest.fixture
def customer(make_user):
    """Someone whose data staff pages show: it must not leak to a staff session without 2FA."""
    return make_user("carla@example.com", name="Carla Customer")


@pytest.fixture
def superuser(make_user):
    return make_user("root@example.com", name="Rita Root", is_staff=True, is_superuser=True)


# --- Staff rights only with 2FA ------------------------------------------------------------
STAFF_PAGES = [
    ("all users", lambda target: LIST_URL, STAFF_PAGES_MESSAGE),
    ("csv", lambda target: CSV_URL, STAFF_PAGES_MESSAGE),
    ("admin", lambda target: ADMIN_URL, ADMIN_MESSAGE),
    ("sessions", sessions_url, STAFF_PAGES_MESSAGE),
]


@pytest.mark.parametrize(
    ("url_of", "message"),
    [(url_of, message) for _, url_of, message in STAFF_PAGES],
    ids=[name for name, _, _ in STAFF_PAGES],
)
def test_staff_logged_in_with_the_right_password_but_no_2fa_get_no_staff_page(
    client, staff_user, customer, url_of, message
):
    log_in_with_password(client, staff_user)
    response = client.get(url_of(customer), follow=True)
    assert response.redirect_chain, "the staff page opened"
    assert response.request["PATH_INFO"] == PROFILE_URL
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = page(response)
    assert message in html
    assert customer.email not in html


@pytest.mark.parametrize(
    "url_of",
    [url_of for _, url_of, _ in STAFF_PAGES] + [lambda target: POLICY_URL],
    ids=[name for name, _, _ in STAFF_PAGES] + ["security policy"],
)
def test_superuser_logged_in_with_the_right_password_but_no_2fa_gets_no_staff_page(
    client, superuser, customer, url_of
):
    log_in_with_password(client, superuser)
    response = client.get(url_of(customer), follow=True)
    assert response.redirect_chain, "the staff page opened"
    assert response.request["PATH_INFO"] == PROFILE_URL
    assert customer.email not in page(response)
    assert "Save policy" not in page(response)


def test_menu_of_staff_without_2fa_offers_no_staff_page(client, staff_user):
    log_in_with_password(client, staff_user)
    html = page(client.get(PROFILE_URL))
    assert 'aria-label="Account menu"' in html  # the menu is there...
    assert ">All users</a>" not in html  # ...without the staff pages
    assert f'href="{LIST_URL}"' not in html
    assert ">Security policy</a>" not in html


def test_menu_of_a_superuser_without_2fa_offers_no_staff_page(client, superuser):
    log_in_with_password(client, superuser)
    html = page(client.get(PROFILE_URL))
    assert ">All users</a>" not in html
    assert ">Security policy</a>" not in html
    assert f'href="{POLICY_URL}"' not in html


def test_menu_of_a_verified_superuser_offers_all_users_and_the_policy(
    client, superuser, log_in_verified
):
    log_in_verified(client, superuser)
    html = page(client.get(PROFILE_URL))
    assert f'<a href="{LIST_URL}">All users</a>' in html
    assert f'<a href="{POLICY_URL}">Security policy</a>' in html


def test_menu_of_staff_who_turned_their_2fa_off_offers_no_staff_page(
    client, staff_user, enrolled, log_in_with_sudo
):
    # Only possible where the policy lets staff go without 2FA.
    set_policy(require_for_staff=False)
    enrolled(staff_user)
    log_in_with_sudo(client, staff_user)  # a session that passed the code
    assert client.post("/2fa/disable/", {"confirm": "1"}).status_code == 302
    assert client.get(LIST_URL)["Location"] == PROFILE_URL  # the page refuses the session...
    html = page(client.get(PROFILE_URL))
    assert ">All users</a>" not in html  # ...so the menu must not offer it


def test_staff_without_2fa_are_told_staff_pages_open_once_it_is_on(clock, client, staff_user):
    log_in_with_password(client, staff_user)
    assert "Staff pages open once it is on." in page(client.get(PROFILE_URL))


# --- Staff reset of a user the policy requires 2FA of ---------------------------------------
@pytest.fixture
def support(make_user, enrolled):
    """Support staff (view_user, reset_two_factor) with 2FA on."""
    staff = make_user("support@example.com", name="Sue Support", is_staff=True)
    enrolled(staff)
    staff.user_permissions.add(staff_permission("view_user"), staff_permission("reset_two_factor"))
    return get_user_model().objects.get(pk=staff.pk)


def test_support_can_reset_a_customer_required_to_have_2fa(
    client, support, customer, enrolled, log_in_with_sudo
):
    set_policy(require_for_everyone=True)
    enrolled(customer)
    log_in_with_sudo(client, support)
    response = client.post(reset_url(customer), {"reason": "Lost phone"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=customer).exists()


def test_superuser_can_reset_a_staff_member_required_to_have_2fa(
    client, superuser, staff_user, enrolled, log_in_with_sudo
):
    enrolled(superuser)
    enrolled(staff_user)
    assert services.is_two_factor_required(user=staff_user)
    log_in_with_sudo(client, superuser)
    response = client.post(reset_url(staff_user), {"reason": "New phone"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=staff_user).exists()


# --- All users: past the deadline ----------------------------------------------------------
@pytest.fixture
def deadlines(clock, make_user, enrolled, superuser, log_in_verified, client):
    """A known mix under the requirement, seen at START; `viewer` (the superuser) is logged
    in with 2FA. Grace: 7 days. First seen 10 days ago = past it, 2 days ago = inside it."""
    ten_days_ago = START - timedelta(days=10)
    two_days_ago = START - timedelta(days=2)
    users = {
        "staff_overdue": make_user("staff-overdue@example.com", is_staff=True),
        "root_overdue": make_user("root-overdue@example.com", is_superuser=True),
        "staff_in_grace": make_user("staff-grace@example.com", is_staff=True),
        "staff_enrolled": make_user("staff-enrolled@example.com", is_staff=True),
        "staff_never_seen": make_user("staff-new@example.com", is_staff=True),
        "customer_overdue": make_user("customer-overdue@example.com"),
        "customer_in_grace": make_user("customer-grace@example.com"),
        "customer_enrolled": make_user("customer-enrolled@example.com"),
        "customer_never_seen": make_user("customer-new@example.com"),
    }
    for name, user in users.items():
        if name.endswith(("overdue", "enrolled")):
            PolicyDeadline.objects.create(user=user, required_since=ten_days_ago)
        elif name.endswith("in_grace"):
            PolicyDeadline.objects.create(user=user, required_since=two_days_ago)
        if name.endswith("enrolled"):
            enrolled(user)  # turned on after their deadline had passed: no longer overdue
    log_in_verified(client, superuser)
    users["viewer"] = superuser
    return users


def listed(response) -> set[str]:
    assert response.status_code == 200, page(response)[:2000]
    return {row.email for row in response.context["page"].rows}


def status_cell(html: str, email: str) -> str:
    row = re.search(
        rf'<td data-label="Email"[^>]*>{re.escape(email.replace("@", "@<wbr>"))}</td>\s*'
        r'<td data-label="2FA status">(.*?)</td>',
        html,
        re.S,
    )
    assert row is not None, email
    return row.group(1)


def test_past_deadline_lists_staff_past_their_deadline_under_the_default_policy(client, deadlines):
    response = client.get(LIST_URL, {"two_factor": "past_deadline"})
    assert listed(response) == {"staff-overdue@example.com", "root-overdue@example.com"}
    assert response.context["page"].count == 2


def test_past_deadline_lists_everyone_past_it_when_required_for_everyone(client, deadlines):
    set_policy(require_for_everyone=True)
    response = client.get(LIST_URL, {"two_factor": "past_deadline"})
    assert listed(response) == {
        "staff-overdue@example.com",
        "root-overdue@example.com",
        "customer-overdue@example.com",
    }
    assert response.context["page"].count == 3


def test_past_deadline_lists_nobody_when_nothing_is_required(client, deadlines):
    set_policy(require_for_staff=False, require_for_everyone=False)
    response = client.get(LIST_URL, {"two_factor": "past_deadline"})
    assert listed(response) == set()
    assert response.context["page"].count == 0
    assert "No users match." in page(response)


def test_past_deadline_follows_a_shorter_grace_period(client, deadlines):
    set_policy(grace_period_days=1)
    response = client.get(LIST_URL, {"two_factor": "past_deadline"})
    assert listed(response) == {
        "staff-overdue@example.com",
        "root-overdue@example.com",
        "staff-grace@example.com",
    }


def test_past_deadline_counts_a_deadline_reached_this_very_second(client, deadlines, clock):
    clock.advance(days=5)  # staff_in_grace: first seen 7 days ago to the second
    response = client.get(LIST_URL, {"two_factor": "past_deadline"})
    assert "staff-grace@example.com" in listed(response)


@pytest.mark.parametrize("everyone", [False, True], ids=["default policy", "everyone"])
def test_past_deadline_never_lists_users_with_2fa_or_still_in_their_grace(
    client, deadlines, everyone
):
    set_policy(require_for_everyone=everyone)
    shown = listed(client.get(LIST_URL, {"two_factor": "past_deadline"}))
    never = {
        "staff-grace@example.com",
        "staff-enrolled@example.com",
        "staff-new@example.com",
        "customer-grace@example.com",
        "customer-enrolled@example.com",
        "customer-new@example.com",
        "root@example.com",
    }
    assert shown and not shown & never


def test_status_cell_says_past_the_deadline_with_its_date(client, deadlines):
    html = page(client.get(LIST_URL))
    assert "Past the deadline (11 Mar 2025)" in status_cell(html, "staff-overdue@example.com")


def test_status_cell_says_required_by_for_a_user_in_their_grace(client, deadlines):
    html = page(client.get(LIST_URL))
    cell = status_cell(html, "staff-grace@example.com")
    assert "Required by 19 Mar 2025" in cell
    assert "Past the deadline" not in cell


def test_status_cell_says_nothing_of_deadlines_for_users_not_required(client, deadlines):
    html = page(client.get(LIST_URL))
    for email in ("customer-overdue@example.com", "staff-enrolled@example.com"):
        cell = status_cell(html, email)
        assert "Past the deadline" not in cell and "Required by" not in cell, email


def test_status_cell_of_a_customer_past_it_when_required_for_everyone(client, deadlines):
    set_policy(require_for_everyone=True)
    html = page(client.get(LIST_URL))
    assert "Past the deadline (11 Mar 2025)" in status_cell(html, "customer-overdue@example.com")
    assert "Required by 19 Mar 2025" in status_cell(html, "customer-grace@example.com")


def test_filter_offers_past_the_deadline(client, deadlines):
    html = page(client.get(LIST_URL))
    assert '<option value="past_deadline">Past the 2FA deadline</option>' in html


def test_unknown_filter_value_still_gets_the_message(client, deadlines):
    response = client.get(LIST_URL, {"two_factor": "past_deadlines"})
    assert response.status_code == 400
    html = page(response)
    assert "Unknown two-factor authentication filter “past_deadlines”" in html
    assert "or Past the 2FA deadline." in html


def test_csv_export_of_past_deadline_has_the_same_users(client, deadlines):
    response = client.get(CSV_URL, {"two_factor": "past_deadline"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["email"] for row in rows} == {
        "staff-overdue@example.com",
        "root-overdue@example.com",
    }
