"""The security policy at every request: past their deadline, a user under the 2FA
requirement reaches only setup (and what TWOFACTOR_POLICY_EXEMPT_URLS allows), as
GitLab does. Before it, the requirement is only read, for the reminder banner
(twofactor.context_processors.two_factor_policy).

Goes after AuthenticationMiddleware and MessageMiddleware.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django_htmx.http import HttpResponseClientRedirect

from twofactor import services
from twofactor.conf import app_settings
from twofactor.models import TwoFactorPolicy

# Set on the request: the user's Requirement (or None), read once per request.
REQUIREMENT_ATTR = "two_factor_requirement"
# And the policy it was read from, for views that need it too (request_policy).
POLICY_ATTR = "two_factor_policy"
# Setup itself, and the codes page it ends on (the user has 2FA by then, but a reload
# of the page must not bounce).
SETUP_VIEWS = frozenset({"twofactor:enable", "twofactor:new_backup_codes"})


class TwoFactorPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *args: Any) -> HttpResponse | None:
        # Only for a request that reaches a view (a 404 shows nothing of the account).
        requirement = None
        if request.user.is_authenticated:
            # Asked again by the guards, the menu and the trusted-browser check: read once.
            services.remember_app(user=request.user)
            policy = services.get_policy()
            setattr(request, POLICY_ATTR, policy)
            requirement = services.two_factor_requirement(user=request.user, policy=policy)
        setattr(request, REQUIREMENT_ATTR, requirement)
        if requirement is not None and requirement.is_past() and not _is_exempt(request):
            target = resolve_url(app_settings.SETUP_URL)
            if request.headers.get("HX-Request"):
                return HttpResponseClientRedirect(target)
            return redirect(target)
        return None


def request_policy(request: HttpRequest) -> TwoFactorPolicy:
    """The security policy as this request read it (one read per request)."""
    policy = getattr(request, POLICY_ATTR, None)
    if policy is None:
        policy = services.get_policy()
        setattr(request, POLICY_ATTR, policy)
    return policy


def _is_exempt(request: HttpRequest) -> bool:
    match = request.resolver_match
    view_name = match.view_name if match is not None else ""
    exempt = set(app_settings.POLICY_EXEMPT_URLS)
    if view_name in SETUP_VIEWS or view_name in exempt:
        return True
    return request.path_info in {resolve_url(url) for url in exempt if url.startswith("/")}
