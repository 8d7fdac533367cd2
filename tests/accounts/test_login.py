import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.conftest import OPEN_REDIRECTS, PASSWORD

LOGIN_URL = "/accounts/login/"
PROFILE_URL = "/accounts/profile/"


def test_login_with_email_and_password_lands_on_profile(client, user):
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    assert client.get(PROFILE_URL).status_code == 200


def test_email_is_case_insensitive_at_login(client, user):
    response = client.post(LOGIN_URL, {"username": "ANN@Example.COM", "password": PASSWORD})
    assert response.status_code == 302


def test_email_is_unique_whatever_the_case(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create_user("Ann@EXAMPLE.com", "x")


def test_unknown_email_and_wrong_password_look_identical(client, user):
    unknown = client.post(LOGIN_URL, {"username": "nobody@example.com", "password": PASSWORD})
    wrong = client.post(LOGIN_URL, {"username": user.email, "password": "wrong password"})
    assert unknown.status_code == wrong.status_code == 200

    def body(response) -> str:
        # The only difference allowed is the e-mail echoed back into the field and the CSRF token.
        text = response.content.decode()
        text = text.replace("nobody@example.com", "EMAIL").replace(user.email, "EMAIL")

        return re.sub(r"[A-Za-z0-9]{64}", "CSRF", text)

    assert body(unknown) == body(wrong)
    assert "do not match an account" in unknown.content.decode()


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_to_another_site_lands_on_profile(client, user, target):
    response = client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL


def test_next_to_a_local_page_is_honoured(client, user):
    response = client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, "next": "/accounts/profile/?x=1"}
    )
    assert response["Location"] == "/accounts/profile/?x=1"


def test_logout_by_get_does_not_log_out(client, user):
    client.force_login(user)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get(PROFILE_URL).status_code == 200


def test_logout_by_post_logs_out(client, user):
    client.force_login(user)
    client.post("/accounts/logout/")
    assert client.get(PROFILE_URL).status_code == 302


def test_profile_requires_login(client, db):
    response = client.get(PROFILE_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL + "?next=")


def test_profile_shows_name_email_and_two_factor_status(client, user):
    client.force_login(user)
    page = client.get(PROFILE_URL).content.decode()
    assert "Ann Example" in page and user.email in page
    assert "Two-Factor authentication" in page and "Not activated" in page
    assert 'aria-label="Account menu"' in page


def test_admin_login_form_is_not_a_way_around_the_portal_login(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_password_reset_sends_a_link_by_email(
    client, user, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password-reset/", {"email": user.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "/accounts/password-reset/" in mailoutbox[0].body
