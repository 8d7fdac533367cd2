from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User
from twofactor import queries as twofactor_queries
from twofactor.models import two_factor_active_q


class TwoFactorListFilter(admin.SimpleListFilter):
    """The same filter as the All users page, from the same twofactor query helper."""

    title = "Two-Factor authentication"
    parameter_name = "two_factor"

    def lookups(self, request, model_admin):
        return [
            (twofactor_queries.ACTIVATED, "Activated"),
            (twofactor_queries.NOT_ACTIVATED, "Not activated"),
        ]

    def queryset(self, request, queryset):
        return twofactor_queries.filter_by_two_factor(queryset, self.value() or "")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "two_factor_status", "is_staff", "is_active", "date_joined"]
    list_filter = [TwoFactorListFilter, "is_staff", "is_superuser", "is_active"]
    # The page size of All users, so benchmarks/all_users.py compares like with like.
    list_per_page = 50
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),
    )

    def get_queryset(self, request):
        # Only the column shown: an EXISTS per row on the partial device index.
        return super().get_queryset(request).annotate(two_factor_active=two_factor_active_q())

    @admin.display(description="2FA", boolean=True)
    def two_factor_status(self, obj: User) -> bool:
        return obj.two_factor_active
