"""Request -> form -> service -> template. Every dialog is also a full page.

Templates extend `request.htmx|yesno:"dialog.html,base.html"`: the same
template is a <dialog> fragment for htmx and a whole page without JavaScript.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from twofactor import otp, services
from twofactor.forms import EnableForm, SudoForm, VerificationCodeForm, code_error_message
from twofactor.models import TOTPDevice
from twofactor.qr import qr_png_data_uri

PROFILE_URL = settings.LOGIN_REDIRECT_URL


def _done(request: HttpRequest) -> HttpResponse:
    """Back to My profile: a full reload for htmx so the section and messages refresh."""
    url = resolve_url(PROFILE_URL)
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _auth_view(view: Callable) -> Callable:
    """The decorators every view that handles passwords or codes gets."""
    view = sensitive_post_parameters("password", "code")(view)
    view = csrf_protect(view)
    return never_cache(view)


def sudo_required(*, title: str) -> Callable:
    """Ask for the password (and a code with 2FA) unless proven in the last 10 minutes.

    The question is asked at the action's own URL, so the dialog (or page) the
    user opened simply continues once they have answered it.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if services.has_recent_proof(request=request):
                return view(request, *args, **kwargs)
            needs_code = services.is_two_factor_enabled(user=request.user)
            is_answer = request.method == "POST" and "sudo" in request.POST
            # The action's own form, posted after the 10 minutes ran out (a slow setup):
            # asked again, it is carried through the question so nothing is typed twice.
            pending = _resumed_fields(request.POST) if is_answer else _action_fields(request)
            form = SudoForm(
                request.POST if is_answer else None, request=request, needs_code=needs_code
            )
            if is_answer and form.is_valid():
                if pending:
                    request.POST = pending  # continue the action that was interrupted
                    return view(request, *args, **kwargs)
                return redirect(request.get_full_path())  # htmx follows it inside the dialog
            context = {
                "form": form,
                "title": title,
                "pending": pending,
                "expired": services.had_proof(request=request),
            }
            return render(request, "twofactor/sudo.html", context)

        return wrapper

    return decorator


RESUME_PREFIX = "resume-"


def _action_fields(request: HttpRequest) -> QueryDict:
    """The fields of an action's form that reached the question instead of the action."""
    fields = QueryDict(mutable=True)
    if request.method == "POST":
        for name, values in request.POST.lists():
            # Passwords are never written back into a page: those are typed again.
            if name != "csrfmiddlewaretoken" and "password" not in name:
                fields.setlist(name, values)
    return fields


def _resumed_fields(post: QueryDict) -> QueryDict:
    fields = QueryDict(mutable=True)
    for name, values in post.lists():
        if name.startswith(RESUME_PREFIX):
            fields.setlist(name.removeprefix(RESUME_PREFIX), values)
    return fields


@login_required
@_auth_view
@require_http_methods(["GET", "POST"])
@sudo_required(title="Enable 2FA")
def enable(request: HttpRequest) -> HttpResponse:
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
            # Turning 2FA on may end the user's other sessions (accounts bumps the session
            # hash on two_factor_enabled); this one has just proved the device: it stays,
            # as good as a login code, under a new session key.
            update_session_auth_hash(request, request.user)
            services.mark_session_verified(request=request)
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
        messages.info(request, "Two-factor authentication is already on.")
        return _done(request)
    return render(request, "twofactor/enable.html", _enable_context(request, form, device))


def _enable_context(request: HttpRequest, form: EnableForm, device: TOTPDevice) -> dict:
    secret = device.secret
    uri = otp.provisioning_uri(
        secret=secret, account_name=request.user.get_username(), issuer=settings.TWOFACTOR_ISSUER
    )
    return {
        "form": form,
        "secret_grouped": otp.group_secret(secret),
        "otpauth_uri": uri,
        "qr_data_uri": qr_png_data_uri(uri),
        "expires_at": device.created_at + services.PENDING_ENROLLMENT_TTL,
    }


@login_required
@_auth_view
@require_http_methods(["GET", "POST"])
@sudo_required(title="Disable 2FA")
def disable(request: HttpRequest) -> HttpResponse:
    if not services.is_two_factor_enabled(user=request.user):
        return _done(request)
    if request.method == "POST" and "confirm" in request.POST:
        services.disable_two_factor(user=request.user)
        messages.success(
            request, "Two-factor authentication is off. Your backup codes were deleted."
        )
        return _done(request)
    status = services.get_status(user=request.user)
    return render(request, "twofactor/disable.html", {"status": status})


@login_required
@_auth_view
@require_http_methods(["GET", "POST"])
@sudo_required(title="Generate backup code")
def backup_codes(request: HttpRequest) -> HttpResponse:
    if not services.is_two_factor_enabled(user=request.user):
        return _done(request)
    if request.method == "POST" and "generate" in request.POST:
        services.regenerate_and_stash_backup_codes(user=request.user, session=request.session)
        # POST, redirect, GET: a reload or the back button never makes a new set.
        return redirect("twofactor:new_backup_codes")
    status = services.get_status(user=request.user)
    return render(request, "twofactor/backup_codes_intro.html", {"status": status})


@login_required
@_auth_view
@require_http_methods(["GET"])
def new_backup_codes(request: HttpRequest) -> HttpResponse:
    """The new codes, shown once; afterwards the page says so and offers a new set."""
    new = services.take_new_backup_codes(user=request.user, session=request.session)
    if new is None:
        if not services.is_two_factor_enabled(user=request.user):
            return _done(request)
        status = services.get_status(user=request.user)
        context = {"status": status, "already_shown": True}
        return render(request, "twofactor/backup_codes_intro.html", context)
    context = {
        "codes": new.codes,
        "at_enrollment": new.at_enrollment,
        "generated_at": timezone.now(),
        "download_text": _backup_codes_text(request, new.codes),
    }
    return render(request, "twofactor/backup_codes.html", context)


def _backup_codes_text(request: HttpRequest, codes: list[str]) -> str:
    lines = [
        f"{settings.PRODUCT_NAME} - backup codes",
        f"Account: {request.user.get_username()}",
        f"Generated: {timezone.now():%Y-%m-%d %H:%M} UTC",
        "",
        "Each code works once. Generating new codes invalidates these.",
        "",
        *codes,
        "",
    ]
    return "\n".join(lines)


@_auth_view
@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """Step 2 of login: the user is not logged in until this accepts a code."""
    if request.user.is_authenticated:
        return redirect(PROFILE_URL)
    now = timezone.now()
    try:
        pending = services.get_pending_login(request=request, now=now)
    except services.PendingLoginExpired:
        messages.warning(request, "Your sign-in took longer than 10 minutes. Please start again.")
        return redirect(settings.LOGIN_URL)
    except services.PendingLoginVoided:
        messages.warning(
            request,
            "The account's password or sign-in settings changed while you were signing in. "
            "Please start again.",
        )
        return redirect(settings.LOGIN_URL)
    except services.PendingLoginMissing:
        messages.info(request, "Enter your email and password first.")
        return redirect(settings.LOGIN_URL)

    form = VerificationCodeForm(request.POST or None)
    drift = False
    lock_message = ""
    if request.method == "GET":
        # A lock is said when the page opens, not only after the next code is typed.
        locked_until = services.code_entry_locked_until(user=pending.user, now=now)
        if locked_until is not None:
            lock_message = code_error_message(services.AccountLocked(locked_until), now=now)
    if request.method == "POST" and form.is_valid():
        try:
            verification = services.complete_pending_login(
                request=request, pending=pending, code=form.cleaned_data["code"], now=now
            )
        except services.PendingLoginMissing:
            messages.warning(request, "Your sign-in could not be completed. Please start again.")
            return redirect(settings.LOGIN_URL)
        except services.TwoFactorError as error:
            drift = isinstance(error, services.ClockDrift)
            form.add_error("code", code_error_message(error, now=now))
        else:
            if verification.method == services.METHOD_BACKUP:
                _warn_about_backup_codes(request, verification.remaining_backup_codes or 0)
            next_url = services.safe_next_url(request, pending.next_url)
            return redirect(next_url or resolve_url(PROFILE_URL))
    context = {"form": form, "drift": drift, "lock_message": lock_message}
    return render(request, "twofactor/login_code.html", context)


def _warn_about_backup_codes(request: HttpRequest, remaining: int) -> None:
    if remaining == 0:
        messages.warning(
            request,
            "You used your last backup code. Generate a new set on this page now.",
        )
    else:
        # A reminder, not good news: warning styling, like every reminder.
        messages.warning(
            request,
            f"You signed in with a backup code. {remaining} unused "
            f"backup code{'s' if remaining != 1 else ''} left.",
        )
