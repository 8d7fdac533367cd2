"""Secrets at rest: encrypted in the row, the keys can rotate without downtime, and the deploy
check warns when no key of their own is set."""

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.checks import Warning
from django.core.management import call_command
from django.db import connection

from twofactor import crypto, services
from twofactor.checks import check_encryption_keys
from twofactor.models import TOTPDevice

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _forget_cached_keys():
    # The MultiFernet is cached per key tuple; clearing it keeps one test's keys out of the next.
    crypto.reset_keys()
    yield
    crypto.reset_keys()


def _raw_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TOTPDevice._meta.db_table}")  # noqa: S608 - our own table
        return cursor.fetchall()


def _raw_secret_of(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT encrypted_secret FROM {TOTPDevice._meta.db_table} WHERE user_id = %s",  # noqa: S608
            [user.pk],
        )
        return cursor.fetchone()[0]


def test_database_row_holds_no_base32_secret(user, enrolled):
    secret = enrolled(user)
    rows = _raw_rows()
    assert len(rows) == 1
    dumped = " ".join(str(value) for value in rows[0])
    # Neither the secret nor any 8-character piece of it (as an app or the grouped key shows it).
    pieces = {secret[i : i + 8] for i in range(0, len(secret), 8)}
    for text in (dumped, dumped.upper(), dumped.replace(" ", "")):
        assert secret not in text
        assert not any(piece in text for piece in pieces)


def test_stored_ciphertext_is_a_fernet_token_of_the_secret(user, settings):
    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY]
    secret = services.begin_enrollment(user=user, session={}).secret
    assert Fernet(NEW_KEY).decrypt(_raw_secret_of(user).encode()).decode() == secret


def test_old_ciphertext_still_decrypts_after_a_new_key_is_put_first(user, settings):
    settings.TWOFACTOR_ENCRYPTION_KEYS = [OLD_KEY]
    secret = services.begin_enrollment(user=user, session={}).secret

    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert TOTPDevice.objects.get(user=user).secret == secret


def test_new_writes_use_the_new_key(make_user, settings):
    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    user = make_user("new@example.com")
    secret = services.begin_enrollment(user=user, session={}).secret

    token = _raw_secret_of(user).encode()
    assert Fernet(NEW_KEY).decrypt(token).decode() == secret
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY).decrypt(token)


def test_a_removed_key_no_longer_decrypts(user, settings):
    # The reason to rotate at all: once the old key is dropped, its ciphertext is dead.
    settings.TWOFACTOR_ENCRYPTION_KEYS = [OLD_KEY]
    services.begin_enrollment(user=user, session={})
    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(InvalidToken):
        TOTPDevice.objects.get(user=user).secret  # noqa: B018 - the property decrypts


def test_rotate_command_reencrypts_old_rows_with_the_new_key(make_user, settings):
    settings.TWOFACTOR_ENCRYPTION_KEYS = [OLD_KEY]
    users = [make_user(f"u{i}@example.com") for i in range(5)]
    secrets = {user.pk: services.begin_enrollment(user=user, session={}).secret for user in users}

    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out = io.StringIO()
    # A batch size smaller than the table exercises the batching (5 rows in 2 + 2 + 1).
    call_command("twofactor_rotate_keys", batch_size=2, stdout=out)

    assert out.getvalue().strip() == "Re-encrypted 5 TOTP secrets."
    for user in users:
        token = _raw_secret_of(user).encode()
        assert Fernet(NEW_KEY).decrypt(token).decode() == secrets[user.pk]
    # ...so the old key can now be removed from the settings.
    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY]
    assert {d.user_id: d.secret for d in TOTPDevice.objects.all()} == secrets


def test_rotate_command_keeps_the_replay_guard_and_throttle(user_with_totp, settings):
    user, _ = user_with_totp
    TOTPDevice.objects.filter(user=user).update(failure_count=3)
    before = TOTPDevice.objects.values("last_used_step", "failure_count", "confirmed_at").get()

    # The dev key (derived from SECRET_KEY) wrote the row; keep it as the old key.
    dev_key = crypto._derived_development_key(settings.SECRET_KEY).decode()
    settings.TWOFACTOR_ENCRYPTION_KEYS = [NEW_KEY, dev_key]
    call_command("twofactor_rotate_keys", stdout=io.StringIO())

    after = TOTPDevice.objects.values("last_used_step", "failure_count", "confirmed_at").get()
    assert after == before


def test_rotate_command_on_an_empty_table_says_so(db):
    out = io.StringIO()
    call_command("twofactor_rotate_keys", stdout=out)
    assert out.getvalue().strip() == "Re-encrypted 0 TOTP secrets."


def test_deploy_check_warns_without_encryption_keys(settings):
    settings.TWOFACTOR_ENCRYPTION_KEYS = []
    warnings = check_encryption_keys(None)
    assert [w.id for w in warnings] == ["twofactor.W001"]
    assert isinstance(warnings[0], Warning)
    settings.TWOFACTOR_ENCRYPTION_KEYS = ["a-key"]
    assert check_encryption_keys(None) == []


def test_a_key_that_is_no_fernet_key_is_an_error_of_every_check(settings):
    from cryptography.fernet import Fernet

    from twofactor.checks import check_encryption_keys_are_keys

    settings.TWOFACTOR_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "notakey"]
    errors = check_encryption_keys_are_keys(None)
    assert [(e.id, e.msg) for e in errors] == [
        ("twofactor.E001", "TWOFACTOR_ENCRYPTION_KEYS: key 2 is not a Fernet key.")
    ]
    settings.TWOFACTOR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert check_encryption_keys_are_keys(None) == []
