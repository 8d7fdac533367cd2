"""Staff pages: All users (list, CSV export) and the 2FA reset for a user who lost their phone."""

import csv
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRedirect

from accounts import user_list
from accounts.forms import ResetTwoFactorForm, UserListForm
from accounts.http import AuthenticatedHttpRequest, HtmxHttpRequest
from twofactor import middleware as twofactor_middleware
from twofactor import services as twofactor_services
from twofactor.decorators import sudo_view
from twofactor.forms import second_factor_way_in

# Staff rights are permissions (given through groups such as "Support"); the staff
# flag alone opens nothing. Superusers have every permission.
VIEW_USERS_PERMISSION = "accounts.view_user"
RESET_PERMISSION = "accounts.reset_two_factor"


def staff_required(permission: str) -> Callable[[Callable], Callable]:
    """Anonymous: the login page. Not active staff with `permission`: 403, never the data.

    Staff whose session did not pass a second factor go to My profile to turn
    2FA on: these pages show everyone's data and can reset anyone's 2FA, so a
    stolen staff password alone must not open them (the admin has the same rule).
    """
    if not isinstance(permission, str):
        # A bare @staff_required would otherwise pass the view as the permission.
        raise TypeError("Name the permission: @staff_required(VIEW_USERS_PERMISSION).")

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: AuthenticatedHttpRequest, *args, **kwargs) -> HttpResponse:
            # Before anything else, and so before any lookup by id: without the
            # permission a staff member learns nothing, not even which ids exist.
            if not has_staff_permission(request.user, permission):
                raise PermissionDenied
            if not twofactor_services.is_session_verified(request=request):
                way_in = second_factor_way_in(user=request.user, page=gettext("All users"))
                messages.warning(
                    request,
                    gettext("Staff pages need two-factor authentication. %(way_in)s")
                    % {"way_in": way_in},
                )
                target = resolve_url(settings.LOGIN_REDIRECT_URL)
                return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def has_staff_permission(user, permission: str) -> bool:
    # is_staff as well as the permission, like the admin: a customer put in a
    # group by mistake still opens no staff page.
    return user.is_active and user.is_staff and user.has_perm(permission)


def _list_status(request: HtmxHttpRequest) -> int:
    # A hand-edited bad URL is the client's error (400); htmx 2 only swaps 2xx,
    # so inside the page the message comes with a 200.
    return 200 if request.htmx else 400


@staff_required(VIEW_USERS_PERMISSION)
@never_cache
@require_GET
def all_users(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = UserListForm(request.GET)
    context = {
        "form": form,
        "columns": user_list.columns(request.GET.get("sort", "")),
        # Worked out once, not once per row of the table.
        "can_reset": has_staff_permission(request.user, RESET_PERMISSION),
        "next_query": urlencode({"next": request.get_full_path()}),
    }
    status = 200
    if form.is_valid():
        try:
            page = user_list.get_page(
                form.to_query(),
                form.cleaned_data["page"],
                cursor=form.cleaned_data["cursor"],
                policy=twofactor_middleware.request_policy(request),
            )
            _add_row_links(page.rows)
            context["page"] = page
        except user_list.PageOutOfRange as error:
            context["errors"] = [str(error)]
            status = _list_status(request)
    else:
        context["errors"] = form.error_list()
        status = _list_status(request)
    # htmx swaps the table region only; a history restore after a cache miss needs the page.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "accounts/_users_table.html" if partial else "accounts/all_users.html"
    return render(request, template, context, status=status)


# Each row's action links: (URL name, attribute of the row).
ROW_LINKS = [
    ("accounts:reset_two_factor", "reset_url"),
    ("accounts:user_sessions", "sessions_url"),
    ("accounts:user_security_history", "history_url"),
]
_PK_SLOT = 918_273_645_546_372_819  # stands for the row's id in a reversed URL


def _add_row_links(rows: list) -> None:
    # One reverse() per link rather than per row: 150 of them were a quarter of the
    # time it took to render a page of 50 rows. Only the id changes from row to row.
    for name, attribute in ROW_LINKS:
        head, tail = reverse(name, kwargs={"pk": _PK_SLOT}).split(str(_PK_SLOT))
        for row in rows:
            setattr(row, attribute, f"{head}{row.pk}{tail}")


class _Echo:
    """csv.writer writes into this; each row goes straight to the response."""

    def write(self, value: str) -> str:
        return value


@staff_required(VIEW_USERS_PERMISSION)
@never_cache
@require_GET
def export_users_csv(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = UserListForm(request.GET)
    if not form.is_valid():
        return HttpResponse(
            "\n".join(form.error_list()), status=400, content_type="text/plain; charset=utf-8"
        )
    writer = csv.writer(_Echo())
    rows = (writer.writerow(row) for row in user_list.export_rows(form.to_query()))
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    filename = f"users-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def list_url(request: HttpRequest) -> str:
    """Where to go back to: the list as the staff user left it (filter, page), if safe."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}) and url.startswith(
        reverse("accounts:all_users")
    ):
        return url
    return reverse("accounts:all_users")


@staff_required(RESET_PERMISSION)
# Removing someone's second factor is as sensitive as removing your own: a
# hijacked staff session must not be enough, so staff confirm it is them.
@sudo_view(title=_("Reset 2FA"), cancel_url=list_url)
def reset_two_factor(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(get_user_model(), pk=pk)
    back = list_url(request)
    context = {"target": target, "back": back}
    refusal = twofactor_services.reset_refusal(user=target, actor=request.user)
    if refusal is not None:
        context["refusal"] = refusal.message
        status = 200 if request.htmx else 403  # htmx 2 would not show a 403 dialog
        return render(request, "accounts/reset_two_factor.html", context, status=status)
    if not twofactor_services.is_two_factor_enabled(user=target):
        messages.info(
            request,
            gettext("%(email)s does not have two-factor authentication on.")
            % {"email": target.email},
        )
        return back_to_list(request, back)
    form = ResetTwoFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            twofactor_services.reset_two_factor(
                user=target, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except twofactor_services.ResetRefused as refused:  # a reason of invisible text
            form.add_error("reason", refused.message)
        else:
            messages.success(
                request,
                gettext(
                    "Two-factor authentication is reset for %(email)s. "
                    "They can now log in with their password alone."
                )
                % {"email": target.email},
            )
            return back_to_list(request, back)
    context["form"] = form
    return render(request, "accounts/reset_two_factor.html", context)


def back_to_list(request: HtmxHttpRequest, url: str) -> HttpResponse:
    # A full reload for htmx, so the table and the message both refresh.
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
