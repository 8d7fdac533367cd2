import unicodedata
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import forms as auth_forms
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import account_changes, user_list
from accounts.models import User, deliverable_email_address, normalize_email_address
from accounts.tasks import speaking_to
from twofactor import queries as twofactor_queries
from twofactor import services as twofactor_services

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class NormalizedEmailField(forms.EmailField):
    """An e-mail field that normalises before validating (accounts.models.normalize_email_address).

    So "ＡＮＮ@example.com" (full-width) is ann@example.com here as everywhere else,
    instead of an invalid address that would have its own rate-limit key.
    """

    def to_python(self, value: object) -> str:
        return normalize_email_address(super().to_python(value))


class DeliverableEmailField(forms.EmailField):
    """A new address to send mail to: full-width letters made plain (NFKC), trimmed,
    the domain lower-cased, but not case-folded (accounts.models.deliverable_email_address)."""

    def to_python(self, value: object) -> str:
        # `or ""` changes nothing: empty input gives CharField's empty_value, "" here
        # (the type allows None, the value of empty_value=None, which no field here sets).
        text = unicodedata.normalize("NFKC", super().to_python(value) or "")
        return deliverable_email_address(text)


class EmailAuthenticationForm(auth_forms.AuthenticationForm):
    """Django's login form, with the e-mail address as the username.

    Unknown e-mail and wrong password share one message: the form never says
    which one was wrong (Django's ModelBackend also hashes for unknown users,
    so both take the same time).
    """

    username = NormalizedEmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        "invalid_login": _(
            "That email and password do not match an account. Check both and try again."
        ),
        "inactive": _("That email and password do not match an account. Check both and try again."),
    }


class PasswordResetForm(auth_forms.PasswordResetForm):
    email = NormalizedEmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        # Sent by a task, for the account the address belongs to: in its language and
        # time zone, not the worker's (nor the language of whoever asked for the link).
        user = context["user"]
        with speaking_to(user.language, user.time_zone):
            super().send_mail(
                subject_template_name,
                email_template_name,
                context,
                from_email,
                to_email,
                html_email_template_name,
            )

    def get_users(self, email: str) -> Iterator[User]:
        # Exact match on the normalised address, as at login: Django's iexact
        # is ASCII-only on SQLite, and "ß" or a full-width letter must find the
        # same account on every database.
        users = get_user_model()._default_manager.filter(
            email_key=normalize_email_address(email), is_active=True
        )
        return (user for user in users if user.has_usable_password())


# --- All users (staff) -----------------------------------------------------------------
class SetNewPasswordForm(auth_forms.SetPasswordForm):
    """The reset link's form: the new password is saved as a reset (account_changes)."""

    def save(self, commit: bool = True) -> Any:
        account_changes.reset_password(user=self.user, password=self.cleaned_data["new_password1"])
        return self.user


class UserListForm(forms.Form):
    """The All users filter bar, read from the query string (so every view is a bookmark).

    Bad values come from hand-edited URLs; each gets a message naming what is allowed.
    """

    PAGE_NUMBER_MESSAGE = _("The page must be a whole number, 1 or more.")
    CURSOR_MESSAGE = _("This page link was changed or is out of date.")

    two_factor = forms.ChoiceField(
        label=_("Two-Factor authentication"),
        required=False,
        choices=[
            ("", _("All")),
            (twofactor_queries.ACTIVATED, _("Activated")),
            (twofactor_queries.NOT_ACTIVATED, _("Not activated")),
            (twofactor_queries.KEYS, _("Passkey or security key")),
            (twofactor_queries.PAST_DEADLINE, _("Past the 2FA deadline")),
        ],
        error_messages={
            "invalid_choice": _(
                "Unknown two-factor authentication filter “%(value)s”. "
                "Choose All, Activated, Not activated, Passkey or security key, "
                "or Past the 2FA deadline."
            )
        },
    )
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name or email")}),
        error_messages={"max_length": _("Search for at most %(limit_value)d characters.")},
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for key in user_list.SORT_CHOICES],
        widget=forms.HiddenInput,
        error_messages={
            "invalid_choice": _(
                "Unknown sort “%(value)s”. Sort by name, email, last login or date joined."
            )
        },
    )
    # Not rendered: changing the filter or the search starts again at page 1. The pager
    # links to keyset pages: a cursor (Previous, Next) or page=last (Last). A page
    # number still opens (old bookmarks), but deep numbers pay for their OFFSET.
    page = forms.CharField(
        required=False, max_length=20, error_messages={"max_length": PAGE_NUMBER_MESSAGE}
    )
    # Long enough for a cursor on the longest e-mail address or name (user_list.make_cursor).
    cursor = forms.CharField(
        required=False, max_length=4096, error_messages={"max_length": CURSOR_MESSAGE}
    )

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or user_list.DEFAULT_SORT

    def clean_page(self) -> int | str:
        value = self.cleaned_data["page"]
        if not value:
            return 1
        if value == user_list.LAST_PAGE:
            return value
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise forms.ValidationError(self.PAGE_NUMBER_MESSAGE, code="invalid")
        return int(value)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        token = cleaned.get("cursor") or None
        cleaned["cursor"] = None
        # The cursor belongs to one sort, filter and search: checked once those are valid.
        if token and not self.errors:
            try:
                cleaned["cursor"] = user_list.read_cursor(token, self.to_query())
            except user_list.InvalidCursor:
                self.add_error("cursor", self.CURSOR_MESSAGE)
        return cleaned

    def to_query(self) -> user_list.UserListQuery:
        return user_list.UserListQuery(
            two_factor=self.cleaned_data["two_factor"],
            search=self.cleaned_data["q"],
            sort=self.cleaned_data["sort"],
        )

    def error_list(self) -> list[str]:
        # An ErrorList yields each message as a str (its __getitem__ unwraps the
        # ValidationErrors); str() changes nothing but tells the type checker so.
        return [str(error) for errors in self.errors.values() for error in errors]


def staff_reason_field(*, help_text: "StrOrPromise", required: "StrOrPromise") -> forms.CharField:
    """The reason staff give for acting on someone's account: recorded, and the user is told.
    `help_text` gives an example and says so (one whole sentence for translators)."""
    return forms.CharField(
        label=_("Reason"),
        max_length=500,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": required},
    )


class ResetTwoFactorForm(forms.Form):
    reason = staff_reason_field(
        help_text=_(
            "For example: lost phone, confirmed by a call to the number on file. "
            "The reason is recorded and the user is told."
        ),
        required=_("Enter the reason for the reset."),
    )


class EndSessionsForm(forms.Form):
    reason = staff_reason_field(
        help_text=_(
            "For example: laptop stolen, reported by phone. "
            "The reason is recorded and the user is told."
        ),
        required=_("Enter the reason for signing them out."),
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        # Words, not invisible characters: the user is told the reason.
        if not any(character.isalnum() for character in reason):
            raise forms.ValidationError(gettext("Enter the reason for signing them out."))
        return reason


# --- My profile ---------------------------------------------------------------------------
class DetailsForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=get_user_model()._meta.get_field("name").max_length,
        required=False,
        help_text=_("How the portal addresses you. Leave it empty to be addressed by your email."),
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True}),
        error_messages={"max_length": _("Use at most %(limit_value)d characters.")},
    )


class ChangePasswordForm(auth_forms.PasswordChangeForm):
    """Django's form, with the current password checked through authenticate().

    So guesses at the current password here count towards the same limits as at
    login (a hijacked session in its sudo window is no oracle), and a new
    password equal to the current one is refused.
    """

    error_messages = {
        **auth_forms.PasswordChangeForm.error_messages,
        "password_incorrect": _("That is not your current password."),
        "throttled": _("Too many wrong passwords for this account lately. Try again later."),
        "unchanged": _("The new password is your current one. Choose a different password."),
    }

    def __init__(self, user, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request
        self.fields["old_password"].label = gettext("Current password")
        self.fields["old_password"].widget.attrs.pop("autofocus", None)
        self.fields["old_password"].widget.attrs["autofocus"] = True
        self.fields["new_password1"].label = gettext("New password")
        self.fields["new_password2"].label = gettext("New password again")

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        authenticated = authenticate(
            self.request,
            username=self.user.get_username(),
            password=old_password,
            purpose=twofactor_services.PURPOSE_CONFIRM,
        )
        if authenticated is None or authenticated.pk != self.user.pk:
            throttled = getattr(
                self.request, twofactor_services.AUTHENTICATION_THROTTLED_ATTR, False
            )
            code = "throttled" if throttled else "password_incorrect"
            raise forms.ValidationError(self.error_messages[code], code=code)
        return old_password

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()  # Django's returns self.cleaned_data (typed "or None")
        new_password = self.cleaned_data.get("new_password1")
        if (
            new_password
            and "new_password1" not in self.errors
            and self.user.check_password(new_password)
        ):
            self.add_error(
                "new_password1",
                forms.ValidationError(self.error_messages["unchanged"], code="unchanged"),
            )
        return cleaned


class ChangeEmailForm(forms.Form):
    email = DeliverableEmailField(
        label=_("New email"),
        max_length=254,
        help_text=_("We send a link there. Your current address keeps working until you open it."),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        error_messages={"invalid": _("Enter a whole email address, like name@example.com.")},
    )


class CloseAccountForm(forms.Form):
    email = forms.CharField(
        label=_("Type your email address to confirm"),
        max_length=254,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "off", "autofocus": True}
        ),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self) -> str:
        typed = normalize_email_address(self.cleaned_data["email"])
        if typed != normalize_email_address(self.user.email):
            raise forms.ValidationError(
                gettext("That is not this account's email address. Type it to confirm.")
            )
        return typed
