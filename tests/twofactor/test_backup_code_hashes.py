"""The stored form of backup codes (twofactor/otp.py alone, no database): an HMAC with a
server key over scrypt, one salt a set; what a hostile or corrupt row can and cannot do;
the keys' setting and its check."""

import hashlib
from unittest import mock

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher

from twofactor import crypto, otp
from twofactor.checks import check_backup_code_keys, check_backup_code_keys_set
from twofactor.conf import app_settings

KEY = otp.BackupCodeKey(b"k" * 32)
OTHER_KEY = otp.BackupCodeKey(b"o" * 32)


def _set(key: otp.BackupCodeKey = KEY) -> tuple[list[str], list[str]]:
    codes = otp.generate_backup_codes()
    salt = otp.new_backup_code_salt()
    return codes, [otp.hash_backup_code(code, salt=salt, key=key) for code in codes]


def test_each_code_of_a_set_matches_its_own_hash():
    codes, stored = _set()
    assert [otp.match_backup_code(code, stored, keys=[KEY]) for code in codes] == [0, 1, 2, 3, 4]


def test_a_code_of_another_set_does_not_match():
    _, stored = _set()
    others, _ = _set()
    assert all(otp.match_backup_code(code, stored, keys=[KEY]) is None for code in others)


def test_without_the_key_of_the_set_nothing_matches():
    codes, stored = _set(KEY)
    assert otp.match_backup_code(codes[0], stored, keys=[OTHER_KEY]) is None
    assert otp.match_backup_code(codes[0], stored, keys=[]) is None
    assert otp.match_backup_code(codes[0], stored, keys=[OTHER_KEY, KEY]) == 0


def test_a_key_that_only_claims_the_id_of_the_set_does_not_match():
    # The id only picks the key; the digest is what proves it (the stored id is public).
    codes, stored = _set(KEY)
    impostor = otp.BackupCodeKey(b"i" * 32)
    object.__setattr__(impostor, "id", KEY.id)
    assert otp.match_backup_code(codes[0], stored, keys=[impostor]) is None


def test_one_derivation_and_one_hmac_per_key_id_check_a_whole_set():
    codes, stored = _set()
    with (
        mock.patch("hashlib.scrypt", wraps=hashlib.scrypt) as scrypt,
        mock.patch("hmac.new", wraps=otp.hmac.new) as keyed,
    ):
        otp.match_backup_code(codes[4], stored, keys=[OTHER_KEY, KEY])
    assert (scrypt.call_count, keyed.call_count) == (1, 1)


def test_every_stored_hash_is_compared_even_after_a_match():
    codes, stored = _set()
    with mock.patch("hmac.compare_digest", wraps=otp.hmac.compare_digest) as compare:
        assert otp.match_backup_code(codes[0], stored, keys=[KEY]) == 0
    assert compare.call_count == 5  # no early exit: the time does not say which code it was


def test_a_set_made_with_a_cheaper_cost_is_checked_with_it():
    # Old sets keep their parameters when the default changes.
    cheap = otp.ScryptCost(n=2**4, r=8, p=1)
    salt = otp.new_backup_code_salt()
    stored = [otp.hash_backup_code("k7m3q-xr4ty", salt=salt, key=KEY, cost=cheap)]
    assert stored[0].split("$")[2] == "n=16,r=8,p=1"
    assert otp.match_backup_code("k7m3q-xr4ty", stored, keys=[KEY]) == 0


@pytest.mark.parametrize(
    "cost",
    ["n=1048576,r=8,p=1", "n=2048,r=64,p=1", "n=2048,r=8,p=16", "n=1000,r=8,p=1", "n=0,r=8,p=1"],
)
def test_a_row_asking_for_a_huge_or_invalid_cost_is_refused_without_deriving(cost):
    # A corrupt or hostile row must not make a check take seconds, eat memory, or raise.
    _, stored = _set()
    parts = stored[0].split("$")
    parts[2] = cost
    with mock.patch("hashlib.scrypt") as scrypt:
        assert otp.match_backup_code("k7m3q-xr4ty", ["$".join(parts)], keys=[KEY]) is None
    assert scrypt.call_count == 0


@pytest.mark.parametrize(
    "stored",
    ["", "bc1$", "bc1$scrypt$n=2048$x$y$z", "bc1$scrypt$garbage$id$salt$digest", "bc1$md5$a$b$c$d"],
)
def test_a_malformed_stored_hash_matches_nothing(stored):
    assert otp.match_backup_code("k7m3q-xr4ty", [stored], keys=[KEY]) is None


def test_an_old_format_hash_is_recognised_and_checked_with_its_hasher():
    hasher = MD5PasswordHasher()
    salt = hasher.salt()
    stored = [hasher.encode(code, salt) for code in ("k7m3q-xr4ty", "aaaaa-ccccc")]
    assert otp.is_legacy_backup_code_hash(stored[0])
    assert otp.match_backup_code("aaaaa-ccccc", stored, keys=[KEY]) == 1
    assert otp.match_backup_code("ccccc-aaaaa", stored, keys=[KEY]) is None


def test_a_key_shows_its_id_never_its_secret():
    key = otp.BackupCodeKey(b"a-very-secret-backup-code-key-0123456789")
    assert "secret" not in repr(key) and "0123456789" not in repr(key)
    assert key.id in repr(key) and len(key.id) == 8


# --- The setting -----------------------------------------------------------------------------
def test_keys_default_to_none_and_are_read_at_call_time(settings):
    del settings.TWOFACTOR_BACKUP_CODE_KEYS
    assert app_settings.BACKUP_CODE_KEYS == []
    settings.TWOFACTOR_BACKUP_CODE_KEYS = ["x" * 40]
    assert app_settings.BACKUP_CODE_KEYS == ["x" * 40]


def test_configured_keys_come_newest_first(settings):
    settings.TWOFACTOR_BACKUP_CODE_KEYS = ["n" * 40, "o" * 40]
    crypto.reset_keys()
    try:
        assert [key.secret for key in crypto.backup_code_keys()][:2] == [b"n" * 40, b"o" * 40]
    finally:
        crypto.reset_keys()


def test_sets_made_before_keys_were_configured_keep_working(settings):
    # Configuring keys on a running site: the sets made with the key derived from
    # SECRET_KEY still check (else every owner's right codes would be failures, then a lock).
    settings.TWOFACTOR_BACKUP_CODE_KEYS = []
    crypto.reset_keys()
    try:
        codes, stored = _set(crypto.backup_code_keys()[0])
        settings.TWOFACTOR_BACKUP_CODE_KEYS = ["n" * 40]
        crypto.reset_keys()
        keys = crypto.backup_code_keys()
        assert keys[0].secret == b"n" * 40  # new sets use the configured key
        assert otp.match_backup_code(codes[3], stored, keys=keys) == 3
    finally:
        crypto.reset_keys()


def test_a_corrupt_first_row_does_not_void_the_rest_of_the_set():
    codes, stored = _set()
    stored[0] = "bc1$scrypt$n=3$x$y$z"
    assert otp.match_backup_code(codes[4], stored, keys=[KEY]) == 4
    assert otp.match_backup_code(codes[0], stored, keys=[KEY]) is None


def test_the_deploy_check_warns_without_backup_code_keys(settings):
    settings.TWOFACTOR_BACKUP_CODE_KEYS = []
    assert [w.id for w in check_backup_code_keys_set(None)] == ["twofactor.W003"]
    settings.TWOFACTOR_BACKUP_CODE_KEYS = ["x" * 40]
    assert check_backup_code_keys_set(None) == []


def test_a_short_key_is_an_error_of_every_check(settings):
    settings.TWOFACTOR_BACKUP_CODE_KEYS = ["x" * 40, "too-short"]
    errors = check_backup_code_keys(None)
    assert [(e.id, e.msg) for e in errors] == [
        ("twofactor.E004", "TWOFACTOR_BACKUP_CODE_KEYS: key 2 is shorter than 32 characters.")
    ]
    settings.TWOFACTOR_BACKUP_CODE_KEYS = ["x" * 32]
    assert check_backup_code_keys(None) == []
