from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import preferences

# admin.site is twofactor.admin_site.TwoFactorAdminSite (see INSTALLED_APPS): its
# login page sends people to the portal's two-step login.

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:profile", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("2fa/", include("twofactor.urls")),
    path("admin/", admin.site.urls),
    # The scripts' messages, in the language ?lang= names (base.html: the page's).
    path(
        "jsi18n/",
        preferences.javascript_catalog,
        name="javascript-catalog",
    ),
]
handler400 = "portal.middleware.bad_request"
handler500 = "portal.middleware.server_error"
