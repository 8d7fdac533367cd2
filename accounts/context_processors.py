from django.http import HttpRequest

from accounts.staff_views import VIEW_USERS_PERMISSION, has_staff_permission
from twofactor import services as twofactor_services


def staff_rights(request: HttpRequest) -> dict[str, bool]:
    """`staff_pages`: the account menu offers the staff pages (All users); `policy_page`:
    and the security policy. Staff rights count only in a session that passed 2FA: staff
    without it see the portal as a customer does (the pages refuse them too)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not (user.is_staff or user.is_superuser):
        return {"staff_pages": False, "policy_page": False}
    # The pages' own test (a query, for staff only): a staff member who turned their 2FA
    # off in this session is offered no page that would send them away.
    verified = twofactor_services.is_session_verified(request=request)
    return {
        "staff_pages": verified and has_staff_permission(user, VIEW_USERS_PERMISSION),
        "policy_page": verified and user.is_superuser,
    }
