"""Sessions: the user's own (sign one out, or all others) and staff ending a user's."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import account_changes, session_records
from accounts.forms import EndSessionsForm
from accounts.http import AuthenticatedHttpRequest
from accounts.models import may_manage
from accounts.staff_views import (
    RESET_PERMISSION,
    VIEW_USERS_PERMISSION,
    back_to_list,
    has_staff_permission,
    list_url,
    staff_required,
)
from twofactor import services as twofactor_services
from twofactor.decorators import auth_view, sudo_view

# What these actions say is shown in the sessions card, where the page opens after them
# (#sessions), not at the top of My profile, out of view.
IN_SESSIONS_CARD = "sessions"


def _success(request: AuthenticatedHttpRequest, text: str) -> None:
    messages.success(request, text, extra_tags=IN_SESSIONS_CARD)


def _info(request: AuthenticatedHttpRequest, text: str) -> None:
    messages.info(request, text, extra_tags=IN_SESSIONS_CARD)


def _to_profile() -> HttpResponse:
    return redirect(reverse("accounts:profile") + "#sessions")


@login_required
@auth_view
@require_POST
def sign_out_session(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    if pk == session_records.current_record_id(request):
        _info(request, gettext("To sign out of this browser, use Log out in the account menu."))
    elif account_changes.sign_out_sessions(user=request.user, request=request, only=pk):
        # Its trust is not tied to the session: said where there is trust to remove.
        if twofactor_services.list_trusted_browsers(user=request.user):
            message = gettext(
                "That session is signed out. If you trusted that browser, remove it under "
                "Trusted browsers too, or it will log in again without a code."
            )
        else:
            message = gettext("That session is signed out.")
        _success(request, message)
    else:  # signed out already (another tab), or not this user's
        _info(request, gettext("That session was already signed out."))
    return _to_profile()


@login_required
@auth_view
@require_POST
def sign_out_other_sessions(request: AuthenticatedHttpRequest) -> HttpResponse:
    # Read before: signing out removes the other browsers' trust.
    trusted = twofactor_services.list_trusted_browsers(user=request.user)
    this_browser = twofactor_services.current_browser_trust(request=request, user=request.user)
    count = account_changes.sign_out_sessions(user=request.user, request=request)
    if count and any(browser.pk != this_browser for browser in trusted):
        _success(
            request,
            ngettext(
                "Signed out of %(count)s other session. "
                "Other browsers you trusted will ask for a code again.",
                "Signed out of %(count)s other sessions. "
                "Other browsers you trusted will ask for a code again.",
                count,
            )
            % {"count": count},
        )
    elif count:
        _success(
            request,
            ngettext(
                "Signed out of %(count)s other session.",
                "Signed out of %(count)s other sessions.",
                count,
            )
            % {"count": count},
        )
    else:
        _info(request, gettext("You are not signed in anywhere else."))
    return _to_profile()


@staff_required(VIEW_USERS_PERMISSION)
@never_cache
@require_GET
def user_sessions(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(get_user_model(), pk=pk)
    context = {
        "target": target,
        "sessions": session_records.open_sessions(user=target),
        "can_end": has_staff_permission(request.user, RESET_PERMISSION)
        and may_manage(request.user, target)
        and target.pk != request.user.pk,
        "back": list_url(request),
    }
    return render(request, "accounts/user_sessions.html", context)


@staff_required(RESET_PERMISSION)
# Signing someone out is support's account recovery: a hijacked staff session must
# not be enough, so staff confirm it is them.
@sudo_view(title=_("Sign out everywhere"), cancel_url=list_url)
def end_user_sessions(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(get_user_model(), pk=pk)
    back = list_url(request)
    context: dict = {"target": target, "back": back}
    if target.pk == request.user.pk or not may_manage(request.user, target):
        context["refusal"] = (
            gettext("Use My profile to sign out of your own sessions.")
            if target.pk == request.user.pk
            else gettext("Only a superuser can sign a staff member out.")
        )
        status = 200 if request.htmx else 403  # htmx 2 would not show a 403 dialog
        return render(request, "accounts/end_user_sessions.html", context, status=status)
    form = EndSessionsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account_changes.sign_out_everywhere_by_staff(
            user=target, actor=request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(
            request,
            gettext(
                "%(email)s is signed out everywhere. Their trusted browsers will ask for a code."
            )
            % {"email": target.email},
        )
        return back_to_list(request, back)
    context["form"] = form
    return render(request, "accounts/end_user_sessions.html", context)
