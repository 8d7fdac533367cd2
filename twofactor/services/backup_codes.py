"""Backup codes: a new set of five (the old set gone in the same transaction), shown once."""

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from twofactor import crypto, otp, signals
from twofactor.models import BackupCode, TOTPDevice, TrustedBrowser
from twofactor.services.errors import NotEnrolled
from twofactor.user_model import AuthUser

# New backup codes between the POST that made them and the one GET that shows them.
NEW_BACKUP_CODES_SESSION_KEY = "twofactor_new_backup_codes"
NEW_BACKUP_CODES_TTL = timedelta(minutes=10)


def regenerate_backup_codes(*, user: AuthUser, at_enrollment: bool = False) -> list[str]:
    """A new set of five codes; the old set is gone in the same transaction.

    The plain codes are returned once, for the page to show; only hashes are kept.
    `at_enrollment`: the first set, made as 2FA is turned on (said in the signal).
    """
    codes, _marker = _regenerate(user=user, at_enrollment=at_enrollment)
    return codes


def regenerate_and_stash_backup_codes(
    *, user: AuthUser, session: MutableMapping[str, Any], at_enrollment: bool = False
) -> None:
    """A new set, kept (encrypted) in this session for the one page that shows it."""
    codes, marker = _regenerate(user=user, at_enrollment=at_enrollment)
    payload = json.dumps({"codes": codes, "at_enrollment": at_enrollment, "set": marker})
    session[NEW_BACKUP_CODES_SESSION_KEY] = crypto.encrypt_secret(payload)


def _regenerate(*, user: AuthUser, at_enrollment: bool) -> tuple[list[str], str]:
    """The new codes, and one of their stored hashes (the set's marker)."""
    codes = otp.generate_backup_codes()
    # One salt and the current key for the whole set: a check then costs one derivation.
    # Hashed before the row lock is taken, so concurrent requests wait on the lock for
    # a delete and an insert, not for five derivations.
    salt, key = otp.new_backup_code_salt(), crypto.backup_code_keys()[0]
    rows = [
        BackupCode(user=user, code_hash=otp.hash_backup_code(code, salt=salt, key=key))
        for code in codes
    ]
    with transaction.atomic():
        # The device row lock makes concurrent requests take turns: each deletes
        # the set the one before it committed, so exactly one set of five survives
        # (the last one shown), never ten codes from two interleaved requests.
        if TOTPDevice.objects.confirmed().select_for_update().filter(user=user).first() is None:
            raise NotEnrolled
        BackupCode.objects.filter(user=user).delete()
        BackupCode.objects.bulk_create(rows)
        # New codes are what a user makes who fears the old ones were seen: whoever
        # saw them may have trusted a browser of their own too.
        TrustedBrowser.objects.filter(user=user).delete()
        signals.backup_codes_generated.send(
            sender=type(user), user=user, count=len(codes), at_enrollment=at_enrollment
        )
    return codes, rows[0].code_hash


@dataclass(frozen=True)
class NewBackupCodes:
    codes: list[str]
    at_enrollment: bool


def take_new_backup_codes(
    *, user: AuthUser, session: MutableMapping[str, Any], now: datetime | None = None
) -> NewBackupCodes | None:
    """The codes stashed for this page, once: a reload, or a second request at the same
    moment (each has its own copy of the session), finds None."""
    token = session.pop(NEW_BACKUP_CODES_SESSION_KEY, None)
    if not isinstance(token, str):
        return None
    try:
        payload = json.loads(
            crypto.decrypt_secret(token, ttl=int(NEW_BACKUP_CODES_TTL.total_seconds()))
        )
    except (crypto.InvalidToken, ValueError):
        return None
    # Claimed by one UPDATE of the set's marker row: a second request at once finds it
    # claimed, and a set replaced meanwhile (by another browser) is not shown at all.
    claimed = BackupCode.objects.filter(
        user=user, code_hash=payload.get("set"), shown_at__isnull=True
    ).update(shown_at=now or timezone.now())
    if not claimed:
        return None
    return NewBackupCodes(codes=payload["codes"], at_enrollment=payload["at_enrollment"])
