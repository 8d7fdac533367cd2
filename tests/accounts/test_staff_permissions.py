"""Staff rights are permissions: the staff flag alone opens no staff page.

All users, its CSV and any user's history need `accounts.view_user`; Reset 2FA needs
`accounts.reset_two_factor`; superusers have both. Everything here goes through HTTP,
as an attacker with a staff account would.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from twofactor.models import TOTPDevice

LIST_URL = "/accounts/users/"
CSV_URL = "/accounts/users/export.csv"
MENU_LINK = b'href="/accounts/users/">All users</a>'


def history_url(pk: int) -> str:
    return f"/accounts/users/{pk}/security/"


def reset_url(pk: int) -> str:
    return f"/accounts/users/{pk}/reset-2fa/"


def staff_urls(pk: int) -> list[str]:
    return [LIST_URL, CSV_URL, history_url(pk), reset_url(pk)]


def permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename=codename)


@pytest.fixture
def ann(make_user, enrolled):
    """A customer with 2FA on: what a reset would remove, whose e-mail must not leak."""
    customer = make_user("ann@example.com", name="Ann Archer")
    enrolled(customer, at=timezone.now() - timedelta(days=1))
    return customer


@pytest.fixture
def viewer(make_user):
    """Staff who may look (view_user) but not reset."""
    staff = make_user("viewer@example.com", name="Vic Viewer", is_staff=True)
    staff.user_permissions.add(permission("view_user"))
    return get_user_model().objects.get(pk=staff.pk)


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


# --- The staff flag alone ----------------------------------------------------------------
@pytest.mark.parametrize("method", ["get", "post"])
def test_staff_without_permissions_get_403_and_no_data_on_every_staff_page(
    client, ann, staff_without_permissions, log_in_verified, method
):
    log_in_verified(client, staff_without_permissions)  # 2FA on, session verified
    for url in staff_urls(ann.pk):
        response = getattr(client, method)(url, {"reason": "Lost phone"})
        assert response.status_code == 403, url
        assert b"ann@example.com" not in body(response), url
        assert b"Ann Archer" not in body(response), url
    assert TOTPDevice.objects.filter(user=ann, confirmed_at__isnull=False).exists()


def test_ids_cannot_be_probed_without_the_permission(
    client, ann, staff_without_permissions, log_in_verified
):
    log_in_verified(client, staff_without_permissions)
    missing_pk = get_user_model().objects.order_by("-pk").first().pk + 1000
    for url_of in (history_url, reset_url):
        existing = client.get(url_of(ann.pk))
        missing = client.get(url_of(missing_pk))

        # Refused before the lookup: an existing and a missing id look the same
        # (but for the per-response CSRF token the page carries for htmx, and the
        # page's own address, where the language picker returns to).
        def without_token(response) -> str:
            page = response.content.decode().replace(response.wsgi_request.path, "PATH")
            return re.sub(r"[A-Za-z0-9]{64}", "CSRF", page)

        assert (existing.status_code, without_token(existing)) == (
            missing.status_code,
            without_token(missing),
        )
        assert existing.status_code == 403


def test_staff_without_permissions_see_no_all_users_menu_item(
    client, staff_without_permissions, log_in_verified
):
    log_in_verified(client, staff_without_permissions)
    assert b'href="/accounts/users/"' not in client.get("/accounts/profile/").content


def test_staff_without_permissions_and_without_2fa_get_403_not_a_hint(
    client, ann, staff_without_permissions
):
    client.force_login(staff_without_permissions)  # password only, 2FA off
    for url in staff_urls(ann.pk):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("url_of", [lambda pk: LIST_URL, lambda pk: CSV_URL, history_url])
def test_anonymous_visitors_are_sent_to_the_login_page(client, ann, url_of):
    response = client.get(url_of(ann.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


# --- view_user: look, but not reset (Reset 2FA itself: tests/accounts/test_all_users.py) ----
def test_view_user_opens_all_users_the_csv_and_a_history(client, ann, viewer, log_in_verified):
    log_in_verified(client, viewer)
    for url in (LIST_URL, CSV_URL, history_url(ann.pk)):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"ann@example.com" in body(response), url


def test_view_user_shows_the_menu_item_but_no_reset_button(client, ann, viewer, log_in_verified):
    log_in_verified(client, viewer)
    assert MENU_LINK in client.get("/accounts/profile/").content
    assert b"Reset 2FA" not in client.get(LIST_URL).content


def staff_in_a_group(make_user, email: str, codename: str):
    """A staff member whose only right (`codename`) comes from their group."""
    group = Group.objects.create(name="Helpdesk")
    group.permissions.add(permission(codename))
    staff = make_user(email, is_staff=True)
    staff.groups.add(group)
    return staff, group


def test_the_permission_may_come_from_a_group(client, ann, make_user, log_in_verified):
    staff, _ = staff_in_a_group(make_user, "grouped@example.com", "view_user")
    log_in_verified(client, staff)
    assert client.get(LIST_URL).status_code == 200


def test_rights_from_the_staff_member_and_from_a_group_add_up(
    client, ann, make_user, log_in_verified
):
    # Read in one query (accounts.login_throttle.ThrottleBackend): neither source hides the other.
    staff, _ = staff_in_a_group(make_user, "mixed@example.com", "view_user")
    staff.user_permissions.add(permission("reset_two_factor"))
    log_in_verified(client, staff)
    assert b"Reset 2FA" in client.get(LIST_URL).content
    assert "Confirm it's you first." in client.get(reset_url(ann.pk)).content.decode()


def test_a_right_taken_from_the_group_is_gone_at_the_next_request(
    client, ann, make_user, log_in_verified
):
    staff, group = staff_in_a_group(make_user, "grouped@example.com", "view_user")
    log_in_verified(client, staff)
    assert client.get(LIST_URL).status_code == 200
    group.permissions.clear()
    assert client.get(LIST_URL).status_code == 403


def test_the_permission_without_the_staff_flag_opens_nothing(
    client, ann, make_user, log_in_verified
):
    # Staff pages are for staff: a customer wrongly put in a group gets nothing either.
    customer = make_user("granted@example.com")
    customer.user_permissions.add(permission("view_user"), permission("reset_two_factor"))
    log_in_verified(client, customer)
    for url in staff_urls(ann.pk):
        assert client.get(url).status_code == 403, url
    assert b'href="/accounts/users/"' not in client.get("/accounts/profile/").content


def test_a_session_that_passed_no_second_factor_is_still_sent_to_turn_it_on(client, ann, viewer):
    client.force_login(viewer)  # the permission, but a password-only session
    response = client.get(LIST_URL, follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/profile/"
    assert "Staff pages need two-factor authentication." in response.content.decode()


# --- Both permissions, and superusers ----------------------------------------------------
def test_support_staff_with_both_permissions_are_asked_to_confirm_a_reset(
    client, ann, staff_user, log_in_verified
):
    log_in_verified(client, staff_user)
    assert client.get(LIST_URL).status_code == 200
    assert b"Reset 2FA" in client.get(LIST_URL).content
    assert "Confirm it's you first." in client.get(reset_url(ann.pk)).content.decode()


def test_a_superuser_can_open_every_staff_page(client, ann, log_in_verified):
    root = get_user_model().objects.create_superuser("root@example.com", "irrelevant")
    log_in_verified(client, root)
    for url in (LIST_URL, CSV_URL, history_url(ann.pk)):
        assert client.get(url).status_code == 200, url
    assert "Confirm it's you first." in client.get(reset_url(ann.pk)).content.decode()
    assert MENU_LINK in client.get("/accounts/profile/").content
