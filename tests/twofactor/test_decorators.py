"""The guard stack of twofactor's actions: 2FA state first, then "confirm it's you"."""

from django.test import RequestFactory

from twofactor import services
from twofactor.forms import SudoForm


def test_disable_without_2fa_goes_back_without_asking_for_a_password(client, user):
    client.force_login(user)
    response = client.get("/2fa/disable/")
    assert response.status_code == 302 and response["Location"] == "/accounts/profile/"
    assert "Two-factor authentication is off." in client.get("/accounts/profile/").content.decode()


def test_a_typo_in_the_sudo_code_is_no_attempt(client, user_with_totp, password):
    from twofactor.models import TOTPDevice

    user, _secret = user_with_totp
    client.force_login(user)
    response = client.post("/2fa/disable/", {"sudo": "1", "password": password, "code": "12ab56"})
    assert "Enter the 6-digit code from your app, or a backup code" in response.content.decode()
    assert TOTPDevice.objects.get(user=user).failure_count == 0


def test_enable_with_2fa_on_says_so_without_asking_for_a_password(client, user_with_totp):
    user, _secret = user_with_totp
    client.force_login(user)
    response = client.get("/2fa/enable/", follow=True)
    page = response.content.decode()
    assert "Two-factor authentication is already on." in page
    assert "Confirm it" not in page


def test_with_2fa_on_disable_asks_to_confirm_it_is_you(client, user_with_totp):
    user, _secret = user_with_totp
    client.force_login(user)
    page = client.get("/2fa/disable/").content.decode()
    assert "Confirm it" in page and 'name="password"' in page


def test_the_sudo_form_writes_nothing_to_the_session(user, password, client):
    client.force_login(user)
    request = RequestFactory().post("/2fa/disable/", {"sudo": "1", "password": password})
    request.user = user
    request.session = client.session
    before = dict(request.session.items())
    form = SudoForm(request.POST, request=request, needs_code=False)
    assert form.is_valid(), form.errors
    assert dict(request.session.items()) == before
    assert not services.has_recent_proof(request=request)
