from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from accounts import (
    account_changes,
    device_cookies,
    login_throttle,
    preferences,
    security_log,
    session_records,
    session_views,
    tasks,
)
from accounts.forms import EmailAuthenticationForm, PasswordResetForm, SetNewPasswordForm
from accounts.http import AuthenticatedHttpRequest
from portal import site
from twofactor import middleware as twofactor_middleware
from twofactor import services as twofactor_services
from twofactor import views as twofactor_views


class LoginView(twofactor_views.LoginView):
    """Step 1: e-mail and password, then (with 2FA) twofactor's code step."""

    form_class = EmailAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: auth_forms.AuthenticationForm) -> HttpResponse:
        # Refused by the password lock (ThrottleBackend, before any hashing): the page
        # says why and until when, not "wrong password". One check, in the backend.
        until = getattr(self.request, login_throttle.BLOCKED_UNTIL_ATTR, None)
        if until is not None:
            return render(self.request, "accounts/locked_out.html", {"until": until}, status=429)
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    # Django's LogoutView accepts POST only: a GET (an <img src> on another
    # site, a prefetch) cannot log anyone out.

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:  # said on the login page that follows (a new, empty session)
            messages.info(request, gettext("You are logged out."))
        return response


@login_required
@never_cache
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    status = twofactor_services.get_status(user=user)
    policy = twofactor_middleware.request_policy(request)  # as the banner read it
    trusted = twofactor_services.list_trusted_browsers(user=user) if status.active else []
    this_trust = twofactor_services.current_browser_trust(request=request, user=user)
    context = {
        "two_factor": status,
        "two_factor_required": twofactor_services.is_two_factor_required(user=user, policy=policy),
        "keys": twofactor_services.list_credentials(user=user) if status.keys else [],
        "trust_offered": policy.allow_trusted_browsers,
        # This browser first, as in the list of sessions.
        "trusted_browsers": sorted(
            ((browser, browser.pk == this_trust) for browser in trusted), key=lambda row: not row[1]
        ),
        "sessions": session_records.describe(
            session_records.open_sessions(user=user),
            current=session_records.current_record_id(request),
        ),
        "security_events": security_log.recent_events(user=user),
        "messages_in_place": (session_views.IN_SESSIONS_CARD,),  # shown in their card
    }
    return render(request, "accounts/profile.html", context)


@method_decorator(never_cache, name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    form_class = PasswordResetForm

    def form_valid(self, form: auth_forms.PasswordResetForm) -> HttpResponse:
        # Past the limits the page looks exactly the same, but no e-mail goes out:
        # the form cannot be used to flood someone's inbox. The worker looks the
        # address up, so known and unknown addresses cost this request the same.
        email = form.cleaned_data["email"]
        if login_throttle.is_reset_mail_allowed(self.request, email):
            domain, use_https = site.domain_and_scheme(self.request)
            task = partial(
                tasks.send_password_reset.enqueue, email=email, domain=domain, use_https=use_https
            )
            transaction.on_commit(task)
        return redirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")
    # post_reset_login stays False: logging in here would skip the second factor.

    # Its save() is accounts.account_changes.reset_password: the new password, its
    # log event and the lifted locks commit together.
    form_class = SetNewPasswordForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # A valid link proves the mailbox: its page speaks the account's language, as its
        # e-mail did (an invalid one says nothing of the account, not even its language).
        language = getattr(self.user, "language", "") if self.validlink else ""
        if preferences.is_language(language):
            translation.activate(language)
            self.request.LANGUAGE_CODE = language
        return context

    def form_valid(self, form: auth_forms.SetPasswordForm) -> HttpResponse:
        try:
            response = super().form_valid(form)
        except account_changes.ResetLinkUsed:
            # Posted twice at once: the other post changed the password; this link is spent.
            self.validlink = False
            return self.render_to_response(self.get_context_data(form=form))
        # The browser that proved the mailbox is known to the password lock again
        # (the reset revoked every device cookie): a stranger's guesses cannot lock
        # its owner out right after the reset.
        device_cookies.remember_login(self.request, email=form.user.get_username())
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
