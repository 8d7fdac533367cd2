"""The request as accounts' views see it, for the type checker.

django-htmx's middleware adds `htmx` (twofactor.http declares it, one class for
both apps). Behind login_required the user is always one of ours, never
AnonymousUser: AuthenticatedHttpRequest says so, so a view can pass
`request.user` to services typed with accounts.models.User.
"""

from accounts.models import User
from twofactor.http import HtmxHttpRequest

__all__ = ["AuthenticatedHttpRequest", "HtmxHttpRequest"]


class AuthenticatedHttpRequest(HtmxHttpRequest):
    user: User
