from django.contrib import admin
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView

# The admin's own login form would be a way around the second factor: send it
# to the portal's two-step login instead (the query string, with next=, is kept).
admin_login = RedirectView.as_view(url=reverse_lazy("accounts:login"), query_string=True)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:profile", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("2fa/", include("twofactor.urls")),
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
]
handler500 = "portal.middleware.server_error"
