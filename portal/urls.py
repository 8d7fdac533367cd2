from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog

# admin.site is twofactor.admin_site.TwoFactorAdminSite (see INSTALLED_APPS): its
# login page sends people to the portal's two-step login.

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:profile", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("2fa/", include("twofactor.urls")),
    path("admin/", admin.site.urls),
    # The scripts' messages in the page's language (base.html adds ?lang so a browser
    # cache keeps one copy per language); the project's catalogs come from LOCALE_PATHS.
    path(
        "jsi18n/",
        cache_control(max_age=3600)(JavaScriptCatalog.as_view(packages=["twofactor"])),
        name="javascript-catalog",
    ),
]
handler400 = "portal.middleware.bad_request"
handler500 = "portal.middleware.server_error"
