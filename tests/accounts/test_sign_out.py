"""When the second factor changes under a user, sessions that did not pass it end."""

import re

import pyotp
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client

from accounts.sign_out import end_all_sessions
from tests.conftest import PASSWORD
from twofactor import services

LOGIN_URL = "/accounts/login/"
PROFILE_URL = "/accounts/profile/"
ENABLE_URL = "/2fa/enable/"


def password_login(user) -> Client:
    browser = Client()
    assert (
        browser.post(LOGIN_URL, {"username": user.email, "password": PASSWORD}).status_code == 302
    )
    return browser


def is_logged_in(browser: Client) -> bool:
    return browser.get(PROFILE_URL).status_code == 200


def enable_in(browser: Client) -> None:
    browser.post(ENABLE_URL, {"sudo": "1", "password": PASSWORD})
    page = browser.get(ENABLE_URL).content.decode()
    secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
    response = browser.post(ENABLE_URL, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.content.decode()[:2000]


def test_turning_2fa_on_signs_out_sessions_opened_with_the_password_alone(user):
    intruder = password_login(user)  # e.g. with a phished password, before 2FA was on
    mine = password_login(user)
    enable_in(mine)
    assert not is_logged_in(intruder)
    assert is_logged_in(mine)
    assert services.is_session_verified(request=mine.get(PROFILE_URL).wsgi_request)


def test_the_session_that_turns_2fa_on_gets_a_new_session_key(user):
    mine = password_login(user)
    before = mine.session.session_key
    enable_in(mine)
    assert mine.session.session_key != before
    assert mine.session[SESSION_KEY] == str(user.pk)


def test_a_support_reset_signs_the_user_out_everywhere(user_with_totp, log_in_with_code):
    user, secret = user_with_totp
    phone_session = log_in_with_code(Client(), user, secret)  # on the phone that was lost
    services.reset_two_factor(user=user, actor=None, reason="Lost phone, ID checked")
    assert not is_logged_in(phone_session)


def test_turning_2fa_off_oneself_signs_out_no_one(user_with_totp, log_in_with_code):
    user, secret = user_with_totp
    laptop = log_in_with_code(Client(), user, secret)
    services.disable_two_factor(user=user)
    assert is_logged_in(laptop)


def test_sessions_from_before_the_generation_existed_stay_valid(user):
    # Generation 0 hashes like Django's own, so deploying this signed nobody out.
    assert user.session_generation == 0
    assert user.get_session_auth_hash() == AbstractBaseUser.get_session_auth_hash(user)


def test_sessions_signed_with_an_old_secret_key_follow_the_generation_too(user, settings):
    settings.SECRET_KEY_FALLBACKS = ["an-old-secret-key-that-is-long-enough-for-tests"]
    before = list(user.get_session_auth_fallback_hash())
    end_all_sessions(user=user)
    after = list(user.get_session_auth_fallback_hash())
    assert len(before) == len(after) == 1
    assert before != after


def test_a_stale_copy_of_the_user_saved_later_does_not_revive_sessions(
    user_with_totp, log_in_with_code
):
    user, secret = user_with_totp
    phone_session = log_in_with_code(Client(), user, secret)
    stale = type(user).objects.get(pk=user.pk)  # e.g. an admin form opened before the reset
    services.reset_two_factor(user=user, actor=None, reason="Lost phone, ID checked")
    after_reset = user.session_generation
    stale.name = "Renamed In The Admin"
    stale.save()
    assert not is_logged_in(phone_session)
    user.refresh_from_db()
    assert (user.name, user.session_generation) == ("Renamed In The Admin", after_reset)
