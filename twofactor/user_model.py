"""The project's user model (settings.AUTH_USER_MODEL), as twofactor's type hints name it.

twofactor never imports the project's user model: its tables point at
AUTH_USER_MODEL, so a user of any other class is refused by the ORM anyway.
django-stubs' mypy plugin resolves its `_User` placeholder to that model (it is
what `request.user` and `get_user_model()` are typed with); `AuthUser` names it
once, here. At run time it is AbstractBaseUser, which every user model extends.
A public spelling of the placeholder is requested upstream: typeddjango/django-stubs#2366.
"""

from typing import TYPE_CHECKING

from django.contrib.auth.base_user import AbstractBaseUser

if TYPE_CHECKING:
    from django.contrib.auth.models import _User as AuthUser
else:
    AuthUser = AbstractBaseUser

__all__ = ["AuthUser"]
