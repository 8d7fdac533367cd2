"""The Django admin opens only for staff sessions that passed the second factor."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD

ADMIN_URL = "/admin/"


@pytest.fixture
def superuser(make_user):
    return make_user("root@example.com", name="Root", is_staff=True, is_superuser=True)


def test_staff_with_a_password_alone_cannot_open_the_admin(client, superuser):
    client.post("/accounts/login/", {"username": superuser.email, "password": PASSWORD})
    assert client.get("/accounts/profile/").status_code == 200  # logged in, no 2FA
    response = client.get(ADMIN_URL, follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/profile/"
    assert "The admin needs two-factor authentication" in response.content.decode()


def test_staff_who_passed_the_code_step_open_the_admin(
    client, superuser, enrolled, log_in_with_code
):
    secret = enrolled(superuser, at=timezone.now() - timedelta(minutes=2))
    log_in_with_code(client, superuser, secret)
    assert client.get(ADMIN_URL).status_code == 200


def test_a_session_from_before_2fa_was_switched_on_cannot_open_the_admin(
    client, superuser, enrolled
):
    client.post("/accounts/login/", {"username": superuser.email, "password": PASSWORD})
    enrolled(superuser, at=timezone.now() - timedelta(minutes=2))  # e.g. on another device
    response = client.get(ADMIN_URL)
    assert response.status_code == 302
    # Turning 2FA on signed that password-only session out altogether.
    assert client.get(response["Location"])["Location"].startswith("/accounts/login/")


def test_enrolling_in_this_session_counts_as_passing_the_second_factor(
    client, superuser, totp_code, log_in_with_sudo
):
    import re

    log_in_with_sudo(client, superuser)
    page = client.get("/2fa/enable/").content.decode()
    secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
    assert client.post("/2fa/enable/", {"code": totp_code(secret)}).status_code == 302
    assert client.get(ADMIN_URL).status_code == 200


def test_customers_get_403_from_the_admin_login(client, user):
    client.force_login(user)
    assert client.get("/admin/login/?next=/admin/").status_code == 403
