"""Backup codes: five single-use codes, shown once, stored only as salted hashes."""

import base64
import hashlib
import hmac
import re
import threading
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import unquote

import pyotp
import pytest
from django.contrib.auth.hashers import MD5PasswordHasher, get_hasher
from django.db import connection

from tests.conftest import PASSWORD, FrozenClock
from twofactor import crypto, otp, services
from twofactor.models import BackupCode

NEW_CODES_URL = "/2fa/backup-codes/new/"
BACKUP_URL = "/2fa/backup-codes/"
PROFILE_URL = "/accounts/profile/"
ONE_CODE = rf"[{otp.BACKUP_CODE_ALPHABET}]{{5}}-[{otp.BACKUP_CODE_ALPHABET}]{{5}}"
CODE_FORMAT = re.compile(rf"^{ONE_CODE}$")


@pytest.fixture
def clock(freeze_clock) -> FrozenClock:
    return freeze_clock(datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC))


@pytest.fixture
def active_user(clock, user, enrolled):
    """(user, secret): 2FA switched on five minutes ago, no backup codes yet."""
    return user, enrolled(user, at=clock.now - timedelta(minutes=5))


@pytest.fixture
def active_client(client, active_user):
    client.force_login(active_user[0])
    return client


@pytest.fixture
def in_sudo(client, active_user, log_in_with_sudo):
    """Logged in, "confirm it's you" answered a moment ago (and no app code spent on it)."""
    return log_in_with_sudo(client, active_user[0])


def _text(response) -> str:
    return response.content.decode()


def _codes_on(response) -> list[str]:
    return re.findall(r"<li><code>([^<]+)</code></li>", _text(response))


def _generate(client, **extra):
    """POST "Generate backup code", then follow the redirect to the page that shows them."""
    response = client.post(BACKUP_URL, {"generate": "1"}, **extra)
    assert (response.status_code, response["Location"]) == (302, NEW_CODES_URL)
    return client.get(NEW_CODES_URL, **extra)


def _works(user, code: str, *, now: datetime) -> bool:
    try:
        services.use_backup_code(user=user, code=code, now=now)
    except services.InvalidCode:
        return False
    return True


# --- Generating, through the page -------------------------------------------------------------
def test_generate_asks_for_password_and_code(active_client, active_user):
    text = _text(active_client.get(BACKUP_URL))
    assert "Confirm it's you" in text
    assert 'name="password"' in text
    assert 'name="code"' in text
    assert not BackupCode.objects.filter(user=active_user[0]).exists()


def test_generate_refuses_the_password_alone(active_client, active_user):
    response = active_client.post(BACKUP_URL, {"sudo": "1", "password": PASSWORD})
    assert response.status_code == 200
    assert "Confirm it's you" in _text(response)
    assert active_client.post(BACKUP_URL, {"generate": "1"}).status_code == 200  # asks again
    assert not BackupCode.objects.filter(user=active_user[0]).exists()


def test_generate_opens_after_the_password_and_a_code(active_client, active_user, clock):
    _, secret = active_user
    proof = {"sudo": "1", "password": PASSWORD, "code": pyotp.TOTP(secret).at(clock.now)}
    assert active_client.post(BACKUP_URL, proof).status_code == 302


def test_page_shows_five_distinct_codes_in_the_format(in_sudo):
    codes = _codes_on(_generate(in_sudo))
    assert len(codes) == 5
    assert len(set(codes)) == 5
    assert all(CODE_FORMAT.match(code) for code in codes), codes


def test_codes_page_is_not_stored_by_the_browser(in_sudo):
    assert "no-store" in _generate(in_sudo)["Cache-Control"]


def test_codes_shown_are_the_ones_that_work(in_sudo, active_user, clock):
    user, _ = active_user
    codes = _codes_on(_generate(in_sudo))
    assert [_works(user, code, now=clock.now) for code in codes] == [True] * 5


def test_codes_are_never_shown_again(in_sudo):
    codes = _codes_on(_generate(in_sudo))
    again = _text(in_sudo.get(BACKUP_URL))
    assert not any(code in again for code in codes)


def test_generating_again_warns_that_old_codes_stop_working(in_sudo):
    first_time = _text(in_sudo.get(BACKUP_URL))
    assert "invalidates" not in first_time
    _generate(in_sudo)
    assert "invalidates" in _text(in_sudo.get(BACKUP_URL))


def test_download_link_holds_exactly_the_codes_shown(in_sudo):
    response = _generate(in_sudo)
    href = re.search(r'href="data:text/plain;charset=utf-8,([^"]*)"[^>]*download=', _text(response))
    assert href, "no data: download link"
    content = unquote(href.group(1))
    found = re.findall(
        rf"[{otp.BACKUP_CODE_ALPHABET}]{{5}}-[{otp.BACKUP_CODE_ALPHABET}]{{5}}", content
    )
    assert found == _codes_on(response)
    assert len(found) == 5


def test_htmx_generate_returns_the_codes_in_a_dialog(in_sudo):
    response = _generate(in_sudo, HTTP_HX_REQUEST="true")
    assert "<dialog" in _text(response)
    assert "<html" not in _text(response)
    assert len(_codes_on(response)) == 5


def _salt(encoded: str) -> str:
    # "bc1$scrypt$<cost>$<key id>$<salt>$<digest>" (twofactor/otp.py).
    version, _algorithm, _cost, _key_id, salt, _digest = encoded.split("$")
    assert version == otp.BACKUP_HASH_VERSION
    return salt


def _old_format_set(user, hasher=None) -> list[str]:
    """A set stored as before issue 20: Django's password hasher, one salt for the set."""
    hasher = hasher or get_hasher("default")
    codes, salt = otp.generate_backup_codes(), hasher.salt()
    BackupCode.objects.bulk_create(
        [BackupCode(user=user, code_hash=hasher.encode(code, salt)) for code in codes]
    )
    return codes


# --- Storage ------------------------------------------------------------------------------------
def test_database_holds_no_code_in_any_column(active_user):
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {BackupCode._meta.db_table}")  # noqa: S608 - our own table
        rows = cursor.fetchall()
    assert len(rows) == 5
    dumped = " ".join(str(value) for row in rows for value in row).lower()
    for code in codes:
        for form in (code, code.replace("-", ""), *code.split("-")):
            assert form not in dumped


def test_a_set_shares_one_salt_and_two_users_sets_differ(active_user, make_user, enrolled, clock):
    ann, _ = active_user
    bob = make_user("bob@example.com")
    enrolled(bob, at=clock.now - timedelta(minutes=5))
    services.regenerate_backup_codes(user=ann)
    services.regenerate_backup_codes(user=bob)

    def salts(user) -> set[str]:
        hashes = BackupCode.objects.filter(user=user).values_list("code_hash", flat=True)
        return {_salt(h) for h in hashes}

    assert len(salts(ann)) == 1
    assert len(salts(bob)) == 1
    assert salts(ann) != salts(bob)


def test_regenerating_uses_a_new_salt(active_user):
    user, _ = active_user
    services.regenerate_backup_codes(user=user)
    first = BackupCode.objects.filter(user=user).values_list("code_hash", flat=True).first()
    services.regenerate_backup_codes(user=user)
    second = BackupCode.objects.filter(user=user).values_list("code_hash", flat=True).first()
    assert _salt(first) != _salt(second)


# --- Keyed: the database alone tests no guess ------------------------------------------------
KEY_A = "backup-code-key-a-" + "a" * 32
KEY_B = "backup-code-key-b-" + "b" * 32


@pytest.fixture
def keys(settings):
    """keys(*configured): set TWOFACTOR_BACKUP_CODE_KEYS (newest first) and forget the cached
    keys, as a deploy with a new environment would."""

    def configure(*configured: str) -> None:
        settings.TWOFACTOR_BACKUP_CODE_KEYS = list(configured)
        crypto.reset_keys()

    yield configure
    crypto.reset_keys()


def _stored(user) -> list[str]:
    return list(
        BackupCode.objects.filter(user=user).order_by("pk").values_list("code_hash", flat=True)
    )


def test_stored_form_names_its_version_cost_key_and_salt(active_user, keys):
    keys(KEY_A)
    user, _ = active_user
    services.regenerate_backup_codes(user=user)
    key_id = otp.BackupCodeKey(KEY_A.encode()).id
    for stored in _stored(user):
        version, algorithm, cost, stored_key_id, salt, digest = stored.split("$")
        assert (version, algorithm, cost) == ("bc1", "scrypt", "n=2048,r=8,p=1")
        assert (stored_key_id, len(salt), len(digest)) == (key_id, 22, 43)


def test_stored_value_holds_only_a_keyed_digest_not_the_derivation(active_user, keys):
    keys(KEY_A)
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)  # in the order they are stored
    for code, value in zip(codes, _stored(user), strict=True):
        derived = otp.derive_backup_code(code, salt=_salt(value))
        spellings = (derived.hex(), base64.b64encode(derived), base64.urlsafe_b64encode(derived))
        for form in spellings:
            text = form if isinstance(form, str) else form.decode().rstrip("=")
            assert text not in value
        # What is there is the HMAC of it with the server key.
        keyed = hmac.new(KEY_A.encode(), derived, hashlib.sha256).digest()
        assert value.endswith("$" + base64.urlsafe_b64encode(keyed).decode().rstrip("="))


def test_with_another_key_a_right_code_no_longer_works(active_user, clock, keys):
    # Someone with the database but not the key: the stored hashes test nothing they try.
    keys(KEY_A)
    user, _ = active_user
    code = services.regenerate_backup_codes(user=user)[0]
    keys(KEY_B)
    assert not _works(user, code, now=clock.now)
    keys(KEY_A)
    assert _works(user, code, now=clock.now)


def test_a_rotated_key_still_checks_sets_made_with_it_and_new_sets_use_the_new_key(
    active_user, clock, keys
):
    keys(KEY_A)
    user, _ = active_user
    old = services.regenerate_backup_codes(user=user)
    keys(KEY_B, KEY_A)  # the new key first, the old one kept
    assert _works(user, old[0], now=clock.now)
    new = services.regenerate_backup_codes(user=user)
    assert {value.split("$")[3] for value in _stored(user)} == {
        otp.BackupCodeKey(KEY_B.encode()).id
    }
    keys(KEY_B)  # the old key dropped: the new set does not need it
    assert _works(user, new[0], now=clock.now)


def test_default_key_comes_from_secret_key_and_its_fallbacks(active_user, clock, keys, settings):
    keys()  # none configured
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "n" * 40
    crypto.reset_keys()
    assert not _works(user, codes[0], now=clock.now)  # a new SECRET_KEY alone: a new key
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    crypto.reset_keys()
    assert _works(user, codes[0], now=clock.now)  # rotated Django's way: the set still works


def test_a_locked_account_costs_no_derivation_for_a_backup_code(active_user, clock):
    user, secret = active_user
    codes = services.regenerate_backup_codes(user=user)
    for _ in range(services.MAX_FAILURES):
        with pytest.raises(services.TwoFactorError):
            services.use_backup_code(user=user, code="aaaaa-aaaaa", now=clock.now)
    with mock.patch("hashlib.scrypt", wraps=hashlib.scrypt) as scrypt:
        with pytest.raises(services.AccountLocked):
            services.verify_code(user=user, code=codes[0], now=clock.now)
    assert scrypt.call_count == 0


# --- Sets stored before issue 20 keep working until the next set ---------------------------------
@pytest.mark.parametrize("hasher", ["md5", "pbkdf2_sha256"])
def test_an_old_format_set_works_once_per_code(active_user, clock, settings, hasher):
    user, _ = active_user
    # Production's PBKDF2 (at a test's iteration count): the encoding sets were stored in.
    settings.PASSWORD_HASHERS = [
        *settings.PASSWORD_HASHERS,
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    old = get_hasher(hasher)
    if hasher == "pbkdf2_sha256":
        old.iterations = 1000
    codes = _old_format_set(user, old)
    assert [services.use_backup_code(user=user, code=c, now=clock.now) for c in codes[:2]] == [4, 3]
    assert not _works(user, codes[0], now=clock.now)
    assert not _works(user, "aaaaa-aaaaa", now=clock.now)


def test_the_next_set_replaces_an_old_format_set(active_user, clock):
    user, _ = active_user
    old = _old_format_set(user)
    new = services.regenerate_backup_codes(user=user)
    assert all(value.startswith("bc1$") for value in _stored(user))
    assert not _works(user, old[0], now=clock.now)
    assert _works(user, new[0], now=clock.now)


# --- Using a code -----------------------------------------------------------------------------
def test_a_code_works_once(active_user, clock):
    user, _ = active_user
    code = services.regenerate_backup_codes(user=user)[0]
    assert services.use_backup_code(user=user, code=code, now=clock.now) == 4
    with pytest.raises(services.InvalidCode):
        services.use_backup_code(user=user, code=code, now=clock.now)


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda code: code.upper(), id="upper-case"),
        pytest.param(lambda code: f" {code[:3]} {code[3:]} ", id="spaces"),
        pytest.param(lambda code: code.replace("-", ""), id="no-dash"),
        pytest.param(lambda code: code.replace("-", "--"), id="extra-dash"),
    ],
)
def test_a_code_typed_loosely_works_once(active_user, clock, typed):
    user, _ = active_user
    code = services.regenerate_backup_codes(user=user)[0]
    assert _works(user, typed(code), now=clock.now)
    # The normalised form is what was spent: neither spelling works a second time.
    assert not _works(user, typed(code), now=clock.now)
    assert not _works(user, code, now=clock.now)


def test_regenerating_invalidates_all_old_codes_and_the_new_ones_work(active_user, clock):
    user, _ = active_user
    old = services.regenerate_backup_codes(user=user)
    new = services.regenerate_backup_codes(user=user)
    assert not set(old) & set(new)
    # Alternating keeps the throttle out of it: each success resets the failure count.
    for old_code, new_code in zip(old, new, strict=True):
        assert not _works(user, old_code, now=clock.now)
        assert _works(user, new_code, now=clock.now)


def test_using_a_code_announces_how_many_remain(active_user, clock):
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)
    remaining = [services.use_backup_code(user=user, code=c, now=clock.now) for c in codes]
    assert remaining == [4, 3, 2, 1, 0]


def test_an_app_code_is_not_a_backup_code(active_user, clock):
    user, secret = active_user
    services.regenerate_backup_codes(user=user)
    with pytest.raises(services.InvalidCode):
        services.use_backup_code(user=user, code=pyotp.TOTP(secret).at(clock.now), now=clock.now)


@pytest.mark.parametrize("which", ["right", "wrong", "already-used"])
def test_checking_a_code_costs_exactly_one_key_derivation(active_user, clock, which):
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)
    services.use_backup_code(user=user, code=codes[1], now=clock.now)
    typed = {"right": codes[0], "wrong": "aaaaa-aaaaa", "already-used": codes[1]}[which]
    assert typed not in codes[2:]

    # Counting scrypt calls counts key derivations. Five derivations per attempt (one per
    # stored code) would show up as 5 here.
    with mock.patch("hashlib.scrypt", wraps=hashlib.scrypt) as scrypt:
        _works(user, typed, now=clock.now)
    assert scrypt.call_count == 1


@pytest.mark.parametrize("which", ["right", "wrong", "already-used"])
def test_checking_an_old_format_code_costs_exactly_one_key_derivation(active_user, clock, which):
    user, _ = active_user
    codes = _old_format_set(user)
    services.use_backup_code(user=user, code=codes[1], now=clock.now)
    typed = {"right": codes[0], "wrong": "aaaaa-aaaaa", "already-used": codes[1]}[which]
    assert typed not in codes[2:]

    # Test settings hash with MD5; counting its encode() counts the old format's derivations.
    with (
        mock.patch.object(
            MD5PasswordHasher, "encode", autospec=True, side_effect=MD5PasswordHasher.encode
        ) as encode,
        mock.patch("hashlib.scrypt", wraps=hashlib.scrypt) as scrypt,
    ):
        _works(user, typed, now=clock.now)
    assert (encode.call_count, scrypt.call_count) == (1, 0)


# --- My profile -------------------------------------------------------------------------------
def _profile(client) -> str:
    return " ".join(_text(client.get(PROFILE_URL)).split())


def test_profile_shows_how_many_unused_codes_remain(active_client, active_user, clock):
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)
    services.use_backup_code(user=user, code=codes[0], now=clock.now)
    text = _profile(active_client)
    assert "4 unused" in text
    assert "backup code left" not in text
    assert "no unused backup codes" not in text


def test_profile_warns_when_one_code_is_left(active_client, active_user, clock):
    user, _ = active_user
    codes = services.regenerate_backup_codes(user=user)
    for code in codes[:4]:
        services.use_backup_code(user=user, code=code, now=clock.now)
    text = _profile(active_client)
    assert "1 unused" in text
    assert "You have only one backup code left." in text


def test_profile_warns_when_no_code_is_left(active_client, active_user, clock):
    user, _ = active_user
    for code in services.regenerate_backup_codes(user=user):
        services.use_backup_code(user=user, code=code, now=clock.now)
    text = _profile(active_client)
    assert "0 unused" in text
    assert "You have no unused backup codes." in text


# --- Concurrency (PostgreSQL: SQLite serialises every write, so there is no race to lose) ------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_uses_of_one_code_succeed_once(user_with_totp):
    user, _ = user_with_totp
    code = services.regenerate_backup_codes(user=user)[0]
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    outcomes_lock = threading.Lock()

    def attempt() -> None:
        try:
            barrier.wait(timeout=10)
            try:
                services.use_backup_code(user=user, code=code)
                outcome = "accepted"
            except services.TwoFactorError as error:
                outcome = type(error).__name__
            with outcomes_lock:
                outcomes.append(outcome)
        finally:
            connection.close()  # each thread has its own connection; leave none open

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(outcomes) == 10
    assert outcomes.count("accepted") == 1
    assert BackupCode.objects.filter(user=user, used_at__isnull=False).count() == 1


def test_two_pages_opened_at_once_show_new_codes_once(in_sudo, active_user):
    from django.contrib.sessions.backends.db import SessionStore

    in_sudo.post(BACKUP_URL, {"generate": "1"})
    # Two requests that loaded the same session before either saved it.
    key = in_sudo.session.session_key
    first, second = SessionStore(session_key=key), SessionStore(session_key=key)
    user = active_user[0]
    assert services.take_new_backup_codes(user=user, session=first) is not None
    assert services.take_new_backup_codes(user=user, session=second) is None
