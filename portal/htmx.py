"""htmx and the end of a session: never a login page inside a dialog, never a dead one."""

from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_htmx.http import HttpResponseClientRedirect

SESSION_ENDED_MESSAGE = _("Your session has ended. Please log in again.")


class HtmxLoginRedirectMiddleware:
    """An htmx request whose session has ended goes to the login page as a whole page.

    login_required (and the code step once its 10 minutes are up) answer with a
    redirect to the login page. htmx would follow it inside its request and swap
    the login form into the open dialog: a dead dialog. Instead the browser is
    told to navigate (HX-Redirect), with `next` back to the page the user was on
    (HX-Current-URL; the dialog's own URL is only a part of that page).

    The login page then says why, when login_required sent back a button pressed on a
    page (an htmx request, or a form posted without JavaScript) and no view said so
    already: the user was on a page a moment ago, so their session has ended.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        login_path = resolve_url(settings.LOGIN_URL)
        location = urlsplit(response.get("Location", ""))
        if location.netloc or location.path != login_path:
            return response
        htmx = getattr(request, "htmx", None)
        posted = request.method == "POST"
        # login_required sends back to this very address (a logout, the code step or the
        # language picker send elsewhere, or nowhere).
        sent_back_here = parse_qs(location.query).get("next") == [request.get_full_path()]
        if sent_back_here and (htmx or posted):
            storage = messages.get_messages(request)
            if not getattr(storage, "added_new", True):  # no view said why already
                messages.info(request, SESSION_ENDED_MESSAGE)
        if not htmx:
            if sent_back_here and posted:
                # `next` is the address the form posted to, which a GET after the login
                # cannot open (a 405): back to the page the form was on instead.
                response["Location"] = _login_url(login_path, _same_site_page(request, "Referer"))
            return response
        page = _same_site_page(request, "HX-Current-URL")
        if page and page != login_path and location.query:
            target = _login_url(login_path, page)
        else:
            target = response["Location"]
        redirect = HttpResponseClientRedirect(target)
        redirect.cookies = response.cookies  # a message or a new session cookie goes along
        return redirect


def _same_site_page(request: HttpRequest, header: str) -> str:
    """The path (and query) of this site's page that `header` names, or "" (absent, not a
    URL, or another site's)."""
    try:
        address = urlsplit(request.headers.get(header, ""))
    except ValueError:  # a header that is no URL at all ("http://[")
        return ""
    host = request.get_host()
    if address.netloc != host or address.scheme not in ("http", "https"):
        return ""
    page = address.path + (f"?{address.query}" if address.query else "")
    return page if url_has_allowed_host_and_scheme(page, allowed_hosts={host}) else ""


def _login_url(login_path: str, page: str) -> str:
    return (
        f"{login_path}?{urlencode({'next': page})}" if page and page != login_path else login_path
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: htmx reloads the page (it would not swap a 403 into a dialog).

    A stale token (the user logged in again in another tab) then gets a fresh one
    with the reloaded page; without htmx, a page that says what happened.
    """
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(status=403)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "403_csrf.html", status=403)
