from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        # Every receiver of twofactor's, Django's and accounts' own signals, connected
        # in one place (accounts/receivers.py says what happens after each event).
        from accounts import receivers

        receivers.connect()
        from accounts import checks  # noqa: F401  (registers the e-mail deploy checks)
