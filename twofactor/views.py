"""Request -> form -> service -> template. Every dialog is also a full page.

Templates extend `request.htmx|yesno:"twofactor/dialog.html,twofactor/base.html"`:
the same template is a <dialog> fragment for htmx and a whole page without
JavaScript. A project restyles them by overriding those two (or any template)
in its own templates/twofactor/.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import redirect, resolve_url
from django.utils import dateformat, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from twofactor import otp, services
from twofactor.conf import app_settings
from twofactor.decorators import auth_view, sudo_view
from twofactor.forms import (
    EnableForm,
    VerificationCodeForm,
    WebAuthnAnswerForm,
    code_error_message,
    key_error_message,
)
from twofactor.http import AuthenticatedHttpRequest
from twofactor.models import TOTPDevice
from twofactor.qr import qr_png_data_uri
from twofactor.responses import done, render_page
from twofactor.signals import Method

# The posted field that carries a passkey's answer on the login page (and the code step).
PASSKEY_ANSWER_FIELD = "credential"
# The code step's "Don't ask for a code on this browser" box (with a code or a key).
REMEMBER_BROWSER_FIELD = "remember_browser"
PASSKEY_REFUSED = _(
    "That passkey was not accepted. It may have been removed from your account. "
    "Try again, or log in with your email and password."
)


class LoginView(auth_views.LoginView):
    """Step 1: Django's LoginView (and its security decorators), then the code step.

    A right password for a user with 2FA does NOT log them in: it starts a
    pending login and sends them to the code step. "Sign in with a passkey" posts
    here too (PASSKEY_ANSWER_FIELD): a passkey verified with the user's PIN or
    biometrics stands for both steps. Projects subclass this for their own form
    and template.
    """

    template_name = "twofactor/password_login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if PASSKEY_ANSWER_FIELD in request.POST:
            return self.passkey_sign_in()
        return super().post(request, *args, **kwargs)

    def passkey_sign_in(self) -> HttpResponse:
        answer = WebAuthnAnswerForm(self.request.POST)
        if answer.is_valid():
            try:
                services.log_in_with_passkey(
                    request=self.request,
                    binding=_browser_secret(self.request),
                    response_json=answer.cleaned_data["credential"],
                )
            except services.WebAuthnError:
                pass
            else:
                return HttpResponseRedirect(self.get_success_url())
        # Whatever went wrong (an unknown key, another site's, a bad signature, a stale
        # challenge): one answer, as a wrong password gets one, so no key's existence
        # shows. Worded for someone who typed nothing: the usual cause is a passkey still
        # on the device after it was removed here.
        form = self.get_form_class()(self.request)
        return self.render_to_response(
            self.get_context_data(form=form, passkey_error=PASSKEY_REFUSED)
        )

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        try:
            services.begin_pending_login(
                request=self.request, user=user, next_url=self.get_redirect_url()
            )
        except services.NotEnrolled:
            # No second factor: a half-finished login of someone else here ends now.
            services.clear_pending_login(session=self.request.session)
            response = super().form_valid(form)
            requirement = services.two_factor_requirement(user=user)
            if requirement is not None and requirement.is_past():
                # Setup comes next, and it asks "confirm it's you": the password typed a
                # moment ago is that proof (the user has no second factor to add to it).
                services.start_sudo(request=self.request)
            return response
        # The password was right; a browser the user trusted skips only the code.
        if services.log_in_trusted_browser(request=self.request, user=user):
            return HttpResponseRedirect(self.get_success_url())
        return redirect("twofactor:login_code")

    def get_form(self, form_class: Any = None) -> AuthenticationForm:
        form = super().get_form(form_class)
        # Passkey autofill: the browser offers this site's passkeys in the e-mail box.
        form.fields["username"].widget.attrs["autocomplete"] = "username webauthn"
        return form

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"issuer": app_settings.ISSUER, **super().get_context_data(**kwargs)}


@auth_view
@require_http_methods(["POST"])
def passkey_options(request: HttpRequest) -> HttpResponse:
    """navigator.credentials.get() options for "Sign in with a passkey", fetched by the
    script when the browser can use them. Stores nothing (no session, no row): the
    challenge is signed over this browser's CSRF secret. POST, so CSRF is checked."""
    options = services.begin_passkey_sign_in(binding=_browser_secret(request))
    return HttpResponse(options, content_type="application/json")


def _browser_secret(request: HttpRequest) -> str:
    """This browser's CSRF secret (the unmasked value behind its token; csrf_protect has
    read it from the cookie or the session before any view runs): what binds a passkey
    sign-in challenge to the browser that asked for it."""
    get_token(request)  # makes sure there is one
    return str(request.META.get("CSRF_COOKIE", ""))


@sudo_view(title=_("Enable 2FA"), two_factor_active=False)
def enable(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = EnableForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        try:
            services.confirm_enrollment(
                user=request.user,
                session=request.session,
                code=form.cleaned_data["code"],
                now=now,
            )
        except services.TwoFactorError as error:
            form.add_error("code", code_error_message(error, now=now))
        else:
            # Turning 2FA on may end the user's other sessions (a listener of
            # two_factor_enabled may bump the session hash, as this portal's does); this
            # one has just proved the device: it stays, as good as a login code.
            update_session_auth_hash(request, request.user)
            services.mark_session_verified(
                session=request.session, user=request.user, method=Method.TOTP
            )
            # Setup ends with backup codes, so nobody leaves it with none.
            services.regenerate_and_stash_backup_codes(
                user=request.user, session=request.session, at_enrollment=True
            )
            # No message: the codes page says "Two-factor authentication is on" itself.
            # A plain redirect: htmx follows it inside the dialog, to the codes.
            return redirect("twofactor:new_backup_codes")
    try:
        # After a refused code: the same pending secret, or a new one if it expired.
        device = services.begin_enrollment(user=request.user, session=request.session)
    except services.AlreadyEnabled:
        messages.info(request, gettext("Two-factor authentication is already on."))
        return done(request)
    return render_page(request, "twofactor/enable.html", _enable_context(request, form, device))


def _enable_context(request: HttpRequest, form: EnableForm, device: TOTPDevice) -> dict:
    secret = device.secret
    uri = otp.provisioning_uri(
        secret=secret, account_name=request.user.get_username(), issuer=app_settings.ISSUER
    )
    return {
        "form": form,
        "secret_grouped": otp.group_secret(secret),
        "otpauth_uri": uri,
        "qr_data_uri": qr_png_data_uri(uri),
        "expires_at": device.created_at + services.PENDING_ENROLLMENT_TTL,
    }


def _disable_refusal(request: HttpRequest) -> HttpResponse | None:
    """Under the security policy's requirement, Disable 2FA is explained, not offered."""
    if not request.user.is_authenticated or not services.is_two_factor_required(user=request.user):
        return None
    # Whom the requirement covers, for the page to say in a whole sentence.
    context = {"required_for_everyone": services.get_policy().require_for_everyone}
    status = 200 if getattr(request, "htmx", False) else 403  # htmx 2 swaps no 403
    return render_page(request, "twofactor/disable_refused.html", context, status=status)


@sudo_view(title=_("Disable 2FA"), two_factor_active=True, refusal=_disable_refusal)
def disable(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST" and "confirm" in request.POST:
        try:
            services.disable_two_factor(user=request.user)
        except services.TwoFactorRequired:  # the policy changed while the dialog was open
            return _disable_refusal(request) or done(request)
        messages.success(
            request,
            gettext(
                "Two-factor authentication is off. Your authenticator app, passkeys and "
                "security keys and backup codes were removed."
            ),
        )
        return done(request)
    status = services.get_status(user=request.user)
    return render_page(request, "twofactor/disable.html", {"status": status})


@sudo_view(title=_("Generate backup code"), two_factor_active=True)
def backup_codes(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST" and "generate" in request.POST:
        services.regenerate_and_stash_backup_codes(user=request.user, session=request.session)
        # POST, redirect, GET: a reload or the back button never makes a new set.
        return redirect("twofactor:new_backup_codes")
    status = services.get_status(user=request.user)
    return render_page(request, "twofactor/backup_codes_intro.html", {"status": status})


@login_required
@auth_view
@require_http_methods(["GET"])
def new_backup_codes(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The new codes, shown once; afterwards the page says so and offers a new set."""
    new = services.take_new_backup_codes(user=request.user, session=request.session)
    if new is None:
        if not services.is_two_factor_enabled(user=request.user):
            return done(request)
        status = services.get_status(user=request.user)
        context = {"status": status, "already_shown": True}
        return render_page(request, "twofactor/backup_codes_intro.html", context)
    context = {
        "codes": new.codes,
        "at_enrollment": new.at_enrollment,
        "generated_at": timezone.now(),
        "download_text": _backup_codes_text(request, new.codes),
    }
    return render_page(request, "twofactor/backup_codes.html", context)


def _backup_codes_text(request: HttpRequest, codes: list[str]) -> str:
    # The time in the user's own zone, with its abbreviation ("2025-03-14 09:26 UTC").
    generated = dateformat.format(timezone.localtime(timezone.now()), "Y-m-d H:i T")
    lines = [
        gettext("%(issuer)s - backup codes") % {"issuer": app_settings.ISSUER},
        gettext("Account: %(username)s") % {"username": request.user.get_username()},
        gettext("Generated: %(time)s") % {"time": generated},
        "",
        gettext("Each code works once. Generating new codes invalidates these."),
        "",
        *codes,
        "",
    ]
    return "\n".join(lines)


@auth_view
@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """Step 2 of login: the user is not logged in until this accepts a code."""
    if request.user.is_authenticated:
        return redirect(app_settings.DONE_URL)
    now = timezone.now()
    try:
        pending = services.get_pending_login(request=request, now=now)
    except services.PendingLoginExpired:
        messages.warning(
            request, gettext("Your sign-in took longer than 10 minutes. Please start again.")
        )
        return redirect(app_settings.LOGIN_URL)
    except services.PendingLoginVoided:
        messages.warning(
            request,
            gettext(
                "The account's password or sign-in settings changed while you were signing "
                "in. Please start again."
            ),
        )
        return redirect(app_settings.LOGIN_URL)
    except services.PendingLoginMissing:
        if request.method == "POST":  # a code typed into a page whose session is gone
            messages.warning(
                request,
                gettext(
                    "Your sign-in ended before the code was checked (this browser's session "
                    "expired or was closed). Please enter your email and password again."
                ),
            )
        else:
            messages.info(request, gettext("Enter your email and password first."))
        return redirect(app_settings.LOGIN_URL)

    is_key_answer = request.method == "POST" and PASSKEY_ANSWER_FIELD in request.POST
    posted = request.POST if request.method == "POST" else None
    form = VerificationCodeForm(None if is_key_answer else posted)
    key_form = WebAuthnAnswerForm(posted if is_key_answer else None)
    drift = False
    lock_message = ""
    key_error = ""
    if request.method == "GET":
        # A lock is said when the page opens, not only after the next code is typed.
        locked_until = services.code_entry_locked_until(user=pending.user, now=now)
        if locked_until is not None:
            lock_message = code_error_message(services.AccountLocked(locked_until), now=now)
    verification = None
    try:
        if key_form.is_bound and not key_form.is_valid():
            key_error = str(key_form.errors["credential"][0])
        elif key_form.is_bound:
            verification = services.complete_pending_login_with_key(
                request=request,
                pending=pending,
                response_json=key_form.cleaned_data["credential"],
                now=now,
            )
        elif form.is_bound and form.is_valid():
            verification = services.complete_pending_login(
                request=request, pending=pending, code=form.cleaned_data["code"], now=now
            )
    except services.PendingLoginMissing:
        messages.warning(
            request, gettext("Your sign-in could not be completed. Please start again.")
        )
        return redirect(app_settings.LOGIN_URL)
    except services.TwoFactorError as error:
        if key_form.is_bound:
            key_error = key_error_message(error, now=now, adding=False)
        else:
            drift = isinstance(error, services.ClockDrift)
            form.add_error("code", code_error_message(error, now=now))
    if verification is not None:
        if verification.method == Method.BACKUP:
            _warn_about_backup_codes(request, verification.remaining_backup_codes or 0)
        next_url = services.safe_next_url(request, pending.next_url)
        response = redirect(next_url or resolve_url(app_settings.DONE_URL))
        if request.POST.get(REMEMBER_BROWSER_FIELD) and services.is_trust_offered():
            try:
                services.trust_browser(
                    request=request, response=response, user=pending.user, now=now
                )
            except services.TrustNotOffered:
                pass  # switched off a moment ago: logged in, as asked, but not remembered
        return response
    key_options = _key_options(request, pending)
    if key_options:
        # The key button comes first: the code box does not take the focus (nor, on a
        # phone, raise the keyboard over the button).
        form.fields["code"].widget.attrs.pop("autofocus", None)
    context = {
        "form": form,
        "drift": drift,
        "lock_message": lock_message,
        "key_error": key_error,
        # The key comes first where the user has one: it cannot be phished.
        "key_options": key_options,
        "remember_field": REMEMBER_BROWSER_FIELD,
        "remember_checked": bool(request.POST.get(REMEMBER_BROWSER_FIELD)),
        "trust_days": app_settings.TRUSTED_BROWSER_DAYS if services.is_trust_offered() else 0,
    }
    return render_page(request, "twofactor/login_code.html", context)


def _key_options(request: HttpRequest, pending: services.PendingLogin) -> str:
    """navigator.credentials.get() options for the pending user's keys ("" if they have
    none): a new challenge each time the page is shown, bound to this pending login."""
    try:
        return services.begin_authentication(
            user=pending.user,
            session=request.session,
            bound_to=services.pending_login_binding(session=request.session),
        )
    except services.NotEnrolled:
        return ""


def _warn_about_backup_codes(request: HttpRequest, remaining: int) -> None:
    if remaining == 0:
        messages.warning(
            request,
            gettext("You used your last backup code. Generate a new set on this page now."),
        )
    else:
        # A reminder, not good news: warning styling, like every reminder.
        messages.warning(
            request,
            ngettext(
                "You signed in with a backup code. %(count)s unused backup code left.",
                "You signed in with a backup code. %(count)s unused backup codes left.",
                remaining,
            )
            % {"count": remaining},
        )
