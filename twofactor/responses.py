"""How twofactor's views answer: its pages, with the app's URLs, and "done"."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django_htmx.http import HttpResponseClientRedirect

from twofactor.conf import app_settings


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HttpResponse:
    """Render one of twofactor's templates, which name no URL of the project: where
    "Cancel" and "Start over" lead, and the issuer's name, come from the settings."""
    base = {
        "done_url": resolve_url(app_settings.DONE_URL),
        "login_url": resolve_url(app_settings.LOGIN_URL),
        "issuer": app_settings.ISSUER,
        "support_url": app_settings.SUPPORT_URL,
    }
    return render(request, template, {**base, **(context or {})}, status=status)


def done(request: HttpRequest) -> HttpResponse:
    """Back to TWOFACTOR_DONE_URL: a full reload for htmx, so the page and messages refresh."""
    url = resolve_url(app_settings.DONE_URL)
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)
