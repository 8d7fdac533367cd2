from django.urls import path

from twofactor import views

app_name = "twofactor"

urlpatterns = [
    path("login/", views.login_code, name="login_code"),
    path("enable/", views.enable, name="enable"),
    path("disable/", views.disable, name="disable"),
    path("backup-codes/", views.backup_codes, name="backup_codes"),
    path("backup-codes/new/", views.new_backup_codes, name="new_backup_codes"),
]
