"""A database outage answers a plain 503 page instead of a 500 with a traceback.

Nothing here has to notice that the database came back: Django opens a new
connection for the next request (conn_health_checks drops a dead persistent
one first), so the portal recovers by itself.
"""

import logging
import sys
from collections.abc import Callable

from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
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
