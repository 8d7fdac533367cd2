"""The request as twofactor's views see it, for the type checker.

django-htmx's middleware adds `htmx`; HttpRequest itself does not declare it.
Behind login_required the user is never AnonymousUser: AuthenticatedHttpRequest
says so, so a view can pass `request.user` to the services.
"""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from twofactor.user_model import AuthUser


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    user: AuthUser
