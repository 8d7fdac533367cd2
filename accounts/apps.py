from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Importing connects the security log's receivers (twofactor's and
        # Django's auth signals); connect() adds the one that needs the user model.
        from accounts import security_log

        security_log.connect()

        # login_throttle and sign_out connect their receivers on import.
        from accounts import login_throttle, sign_out, user_list  # noqa: F401

        user_list.connect_count_invalidation()
        from accounts import checks  # noqa: F401  (registers the e-mail deploy checks)
