from django.urls import path

from accounts import preferences, profile_views, security_views, session_views, staff_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/preferences/", preferences.edit_preferences, name="preferences"),
    path("language/", preferences.set_language, name="set_language"),
    path("profile/details/", profile_views.edit_details, name="edit_details"),
    path("profile/password/", profile_views.change_password, name="change_password"),
    path("profile/email/", profile_views.change_email, name="change_email"),
    path("profile/email/sent/", profile_views.change_email_sent, name="change_email_sent"),
    path("profile/email/<str:token>/", profile_views.confirm_email, name="confirm_email"),
    path(
        "profile/sessions/<int:pk>/sign-out/",
        session_views.sign_out_session,
        name="sign_out_session",
    ),
    path(
        "profile/sessions/sign-out-others/",
        session_views.sign_out_other_sessions,
        name="sign_out_other_sessions",
    ),
    path("profile/delete/", profile_views.close_account, name="close_account"),
    path("closed/", profile_views.account_closed, name="account_closed"),
    path("security/", security_views.my_security_history, name="security_history"),
    path(
        "users/<int:pk>/security/",
        security_views.user_security_history,
        name="user_security_history",
    ),
    path("users/", staff_views.all_users, name="all_users"),
    path("users/export.csv", staff_views.export_users_csv, name="all_users_csv"),
    path("users/<int:pk>/sessions/", session_views.user_sessions, name="user_sessions"),
    path("users/<int:pk>/sessions/end/", session_views.end_user_sessions, name="end_user_sessions"),
    path("users/<int:pk>/reset-2fa/", staff_views.reset_two_factor, name="reset_two_factor"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
