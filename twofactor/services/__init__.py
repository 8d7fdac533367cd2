"""The actions that change two-factor state, each atomic, by concern:

- status:        reading state (no changes)
- enrollment:    turning 2FA on (this session's pending device) and off
- verification:  checking a code: the replay guard and the throttle
- backup_codes:  a new set, shown once
- reset:         support's reset and its rules
- pending_login: the two-step login (needs the session and login())
- sudo:          "confirm it's you" (needs the request)
- errors:        the refusals all of them raise; views turn them into messages

Callers import from here (`from twofactor import services`); the modules are
how the code is organised, not separate interfaces.
"""

from twofactor.services.backup_codes import (
    NEW_BACKUP_CODES_SESSION_KEY,
    NEW_BACKUP_CODES_TTL,
    NewBackupCodes,
    regenerate_and_stash_backup_codes,
    regenerate_backup_codes,
    take_new_backup_codes,
)
from twofactor.services.enrollment import (
    ENROLLMENT_SESSION_KEY,
    PENDING_ENROLLMENT_TTL,
    begin_enrollment,
    confirm_enrollment,
    delete_second_factors,
    disable_two_factor,
)
from twofactor.services.errors import (
    AccountLocked,
    AlreadyEnabled,
    ClockDrift,
    CodeReplayed,
    InvalidBackupCode,
    InvalidCode,
    NotEnrolled,
    PendingLoginExpired,
    PendingLoginMissing,
    PendingLoginVoided,
    ResetRefused,
    ResetRule,
    TooManyPasswordAttempts,
    TwoFactorError,
    WrongPassword,
)
from twofactor.services.pending_login import (
    PENDING_LOGIN_SESSION_KEY,
    PENDING_LOGIN_TTL,
    VERIFIED_SESSION_KEY,
    PendingLogin,
    begin_pending_login,
    clear_pending_login,
    complete_pending_login,
    get_pending_login,
    is_session_verified,
    mark_session_verified,
    safe_next_url,
    verified_method,
)
from twofactor.services.reset import reset_refusal, reset_two_factor
from twofactor.services.status import (
    TwoFactorStatus,
    code_entry_locked_until,
    get_status,
    is_two_factor_enabled,
    unused_backup_code_count,
)
from twofactor.services.sudo import (
    AUTHENTICATION_THROTTLED_ATTR,
    PURPOSE_CONFIRM,
    SUDO_SESSION_KEY,
    SUDO_TTL,
    confirm_identity,
    end_sudo,
    had_proof,
    has_recent_proof,
    start_sudo,
)
from twofactor.services.verification import (
    FIRST_LOCK,
    LONGEST_LOCK,
    MAX_FAILURES,
    METHOD_BACKUP,
    METHOD_TOTP,
    Verification,
    use_backup_code,
    verify_code,
)

__all__ = [
    "AUTHENTICATION_THROTTLED_ATTR",
    "ENROLLMENT_SESSION_KEY",
    "FIRST_LOCK",
    "LONGEST_LOCK",
    "MAX_FAILURES",
    "METHOD_BACKUP",
    "METHOD_TOTP",
    "NEW_BACKUP_CODES_SESSION_KEY",
    "NEW_BACKUP_CODES_TTL",
    "PENDING_ENROLLMENT_TTL",
    "PENDING_LOGIN_SESSION_KEY",
    "PENDING_LOGIN_TTL",
    "PURPOSE_CONFIRM",
    "SUDO_SESSION_KEY",
    "SUDO_TTL",
    "VERIFIED_SESSION_KEY",
    "AccountLocked",
    "AlreadyEnabled",
    "ClockDrift",
    "CodeReplayed",
    "InvalidBackupCode",
    "InvalidCode",
    "NewBackupCodes",
    "NotEnrolled",
    "PendingLogin",
    "PendingLoginExpired",
    "PendingLoginMissing",
    "PendingLoginVoided",
    "ResetRefused",
    "ResetRule",
    "TooManyPasswordAttempts",
    "TwoFactorError",
    "TwoFactorStatus",
    "Verification",
    "WrongPassword",
    "begin_enrollment",
    "begin_pending_login",
    "clear_pending_login",
    "code_entry_locked_until",
    "complete_pending_login",
    "confirm_enrollment",
    "confirm_identity",
    "delete_second_factors",
    "disable_two_factor",
    "end_sudo",
    "get_pending_login",
    "get_status",
    "had_proof",
    "has_recent_proof",
    "is_session_verified",
    "is_two_factor_enabled",
    "mark_session_verified",
    "regenerate_and_stash_backup_codes",
    "regenerate_backup_codes",
    "reset_refusal",
    "reset_two_factor",
    "safe_next_url",
    "start_sudo",
    "take_new_backup_codes",
    "unused_backup_code_count",
    "use_backup_code",
    "verified_method",
    "verify_code",
]
