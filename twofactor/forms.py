from datetime import UTC, datetime
from typing import Any

from django import forms
from django.http import HttpRequest
from django.utils import dateformat, formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from twofactor import otp, services
from twofactor.models import CREDENTIAL_NAME_MAX_LENGTH
from twofactor.user_model import AuthUser

# A browser's answer to navigator.credentials.create()/get(), as JSON: a few kilobytes
# (a credential id is at most 1023 bytes; an attestation "none" carries no certificates).
WEBAUTHN_ANSWER_MAX_LENGTH = 64 * 1024


def code_error_message(error: services.TwoFactorError, *, now: datetime) -> str:
    """What a user is told when a code is refused. Never says more than they need."""
    if isinstance(error, services.AccountLocked):
        minutes = max(1, round((error.until - now).total_seconds() / 60))
        # In the user's own zone, with its abbreviation ("09:31 UTC", "10:31 CET").
        until = formats.date_format(timezone.localtime(error.until), "TIME_FORMAT")
        return ngettext(
            "Too many wrong codes. For your security, code entry is locked until %(time)s "
            "(about %(minutes)s minute from now).",
            "Too many wrong codes. For your security, code entry is locked until %(time)s "
            "(about %(minutes)s minutes from now).",
            minutes,
        ) % {"time": until, "minutes": minutes}
    if isinstance(error, services.ClockDrift):
        return " ".join(
            [
                _clock_drift(error.offset_seconds),
                _server_time(now),
                gettext("Turn on automatic date and time on your phone, then enter a new code."),
            ]
        )
    if isinstance(error, services.CodeReplayed):
        return gettext(
            "That code has already been used. Wait for the next code from your app "
            "(a new one appears every 30 seconds)."
        )
    if isinstance(error, services.NotEnrolled):
        return gettext(
            "This setup has expired (it lasts 10 minutes), or was started again in another "
            "browser, so the QR code you scanned will not work. Delete the entry you just "
            "added in your authenticator app, then scan the new QR code on this page and "
            "enter the code it gives."
        )
    if isinstance(error, services.InvalidBackupCode):
        message = gettext(
            "That backup code is not right, or it was already used: each one works once."
        )
    else:
        message = gettext("That code is not right. Check your authenticator app and try again.")
    if isinstance(error, services.InvalidCode) and error.attempts_left == 1:
        message += " " + gettext("One more wrong code locks code entry for a while.")
    return message


def _clock_drift(offset_seconds: int) -> str:
    seconds = abs(offset_seconds)
    if offset_seconds > 0:
        message = ngettext(
            "That code is for a different time: your device's clock looks about %(seconds)s "
            "second off (ahead of the server).",
            "That code is for a different time: your device's clock looks about %(seconds)s "
            "seconds off (ahead of the server).",
            seconds,
        )
    else:
        message = ngettext(
            "That code is for a different time: your device's clock looks about %(seconds)s "
            "second off (behind the server).",
            "That code is for a different time: your device's clock looks about %(seconds)s "
            "seconds off (behind the server).",
            seconds,
        )
    return message % {"seconds": seconds}


def _server_time(now: datetime) -> str:
    """The server's clock to set the device by: in UTC, which every phone can be compared
    with, and in the user's own zone too when that is not UTC (what their clock shows)."""
    server_time = now.astimezone(UTC).strftime("%H:%M:%S UTC")
    local = timezone.localtime(now)
    if local.tzname() == "UTC":
        return gettext("The server's time is %(server_time)s.") % {"server_time": server_time}
    return gettext("The server's time is %(server_time)s (%(local_time)s where you are).") % {
        "server_time": server_time,
        "local_time": dateformat.format(local, "H:i:s T"),
    }


def second_factor_way_in(*, user: AuthUser, page: str) -> str:
    """What a session that passed no second factor should do to open `page` (its name,
    translated by the caller)."""
    if services.is_two_factor_enabled(user=user):
        return gettext("Log out, then log in again with your code.")
    return gettext("Turn on 2FA below, then open %(page)s again.") % {"page": page}


def app_or_backup_code(raw: str) -> str:
    """`raw` if it has the shape of an app code or a backup code; else a form error.

    A typo is not an attempt: refused here, it never reaches the check, so it does
    not count towards the lock (nor is it logged as a wrong code).
    """
    if otp.normalize_totp_code(raw) is None and otp.normalize_backup_code(raw) is None:
        raise forms.ValidationError(
            gettext("Enter the 6-digit code from your app, or a backup code like acdef-ghjkm.")
        )
    return raw


class OneTimeCodeInput(forms.TextInput):
    """A code box that comes back empty after a refusal, like a password box.

    A refused code is stale (the app has moved on, or it was a typo to retype),
    and a code that was right but refused (account locked) must not be echoed
    into the page.
    """

    def format_value(self, value: Any) -> None:
        return None


class CodeField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("strip", True)
        super().__init__(**kwargs)


class EnableForm(forms.Form):
    code = CodeField(
        label=_("Six-digit code"),
        help_text=_("The code your authenticator app shows for this account."),
        widget=OneTimeCodeInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "autofocus": True,
                "placeholder": "123 456",
                "size": 8,
            }
        ),
    )

    def clean_code(self) -> str:
        code = otp.normalize_totp_code(self.cleaned_data["code"])
        if code is None:
            raise forms.ValidationError(
                gettext("Enter the six digits shown in your authenticator app.")
            )
        return code


class VerificationCodeForm(forms.Form):
    """One field for an app code or a backup code, told apart by shape."""

    code = CodeField(
        label=_("Verification code"),
        help_text=_(
            "Enter the 6-digit code from your authenticator app, "
            "or one of your backup codes (like acdef-ghjkm)."
        ),
        widget=OneTimeCodeInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
                "size": 12,
            }
        ),
    )

    def clean_code(self) -> str:
        return app_or_backup_code(self.cleaned_data["code"])


class SudoForm(forms.Form):
    """Confirm it is really you: password, and a code when 2FA is active."""

    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    code = CodeField(
        label=_("Verification code"),
        required=False,
        help_text=_("The 6-digit code from your authenticator app, or a backup code."),
        widget=OneTimeCodeInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off"}),
    )

    # A passkey's or security key's answer (twofactor/webauthn.js), instead of the code.
    credential = forms.CharField(
        required=False, widget=forms.HiddenInput, max_length=WEBAUTHN_ANSWER_MAX_LENGTH
    )

    def __init__(self, *args: Any, request: HttpRequest, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.needs_code = needs_code
        if not needs_code:
            del self.fields["code"]
            del self.fields["credential"]
        else:
            # With a key's answer the code box may stay empty.
            self.fields["code"].required = not (self.data.get("credential") or "").strip()

    def clean_code(self) -> str:
        if not self.fields["code"].required and not self.cleaned_data["code"]:
            return ""
        return app_or_backup_code(self.cleaned_data["code"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        now = timezone.now()
        key_answer = cleaned.get("credential") or None
        try:
            # Checks only: the proof is written to the session by the view
            # (decorators.sudo_required) once the form is valid.
            services.confirm_identity(
                request=self.request,
                password=cleaned["password"],
                code=None if key_answer else cleaned.get("code"),
                key_answer=key_answer,
                now=now,
            )
        except services.TooManyPasswordAttempts:
            self.add_error(
                "password",
                gettext(
                    "Too many wrong passwords for this account lately. "
                    "For your security, try again later."
                ),
            )
        except services.WrongPassword:
            self.add_error("password", gettext("That password is not right."))
        except services.TwoFactorError as error:
            if key_answer:
                self.add_error(None, key_error_message(error, now=now, adding=False))
            else:
                self.add_error("code", code_error_message(error, now=now))
        return cleaned


class WebAuthnAnswerForm(forms.Form):
    """The hidden field twofactor/webauthn.js fills with the authenticator's answer."""

    credential = forms.CharField(
        widget=forms.HiddenInput, max_length=WEBAUTHN_ANSWER_MAX_LENGTH, strip=True
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credential"].error_messages.update(
            {
                "required": NO_WEBAUTHN_ANSWER,
                "max_length": UNREADABLE_WEBAUTHN_ANSWER,
            }
        )


NO_WEBAUTHN_ANSWER = _(
    "Passkeys and security keys need a browser with passkey support, with JavaScript turned on."
)
UNREADABLE_WEBAUTHN_ANSWER = _("The answer from your passkey or security key could not be read.")


class KeyNameForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=CREDENTIAL_NAME_MAX_LENGTH,
        help_text=_(
            "Something you will recognise, such as the device or password manager it is in. "
            "Up to 64 characters."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "size": 32}),
        error_messages={"required": _("Give the key a name.")},
    )

    def clean_name(self) -> str:
        name = services.clean_credential_name(self.cleaned_data["name"])
        if not name:
            raise forms.ValidationError(gettext("Give the key a name."))
        return name


def key_error_message(error: services.TwoFactorError, *, now: datetime, adding: bool) -> str:
    """What a user is told when a passkey or security key is refused (while `adding` one,
    or at a sign-in). Never which check failed: that is for the security log."""
    if isinstance(error, services.AccountLocked):
        return code_error_message(error, now=now)
    if isinstance(error, services.WebAuthnChallengeMissing):
        return gettext(
            "That took too long, or the page was opened again in another tab. Try again."
        )
    if isinstance(error, services.CredentialAlreadyRegistered):
        return gettext("This passkey or security key is already registered.")
    if adding:
        return gettext("Your passkey or security key could not be added. Try again.")
    return gettext(
        "That passkey or security key was not accepted. Try again, or enter a code instead."
    )


class PolicyForm(forms.Form):
    """The security policy's settings, as a superuser changes them."""

    require_for_staff = forms.BooleanField(
        label=_("Require two-factor authentication for staff"),
        required=False,
        help_text=_("Staff pages always need 2FA; this also makes staff set it up and keep it on."),
    )
    require_for_everyone = forms.BooleanField(
        label=_("Require two-factor authentication for every user"),
        required=False,
        help_text=_("Customers too: each must set it up by their deadline."),
    )
    grace_period_days = forms.IntegerField(
        label=_("Grace period (days)"),
        min_value=0,
        max_value=services.MAX_GRACE_PERIOD_DAYS,
        help_text=_(
            "From each user's first login under the requirement. Until then they are reminded; "
            "after it, they must set up 2FA before anything else. 0: at once."
        ),
        error_messages={"required": _("Enter a number of days (0 for none).")},
    )
    allow_trusted_browsers = forms.BooleanField(
        label=_("Let users trust a browser"),
        required=False,
        help_text=_(
            "“Don't ask for a code on this browser” at login. Turning this off removes "
            "every trusted browser."
        ),
    )
