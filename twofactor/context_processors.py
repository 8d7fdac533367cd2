from django.http import HttpRequest

from twofactor.middleware import REQUIREMENT_ATTR
from twofactor.services import Requirement


def two_factor_policy(request: HttpRequest) -> dict[str, Requirement | bool | None]:
    """`two_factor_requirement`: the user must turn 2FA on by its deadline (None: not);
    `two_factor_overdue`: the deadline has passed. Set by TwoFactorPolicyMiddleware."""
    requirement = getattr(request, REQUIREMENT_ATTR, None)
    return {
        "two_factor_requirement": requirement,
        "two_factor_overdue": requirement is not None and requirement.is_past(),
    }
