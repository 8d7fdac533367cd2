"""Removing trusted browsers (listed on the project's profile page). POST only.

No "confirm it's you": removing trust only ever asks for more (a code at the next login).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from twofactor import services
from twofactor.decorators import auth_view
from twofactor.http import AuthenticatedHttpRequest
from twofactor.responses import done


@login_required
@auth_view
@require_POST
def remove_trusted_browser(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    is_this_browser = pk == services.current_browser_trust(request=request, user=request.user)
    if services.remove_trusted_browser(user=request.user, pk=pk):
        messages.success(
            request,
            gettext("This browser will ask for a code next time you log in.")
            if is_this_browser
            else gettext("That browser will ask for a code at its next login."),
        )
    else:  # removed already (another tab), expired, or not the user's: nothing to say but that
        messages.info(request, gettext("That browser is no longer trusted."))
    return done(request)


@login_required
@auth_view
@require_POST
def remove_all_trusted_browsers(request: AuthenticatedHttpRequest) -> HttpResponse:
    if services.forget_trusted_browsers(user=request.user):
        messages.success(
            request, gettext("No browser is trusted any more: each asks for a code at login.")
        )
    else:
        messages.info(request, gettext("No browser is trusted."))
    return done(request)
