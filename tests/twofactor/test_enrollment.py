"""Enable and disable 2FA through the pages, with Django's test client (no JavaScript).

The clock is frozen by replacing django.utils.timezone.now, which services, views, forms,
sessions and auto_now fields all read, so "10 minutes later" is exact and codes are known.
"""

import base64
import html
import io
import logging
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import zxingcpp
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from tests.conftest import PASSWORD, FrozenClock
from twofactor import otp, services, signals
from twofactor.models import BackupCode, TOTPDevice

NEW_CODES_URL = "/2fa/backup-codes/new/"
ENABLE_URL = "/2fa/enable/"
DISABLE_URL = "/2fa/disable/"
LOGIN_URL = "/accounts/login/"
LOGIN_CODE_URL = "/2fa/login/"
PROFILE_URL = "/accounts/profile/"
CLOCK_MESSAGE = "your device's clock looks about 60 seconds off"


@pytest.fixture
def clock(freeze_clock) -> FrozenClock:
    # 15 s into a 30 s step, so one step either side is a whole step away.
    return freeze_clock(datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC))


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def in_sudo(client, user, log_in_with_sudo):
    """A logged-in client in sudo mode: "confirm it's you" answered a moment ago."""
    return log_in_with_sudo(client, user)


@pytest.fixture
def in_sudo_by_password(logged_in):
    """A logged-in client that has just confirmed its password at the enable dialog."""
    response = logged_in.post(ENABLE_URL, {"sudo": "1", "password": PASSWORD})
    assert response.status_code == 302
    return logged_in


# --- Reading the enable page ----------------------------------------------------------------
def _text(response) -> str:
    return response.content.decode()


def _grouped_key(response) -> str:
    match = re.search(
        r'<code class="secret" id="manual-key"[^>]*>([A-Z2-7 ]+)</code>', _text(response)
    )
    assert match, "no manual key on the page"
    return match.group(1)


def _secret(response) -> str:
    return _grouped_key(response).replace(" ", "")


def _otpauth_link(response) -> str:
    match = re.search(
        r'href="(otpauth://[^"]+)"[^>]*>\s*Open in authenticator app', _text(response)
    )
    assert match, "no 'Open in authenticator app' link"
    return html.unescape(match.group(1))


def _qr_text(response) -> str:
    match = re.search(
        r'<img class="qr" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', _text(response)
    )
    assert match, "no inline QR image"
    image = Image.open(io.BytesIO(base64.b64decode(match.group(1))))
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1
    return results[0].text


def _code_at(secret: str, at: datetime, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(at, counter_offset=steps)


def _is_active(user) -> bool:
    return services.is_two_factor_enabled(user=user)


# --- Sudo mode in front of the enable dialog ---------------------------------------------
def test_enable_asks_for_the_password_before_showing_a_secret(logged_in, user):
    response = logged_in.get(ENABLE_URL)
    assert response.status_code == 200
    assert "Confirm it's you" in _text(response)
    assert 'type="password"' in _text(response)
    assert "otpauth://" not in _text(response)
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_enable_refuses_a_wrong_password(logged_in, user):
    response = logged_in.post(ENABLE_URL, {"sudo": "1", "password": "not my password"})
    assert response.status_code == 200
    assert "That password is not right." in _text(response)
    assert "otpauth://" not in _text(response)


def test_enable_does_not_ask_again_within_ten_minutes(clock, in_sudo_by_password):
    clock.advance(minutes=9, seconds=59)
    response = in_sudo_by_password.get(ENABLE_URL)
    assert "otpauth://" in _text(response)
    assert "Confirm it's you" not in _text(response)


def test_enable_asks_again_after_ten_minutes(clock, in_sudo_by_password):
    clock.advance(minutes=10, seconds=1)
    response = in_sudo_by_password.get(ENABLE_URL)
    assert "Confirm it's you" in _text(response)
    assert "otpauth://" not in _text(response)


# --- What the enable dialog shows --------------------------------------------------------------
def test_qr_code_decodes_to_the_open_in_app_link(in_sudo):
    response = in_sudo.get(ENABLE_URL)
    assert _qr_text(response) == _otpauth_link(response)


def test_otpauth_link_carries_the_key_shown_and_the_account(in_sudo, user):
    response = in_sudo.get(ENABLE_URL)
    parsed = pyotp.parse_uri(_otpauth_link(response))
    assert parsed.secret == _secret(response)
    assert parsed.name == user.email
    assert parsed.issuer == "Customer Portal"


def test_key_is_shown_in_groups_of_four(in_sudo):
    grouped = _grouped_key(in_sudo.get(ENABLE_URL))
    groups = grouped.split(" ")
    assert len(groups) == 8
    assert all(len(group) == 4 for group in groups)


def test_secret_on_the_page_is_the_one_stored(in_sudo, user):
    response = in_sudo.get(ENABLE_URL)
    assert TOTPDevice.objects.get(user=user).secret == _secret(response)


def test_code_field_invites_the_phone_keypad_and_autofill(in_sudo):
    text = _text(in_sudo.get(ENABLE_URL))
    field = re.search(r'<input[^>]*name="code"[^>]*>', text).group(0)
    assert 'inputmode="numeric"' in field
    assert 'autocomplete="one-time-code"' in field
    assert re.search(r'<button type="submit"[^>]*>Check</button>', text)


def test_enable_dialog_recommends_authenticator_apps(in_sudo):
    text = _text(in_sudo.get(ENABLE_URL))
    for app in ("Google Authenticator", "Microsoft Authenticator", "1Password", "Authy", "FreeOTP"):
        assert app in text


def test_qr_is_inline_with_a_meaningful_alt_text(in_sudo):
    text = _text(in_sudo.get(ENABLE_URL))
    img = re.search(r'<img class="qr"[^>]*>', text).group(0)
    assert 'src="data:image/png;base64,' in img
    assert re.search(r'alt="[^"]*authenticator app[^"]*"', img)


def test_a_refused_code_leaves_the_code_box_empty(in_sudo, wrong_code):
    wrong = wrong_code(_secret(in_sudo.get(ENABLE_URL)))
    refused = in_sudo.post(ENABLE_URL, {"code": wrong})
    code_box = re.search(r'<input[^>]*name="code"[^>]*>', refused.content.decode()).group(0)
    assert "That code is not right." in _text(refused)
    assert "value=" not in code_box


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({}, id="full-page"),
        pytest.param({"HTTP_HX_REQUEST": "true"}, id="htmx"),
    ],
)
def test_pages_showing_the_secret_are_not_stored(in_sudo, request_kwargs, wrong_code):
    shown = in_sudo.get(ENABLE_URL, **request_kwargs)
    wrong = wrong_code(_secret(shown))
    refused = in_sudo.post(ENABLE_URL, {"code": wrong}, **request_kwargs)
    for response in (shown, refused):
        assert "otpauth://" in _text(response)
        assert "no-store" in response["Cache-Control"]


def test_reopening_before_confirming_shows_the_same_secret(clock, in_sudo):
    first = _secret(in_sudo.get(ENABLE_URL))
    clock.advance(minutes=9)
    assert _secret(in_sudo.get(ENABLE_URL)) == first


def test_another_session_never_sees_the_secret_on_this_screen(
    clock, in_sudo, user, log_in_with_sudo
):
    # Someone who has the password opens the dialog in their own browser...
    other = log_in_with_sudo(Client(), user)
    theirs = _secret(other.get(ENABLE_URL))
    # ...then the user opens it: a fresh secret, which voids theirs.
    mine = _secret(in_sudo.get(ENABLE_URL))
    assert mine != theirs
    assert _secret(in_sudo.get(ENABLE_URL)) == mine  # and stays the same on this screen
    refused = other.post(ENABLE_URL, {"code": _code_at(theirs, clock.now)})
    assert "This setup has expired (it lasts 10 minutes)" in html.unescape(_text(refused))
    assert "Delete the entry you just added in your authenticator app" in html.unescape(
        _text(refused)
    )
    assert _secret(refused) not in (mine, theirs)  # a fresh one for them, voiding mine
    assert not _is_active(user)


def test_a_pending_device_is_confirmed_only_from_its_own_session(clock, user):
    secret = services.begin_enrollment(user=user, session={}, now=clock.now).secret
    with pytest.raises(services.NotEnrolled):
        services.confirm_enrollment(
            user=user, session={}, code=_code_at(secret, clock.now), now=clock.now
        )
    assert not _is_active(user)


def test_pending_secret_is_replaced_after_ten_minutes(clock, user):
    session: dict = {}
    first = services.begin_enrollment(user=user, session=session, now=clock.now).secret
    later = clock.now + timedelta(minutes=10, seconds=1)
    second = services.begin_enrollment(user=user, session=session, now=later).secret
    assert second != first
    # ...and the old secret's codes no longer enable anything.
    with pytest.raises(services.InvalidCode):
        services.confirm_enrollment(
            user=user, session=session, code=_code_at(first, later), now=later
        )


def test_reopening_after_ten_minutes_shows_a_new_secret(clock, in_sudo):
    first = _secret(in_sudo.get(ENABLE_URL))
    clock.advance(minutes=10, seconds=1)
    # Sudo mode has lapsed too; answering it again must not bring the old secret back.
    assert in_sudo.post(ENABLE_URL, {"sudo": "1", "password": PASSWORD}).status_code == 302
    assert _secret(in_sudo.get(ENABLE_URL)) != first


def test_thousand_enrollments_give_thousand_distinct_secrets(clock, django_user_model):
    # Through the service (and its encryption round trip), not just the generator.
    django_user_model.objects.bulk_create(
        django_user_model(email=f"user{i}@example.com", password="!") for i in range(1000)
    )
    secrets = {
        services.begin_enrollment(user=user, session={}, now=clock.now).secret
        for user in django_user_model.objects.all()
    }
    assert len(secrets) == 1000


# --- Confirming with a code -------------------------------------------------------------------
def _require_tool(tool: str) -> str:
    # Same rule as tests/e2e/conftest.py: skipped on a laptop without it, a failure in CI.
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} not installed (apt-get install {tool})"
        if os.environ.get("REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def test_code_from_oathtool_enables_two_factor(in_sudo, user):
    oathtool = _require_tool("oathtool")
    secret = _secret(in_sudo.get(ENABLE_URL))
    # Real time on both sides: oathtool reads the system clock, so no frozen clock here.
    code = subprocess.run(
        [oathtool, "--totp", "-b", secret], capture_output=True, text=True, check=True
    ).stdout.strip()

    response = in_sudo.post(ENABLE_URL, {"code": code})

    assert response.status_code == 302
    assert response["Location"] == NEW_CODES_URL  # setup ends with the backup codes
    assert _is_active(user)
    profile = _text(in_sudo.get(PROFILE_URL))
    assert "Activated" in profile
    assert "Disable 2FA" in profile
    assert "Generate backup code" in profile


@pytest.mark.parametrize("steps", [-1, 0, 1])
def test_codes_one_step_either_side_enable_two_factor(clock, user, steps):
    session: dict = {}
    secret = services.begin_enrollment(user=user, session=session, now=clock.now).secret
    device = services.confirm_enrollment(
        user=user, session=session, code=_code_at(secret, clock.now, steps), now=clock.now
    )
    assert device.confirmed_at == clock.now
    assert device.last_used_step == otp.time_step(clock.now.timestamp()) + steps


@pytest.mark.parametrize("steps", [-2, 2])
def test_code_two_steps_off_is_refused_as_clock_drift(clock, user, steps):
    session: dict = {}
    secret = services.begin_enrollment(user=user, session=session, now=clock.now).secret
    with pytest.raises(services.ClockDrift) as refused:
        services.confirm_enrollment(
            user=user, session=session, code=_code_at(secret, clock.now, steps), now=clock.now
        )
    assert refused.value.offset_seconds == steps * 30
    assert not _is_active(user)


@pytest.mark.parametrize("steps", [-2, 2])
def test_clock_drift_message_names_the_offset_and_the_server_time(clock, in_sudo, user, steps):
    secret = _secret(in_sudo.get(ENABLE_URL))
    response = in_sudo.post(ENABLE_URL, {"code": _code_at(secret, clock.now, steps)})
    assert response.status_code == 200
    text = html.unescape(_text(response))
    assert CLOCK_MESSAGE in text
    assert "The server's time is 09:26:45 UTC" in text
    assert not _is_active(user)


def test_after_the_clock_message_check_accepts_the_corrected_code(clock, in_sudo, user):
    secret = _secret(in_sudo.get(ENABLE_URL))
    in_sudo.post(ENABLE_URL, {"code": _code_at(secret, clock.now, 3)})  # phone 90 s fast
    response = in_sudo.post(ENABLE_URL, {"code": _code_at(secret, clock.now)})  # fixed
    assert response.status_code == 302
    assert _is_active(user)


def test_a_code_revealed_as_ahead_at_check_is_burnt_for_later(clock, user):
    session: dict = {}
    secret = services.begin_enrollment(user=user, session=session, now=clock.now).secret
    ahead = _code_at(secret, clock.now, 3)
    with pytest.raises(services.ClockDrift):
        services.confirm_enrollment(user=user, session=session, code=ahead, now=clock.now)
    services.confirm_enrollment(
        user=user, session=session, code=_code_at(secret, clock.now), now=clock.now
    )
    later = clock.now + timedelta(seconds=90)  # the revealed code's own time
    with pytest.raises(services.CodeReplayed):
        services.verify_code(user=user, code=ahead, now=later)
    services.verify_code(
        user=user, code=_code_at(secret, clock.now, 1), now=clock.now + timedelta(seconds=30)
    )


def test_enrollment_code_cannot_be_used_again(clock, user):
    session: dict = {}
    secret = services.begin_enrollment(user=user, session=session, now=clock.now).secret
    code = _code_at(secret, clock.now)
    services.confirm_enrollment(user=user, session=session, code=code, now=clock.now)
    # The same code a few seconds later, at the login step: its time step is burnt.
    with pytest.raises(services.CodeReplayed):
        services.verify_code(user=user, code=code, now=clock.now + timedelta(seconds=5))


def test_enrollment_code_is_refused_at_the_login_page(clock, client, user):
    session: dict = {}
    secret = services.begin_enrollment(user=user, session=session, now=clock.now).secret
    code = _code_at(secret, clock.now)
    services.confirm_enrollment(user=user, session=session, code=code, now=clock.now)

    client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    response = client.post(LOGIN_CODE_URL, {"code": code})

    assert response.status_code == 200
    assert "already been used" in _text(response)
    assert "_auth_user_id" not in client.session


def test_wrong_code_keeps_the_dialog_open_with_a_message(clock, in_sudo, user, wrong_code):
    secret = _secret(in_sudo.get(ENABLE_URL))
    wrong = wrong_code(secret, at=clock.now)
    response = in_sudo.post(ENABLE_URL, {"code": wrong})
    assert response.status_code == 200
    assert "That code is not right." in _text(response)
    assert _secret(response) == secret  # same dialog, same key: the user just retypes
    assert not _is_active(user)


@pytest.mark.parametrize("typed", ["12345", "1234567", "abcdef", ""])
def test_malformed_code_is_explained_not_checked(in_sudo, user, typed):
    response = in_sudo.post(ENABLE_URL, {"code": typed})
    assert response.status_code == 200
    assert 'class="field-errors"' in _text(response)
    assert TOTPDevice.objects.get(user=user).failure_count == 0


def test_code_typed_with_a_space_enables_two_factor(clock, in_sudo, user):
    code = _code_at(_secret(in_sudo.get(ENABLE_URL)), clock.now)
    response = in_sudo.post(ENABLE_URL, {"code": f" {code[:3]} {code[3:]} "})
    assert response.status_code == 302
    assert _is_active(user)


def test_htmx_request_gets_a_dialog_fragment(in_sudo):
    response = in_sudo.get(ENABLE_URL, HTTP_HX_REQUEST="true")
    text = _text(response)
    assert response.status_code == 200
    assert "<dialog" in text
    assert "<html" not in text
    assert _qr_text(response) == _otpauth_link(response)


def test_htmx_wrong_code_rerenders_the_dialog_with_status_200(in_sudo, wrong_code):
    # htmx 2 does not swap a 4xx response: the error must come back as a 200.
    wrong = wrong_code(_secret(in_sudo.get(ENABLE_URL)))
    response = in_sudo.post(ENABLE_URL, {"code": wrong}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<html" not in _text(response)
    assert 'class="field-errors"' in _text(response)


def test_setup_ends_with_five_backup_codes_in_the_dialog(clock, in_sudo, user):
    code = _code_at(_secret(in_sudo.get(ENABLE_URL)), clock.now)
    response = in_sudo.post(ENABLE_URL, {"code": code}, HTTP_HX_REQUEST="true", follow=True)
    assert response.redirect_chain == [(NEW_CODES_URL, 302)]
    page = _text(response)
    assert "<dialog" in page and "<html" not in page
    assert "Two-factor authentication is on" in page
    assert "I have stored these codes" in page
    codes = re.findall(r"<li><code>([^<]+)</code></li>", page)
    assert len(codes) == 5
    assert BackupCode.objects.filter(user=user, used_at__isnull=True).count() == 5
    assert _is_active(user)


def test_the_codes_of_setup_are_shown_once(clock, in_sudo, user):
    code = _code_at(_secret(in_sudo.get(ENABLE_URL)), clock.now)
    first = _text(in_sudo.post(ENABLE_URL, {"code": code}, follow=True))
    codes = re.findall(r"<li><code>([^<]+)</code></li>", first)
    again = _text(in_sudo.get(NEW_CODES_URL))  # a reload, or the back button
    assert not any(c in again for c in codes)
    assert "shown once and cannot be shown again" in again
    assert BackupCode.objects.filter(user=user).count() == 5  # no new set was made


def test_enable_when_already_active_hands_out_no_new_secret(active_client, clock, user):
    client, secret = active_client
    proof = {"sudo": "1", "password": PASSWORD, "code": _code_at(secret, clock.now)}
    assert client.post(ENABLE_URL, proof).status_code == 302

    response = client.get(ENABLE_URL)

    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    assert TOTPDevice.objects.get(user=user).secret == secret


# --- Disable --------------------------------------------------------------------------------
@pytest.fixture
def active_client(clock, client, user, enrolled):
    """2FA switched on five minutes ago, logged in since, not in sudo mode."""
    secret = enrolled(user, at=clock.now - timedelta(minutes=5))
    client.force_login(user)
    return client, secret


def test_disable_asks_for_password_and_code(active_client):
    client, _ = active_client
    text = _text(client.get(DISABLE_URL))
    assert "Confirm it's you" in text
    assert 'name="password"' in text
    assert 'name="code"' in text


def test_disable_refuses_a_wrong_password_even_with_a_right_code(active_client, clock, user):
    client, secret = active_client
    response = client.post(
        DISABLE_URL,
        {"sudo": "1", "password": "not my password", "code": _code_at(secret, clock.now)},
    )
    assert response.status_code == 200
    assert "That password is not right." in _text(response)
    client.post(DISABLE_URL, {"confirm": "1"})
    assert _is_active(user)


def test_disable_refuses_a_wrong_code_even_with_the_password(
    active_client, clock, user, wrong_code
):
    client, secret = active_client
    wrong = wrong_code(secret, at=clock.now)
    response = client.post(DISABLE_URL, {"sudo": "1", "password": PASSWORD, "code": wrong})
    assert response.status_code == 200
    assert "That code is not right." in _text(response)
    client.post(DISABLE_URL, {"confirm": "1"})
    assert _is_active(user)


def test_disable_refuses_the_password_alone(active_client, user):
    client, _ = active_client
    response = client.post(DISABLE_URL, {"sudo": "1", "password": PASSWORD, "code": ""})
    assert response.status_code == 200
    assert 'class="field-errors"' in _text(response)
    client.post(DISABLE_URL, {"confirm": "1"})
    assert _is_active(user)


def _disable(client, *, code: str) -> None:
    proved = client.post(DISABLE_URL, {"sudo": "1", "password": PASSWORD, "code": code})
    assert proved.status_code == 302, _text(proved)
    confirm_page = client.get(DISABLE_URL)
    assert "Disable two-factor authentication?" in _text(confirm_page)
    done = client.post(DISABLE_URL, {"confirm": "1"})
    assert done.status_code == 302
    assert done["Location"] == PROFILE_URL


def test_disable_with_password_and_code_turns_two_factor_off(active_client, clock, user):
    client, secret = active_client
    _disable(client, code=_code_at(secret, clock.now))
    assert not TOTPDevice.objects.filter(user=user).exists()
    profile = _text(client.get(PROFILE_URL))
    assert "Enable 2FA" in profile
    assert "Not activated" in profile
    assert "Disable 2FA" not in profile


def test_disable_accepts_a_backup_code_as_proof(active_client, user):
    client, _ = active_client
    codes = services.regenerate_backup_codes(user=user)
    _disable(client, code=codes[0].upper())
    assert not _is_active(user)


def test_disable_deletes_the_backup_codes(active_client, clock, user):
    client, secret = active_client
    services.regenerate_backup_codes(user=user)
    _disable(client, code=_code_at(secret, clock.now))
    assert not BackupCode.objects.filter(user=user).exists()


def test_after_disabling_login_needs_only_the_password(active_client, clock, client, user):
    _, secret = active_client
    _disable(client, code=_code_at(secret, clock.now))
    client.logout()
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response["Location"] == PROFILE_URL


# --- Nothing secret in the logs; signals ------------------------------------------------------
# Put on every record by the logging machinery and the query timer: clock readings, thread and
# process ids, line numbers. Numbers in which any six digits turn up by chance, and nothing
# from a request travels in them, so they are left out of what is searched.
LOG_MACHINERY = {*vars(logging.makeLogRecord({})), "message", "asctime", "duration"}


def _log_text(record: logging.LogRecord) -> str:
    """What a handler could write out: the message, every `extra=` value, the traceback."""
    carried = {key: value for key, value in vars(record).items() if key not in LOG_MACHINERY}
    traceback = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return f"{record.getMessage()} {carried!r} {traceback}"


def test_no_secret_or_code_reaches_a_log_record(clock, client, user, caplog, wrong_code):
    # On its own this flow logs nothing at all (no warning, no error), so a leak could not
    # show. Django's query log is where one would: at DEBUG (its default config stops
    # django.* below INFO), with every statement and its parameters, as under DEBUG=True.
    # CaptureQueriesContext turns that log on without DEBUG's other effects.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    with CaptureQueriesContext(connection):
        client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
        client.post(ENABLE_URL, {"sudo": "1", "password": PASSWORD})
        page = client.get(ENABLE_URL)
        secret = _secret(page)
        codes = [_code_at(secret, clock.now)]
        client.post(ENABLE_URL, {"code": wrong_code(secret)})  # a refusal is logged too
        client.post(ENABLE_URL, {"code": codes[0]})
        assert _is_active(user)
        client.post("/accounts/logout/")
        clock.advance(seconds=60)
        codes.append(_code_at(secret, clock.now))
        client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
        assert client.post(LOGIN_CODE_URL, {"code": codes[1]}).status_code == 302
    assert "_auth_user_id" in client.session

    # Watching something: the writes of the row that holds the secret were logged (stored at
    # the dialog, its step burnt at the login), so a plaintext secret there would show.
    device_table = TOTPDevice._meta.db_table
    queries = [r.getMessage() for r in caplog.records if r.name == "django.db.backends"]
    assert any("INSERT INTO" in query and device_table in query for query in queries)
    assert any("UPDATE" in query and device_table in query for query in queries)
    logged = "\n".join(_log_text(record) for record in caplog.records)
    for needle in (secret, secret.lower(), _grouped_key(page), *codes, PASSWORD):
        assert needle not in logged


def test_no_secret_or_code_reaches_an_email(
    clock, client, user, mailoutbox, django_capture_on_commit_callbacks
):
    # The security e-mails go out on commit: run those callbacks, or the outbox stays
    # empty and the test proves nothing (hence the check that mail was sent at all).
    with django_capture_on_commit_callbacks(execute=True):
        client.force_login(user)
        client.post(ENABLE_URL, {"sudo": "1", "password": PASSWORD})
        secret = _secret(client.get(ENABLE_URL))
        enable_code = _code_at(secret, clock.now)
        assert client.post(ENABLE_URL, {"code": enable_code}).status_code == 302
        # Still in sudo mode from the password a minute ago: no second proof asked.
        client.post("/2fa/backup-codes/", {"generate": "1"})
        generated = client.get("/2fa/backup-codes/new/")
        backup_codes = re.findall(r"<li><code>([^<]+)</code></li>", _text(generated))
        client.post("/accounts/logout/")
        client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
        assert client.post(LOGIN_CODE_URL, {"code": backup_codes[0]}).status_code == 302

    assert mailoutbox, "no security e-mail was sent, so there was nothing to check"
    needles = (secret, otp.group_secret(secret), enable_code, *backup_codes, PASSWORD)
    for message in mailoutbox:
        bodies = [message.subject, message.body]
        bodies += [content for content, _ in getattr(message, "alternatives", [])]
        text = "\n".join(bodies)
        for needle in needles:
            assert needle not in text


def test_enable_and_disable_each_send_their_signal_once(
    clock, user, django_capture_on_commit_callbacks
):
    received = []
    session: dict = {}

    def on_enabled(sender, user, **kwargs):
        received.append(("enabled", user.pk))

    def on_disabled(sender, user, **kwargs):
        received.append(("disabled", user.pk))

    def on_reset(sender, user, **kwargs):
        received.append(("reset", user.pk))

    signals.two_factor_enabled.connect(on_enabled)
    signals.two_factor_disabled.connect(on_disabled)
    signals.two_factor_reset.connect(on_reset)
    try:
        # Capturing on-commit callbacks keeps the test right whether the signals are sent
        # inside the transaction or after it commits.
        with django_capture_on_commit_callbacks(execute=True):
            secret = services.begin_enrollment(user=user, session=session, now=clock.now).secret
            services.confirm_enrollment(
                user=user, session=session, code=_code_at(secret, clock.now), now=clock.now
            )
        with django_capture_on_commit_callbacks(execute=True):
            services.disable_two_factor(user=user)
            services.disable_two_factor(user=user)  # already off: nothing to announce
    finally:
        signals.two_factor_enabled.disconnect(on_enabled)
        signals.two_factor_disabled.disconnect(on_disabled)
        signals.two_factor_reset.disconnect(on_reset)

    # Turned off by the user: "disabled", never "reset" (that signal is support's).
    assert received == [("enabled", user.pk), ("disabled", user.pk)]


# --- A slow setup ------------------------------------------------------------------------
def test_when_confirm_its_you_lapses_at_check_the_typed_code_is_kept(clock, in_sudo, user):
    clock.advance(minutes=5)  # confirmed it's you, then read about authenticator apps
    secret = _secret(in_sudo.get(ENABLE_URL))
    clock.advance(minutes=5, seconds=10)  # the secret is still good (10 minutes from now)...
    code = _code_at(secret, clock.now)  # ...but "confirm it's you" lapsed while typing
    asked = in_sudo.post(ENABLE_URL, {"code": code})
    page = html.unescape(_text(asked))
    assert "more than 10 minutes since you last confirmed it's you" in page
    assert "What you entered is kept" in page
    assert f'name="resume-code" value="{code}"' in page
    # Its history entry stays a post (the page's script turns only the others into their
    # address): a Reload sends the kept code again rather than opening the page empty.
    assert "data-post-result" not in page
    done = in_sudo.post(
        ENABLE_URL, {"sudo": "1", "password": PASSWORD, "resume-code": code}, follow=True
    )
    assert _is_active(user)  # the kept code went through: nothing typed twice
    assert "Two-factor authentication is on" in _text(done)


def test_a_wrong_password_keeps_the_code_for_the_next_try(clock, in_sudo, user):
    secret = _secret(in_sudo.get(ENABLE_URL))
    clock.advance(minutes=11)
    code = _code_at(secret, clock.now)
    again = in_sudo.post(ENABLE_URL, {"sudo": "1", "password": "nope", "resume-code": code})
    assert f'name="resume-code" value="{code}"' in _text(again)
    assert not _is_active(user)


def test_an_expired_setup_says_to_delete_the_entry_and_shows_a_new_qr_code(clock, in_sudo, user):
    first = _secret(in_sudo.get(ENABLE_URL))
    clock.advance(minutes=10, seconds=30)
    in_sudo.post(ENABLE_URL, {"sudo": "1", "password": PASSWORD})
    refused = in_sudo.post(ENABLE_URL, {"code": _code_at(first, clock.now)})
    page = html.unescape(_text(refused))
    assert "This setup has expired" in page and "Delete the entry you just added" in page
    second = _secret(refused)
    assert second != first
    assert f"secret={second}" in _qr_text(refused)  # the new QR code is the new secret
    assert not _is_active(user)
