"""Passkeys and security keys on the user's own page: add one, name it, remove it.

Like every twofactor view, each is a dialog with htmx and a page without it. The
ceremony itself runs in the browser (twofactor/static/twofactor/webauthn.js): the page
carries the options, the script asks the authenticator and posts its answer back to the
same URL in a hidden field. Without JavaScript or WebAuthn the page says what is needed.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from twofactor import services
from twofactor.decorators import auth_view, sudo_view
from twofactor.forms import KeyNameForm, WebAuthnAnswerForm, key_error_message
from twofactor.http import AuthenticatedHttpRequest
from twofactor.models import WebAuthnCredential
from twofactor.responses import done, render_page


@sudo_view(title=_("Add a passkey"), two_factor_active=True)
def add_key(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = WebAuthnAnswerForm(request.POST if request.method == "POST" else None)
    error = ""
    if form.is_bound:
        if form.is_valid():
            try:
                credential = services.finish_registration(
                    user=request.user,
                    session=request.session,
                    response_json=form.cleaned_data["credential"],
                    now=timezone.now(),
                )
            except services.NotEnrolled:  # Disable 2FA in another tab meanwhile
                messages.info(request, gettext("Two-factor authentication is off."))
                return done(request)
            except services.WebAuthnError as refused:
                error = key_error_message(refused, now=timezone.now(), adding=True)
            else:
                # Named next, as GitHub does: the default name is a guess from the model.
                return redirect(reverse("twofactor:rename_key", args=[credential.pk]) + "?added=1")
        else:
            error = str(form.errors["credential"][0])
    options = services.begin_registration(user=request.user, session=request.session)
    return render_page(request, "twofactor/add_key.html", {"options": options, "error": error})


@login_required
@auth_view
@require_http_methods(["GET", "POST"])
def rename_key(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    credential = _own_key_or_done(request, pk)
    if credential is None:
        return done(request)
    form = KeyNameForm(request.POST or None, initial={"name": credential.name})
    if request.method == "POST" and form.is_valid():
        try:
            renamed = services.rename_credential(
                user=request.user, pk=pk, name=form.cleaned_data["name"]
            )
        except services.UnknownCredential:
            messages.info(request, gettext("That passkey or security key has been removed."))
        else:
            messages.success(
                request, gettext("Saved. Your key is called “%(name)s”.") % {"name": renamed.name}
            )
        return done(request)
    context = {"form": form, "credential": credential, "added": request.GET.get("added") == "1"}
    return render_page(request, "twofactor/rename_key.html", context)


@sudo_view(title=_("Remove a passkey"), two_factor_active=True)
def remove_key(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    credential = _own_key_or_done(request, pk)
    if credential is None:
        return done(request)
    if request.method == "POST" and "confirm" in request.POST:
        try:
            services.remove_credential(user=request.user, pk=pk)
        except services.LastSecondFactor:
            messages.error(
                request,
                gettext(
                    "This is your last second factor. To stop using two-factor "
                    "authentication, use Disable 2FA."
                ),
            )
        except services.UnknownCredential:
            messages.info(request, gettext("That passkey or security key has been removed."))
        else:
            messages.success(
                request,
                gettext("“%(name)s” was removed: it no longer signs in to your account.")
                % {"name": credential.name},
            )
        return done(request)
    status = services.get_status(user=request.user)
    return render_page(
        request, "twofactor/remove_key.html", {"credential": credential, "status": status}
    )


def _own_key_or_done(request: AuthenticatedHttpRequest, pk: int) -> WebAuthnCredential | None:
    """The user's key `pk`; None (with a message) if it is gone, or was never theirs:
    a page left open in another tab may name a key removed since."""
    try:
        return services.get_credential(user=request.user, pk=pk)
    except services.UnknownCredential:
        messages.info(request, gettext("That passkey or security key has been removed."))
        return None
