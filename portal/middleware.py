"""A database outage answers a plain 503 page instead of a 500 with a traceback.

Nothing here has to notice that the database came back: Django opens a new
connection for the next request (conn_health_checks drops a dead persistent
one first), so the portal recovers by itself.

The 400 handler lives here too: like the 503, it is a page that must be built
without asking the request (or the database) for anything.
"""

import logging
import sys
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest
from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.views import defaults

logger = logging.getLogger("portal.outage")

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30


def database_outage_response() -> HttpResponse:
    # Rendered without the request: the context processors would ask the
    # session and the user for data, and both live in the database that is down.
    response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseOutageMiddleware:
    """Turns an unreachable database, met in a view, into the 503 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            # The exception class only: driver messages can carry host names and users.
            logger.error("Database unavailable (%s): answered 503", type(exception).__name__)
            return database_outage_response()
        return None


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: the same 503 for a database error raised outside a view.

    Middleware (the session save after the view, for one) is not covered by
    process_exception; Django calls this handler inside the except block, so the
    exception being handled is still visible here.
    """
    exception = sys.exc_info()[1]
    if isinstance(exception, DATABASE_ERRORS):
        logger.error("Database unavailable (%s): answered 503", type(exception).__name__)
        return database_outage_response()
    return defaults.server_error(request, template_name=template_name)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: the "Request not understood" page, built from nothing the request carries.

    Django's own handler is wrapped in requires_csrf_token, which runs the CSRF
    check again and so reads request.POST: for a body Django has just refused
    (a form that says charset=utf-16, say) that raises the same BadRequest
    again, and the 400 became a 500. The page takes no token, user, session or
    messages either: each reads the request again, and the session and user
    need the database. The exception's text is not shown (it can quote the
    request, e.g. a forged Host header).
    """
    context = {"product_name": settings.PRODUCT_NAME}
    response = HttpResponseBadRequest(render_to_string("400.html", context))
    response["Cache-Control"] = "no-store"
    return response


class ContentLengthMiddleware:
    """A Content-Length that is not a number is a bad request (400), not a 500.

    Django 5.2 reads the body with int(CONTENT_LENGTH), so "abc" (or "12, 12",
    what an ASGI server makes of two such headers) raised ValueError, a 500
    (Django ticket #37103, fixed after 5.2). gunicorn refuses these requests
    itself; this covers every other server in front of the app.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH")
        if length and not (length.isascii() and length.isdigit()):
            raise BadRequest("Malformed Content-Length header.")
        return self.get_response(request)
