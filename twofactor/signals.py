"""What twofactor announces, and the words both sides of the contract use.

Listeners (a security log, e-mails, signing other sessions out) live in the
project; twofactor never calls them. Every signal is sent with
``sender=<the user model class>`` and ``user=<the user it is about>``; the
other facts travel as the keyword arguments listed below, never as
attributes set on the user object.

Sent *inside* the transaction that makes the change (marked "in" below): a
listener that writes to the database commits or rolls back with the change,
so no change goes unrecorded and no record describes a change that rolled
back. A listener with an effect outside the database (an e-mail) should
defer it with ``transaction.on_commit()``. Sent *after* (marked "after"): the
change is already committed when listeners run.

============================  =====  ==============================================
signal                        sent   arguments (besides sender, user)
============================  =====  ==============================================
two_factor_enabled            in     -- the first code was right; 2FA is on
two_factor_disabled           in     -- the user turned 2FA off themselves
two_factor_reset              in     actor (a user, or None for the command line),
                                     reason (non-empty text): someone else did it
backup_codes_generated        in     count, at_enrollment (True for the first set,
                                     made as 2FA is turned on)
backup_code_used              in     remaining (unused codes left)
code_verification_failed      in     method (Method), outcome (Outcome); attempts
                                     refused because code entry is locked are not
                                     announced again
account_locked                in     until (when code entry unlocks)
two_factor_login              after  method (Method), request: the code step
                                     accepted a second factor (or a passkey signed
                                     in alone: PASSKEY) and login() has run
webauthn_credential_added     in     credential (the new WebAuthnCredential): the
                                     user added a passkey or security key
webauthn_credential_removed   in     credential (the WebAuthnCredential, already
                                     deleted): the user removed one of their keys
                                     (turning 2FA off or a reset removes every key
                                     and is announced by its own signal instead)
policy_changed                in     changes (list of words: "grace period: 7 days"),
                                     policy (the TwoFactorPolicy); `user` is the
                                     superuser who changed it
trusted_browser_added         in     browser (the new TrustedBrowser): the user ticked
                                     "Don't ask for a code on this browser"
trusted_browsers_removed      in     count: the user removed one or all (the removals
                                     that come with Disable 2FA, a reset or new backup
                                     codes are not announced again)
============================  =====  ==============================================
"""

from django.db import models
from django.dispatch import Signal
from django.utils.translation import gettext_lazy as _


class Method(models.TextChoices):
    """How a second factor was proven."""

    TOTP = "totp", _("authenticator app")
    BACKUP = "backup", _("backup code")
    # The second step, after the password: any registered key (passkey or security key).
    WEBAUTHN = "webauthn", _("passkey or security key")
    # Signed in with a passkey alone (user verification: both factors in one).
    PASSKEY = "passkey", _("passkey, without a password")
    # No code asked: this browser was trusted at an earlier login with a second factor.
    TRUSTED_BROWSER = "trusted_browser", _("trusted browser, no code asked")


class Outcome(models.TextChoices):
    """Why a code was refused."""

    INVALID = "invalid", _("wrong code")
    REPLAYED = "replayed", _("code already used")
    DRIFT = "drift", _("code from a device with a wrong clock")
    # Keys: the answer did not verify (wrong signature, origin, RP id, or not a key
    # of this account), or its signature counter went backwards (a cloned key?).
    KEY_REFUSED = "key_refused", _("key not accepted")
    SIGN_COUNT = "sign_count", _("key's signature counter went backwards")


two_factor_enabled = Signal()
two_factor_disabled = Signal()
two_factor_reset = Signal()
backup_codes_generated = Signal()
backup_code_used = Signal()
code_verification_failed = Signal()
account_locked = Signal()
two_factor_login = Signal()
webauthn_credential_added = Signal()
webauthn_credential_removed = Signal()
policy_changed = Signal()
trusted_browser_added = Signal()
trusted_browsers_removed = Signal()
