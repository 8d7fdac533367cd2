from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from accounts.models import normalize_email_address


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, with the e-mail address as the username.

    Unknown e-mail and wrong password share one message: the form never says
    which one was wrong (Django's ModelBackend also hashes for unknown users,
    so both take the same time).
    """

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        "invalid_login": "That email and password do not match an account. "
        "Check both and try again.",
        "inactive": "That email and password do not match an account. Check both and try again.",
    }

    def clean_username(self) -> str:
        return normalize_email_address(self.cleaned_data["username"])


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str:
    """The login axes counts failures for: the normalised e-mail address.

    Without this, "Ann@X" and "ann@x" would be two counters for one account.
    """
    if credentials and credentials.get("username"):
        return normalize_email_address(credentials["username"])
    return normalize_email_address(request.POST.get("username", ""))
