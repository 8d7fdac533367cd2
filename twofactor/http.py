"""The request as twofactor's views see it, for the type checker.

django-htmx's middleware adds `htmx`; HttpRequest itself does not declare it.
"""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
