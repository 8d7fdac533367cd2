from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from twofactor.views import LoginView


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"Home of {request.user.get_username()}")


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="login"), name="logout"),
    path("home/", home, name="home"),
    path("2fa/", include("twofactor.urls")),
]
