"""Enrollment and the two-step login in a project that has twofactor and nothing of accounts."""

import re
import sys

import pyotp
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from twofactor.models import BackupCode, TOTPDevice

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password


@pytest.fixture
def ann(db) -> User:
    return User.objects.create_user("ann", "ann@example.com", PASSWORD)


def log_in_with_password(client, username="ann", password=PASSWORD):
    return client.post("/login/", {"username": username, "password": password})


def current_code(device: TOTPDevice, *, steps: int = 0) -> str:
    return pyotp.TOTP(device.secret).at(timezone.now(), counter_offset=steps)


def enable_two_factor(client) -> tuple[TOTPDevice, list[str]]:
    asked = client.get("/2fa/enable/")
    assert "Confirm it" in asked.content.decode()  # the password first (sudo)
    opened = client.post("/2fa/enable/", {"sudo": "1", "password": PASSWORD}, follow=True)
    page = opened.content.decode()
    assert 'src="data:image/png;base64,' in page
    device = TOTPDevice.objects.get(user__username="ann")
    assert device.secret[:4] in page.replace(" ", "")  # the key for manual entry
    checked = client.post("/2fa/enable/", {"code": current_code(device)}, follow=True)
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", checked.content.decode())
    return device, codes


def test_the_project_has_no_accounts_app():
    assert "accounts" not in settings.INSTALLED_APPS
    assert settings.AUTH_USER_MODEL == "auth.User"
    assert not any(name.split(".")[0] in {"accounts", "portal"} for name in sys.modules)


def test_a_user_without_2fa_logs_in_with_the_password(client, ann):
    response = log_in_with_password(client)
    assert response.status_code == 302 and response["Location"] == "/home/"
    assert client.get("/home/").content == b"Home of ann"


def test_enrollment_turns_2fa_on_and_ends_with_five_backup_codes(client, ann):
    log_in_with_password(client)
    device, codes = enable_two_factor(client)
    device.refresh_from_db()
    assert device.confirmed_at is not None
    assert len(codes) == 5
    assert BackupCode.objects.filter(user=ann, used_at__isnull=True).count() == 5


def test_the_dialogs_cancel_leads_to_the_done_url(client, ann):
    log_in_with_password(client)
    client.post("/2fa/enable/", {"sudo": "1", "password": PASSWORD})
    page = client.get("/2fa/enable/").content.decode()
    assert 'href="/home/" data-close-dialog>Cancel</a>' in page


def test_a_wrong_code_at_enrollment_is_refused_with_a_message(client, ann):
    log_in_with_password(client)
    client.post("/2fa/enable/", {"sudo": "1", "password": PASSWORD})
    client.get("/2fa/enable/")
    device = TOTPDevice.objects.get(user=ann)
    wrong = f"{(int(current_code(device)) + 500_000) % 1_000_000:06d}"
    page = client.post("/2fa/enable/", {"code": wrong}).content.decode()
    assert "That code is not right" in page
    device.refresh_from_db()
    assert device.confirmed_at is None


def test_with_2fa_the_password_alone_does_not_log_in(client, ann):
    log_in_with_password(client)
    device, _codes = enable_two_factor(client)
    client.post("/logout/")
    response = log_in_with_password(client)
    assert response["Location"] == "/2fa/login/"
    assert client.get("/home/").status_code == 302  # not logged in yet
    step = client.get("/2fa/login/").content.decode()
    assert 'href="/login/">Start over</a>' in step


def test_the_code_step_logs_in_with_an_app_code(client, ann):
    log_in_with_password(client)
    device, _codes = enable_two_factor(client)
    client.post("/logout/")
    log_in_with_password(client)
    response = client.post("/2fa/login/", {"code": current_code(device, steps=1)})
    assert response.status_code == 302 and response["Location"] == "/home/"
    assert client.get("/home/").content == b"Home of ann"


def test_the_code_step_logs_in_with_a_backup_code_once(client, ann):
    log_in_with_password(client)
    _device, codes = enable_two_factor(client)
    client.post("/logout/")
    log_in_with_password(client)
    assert client.post("/2fa/login/", {"code": codes[0]})["Location"] == "/home/"
    client.post("/logout/")
    log_in_with_password(client)
    again = client.post("/2fa/login/", {"code": codes[0]})
    assert again.status_code == 200
    assert "already used" in again.content.decode()


def test_disable_turns_2fa_off(client, ann):
    log_in_with_password(client)
    enable_two_factor(client)
    response = client.post("/2fa/disable/", {"confirm": "1"})
    assert response.status_code == 302 and response["Location"] == "/home/"
    assert not TOTPDevice.objects.filter(user=ann).exists()
    assert not BackupCode.objects.filter(user=ann).exists()
