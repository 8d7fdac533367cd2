"""What accounts announces (its listeners are in accounts.receivers, like every other).

password_reset   sent inside the transaction that saves the new password, with
                 user: the owner proved the mailbox with a reset link. (Every
                 other password change is seen on the user model's post_save.)
"""

from django.dispatch import Signal

password_reset = Signal()
