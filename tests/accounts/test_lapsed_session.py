"""A session that ends while a dialog is open: the next htmx request navigates the whole
page to the login (HX-Redirect), with next= back to the page the user was on."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from accounts import session_records
from accounts.session_records import SESSION_RECORD_KEY
from tests.conftest import PASSWORD
from twofactor import services

PAGE = "http://testserver/accounts/profile/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": PAGE}
LOGIN_BACK_TO_PROFILE = f"/accounts/login/?next={quote('/accounts/profile/', safe='')}"


@pytest.mark.parametrize("url", ["/2fa/enable/", "/2fa/disable/", "/2fa/backup-codes/"])
def test_a_dialog_request_after_logout_navigates_to_the_login_page(client, user, url):
    client.force_login(user)
    Client().logout()  # nothing shared: log this session out "in another tab"
    client.post("/accounts/logout/")
    for response in (client.get(url, **HTMX), client.post(url, {"code": "123456"}, **HTMX)):
        assert response.status_code == 200
        assert response["HX-Redirect"] == LOGIN_BACK_TO_PROFILE
        assert response.content == b""  # nothing for htmx to swap into the dialog


def test_signed_out_everywhere_by_a_staff_reset_gets_the_same(client, user_with_totp, staff_user):
    user, _ = user_with_totp
    client.force_login(user)
    services.reset_two_factor(user=user, actor=staff_user, reason="lost phone")
    response = client.get("/2fa/enable/", **HTMX)
    assert response["HX-Redirect"] == LOGIN_BACK_TO_PROFILE


def test_the_staff_list_after_logout_navigates_to_the_login_page(client, staff_user):
    client.post("/accounts/logout/")
    page = "http://testserver/accounts/users/?two_factor=activated"
    response = client.get(
        "/accounts/users/?two_factor=activated", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page
    )
    assert response["HX-Redirect"] == "/accounts/login/?next=" + quote(
        "/accounts/users/?two_factor=activated", safe=""
    )


def test_an_expired_code_step_navigates_to_the_login_page_with_its_message(
    client, user_with_totp, freeze_clock
):
    user, _ = user_with_totp
    clock = freeze_clock(timezone.now())
    client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    clock.advance(minutes=11)
    response = client.post("/2fa/login/", {"code": "123456"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/accounts/login/"
    page = client.get("/accounts/login/").content.decode()
    assert "took longer than 10 minutes" in page


ENDED = "Your session has ended. Please log in again."


def login_page_after(client, response) -> str:
    """The login page the browser opens next (after HX-Redirect or a plain redirect)."""
    target = response.get("HX-Redirect") or response["Location"]
    return client.get(target).content.decode()


def test_the_login_page_says_the_session_ended_after_a_dialogs_button(client, user):
    client.force_login(user)
    Client().logout()
    client.cookies.pop("sessionid")  # the session lapsed while the dialog was open
    response = client.post("/2fa/enable/", {"sudo": "1", "password": PASSWORD}, **HTMX)
    assert ENDED in login_page_after(client, response)


def test_the_login_page_says_so_after_a_form_posted_without_javascript(client, user):
    client.force_login(user)
    client.cookies.pop("sessionid")
    response = client.post(
        "/accounts/profile/sessions/7/sign-out/", HTTP_REFERER="http://testserver/accounts/profile/"
    )
    # Back to the page the form was on: the address it posted to takes no GET (405).
    assert response["Location"] == LOGIN_BACK_TO_PROFILE
    page = login_page_after(client, response)
    assert ENDED in page
    assert "Log in to continue" not in page  # said once, not twice


@pytest.mark.parametrize("referer", ["", "https://evil.example/accounts/profile/", "http://["])
def test_a_form_posted_from_no_page_of_this_site_logs_in_to_my_profile(client, user, referer):
    client.force_login(user)
    client.cookies.pop("sessionid")
    response = client.post("/2fa/disable/", {"password": PASSWORD}, HTTP_REFERER=referer)
    assert response["Location"] == "/accounts/login/"
    assert ENDED in login_page_after(client, response)


def test_opening_a_protected_address_says_nothing_of_a_session(client, db):
    # A bookmark or a typed address: this browser may never have logged in.
    response = client.get("/accounts/profile/")
    assert ENDED not in login_page_after(client, response)


def test_picking_a_language_on_the_login_page_is_not_a_session_that_ended(client, db):
    back = "/accounts/login/?next=/accounts/profile/"
    response = client.post("/accounts/language/", {"language": "de", "next": back})
    assert response["Location"] == back
    assert "Sitzung" not in client.get(back).content.decode()


def test_logging_out_is_not_a_session_that_ended(client, user):
    client.force_login(user)
    response = client.post("/accounts/logout/")
    assert ENDED not in client.get(response["Location"]).content.decode()


def test_signed_out_from_another_session_says_that_alone(client, user):
    client.force_login(user)
    # Signed out from the sessions list of another browser (its "Sign out" on this one).
    session_records.end_sessions(user=user, only=client.session[SESSION_RECORD_KEY])
    response = client.get("/2fa/enable/", **HTMX)
    page = login_page_after(client, response)
    assert "This browser was signed out from another session." in page
    assert ENDED not in page


def test_a_page_elsewhere_is_not_a_next(client, db):
    response = client.get(
        "/2fa/enable/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://evil.example/x"
    )
    assert response["HX-Redirect"] == "/accounts/login/?next=/2fa/enable/"


def test_without_htmx_the_login_redirect_is_a_plain_redirect(client, db):
    response = client.get("/2fa/enable/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/2fa/enable/"


def test_a_stale_csrf_token_in_a_dialog_reloads_the_page(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/profile/")
    response = client.post(
        "/2fa/enable/", {"sudo": "1", "password": PASSWORD}, HTTP_X_CSRFTOKEN="stale" * 8, **HTMX
    )
    assert response.status_code == 403
    assert response["HX-Refresh"] == "true"


def test_the_sudo_window_ending_is_not_a_logout(client, user, freeze_clock, log_in_with_sudo):
    clock = freeze_clock(timezone.now())
    log_in_with_sudo(client, user)
    clock.advance(minutes=11)
    response = client.get("/2fa/enable/", **HTMX)
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert "Confirm it's you" in response.content.decode()
    assert timedelta(minutes=10) == services.SUDO_TTL


def test_a_current_url_that_is_no_url_is_no_server_error(client, db):
    response = client.get("/2fa/enable/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://[")
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/2fa/enable/"
