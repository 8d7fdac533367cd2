"""The security log pages: your own full history, and any user's for staff."""

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts import security_log
from accounts.http import AuthenticatedHttpRequest
from accounts.staff_views import VIEW_USERS_PERMISSION, staff_required


@login_required
@never_cache
@require_GET
def my_security_history(request: AuthenticatedHttpRequest) -> HttpResponse:
    # Always the logged-in user's own events: there is no id in the URL to tamper with.
    page = security_log.history_page(user=request.user, number=request.GET.get("page"))
    context = {"page": page, "subject": request.user, "own": True}
    return render(request, "accounts/security_history.html", context)


# Checked before the lookup: without the permission no one can even learn which ids exist.
@staff_required(VIEW_USERS_PERMISSION)
@never_cache
@require_GET
def user_security_history(request: HttpRequest, pk: int) -> HttpResponse:
    subject = get_object_or_404(get_user_model(), pk=pk)
    page = security_log.history_page(user=subject, number=request.GET.get("page"))
    context = {"page": page, "subject": subject, "own": subject.pk == request.user.pk}
    return render(request, "accounts/security_history.html", context)
