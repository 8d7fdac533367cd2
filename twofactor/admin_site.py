"""The Django admin, reachable only by staff sessions that passed the second factor."""

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext

from twofactor import services
from twofactor.conf import app_settings
from twofactor.forms import second_factor_way_in


class TwoFactorAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        # A staff password alone is not enough: the session must have passed a
        # code (at login or when enrolling), so a stolen staff password, or a
        # session from before 2FA was switched on, does not open the admin.
        return super().has_permission(request) and services.is_session_verified(request=request)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # The admin's own login form would be a way around the second factor.
        if not request.user.is_authenticated:
            return redirect_to_login(request.GET.get("next", ""), app_settings.LOGIN_URL)
        if not request.user.is_staff:
            raise PermissionDenied
        way_in = second_factor_way_in(user=request.user, page=gettext("the admin"))
        messages.warning(
            request,
            gettext("The admin needs two-factor authentication. %(way_in)s") % {"way_in": way_in},
        )
        return redirect(app_settings.DONE_URL)
