"""Default names for new passkeys and security keys, from the authenticator's AAGUID.

The AAGUID says which make of authenticator created a credential, so "1Password" or
"YubiKey 5 Series with NFC" can stand in a user's list instead of a bare "Passkey". A name
is a label only: we ask for no attestation, so nothing here is verified and nothing here
may decide what a key is allowed to do.

Source: the community list at github.com/passkeydeveloper/passkey-authenticator-aaguids.
Passkey providers come from its aaguid.json (read at commit 05ab1424), security keys from
its dist/<aaguid>/meta.json files (commit b976141b), which are built from combined_aaguid.json
(the list plus FIDO MDS). Only well-known entries are kept, with the list's own `name`;
"Authenticator" and protocol jargon ("Secp256R1 FIDO2 CTAP2") are trimmed from a few
security-key names so they read well in the profile list.

To update: look the AAGUID up in combined_aaguid.json (or the list's explorer at
passkeydeveloper.github.io/passkey-authenticator-aaguids/explorer/?combined), add it below
in lowercase, and keep the name within CREDENTIAL_NAME_MAX_LENGTH; the tests refuse keys
that are not canonical lowercase UUIDs and names that are blank or too long.
"""

import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["KNOWN_AUTHENTICATORS", "name_for_aaguid"]

# Read-only so no caller can rename a make of authenticator for everyone at run time.
KNOWN_AUTHENTICATORS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # Platforms and browsers
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "Apple Passwords",
        "dd4ec289-e01d-41c9-bb89-70fa845d4bf2": "iCloud Keychain (Managed)",
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
        "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
        "b5397666-4885-aa6b-cebf-e52262a439a2": "Chromium Browser",
        "771b48fd-d3d4-4f74-9232-fc157ab0507a": "Edge on Mac",
        "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
        "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
        "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
        "d3452668-01fd-4c12-926c-83a4204853aa": "Microsoft Password Manager",
        "53414d53-554e-4700-0000-000000000000": "Samsung Pass",
        # Password managers
        "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
        "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
        "531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
        "b84e4048-15dc-4dd0-8640-f4f60813c8af": "NordPass",
        "0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6": "Keeper",
        "b78a0a55-6ef8-d246-a042-ba0f6d55050c": "LastPass",
        "50726f74-6f6e-5061-7373-50726f746f6e": "Proton Pass",
        "f3809540-7f14-49c1-a8b3-8f813b225541": "Enpass",
        "fdb141b2-5d84-443e-8a35-4698c205a502": "KeePassXC",
        "eaecdef2-1c31-5634-8639-f1cbd9c00a08": "KeePassDX",
        "b35a26b2-8f6e-4697-ab1d-d44db4da28c6": "Zoho Vault",
        "de503f9c-21a4-4f76-b4b7-558eb55c6f89": "Devolutions",
        "22248c4c-7a12-46e2-9a41-44291b373a4d": "LogMeOnce",
        "39a5647e-1853-446c-a1f6-a79bae9f5bc7": "IDmelon",
        "d9be9d39-e6a6-4c28-a581-32b044d986e4": "Sticky Password Manager",
        "a10c6dd9-465e-4226-8198-c7c44b91c555": "Kaspersky Password Manager",
        "fa37f553-f9b6-4adb-ac53-8bbb57ebdf0d": "Norton Password Manager",
        "a4a2d88e-9796-4356-9164-e2a5a8bd019c": "Avast Password Manager",
        "6bb49926-160a-4306-a100-4eb39ba6ac45": "AVG Password Manager",
        "e7db2bd3-f2fe-4d71-ad78-7e7aa166cfd1": "Avira Password Manager",
        # Yubico
        "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
        "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
        "2fc0579f-8113-47ea-b116-bb5a8db9202a": "YubiKey 5 Series with NFC",
        "20ac7a17-c814-4833-93fe-539f0d5e3389": "YubiKey 5 Series (Enterprise Profile)",
        "4599062e-6926-4fe7-9566-9e8fb1aedaa0": "YubiKey 5 Series (Enterprise Profile)",
        "73bb0cd4-e502-49b8-9c6f-b59445bf720b": "YubiKey 5 FIPS Series",
        "c1f9a0bc-1dd2-404a-b27f-8e29047a43fd": "YubiKey 5 FIPS Series with NFC",
        "85203421-48f9-4355-9bc8-8a53846e5083": "YubiKey 5 FIPS Series with Lightning",
        "34744913-4f57-4e6e-a527-e9ec3c4b94e6": "YubiKey Bio Series - Multi-protocol Edition",
        "b92c3f9a-c014-4056-887f-140a2501163b": "Security Key by Yubico",
        "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73": "Security Key by Yubico with NFC",
        "47ab2fb4-66ac-4184-9ae1-86be814012d5": "Security Key NFC by Yubico - Enterprise Edition",
        # Google, Feitian, SoloKeys, Nitrokey, Thales
        "42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3": "Google Titan Security Key v2",
        "833b721a-ff5f-4d00-bb2e-bdda3ec01e29": "Feitian ePass FIDO2",
        "ee041bce-25e5-4cdb-8f86-897fd6418464": "Feitian ePass FIDO2-NFC",
        "12ded745-4bed-47d4-abaa-e713f51d6393": "Feitian AllinOne FIDO2",
        "77010bd7-212a-4fc9-b236-d2ca5e9d4084": "Feitian BioPass FIDO2",
        "3e22415d-7fdf-4ea4-8a0c-dd60c4249b9d": "Feitian iePass FIDO",
        "8876631b-d4a0-427f-5773-0ec71c9e0279": "Solo",
        "8976631b-d4a0-427f-5773-0ec71c9e0279": "Solo Tap",
        "2cd2f727-f6ca-44da-8f48-5c2e5da000a2": "Nitrokey 3 AM",
        "4d41190c-7beb-4a84-8018-adf265a6352d": "Thales IDPrime FIDO Bio",
    }
)

# Longer than any spelling uuid.UUID accepts ("urn:uuid:{...}" is 47), so junk of any size
# is refused before it is copied and scanned.
_MAX_AAGUID_LENGTH = 64


def name_for_aaguid(aaguid: str) -> str | None:
    """The make of authenticator behind `aaguid`, or None when we do not know it.

    Any case and any spelling uuid.UUID reads is accepted. The all-zero AAGUID (what an
    authenticator sends when it will not say, and what U2F keys always send) is not in the
    table, so it gives None like unknown or malformed input; this never raises.
    """
    if not isinstance(aaguid, str) or len(aaguid) > _MAX_AAGUID_LENGTH:
        return None
    try:
        canonical = str(uuid.UUID(aaguid))
    except ValueError:
        return None
    return KNOWN_AUTHENTICATORS.get(canonical)
