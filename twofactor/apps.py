from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class TwoFactorConfig(AppConfig):
    name = "twofactor"
    verbose_name = _("Two-factor authentication")

    def ready(self) -> None:
        from twofactor import checks  # noqa: F401 - registers the deploy check


class TwoFactorAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with TwoFactorAdminSite as the default site."""

    default = False  # TwoFactorConfig stays this module's config for "twofactor"
    default_site = "twofactor.admin_site.TwoFactorAdminSite"
