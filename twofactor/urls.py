from django.urls import path

from twofactor import key_views, policy_views, trusted_views, views

app_name = "twofactor"

urlpatterns = [
    path("login/", views.login_code, name="login_code"),
    path("enable/", views.enable, name="enable"),
    path("disable/", views.disable, name="disable"),
    path("backup-codes/", views.backup_codes, name="backup_codes"),
    path("backup-codes/new/", views.new_backup_codes, name="new_backup_codes"),
    path("passkey/options/", views.passkey_options, name="passkey_options"),
    path("policy/", policy_views.security_policy, name="security_policy"),
    path(
        "trusted-browsers/<int:pk>/remove/",
        trusted_views.remove_trusted_browser,
        name="remove_trusted_browser",
    ),
    path(
        "trusted-browsers/remove-all/",
        trusted_views.remove_all_trusted_browsers,
        name="remove_all_trusted_browsers",
    ),
    path("keys/add/", key_views.add_key, name="add_key"),
    path("keys/<int:pk>/rename/", key_views.rename_key, name="rename_key"),
    path("keys/<int:pk>/remove/", key_views.remove_key, name="remove_key"),
]
