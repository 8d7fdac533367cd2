"""The OTP arithmetic, in one place: pure functions, no request, no ORM.

TOTP follows RFC 6238 with the parameters every authenticator app supports:
SHA1, 6 digits, 30-second steps. Backup codes are hashed with Django's
password-hasher machinery (one salt per set) so a typed code costs exactly one
key derivation to check.
"""

import base64
import hashlib
import secrets
import unicodedata
from urllib.parse import quote, urlencode

import pyotp
from django.contrib.auth.hashers import get_hasher, identify_hasher

DIGITS = 6
PERIOD = 30
DIGEST = "SHA1"
SECRET_LENGTH = 32  # base32 characters = 160 bits, the RFC 4226 recommendation
ACCEPT_WINDOW = 1  # RFC 6238 section 5.2: one step either side for network and clock slack
DRIFT_WINDOW = 10  # further steps we recognise only to explain a wrong clock

BACKUP_CODE_COUNT = 5
# No 0/o, 1/l/i, 2/z, 5/s, 8/b, u/v: a code read aloud or off paper is typed right.
BACKUP_CODE_ALPHABET = "3467acdefghjkmnpqrtwxy"
BACKUP_CODE_GROUP = 5

_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


# --- TOTP -------------------------------------------------------------------
def generate_secret() -> str:
    return pyotp.random_base32(length=SECRET_LENGTH)


def provisioning_uri(*, secret: str, account_name: str, issuer: str) -> str:
    """The otpauth:// URI of the Key URI Format (label "Issuer:account", issuer= repeated)."""
    label = quote(f"{issuer}:{account_name}", safe=":@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": DIGEST,
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def group_secret(secret: str, size: int = 4) -> str:
    """'JBSWY3DPEHPK3PXP' -> 'JBSW Y3DP EHPK 3PXP', for typing the key by hand."""
    return " ".join(secret[i : i + size] for i in range(0, len(secret), size))


def time_step(now: float, *, period: int = PERIOD) -> int:
    return int(now // period)


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, digest: str = DIGEST) -> str:
    """RFC 4226 HOTP value of `counter` (dynamic truncation, mod 10^digits)."""
    encoded = base64.b32encode(key).decode("ascii")
    return pyotp.HOTP(encoded, digits=digits, digest=_DIGESTS[digest]).at(counter)


def totp_at_step(secret: str, step: int) -> str:
    return pyotp.HOTP(secret, digits=DIGITS, digest=_DIGESTS[DIGEST]).at(step)


def normalize_totp_code(raw: str) -> str | None:
    """The six digits a user meant, or None if it cannot be an app code.

    NFKC folds full-width digits (from East Asian keyboards) to ASCII; spaces and
    dashes are how apps and people group the digits ("123 456", "123-456").
    """
    if raw is None:
        return None
    folded = unicodedata.normalize("NFKC", str(raw))
    cleaned = "".join(ch for ch in folded if not ch.isspace() and ch not in "-‐‑–—")
    if len(cleaned) == DIGITS and cleaned.isascii() and cleaned.isdigit():
        return cleaned
    return None


def match_totp(secret: str, code: str, *, now: float, window: int = ACCEPT_WINDOW) -> int | None:
    """The time step whose code equals `code` within +-window steps of `now`, else None.

    Every candidate is compared (no early exit) with a constant-time compare.
    `code` must already be normalised.
    """
    current = time_step(now)
    matched = None
    for offset in range(-window, window + 1):
        step = current + offset
        if secrets.compare_digest(totp_at_step(secret, step), code) and matched is None:
            matched = step
    return matched


def find_drift(secret: str, code: str, *, now: float, max_steps: int = DRIFT_WINDOW) -> int | None:
    """How many steps off `code` is (e.g. +3 means the device runs 90 s fast), or None.

    Only offsets beyond the accepted window are reported: the caller asks after
    match_totp() failed, to tell the user their clock is wrong.
    """
    current = time_step(now)
    for distance in range(ACCEPT_WINDOW + 1, max_steps + 1):
        for offset in (distance, -distance):
            if secrets.compare_digest(totp_at_step(secret, current + offset), code):
                return offset
    return None


# --- Backup codes ---------------------------------------------------------------
def generate_backup_codes(count: int = BACKUP_CODE_COUNT) -> list[str]:
    """`count` distinct codes like 'k7m2q-xr4tz' (10 characters of 22: about 44.6 bits)."""
    codes: set[str] = set()
    while len(codes) < count:
        chars = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(2 * BACKUP_CODE_GROUP))
        codes.add(f"{chars[:BACKUP_CODE_GROUP]}-{chars[BACKUP_CODE_GROUP:]}")
    return sorted(codes)


def normalize_backup_code(raw: str) -> str | None:
    """The canonical 'xxxxx-xxxxx' form of what a user typed, or None if it cannot be one."""
    if raw is None:
        return None
    folded = unicodedata.normalize("NFKC", str(raw)).lower()
    chars = "".join(ch for ch in folded if not ch.isspace() and ch not in "-‐‑–—_")
    if len(chars) != 2 * BACKUP_CODE_GROUP or any(ch not in BACKUP_CODE_ALPHABET for ch in chars):
        return None
    return f"{chars[:BACKUP_CODE_GROUP]}-{chars[BACKUP_CODE_GROUP:]}"


def new_backup_code_salt() -> str:
    return get_hasher("default").salt()


def hash_backup_code(code: str, *, salt: str) -> str:
    """The stored form of a backup code: the default hasher's encoding with the set's salt."""
    return get_hasher("default").encode(code, salt)


def hash_backup_code_like(code: str, *, reference: str) -> str:
    """Hash `code` exactly as `reference` (one stored code of the set) was hashed.

    One key derivation, whatever the set holds: the result is then compared with
    the stored hashes by equality. Algorithm, salt and work factor come from the
    reference, so a later change of the default hasher does not break old sets.
    """
    hasher = identify_hasher(reference)
    params = hasher.decode(reference)
    if "iterations" in params:
        # A hasher that decodes "iterations" (Django's PBKDF2 ones) takes them back in
        # encode(); identify_hasher() is typed BasePasswordHasher, whose encode() has no
        # such argument, and no Django type names "a hasher with iterations".
        return hasher.encode(code, params["salt"], iterations=params["iterations"])  # type: ignore[call-arg]
    return hasher.encode(code, params["salt"])
