"""The admin's user and group pages.

The admin site itself opens only for staff sessions that passed a second factor
(twofactor.admin_site). Changing who may do what is more than looking, so here
every view that changes a user or a group's rights also asks "confirm it's you"
(the sudo proof of Reset 2FA), and every change lands in the affected user's
security log with the staff member as the actor.

The events are written where the admin writes its own history (log_addition,
log_change, log_deletions): once per change that really happened, inside the
admin's transaction, so a change and its event commit or roll back together.
"""

from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from accounts import notifications, security_log, user_list
from accounts.models import SecurityEvent, User, may_manage
from twofactor import queries as twofactor_queries
from twofactor.decorators import sudo_required
from twofactor.models import two_factor_active_q

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    # For the type checker only: the mixin below is only ever mixed into a ModelAdmin.
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

Kind = SecurityEvent.Kind

# The only changed "field" of the admin's password form (AdminPasswordChangeForm
# reports its fields as this one); the change form shows the hash read-only.
PASSWORD_FIELD = "password"  # noqa: S105 - a field name


def changed_fields(message: list | str) -> list[str]:
    """The changed field labels, lower-cased, of a change message the admin built
    with construct_change_message() (the same words its own history shows)."""
    if not isinstance(message, list):
        return []
    return [
        str(label).lower()
        for entry in message
        if isinstance(entry, dict) and "name" not in entry.get("changed", {})  # not inlines
        for label in entry.get("changed", {}).get("fields", [])
    ]


class TwoFactorListFilter(admin.SimpleListFilter):
    """The same filter as the All users page, from the same twofactor query helper."""

    title = _("Two-Factor authentication")
    parameter_name = "two_factor"

    def lookups(self, request, model_admin):
        return [
            (twofactor_queries.ACTIVATED, _("Activated")),
            (twofactor_queries.NOT_ACTIVATED, _("Not activated")),
            (twofactor_queries.KEYS, _("Passkey or security key")),
        ]

    def queryset(self, request, queryset):
        return twofactor_queries.filter_by_two_factor(queryset, self.value() or "")


class PasswordChangeForm(AdminPasswordChangeForm):
    @property
    def changed_data(self) -> list[str]:
        # Django reports the password as changed only when a new one is set:
        # turning password login off would reach the admin's history, and the
        # security log below, as "no fields changed".
        if getattr(self, "cleaned_data", {}).get("set_usable_password") is False:
            return [PASSWORD_FIELD]
        return super().changed_data


class ConfirmChangesMixin(_ModelAdmin):
    """Every view that can change rows of this model asks "confirm it's you" first.

    On GET as well as POST, so nobody fills in a form and loses it at the POST.
    Where Django would refuse the view or show it read-only (no permission to
    change), there is nothing to confirm and the question is not asked.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.list_editable:
            # The changelist saves those rows itself and asks nothing.
            raise ImproperlyConfigured(f"{type(self).__name__}: no list_editable here.")

    def get_actions(self, request):
        # Actions ("Delete selected") run from the changelist, a page that asks
        # nothing: there are none. Each delete page asks and records.
        return {}

    def add_view(self, request, form_url="", extra_context=None):
        return self._after_proof(
            request,
            self.has_add_permission(request),
            gettext("Add %(name)s") % {"name": self.opts.verbose_name},
            super().add_view,
            form_url,
            extra_context,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self._after_proof(
            request,
            self.has_change_permission(request),
            gettext("Change %(name)s") % {"name": self.opts.verbose_name},
            super().change_view,
            object_id,
            form_url,
            extra_context,
        )

    def delete_view(self, request, object_id, extra_context=None):
        return self._after_proof(
            request,
            self.has_delete_permission(request),
            gettext("Delete %(name)s") % {"name": self.opts.verbose_name},
            super().delete_view,
            object_id,
            extra_context,
        )

    def _after_proof(self, request, may_change: bool, title: str, view, *args):
        if not may_change:
            return view(request, *args)
        # The answer posts the staff member's password and code.
        asking = sensitive_post_parameters("password", "code")(sudo_required(title=title)(view))
        return asking(request, *args)


class TwoFactorColumns(TypedDict):
    """What UserAdmin.get_queryset annotates each user with."""

    authenticator_app: bool
    webauthn_credential_count: int


@admin.register(User)
class UserAdmin(ConfirmChangesMixin, DjangoUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "name",
        "two_factor_status",
        "two_factor_methods",
        "is_staff",
        "is_active",
        "date_joined",
    ]
    list_filter = [TwoFactorListFilter, "is_staff", "is_superuser", "is_active"]
    # The page size of All users, so benchmarks/all_users.py compares like with like.
    list_per_page = 50
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("name",)}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),
    )
    change_password_form = PasswordChangeForm

    def get_queryset(self, request):
        # Only what the columns show, per row of the page: an EXISTS on the partial
        # device index and a count on the keys' user index. The status is "app or
        # key" from these two, without a third subquery.
        return (
            super()
            .get_queryset(request)
            .annotate(
                authenticator_app=two_factor_active_q(),
                webauthn_credential_count=twofactor_queries.webauthn_credential_count(),
            )
        )

    @admin.display(description=_("2FA"), boolean=True)
    def two_factor_status(self, obj: "WithAnnotations[User, TwoFactorColumns]") -> bool:
        return obj.authenticator_app or obj.webauthn_credential_count > 0

    @admin.display(description=_("Methods"))
    def two_factor_methods(self, obj: "WithAnnotations[User, TwoFactorColumns]") -> str | None:
        # None: the admin's own mark for an empty value.
        methods = user_list.two_factor_methods(
            app=obj.authenticator_app, keys=obj.webauthn_credential_count
        )
        return methods or None

    # Rights are granted by superusers only: staff who may change users (support)
    # must not be able to make themselves, or anyone, more powerful than they are.
    RIGHTS_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += self.RIGHTS_FIELDS
        return readonly

    def has_change_permission(self, request, obj=None):
        # Nor take over a colleague's account (password, address) to gain their rights,
        # nor bring back a closed one (it is kept only for its security log).
        if obj is not None and (obj.is_closed or not may_manage(request.user, obj)):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not may_manage(request.user, obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        old_email = form.initial.get("email", "")
        if change and "email" in form.changed_data and old_email:
            # As on My profile: the old address hears of the move, with the way to support.
            event = security_log.record_event(
                user=obj, kind=Kind.EMAIL_CHANGED, actor=request.user,
                facts={"old_email": old_email, "new_email": obj.email},
            )  # fmt: skip
            notifications.notify(user=obj, event=event, extra={"new_email": obj.email})
            notifications.notify_address(
                to=old_email, template="email_changed_old_address", event=event, user=obj,
                extra={"new_email": obj.email, "old_email": old_email},
            )  # fmt: skip

    def user_change_password(self, request, id, form_url=""):
        return self._after_proof(
            request,
            self.has_change_permission(request),
            gettext("Change password"),
            self._change_password,
            id,
            form_url,
        )

    def _change_password(self, request, id, form_url=""):
        # Django does not wrap this view in a transaction: the new password and
        # its security event must commit together, like every other change here.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().user_change_password(request, id, form_url)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        security_log.record_event(user=obj, kind=Kind.ACCOUNT_CREATED, actor=request.user)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        fields = changed_fields(message)
        if PASSWORD_FIELD in fields:
            # The password form. A new password is recorded, with the actor, by
            # security_log.on_user_saved (set_password() marks the user): recording
            # it here too would log it twice. Turning password login off sets no
            # such mark, so that one is recorded here.
            if not obj.has_usable_password():
                security_log.record_event(
                    user=obj,
                    kind=Kind.ACCOUNT_CHANGED,
                    actor=request.user,
                    detail=security_log.PASSWORD_LOGIN_DISABLED,
                )
            fields.remove(PASSWORD_FIELD)
        if fields:
            # Names of fields only ("staff status, groups"): never a value. They are the
            # admin's untranslated labels (verbose names), so a log reader's language has them.
            security_log.record_event(
                user=obj, kind=Kind.ACCOUNT_CHANGED, actor=request.user, facts={"fields": fields}
            )
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for user in queryset:
            # The deleted user's own log is deleted with the account (CASCADE), so
            # the deletion is kept in the log of the staff member who did it.
            security_log.record_event(
                user=request.user,
                kind=Kind.ACCOUNT_DELETED,
                actor=request.user,
                facts={"email": user.email, "user_id": user.pk},
            )
        return entries


# A group's permissions are its members' rights: changing them changes users.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(ConfirmChangesMixin, DjangoGroupAdmin):
    # A group's permissions are rights: only superusers grant them (see UserAdmin).
    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        if "permissions" in changed_fields(message):
            self._record_on_members(request, obj, "permissions")
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)  # before the delete: members known
        for group in queryset:
            self._record_on_members(request, group, "deleted")
        return entries

    def _record_on_members(self, request, group: Group, change: str) -> None:
        # `change`: "permissions" (they changed) or "deleted" (the group went).
        facts = {"group": group.name, "group_change": change}
        for member in group.user_set.all():
            security_log.record_event(
                user=member, kind=Kind.ACCOUNT_CHANGED, actor=request.user, facts=facts
            )
