"""twofactor's settings: each has a default, and is read when it is used."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory, override_settings

from twofactor.checks import check_trusted_browser_cookie
from twofactor.conf import app_settings
from twofactor.responses import done


def test_every_setting_has_a_default(settings):
    for name in [
        "TWOFACTOR_ISSUER",
        "TWOFACTOR_ENCRYPTION_KEYS",
        "TWOFACTOR_DONE_URL",
        "TWOFACTOR_LOGIN_URL",
        "TWOFACTOR_SUPPORT_URL",
        "TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME",
        "TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE",
    ]:
        if hasattr(settings, name):
            delattr(settings, name)
    assert app_settings.ISSUER == "Django"
    assert app_settings.ENCRYPTION_KEYS == []
    assert app_settings.DONE_URL == settings.LOGIN_REDIRECT_URL
    assert app_settings.LOGIN_URL == settings.LOGIN_URL
    assert app_settings.SUPPORT_URL == ""
    # Lifted into another project, the trust cookie is https-only unless it says otherwise.
    assert app_settings.TRUSTED_BROWSER_COOKIE_NAME == "__Host-twofactor_trusted"
    assert app_settings.TRUSTED_BROWSER_COOKIE_SECURE is True


def test_settings_are_read_at_call_time():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with override_settings(TWOFACTOR_DONE_URL="/somewhere/else/"):
        assert done(request)["Location"] == "/somewhere/else/"
    assert done(request)["Location"] == "/accounts/profile/"


def test_the_code_step_starts_over_at_the_login_url_setting(client, settings):
    settings.TWOFACTOR_LOGIN_URL = "/elsewhere/login/"
    response = client.get("/2fa/login/")  # no pending login
    assert response["Location"] == "/elsewhere/login/"


@pytest.mark.parametrize(
    ("name", "secure", "refused"),
    [
        ("__Host-twofactor_trusted", True, False),
        ("twofactor_trusted", False, False),
        ("twofactor_trusted", True, False),
        ("__Host-twofactor_trusted", False, True),
        ("__Secure-trusted", False, True),
    ],
)
def test_a_cookie_name_that_needs_secure_is_refused_without_it(settings, name, secure, refused):
    settings.TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME = name
    settings.TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE = secure
    errors = check_trusted_browser_cookie(None)
    assert [error.id for error in errors] == (["twofactor.E005"] if refused else [])
