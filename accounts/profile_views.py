"""My profile's own actions: edit details, change password, change email, close the account.

Each is a dialog with htmx and a page of its own without JavaScript (the same
template), behind "confirm it's you" (twofactor's sudo mode), recorded in the
security log and announced by e-mail (accounts.account_changes does both).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from accounts import account_changes
from accounts.forms import ChangeEmailForm, ChangePasswordForm, CloseAccountForm, DetailsForm
from accounts.http import AuthenticatedHttpRequest, HtmxHttpRequest
from portal import site
from twofactor.decorators import View, sudo_view

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# The new-password fields of Change password, hidden like the sudo answer.
PASSWORD_FIELDS = ("old_password", "new_password1", "new_password2")


def profile_action(title: "StrOrPromise") -> Callable[[View], View]:
    """Every action of My profile: logged in, no cache, CSRF, its passwords hidden from
    error reports, and "confirm it's you" first."""
    return sudo_view(title=title, secret_fields=PASSWORD_FIELDS)


# The address a confirmation link just went to, for the "Check your inbox" page.
EMAIL_SENT_SESSION_KEY = "accounts_email_change_sent_to"


def _back_to_profile(request: HtmxHttpRequest) -> HttpResponse:
    # A full reload for htmx, so Your details and the messages show the change.
    url = reverse("accounts:profile")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@profile_action(_("Edit details"))
def edit_details(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = DetailsForm(request.POST or None, initial={"name": request.user.name})
    if request.method == "POST" and form.is_valid():
        if account_changes.change_name(user=request.user, name=form.cleaned_data["name"]):
            messages.success(request, gettext("Your details are saved."))
        return _back_to_profile(request)
    return render(request, "accounts/edit_details.html", {"form": form})


@profile_action(_("Change password"))
def change_password(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ChangePasswordForm(request.user, request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        # The save ends every other session (the session hash follows the password)
        # and voids half-finished logins; this session goes on under a new key.
        form.save()
        update_session_auth_hash(request, form.user)
        messages.success(
            request, gettext("Your password is changed. Other browsers were signed out.")
        )
        return _back_to_profile(request)
    return render(request, "accounts/change_password.html", {"form": form})


@profile_action(_("Change email"))
def change_email(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ChangeEmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        new_email = form.cleaned_data["email"]
        try:
            account_changes.request_email_change(
                user=request.user,
                new_email=new_email,
                link_for=lambda token: site.absolute_url(
                    request, reverse("accounts:confirm_email", args=[token])
                ),
            )
        except account_changes.SameAddress:
            form.add_error("email", gettext("That is already your address."))
        except account_changes.AddressTaken:
            form.add_error(
                "email", gettext("Another account uses that address. Choose another one.")
            )
        except account_changes.TooManyRequests:
            form.add_error(
                "email",
                gettext(
                    "A link was sent a moment ago, or several this hour. Use the link you have, "
                    "or try again in a few minutes."
                ),
            )
        else:
            # POST, redirect, GET: a reload of "Check your inbox" sends nothing again.
            request.session[EMAIL_SENT_SESSION_KEY] = new_email
            return redirect("accounts:change_email_sent")
    return render(request, "accounts/change_email.html", {"form": form})


@login_required
@never_cache
def change_email_sent(request: AuthenticatedHttpRequest) -> HttpResponse:
    new_email = request.session.get(EMAIL_SENT_SESSION_KEY)
    if not new_email:
        return _back_to_profile(request)
    return render(request, "accounts/change_email_sent.html", {"new_email": new_email})


LINK_MESSAGES = {
    account_changes.LinkInvalid: _(
        "This link does not work any more: it expired (links last 24 hours), was already "
        "used, or a newer change was asked for. Ask for the change again on My profile."
    ),
    account_changes.LinkForAnotherAccount: _(
        "This link is for another account. Log out, and open it again logged in to the "
        "account that asked for the change."
    ),
    account_changes.AddressTaken: _(
        "Another account started using that address meanwhile, so it cannot be yours. "
        "Ask for the change again with another address."
    ),
}


@login_required
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def confirm_email(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    """Opening the link shows a button; only pressing it (a POST) changes the address,
    so a mail scanner or a prefetch that opens links changes nothing."""
    if request.method == "POST":
        try:
            change = account_changes.confirm_email_change(user=request.user, token=token)
        except tuple(LINK_MESSAGES) as error:
            context = {"refusal": LINK_MESSAGES[type(error)]}
            return render(request, "accounts/confirm_email.html", context, status=400)
        messages.success(
            request,
            gettext("Your email address is now %(email)s.") % {"email": change.new_email},
        )
        return redirect("accounts:profile")
    return render(request, "accounts/confirm_email.html", {"token": token})


@profile_action(_("Delete account"))
def close_account(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CloseAccountForm(request.POST or None, user=request.user)
    refusal = ""
    if request.method == "POST" and form.is_valid():
        try:
            account_changes.close_account(user=request.user)
        except account_changes.LastSuperuser:
            refusal = gettext(
                "This is the last superuser account, so it cannot be deleted: the portal "
                "would have no one left to manage it. Make another account a superuser first."
            )
        else:
            logout(request)
            url = reverse("accounts:account_closed")
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"form": form, "refusal": refusal}
    return render(request, "accounts/close_account.html", context)


@never_cache
def account_closed(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/account_closed.html")
