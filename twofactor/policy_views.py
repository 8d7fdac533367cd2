"""The security policy page: superusers only, behind "confirm it's you"; every change audited."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from twofactor import services
from twofactor.decorators import sudo_view
from twofactor.forms import PolicyForm
from twofactor.http import AuthenticatedHttpRequest
from twofactor.responses import done, render_page


def _superusers_with_two_factor(request: HttpRequest) -> HttpResponse | None:
    # Before "confirm it's you": a staff member without the right is refused at once,
    # and learns nothing by answering the question.
    if not (request.user.is_active and request.user.is_superuser):
        raise PermissionDenied
    if not services.is_session_verified(request=request):
        # The policy decides who may skip 2FA: it is changed only from a session that passed it.
        messages.warning(
            request, gettext("The security policy can be changed only after logging in with 2FA.")
        )
        return done(request)
    return None


@sudo_view(title=_("Security policy"), refusal=_superusers_with_two_factor)
def security_policy(request: AuthenticatedHttpRequest) -> HttpResponse:
    policy = services.get_policy(cached=False)
    initial = {name: getattr(policy, name) for name in services.POLICY_FIELDS}
    form = PolicyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = services.update_policy(actor=request.user, **form.cleaned_data)
        if changes:
            messages.success(
                request,
                # The list of changes, each in the words of services.update_policy.
                gettext("Security policy saved: %(changes)s.") % {"changes": "; ".join(changes)},
            )
        else:
            messages.info(request, gettext("Nothing changed."))
        # POST, redirect, GET: a reload does not post the form again.
        return redirect("twofactor:security_policy")
    context = {"form": form, "policy": policy}
    return render_page(request, "twofactor/security_policy.html", context)
