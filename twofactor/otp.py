"""The OTP arithmetic, in one place: pure functions, no request, no ORM.

TOTP follows RFC 6238 with the parameters every authenticator app supports:
SHA1, 6 digits, 30-second steps. Backup codes are stored as an HMAC with a server
key over scrypt of modest cost (one salt per set), so a typed code costs exactly
one key derivation to check, and the database alone tests no guess.
"""

import base64
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import pyotp
from django.contrib.auth.hashers import identify_hasher

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


# How a set is stored (issue 20): each code as
#     bc1$scrypt$n=2048,r=8,p=1$<key id>$<salt>$<digest>
# digest = HMAC-SHA256(server key, scrypt(code, salt)). The HMAC key lives in the
# environment, never in the database, so a stolen database alone cannot test one guess; the
# scrypt under it keeps a guess costly even for someone who has the key as well. The five
# codes of a set share the salt (and key), so checking a typed code costs one scrypt
# whatever the set holds, plus one HMAC per key id found in it (microseconds).
# The string names its version, algorithm, cost, key and salt: a later cost or key applies
# to new sets, and every set keeps being checked with what it was made with.
BACKUP_HASH_VERSION = "bc1"
BACKUP_HASH_ALGORITHM = "scrypt"


@dataclass(frozen=True)
class ScryptCost:
    n: int
    r: int
    p: int


# About 4-5 ms and 2 MiB per derivation on the 2-core development machine (benchmarks/
# backup_codes.py prints it): a code check stays cheap, a guess with the key stays slow.
BACKUP_CODE_COST = ScryptCost(n=2**11, r=8, p=1)
# A stored string is read back only within these bounds (a corrupt or hostile row must not
# make a check take a second or exhaust memory): room for a cost 16 times today's.
_MAX_COST = ScryptCost(n=2**14, r=8, p=2)
_SALT_BYTES = 16
_KEY_ID_LENGTH = 8  # hex characters: tells a handful of configured keys apart


@dataclass(frozen=True, repr=False)
class BackupCodeKey:
    """A server-side key for backup-code hashes; `id` (stored beside each hash) names it
    without revealing it: a domain-separated SHA-256 of the key, cut short."""

    secret: bytes
    id: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(b"twofactor.backup-code-key-id.v1:" + self.secret).hexdigest()
        object.__setattr__(self, "id", digest[:_KEY_ID_LENGTH])

    def __repr__(self) -> str:  # never the secret, in a traceback or a log line
        return f"BackupCodeKey(id={self.id!r})"


@dataclass(frozen=True)
class _StoredHash:
    cost: ScryptCost
    key_id: str
    salt: str
    digest: bytes


def new_backup_code_salt() -> str:
    """A set's salt: 128 random bits, url-safe base64 (no "$": it sits in the stored form)."""
    return secrets.token_urlsafe(_SALT_BYTES)


def derive_backup_code(code: str, *, salt: str, cost: ScryptCost = BACKUP_CODE_COST) -> bytes:
    """The key derivation (the one slow step) of a normalised code with its set's salt."""
    return hashlib.scrypt(code.encode(), salt=salt.encode(), n=cost.n, r=cost.r, p=cost.p, dklen=32)


def _keyed(derived: bytes, key: BackupCodeKey) -> bytes:
    return hmac.new(key.secret, derived, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hash_backup_code(
    code: str, *, salt: str, key: BackupCodeKey, cost: ScryptCost = BACKUP_CODE_COST
) -> str:
    """The stored form of a normalised code: its set's salt, the current key and cost."""
    digest = _keyed(derive_backup_code(code, salt=salt, cost=cost), key)
    parameters = f"n={cost.n},r={cost.r},p={cost.p}"
    return "$".join(
        [BACKUP_HASH_VERSION, BACKUP_HASH_ALGORITHM, parameters, key.id, salt, _b64(digest)]
    )


def _parse(stored: str) -> _StoredHash | None:
    """The parts of a stored hash of this format; None for another format or a bad one."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[:2] != [BACKUP_HASH_VERSION, BACKUP_HASH_ALGORITHM]:
        return None
    _, _, parameters, key_id, salt, digest = parts
    try:
        values = dict(item.split("=", 1) for item in parameters.split(","))
        cost = ScryptCost(n=int(values["n"]), r=int(values["r"]), p=int(values["p"]))
        raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
    except (KeyError, ValueError):
        return None
    power_of_two = cost.n > 1 and cost.n & (cost.n - 1) == 0  # as scrypt requires
    within = cost.n <= _MAX_COST.n and 1 <= cost.r <= _MAX_COST.r and 1 <= cost.p <= _MAX_COST.p
    if not (power_of_two and within and salt):
        return None
    return _StoredHash(cost=cost, key_id=key_id, salt=salt, digest=raw)


def is_legacy_backup_code_hash(stored: str) -> bool:
    """Stored before issue 20 (Django's password-hasher encoding, unkeyed): such a set keeps
    working until the user's next one."""
    return not stored.startswith(BACKUP_HASH_VERSION + "$")


def match_backup_code(
    code: str, stored: Sequence[str], *, keys: Sequence[BackupCodeKey]
) -> int | None:
    """The index in `stored` (one user's set) of the hash `code` matches, or None.

    One key derivation whatever `stored` holds, with the salt and cost of its first hash
    that parses (a set shares them; a hash made otherwise is not of this set and cannot
    match). Then
    one HMAC per key id in the set, with the configured key of that id (a set made with a
    key no longer configured matches nothing), and a constant-time compare against every
    stored hash, no early exit. Old-format sets are checked as before, also with one
    derivation. `code` must already be normalised.
    """
    if not stored:
        return None
    if is_legacy_backup_code_hash(stored[0]):
        return _match_legacy(code, stored)
    # The first hash that reads as one: a corrupt row is skipped, not the whole set.
    reference = next((parsed for parsed in map(_parse, stored) if parsed is not None), None)
    if reference is None:
        return None
    derived = derive_backup_code(code, salt=reference.salt, cost=reference.cost)
    by_id: dict[str, list[BackupCodeKey]] = {}
    for key in keys:
        by_id.setdefault(key.id, []).append(key)  # two keys may share an id: try both
    keyed: dict[str, list[bytes]] = {}
    matched = None
    for index, value in enumerate(stored):
        parsed = _parse(value)
        if parsed is None or (parsed.salt, parsed.cost) != (reference.salt, reference.cost):
            continue
        if parsed.key_id not in keyed:
            keyed[parsed.key_id] = [_keyed(derived, key) for key in by_id.get(parsed.key_id, [])]
        for candidate in keyed[parsed.key_id]:
            if hmac.compare_digest(candidate, parsed.digest) and matched is None:
                matched = index
    return matched


def _match_legacy(code: str, stored: Sequence[str]) -> int | None:
    try:
        typed = hash_backup_code_like(code, reference=stored[0]).encode()
    except ValueError:  # a hasher no longer in PASSWORD_HASHERS, or a corrupt row
        return None
    matched = None
    for index, value in enumerate(stored):
        if hmac.compare_digest(typed, value.encode()) and matched is None:
            matched = index
    return matched


def hash_backup_code_like(code: str, *, reference: str) -> str:
    """Old format only: hash `code` exactly as `reference` (one stored code of the set) was
    hashed, with Django's password hasher of that encoding; one key derivation.

    Algorithm, salt and work factor come from the reference, so a later change of the
    default hasher does not break old sets.
    """
    hasher = identify_hasher(reference)
    params = hasher.decode(reference)
    if "iterations" in params:
        # A hasher that decodes "iterations" (Django's PBKDF2 ones) takes them back in
        # encode(); identify_hasher() is typed BasePasswordHasher, whose encode() has no
        # such argument, and no Django type names "a hasher with iterations".
        return hasher.encode(code, params["salt"], iterations=params["iterations"])  # type: ignore[call-arg]
    return hasher.encode(code, params["salt"])
