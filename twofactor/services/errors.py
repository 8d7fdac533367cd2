"""The refusals services raise. Views turn each into a message; none is a server error."""

import enum
from datetime import datetime

from twofactor import otp


class TwoFactorError(Exception):
    """Base class: a user-caused refusal, never a server error."""


class InvalidCode(TwoFactorError):
    # Counted towards the lock: how many more wrong codes it allows (None: not counted,
    # or more than one left), so that the last try before a lock can be said.
    attempts_left: int | None = None


class InvalidBackupCode(InvalidCode):
    """Not one of the account's unused backup codes (wrong, or already spent)."""


class CodeReplayed(InvalidCode):
    """The code's time step was already used (by this login or an earlier one)."""


class ClockDrift(InvalidCode):
    """The code belongs to a step outside the accepted window: the device clock is off."""

    def __init__(self, offset_steps: int) -> None:
        super().__init__(offset_steps)
        self.offset_steps = offset_steps
        self.offset_seconds = offset_steps * otp.PERIOD


class AccountLocked(TwoFactorError):
    def __init__(self, until: datetime) -> None:
        super().__init__(until)
        self.until = until


class NotEnrolled(TwoFactorError):
    """No pending (or no active) device where one is needed."""


class AlreadyEnabled(TwoFactorError):
    pass


class TwoFactorRequired(TwoFactorError):
    """The security policy requires 2FA of this user: it cannot be turned off."""


class PendingLoginMissing(TwoFactorError):
    pass


class PendingLoginExpired(PendingLoginMissing):
    pass


class PendingLoginVoided(PendingLoginMissing):
    """Since the password step the password changed, the user was signed out everywhere,
    or the second factor was reset or replaced: the half-finished login is worthless."""


class WrongPassword(TwoFactorError):
    pass


class TooManyPasswordAttempts(WrongPassword):
    """An authentication backend refused before checking: too many recent failures."""


class ResetRule(enum.StrEnum):
    """The rules of support's reset (services.reset); each entry point words them its way."""

    NO_REASON = "no_reason"  # a reset always says why: it is recorded and the user is told
    OWN_ACCOUNT = "own_account"  # your own 2FA goes through Disable 2FA (password and code)
    STAFF_TARGET = "staff_target"  # only a superuser resets a staff member's 2FA


class ResetRefused(TwoFactorError):
    """A reset that `rule` forbids; `message` says so in a sentence for a page (in the
    active language: the command line words each rule itself, in English)."""

    def __init__(self, rule: ResetRule, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class WebAuthnError(TwoFactorError):
    """Base class of the passkey and security-key refusals (services.webauthn)."""


class WebAuthnChallengeMissing(WebAuthnError):
    """This session has no challenge for this ceremony: none was asked for, it was used
    already (each is single use), or it was issued to another user or another pending login."""


class WebAuthnChallengeExpired(WebAuthnChallengeMissing):
    pass


class InvalidWebAuthnResponse(WebAuthnError):
    """The authenticator's answer does not verify: malformed, another origin or RP id,
    another challenge, or a bad signature. The library's reason is the message (no secret)."""


class UnknownCredential(InvalidWebAuthnResponse):
    """No credential of this user has that id (it may be another user's, or removed).
    A subclass of InvalidWebAuthnResponse so a page answers both alike."""


class SignCountRegressed(InvalidWebAuthnResponse):
    """A key that counts its signatures sent a count no higher than the last one seen:
    the key may have been cloned. Refused; worth recording, with the figures below."""

    def __init__(self, credential_pk: int, stored: int, received: int) -> None:
        super().__init__(f"sign count {received} is not above {stored}")
        self.credential_pk = credential_pk
        self.stored = stored
        self.received = received


class CredentialAlreadyRegistered(WebAuthnError):
    """That credential id is already stored (for this account or, in theory, another)."""


class LastSecondFactor(WebAuthnError):
    """Removing this key would leave the account with no second factor: that is turning
    two-factor authentication off, which Disable 2FA does, with its own question."""
