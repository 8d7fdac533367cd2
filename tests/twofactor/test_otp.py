"""twofactor/otp.py alone: the RFC arithmetic, code normalisation, the otpauth URI, backup codes.

Pure functions, so no database: every test here runs in milliseconds.
"""

import base64
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from twofactor import otp

# --- RFC 6238 Appendix B and RFC 4226 Appendix D ------------------------------------------
# The RFC 6238 reference code uses a seed of the hash's own size, not the 20-byte seed for
# all three (the errata): 20 bytes for SHA1, 32 for SHA256, 64 for SHA512.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]
RFC4226_VALUES = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

# A fixed secret and instant keep the window/drift tests deterministic: with a random
# secret two steps' codes collide about once in 50,000 runs and the test would flake.
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"
NOW = 1_700_000_015.0  # 15 s into a step, so "now" is not on a step boundary
STEP = int(NOW // 30)


def test_rfc6238_vectors_are_covered_in_full():
    assert len(RFC6238_VECTORS) == 18
    assert {len(seed) for seed in SEEDS.values()} == {20, 32, 64}


@pytest.mark.parametrize(("unix_time", "digest", "expected"), RFC6238_VECTORS)
def test_totp_matches_rfc6238_appendix_b(unix_time, digest, expected):
    counter = unix_time // 30
    assert otp.hotp(SEEDS[digest], counter, digits=8, digest=digest) == expected


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226_VALUES)))
def test_hotp_matches_rfc4226_appendix_d(counter, expected):
    assert otp.hotp(b"12345678901234567890", counter) == expected


def test_totp_at_step_is_the_sha1_six_digit_hotp_of_the_step():
    # The function the login path uses agrees with the RFC-checked arithmetic above.
    key = base64.b32decode(SECRET)
    assert otp.totp_at_step(SECRET, STEP) == otp.hotp(key, STEP)


# --- Normalisation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed",
    [
        "123456",
        "123 456",
        "123-456",
        " 123456 ",
        "\t123456\n",
        "12 34 56",
        "１２３４５６",  # full-width digits from an East Asian keyboard
        "１２３ ４５６",
    ],
)
def test_app_code_is_normalised_to_six_ascii_digits(typed):
    assert otp.normalize_totp_code(typed) == "123456"


@pytest.mark.parametrize(
    "typed",
    ["12345", "1234567", "12345a", "abcdef", "", "   ", "12.3456", "١٢٣٤٥٦", "123456\x00"],
)
def test_anything_but_six_digits_is_not_an_app_code(typed):
    # Arabic-Indic digits are digits to str.isdigit() but no authenticator shows them.
    assert otp.normalize_totp_code(typed) is None


# --- Secrets and the otpauth URI ------------------------------------------------------------
def test_secret_decodes_to_160_bits():
    assert len(base64.b32decode(otp.generate_secret())) == 20


def test_thousand_generated_secrets_are_distinct():
    assert len({otp.generate_secret() for _ in range(1000)}) == 1000


def _parse_uri(uri: str):
    parsed = urlparse(uri)
    return parsed, unquote(parsed.path.lstrip("/")), parse_qs(parsed.query, strict_parsing=True)


def test_provisioning_uri_follows_the_key_uri_format():
    uri = otp.provisioning_uri(
        secret=SECRET, account_name="ann@example.com", issuer="Customer Portal"
    )
    parsed, label, query = _parse_uri(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert label == "Customer Portal:ann@example.com"
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["Customer Portal"]
    assert query["algorithm"] == ["SHA1"]
    assert query["digits"] == ["6"]
    assert query["period"] == ["30"]


def test_provisioning_uri_escapes_the_label_so_it_stays_parseable():
    # A ':' or '&' in the issuer must not split the label or the query differently.
    uri = otp.provisioning_uri(secret=SECRET, account_name="a+b@example.com", issuer="A&B Co")
    _, label, query = _parse_uri(uri)
    assert " " not in uri
    assert label == "A&B Co:a+b@example.com"
    assert query["issuer"] == ["A&B Co"]


def test_provisioning_uri_is_what_pyotp_apps_expect():
    # pyotp parses it back to the same secret, issuer and account (its own Key URI parser).
    uri = otp.provisioning_uri(
        secret=SECRET, account_name="ann@example.com", issuer="Customer Portal"
    )
    parsed = pyotp.parse_uri(uri)
    assert (parsed.secret, parsed.issuer, parsed.name) == (
        SECRET,
        "Customer Portal",
        "ann@example.com",
    )


def test_secret_is_grouped_in_fours_for_typing():
    assert otp.group_secret(SECRET) == "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXQ"


# --- The accepted window and the drift finder ---------------------------------------------
def _code(offset: int) -> str:
    return otp.totp_at_step(SECRET, STEP + offset)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_match_totp_accepts_one_step_either_side_and_returns_that_step(offset):
    assert otp.match_totp(SECRET, _code(offset), now=NOW) == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_match_totp_refuses_codes_beyond_one_step(offset):
    assert otp.match_totp(SECRET, _code(offset), now=NOW) is None


def test_match_totp_refuses_a_wrong_code(wrong_code):
    wrong = wrong_code(SECRET, at=datetime.fromtimestamp(NOW, tz=UTC))
    assert otp.match_totp(SECRET, wrong, now=NOW) is None


@pytest.mark.parametrize("offset", [*range(-10, -1), *range(2, 11)])
def test_find_drift_reports_how_many_steps_off(offset):
    assert otp.find_drift(SECRET, _code(offset), now=NOW) == offset


@pytest.mark.parametrize("offset", [-12, -11, 11, 12])
def test_find_drift_gives_up_beyond_ten_steps(offset):
    assert otp.find_drift(SECRET, _code(offset), now=NOW) is None


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_find_drift_ignores_the_accepted_window(offset):
    # Inside the window a refusal means "replayed", not "wrong clock".
    assert otp.find_drift(SECRET, _code(offset), now=NOW) is None


# --- Backup codes ---------------------------------------------------------------------------
BACKUP_FORMAT = re.compile(
    rf"^[{otp.BACKUP_CODE_ALPHABET}]{{5}}-[{otp.BACKUP_CODE_ALPHABET}]{{5}}$"
)


def test_backup_codes_come_in_a_set_of_five():
    assert len(otp.generate_backup_codes()) == 5


def test_backup_codes_in_a_set_are_distinct():
    for _ in range(200):
        codes = otp.generate_backup_codes()
        assert len(set(codes)) == len(codes)


def test_backup_codes_are_two_groups_of_five_from_the_alphabet():
    for code in otp.generate_backup_codes():
        assert BACKUP_FORMAT.match(code), code


def test_backup_code_alphabet_has_no_lookalike_characters():
    assert not set("0o1li2z5s8buv") & set(otp.BACKUP_CODE_ALPHABET)
    assert otp.BACKUP_CODE_ALPHABET == otp.BACKUP_CODE_ALPHABET.lower()


def test_backup_codes_use_the_whole_alphabet():
    # A biased generator (say, one that never picks the last letter) shows up here.
    seen = set("".join(code for _ in range(100) for code in otp.generate_backup_codes()))
    assert seen - {"-"} == set(otp.BACKUP_CODE_ALPHABET)


@pytest.mark.parametrize(
    "typed",
    [
        "k7m3q-xr4ty",
        "K7M3Q-XR4TY",  # upper case
        "k7m3qxr4ty",  # dash left out
        "k7m3q--xr4ty",  # dash doubled
        "-k7m3q-xr4ty-",
        " k7m3q - xr4ty ",  # surrounding and inner spaces
        "k7m3q xr4ty",  # space instead of the dash
        "k7m 3q-xr4 ty",
    ],
)
def test_backup_code_is_normalised_from_what_people_type(typed):
    assert otp.normalize_backup_code(typed) == "k7m3q-xr4ty"


@pytest.mark.parametrize("typed", ["k7m3q-xr4t", "k7m3q-xr4tyy", "k7m3q-xr4t0", "", "123456"])
def test_malformed_backup_code_is_refused(typed):
    assert otp.normalize_backup_code(typed) is None


def test_normalised_backup_codes_round_trip():
    for code in otp.generate_backup_codes():
        assert otp.normalize_backup_code(code.upper().replace("-", " ")) == code
