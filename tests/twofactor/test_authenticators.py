"""twofactor/authenticators.py alone: AAGUID -> default name for a new passkey or security key.

Pure lookups, no database. The table checks at the end make a typo in an AAGUID or an
over-long name fail here rather than in a user's profile.
"""

import uuid

import pytest

from twofactor.authenticators import KNOWN_AUTHENTICATORS, name_for_aaguid
from twofactor.models import CREDENTIAL_NAME_MAX_LENGTH

ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("aaguid", "name"),
    [
        ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
        ("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"),
        ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
        ("2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5 Series with NFC"),
    ],
)
def test_known_aaguid_gives_its_name(aaguid, name) -> None:
    assert name_for_aaguid(aaguid) == name


@pytest.mark.parametrize(
    "spelling",
    [
        "BADA5566-A7AA-401F-BD96-45619A55120D",
        "Bada5566-A7aa-401f-Bd96-45619a55120D",
        "bada5566a7aa401fbd9645619a55120d",
    ],
)
def test_known_aaguid_is_found_in_any_case_or_spelling(spelling) -> None:
    assert name_for_aaguid(spelling) == "1Password"


def test_zero_aaguid_gives_none() -> None:
    # What U2F keys and privacy-minded authenticators send: it names no make at all.
    assert name_for_aaguid(ZERO_AAGUID) is None


def test_unknown_aaguid_gives_none() -> None:
    assert name_for_aaguid("12345678-1234-4234-8234-123456789abc") is None


@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        "not-a-uuid",
        "bada5566-a7aa-401f-bd96-45619a55120",  # one digit short
        "bada5566-a7aa-401f-bd96-45619a55120dd",  # one digit long
        "gada5566-a7aa-401f-bd96-45619a55120d",  # not hex
        "-ada5566a7aa401fbd9645619a55120d",  # int() would read this as negative
        "bada5566-a7aa-401f-bd96-45619a55120d" * 1000,
        "\x00" * 36,
        None,
        42,
        b"bada5566-a7aa-401f-bd96-45619a55120d",
        uuid.UUID("bada5566-a7aa-401f-bd96-45619a55120d"),
    ],
)
def test_malformed_aaguid_gives_none_and_never_raises(junk) -> None:
    assert name_for_aaguid(junk) is None


def test_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        KNOWN_AUTHENTICATORS[ZERO_AAGUID] = "Anything"  # type: ignore[index]


def test_zero_aaguid_is_not_in_the_table() -> None:
    assert ZERO_AAGUID not in KNOWN_AUTHENTICATORS


@pytest.mark.parametrize("aaguid", sorted(KNOWN_AUTHENTICATORS))
def test_every_key_is_a_canonical_lowercase_uuid(aaguid) -> None:
    # Lookups canonicalise first, so a key in any other spelling could never be found.
    assert str(uuid.UUID(aaguid)) == aaguid


@pytest.mark.parametrize(("aaguid", "name"), sorted(KNOWN_AUTHENTICATORS.items()))
def test_every_name_fits_the_credential_name_column(aaguid, name) -> None:
    assert name.strip() == name != ""
    assert len(name) <= CREDENTIAL_NAME_MAX_LENGTH
