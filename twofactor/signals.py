"""What twofactor announces. Listeners (the security log, e-mails) live elsewhere.

Signals are sent inside the transaction that makes the change, so a listener
that writes to the database commits or rolls back with it; a listener with a
side effect outside the database (e-mail) should use transaction.on_commit().

Every signal is sent with sender=the user model class and `user=`.
"""

from django.dispatch import Signal

# user
two_factor_enabled = Signal()
# user, actor (None when the user did it), reason ("" when the user did it)
two_factor_disabled = Signal()
# user, count, at_enrollment (True for the first set, made as 2FA is turned on)
backup_codes_generated = Signal()
# user, remaining
backup_code_used = Signal()
# user, method ("totp" or "backup"), reason ("invalid", "replayed", "drift");
# attempts refused because the account is locked are not announced again
code_verification_failed = Signal()
# user, until
account_locked = Signal()
# user, method ("totp" or "backup")
two_factor_login = Signal()
