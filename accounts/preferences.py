"""Each user's language and time zone: chosen, remembered, and active on every request.

Before login the language is the picker's cookie or the browser's Accept-Language
(Django's LocaleMiddleware), and the time zone is the one the login page's script
sends. At login both are kept on the user (a language picked on the login page wins
over the one saved, and a saved time zone over the browser's); after that My profile
changes them, and every page and e-mail uses them.
"""

import zoneinfo
from functools import cache
from typing import Literal, cast

import babel
import babel.dates
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from django.views.i18n import JavaScriptCatalog
from django_htmx.http import HttpResponseClientRedirect

from accounts.http import AuthenticatedHttpRequest
from accounts.models import User
from twofactor.services.pending_login import PENDING_LOGIN_SESSION_KEY

# The hidden field of the login form that static/js/time_zone.js fills with the
# browser's zone (Intl.DateTimeFormat), and where the zone waits until login ends.
TIME_ZONE_FIELD = "time_zone"
TIME_ZONE_SESSION_KEY = "accounts_time_zone"
# The language picked with the picker in this session before login: only that choice
# goes on the profile at login. A cookie alone does not (on a shared computer it is the
# last person's, and anyone who can plant a cookie could set the language of the
# account's security e-mails).
PICKED_LANGUAGE_SESSION_KEY = "accounts_picked_language"
# Set on the request by the middleware: it reached a view; the account's language.
VIEWED_ATTR = "_preferences_applied"
ACCOUNT_LANGUAGE_ATTR = "account_language"
# Offered in the picker: the IANA regions (named in the reader's language), without the
# links that only keep old names working ("Asia/Calcutta" for "Asia/Kolkata", "US/Eastern"):
# any zone the database knows is still accepted (browsers send some of those names).
REGIONS = {
    "Africa": pgettext_lazy("time zone region", "Africa"),
    "America": pgettext_lazy("time zone region", "America"),
    "Antarctica": pgettext_lazy("time zone region", "Antarctica"),
    "Arctic": pgettext_lazy("time zone region", "Arctic"),
    "Asia": pgettext_lazy("time zone region", "Asia"),
    "Atlantic": pgettext_lazy("time zone region", "Atlantic Ocean"),
    "Australia": pgettext_lazy("time zone region", "Australia"),
    "Europe": pgettext_lazy("time zone region", "Europe"),
    "Indian": pgettext_lazy("time zone region", "Indian Ocean"),
    "Pacific": pgettext_lazy("time zone region", "Pacific Ocean"),
}


def zone_name(value: object) -> str | None:
    """The zone `value` names, by its current name ("Asia/Calcutta" is "Asia/Kolkata",
    "Etc/UTC" is "UTC"), if the time zone database knows it."""
    if not isinstance(value, str) or value not in _zone_names():
        return None
    name = _zone_links().get(value, value)
    return "UTC" if name in UTC_NAMES else name


# What the database and browsers call UTC; the picker says "UTC".
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu"})


def known_zone(value: object) -> zoneinfo.ZoneInfo | None:
    name = zone_name(value)
    return zoneinfo.ZoneInfo(name) if name else None


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _zone_links() -> dict[str, str]:
    """Old name -> current name, from the time zone database's own source (tzdata.zi,
    "L target link" lines); none known if it is not installed."""
    for directory in zoneinfo.TZPATH:
        try:
            with open(f"{directory}/tzdata.zi", encoding="utf-8") as source:
                links = [line.split() for line in source if line.startswith("L ")]
        except OSError:
            continue
        return {fields[2]: fields[1] for fields in links if len(fields) == 3}
    return {}


def zone_choices() -> list[tuple[object, list[tuple[str, str]]]]:
    """The picker's zones grouped by region, "UTC" first, each named by its city in the
    reader's language (CLDR, through Babel: "Wien", "Vienne"), in that language's order."""
    return _zone_choices_in(translation.get_language() or settings.LANGUAGE_CODE)


@cache
def _zone_choices_in(language: str) -> list[tuple[object, list[tuple[str, str]]]]:
    locale = babel.Locale.parse(translation.to_locale(language))
    groups: dict[str, list[tuple[str, str]]] = {region: [] for region in REGIONS}
    for name in _zone_names() - _zone_links().keys():
        region, _, place = name.partition("/")
        if region in groups and place:
            city = babel.dates.get_timezone_location(name, locale=locale, return_city=True)
            groups[region].append((name, city or place.replace("_", " ")))
    return [
        ("UTC", [("UTC", "UTC")]),
        *(
            (REGIONS[region], sorted(zones, key=lambda zone: (zone[1].casefold(), zone[0])))
            for region, zones in groups.items()
        ),
    ]


def is_language(code: object) -> bool:
    return isinstance(code, str) and code in dict(settings.LANGUAGES)


class UserPreferencesMiddleware:
    """Activates the user's language and time zone for the view and its templates.

    In process_view, after SessionRecordMiddleware: request.user must not be read
    before that middleware has checked the session's record.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
            # Only after this middleware's process_view: a 400 or 503 answered above the
            # view must not read the session or the user.
            if getattr(request, VIEWED_ATTR, False):
                self._remember_zone_for_code_step(request)
                self._keep_language_cookie(request, response)
            return response
        finally:
            # The active zone belongs to this request only (a thread serves many).
            timezone.deactivate()

    def process_view(self, request: HttpRequest, *args, **kwargs) -> None:
        setattr(request, VIEWED_ATTR, True)
        user = request.user
        if user.is_authenticated:
            if is_language(user.language):
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
                setattr(request, ACCOUNT_LANGUAGE_ATTR, user.language)
            zone = known_zone(user.time_zone)
        else:
            # Before login: the zone the login page's script sent with this post (a
            # lock message answers that post), else the one kept for the code step.
            zone = (
                known_zone(request.POST.get(TIME_ZONE_FIELD)) if request.method == "POST" else None
            )
            zone = zone or known_zone(request.session.get(TIME_ZONE_SESSION_KEY))
        if zone is not None:
            timezone.activate(zone)

    @staticmethod
    def _remember_zone_for_code_step(request: HttpRequest) -> None:
        """A correct password just began a pending login: keep the zone the browser sent,
        so the code step's times are in it. Never the account's saved zone: before the
        second factor the session holds nothing of the account's (a password alone must
        not tell where its owner lives)."""
        session = getattr(request, "session", None)
        if request.method != "POST" or session is None or PENDING_LOGIN_SESSION_KEY not in session:
            return
        name = zone_name(request.POST.get(TIME_ZONE_FIELD))
        if name and session.get(TIME_ZONE_SESSION_KEY) != name:
            session[TIME_ZONE_SESSION_KEY] = name

    @staticmethod
    def _keep_language_cookie(request: HttpRequest, response: HttpResponse) -> None:
        """The language cookie follows the account's language, so the login page after
        logging out speaks the language the user last chose."""
        language = getattr(request, ACCOUNT_LANGUAGE_ATTR, None)
        if (
            language
            and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language
            # The picker and My profile set the new language themselves.
            and settings.LANGUAGE_COOKIE_NAME not in response.cookies
            # A response a shared cache may keep (the JavaScript catalog) sets no cookie.
            and "public" not in response.get("Cache-Control", "")
        ):
            set_language_cookie(response, language)


def set_language_cookie(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=cast(Literal["Lax", "Strict", "None"], settings.LANGUAGE_COOKIE_SAMESITE),
    )


def remember_at_login(*, request: HttpRequest, user: User) -> None:
    """At login: a language picked with the picker in this session wins over the saved
    one; a user without one keeps the page's (the cookie's, else the browser's). The time
    zone is filled in once, from the browser, and changed only on My profile after that.
    No query when nothing changes (every login after the first)."""
    changed = []
    picked = request.session.pop(PICKED_LANGUAGE_SESSION_KEY, None)
    language = picked if is_language(picked) else user.language or translation.get_language()
    if language and is_language(language) and user.language != language:
        user.language = language
        changed.append("language")
    if not zone_name(user.time_zone):
        posted = request.POST.get(TIME_ZONE_FIELD) if request.method == "POST" else None
        browser = zone_name(posted) or zone_name(request.session.get(TIME_ZONE_SESSION_KEY))
        if browser:
            user.time_zone = browser
            changed.append("time_zone")
    if changed:
        user.save(update_fields=changed)


@require_http_methods(["GET", "POST"])
@csrf_protect
def set_language(request: HttpRequest) -> HttpResponse:
    """The language picker (account menu and login page): a cookie, and the profile.
    A GET (the address typed, or reloaded) changes nothing and goes back."""
    if request.method == "GET":
        return redirect(reverse("accounts:profile"))
    language = request.POST.get("language")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("accounts:profile")
    if not is_language(language):
        messages.error(request, gettext("That language is not offered. Pick one from the list."))
        return redirect(next_url)
    assert isinstance(language, str)  # noqa: S101 - narrowed by is_language
    if not request.user.is_authenticated:
        request.session[PICKED_LANGUAGE_SESSION_KEY] = language
    elif request.user.language != language:
        request.user.language = language
        request.user.save(update_fields=["language"])
    response = redirect(next_url)
    set_language_cookie(response, language)
    return response


@cache_control(public=True, max_age=3600)
def javascript_catalog(request: HttpRequest) -> HttpResponseBase:
    """The scripts' messages (Django's JavaScript catalog) in the language its URL names
    (base.html asks for the page's), so the response depends on the URL alone and a
    cache may keep one copy per language; English for anything else."""
    language = request.GET.get("lang")
    with translation.override(language if is_language(language) else settings.LANGUAGE_CODE):
        return JAVASCRIPT_CATALOG(request)


JAVASCRIPT_CATALOG = JavaScriptCatalog.as_view(packages=["twofactor"])


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        choices=zone_choices,
        help_text=gettext_lazy("Every time on the portal and in its e-mails is shown in it."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A zone the picker does not list (set before, or sent by an old browser) stays
        # choosable, so the form opens on it and saving the language keeps it.
        current = zone_name(self.initial.get("time_zone"))
        offered = {name for _, zones in zone_choices() for name, _ in zones}
        if current and current not in offered:
            field = self.fields["time_zone"]
            assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared so on the form
            field.choices = [*zone_choices(), (current, current)]

    def clean_time_zone(self) -> str:
        # Choices already refuse anything else; kept explicit: the middleware trusts it.
        name = zone_name(self.cleaned_data["time_zone"])
        if name is None:
            raise forms.ValidationError(gettext("Pick a time zone from the list."))
        return name


@login_required
@never_cache
@csrf_protect
def edit_preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Language and time zone, on My profile (a dialog with htmx, a page without)."""
    user = request.user
    initial = {
        "language": user.language or translation.get_language(),
        "time_zone": zone_name(user.time_zone) or "UTC",
    }
    form = PreferencesForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        user.language = form.cleaned_data["language"]
        user.time_zone = form.cleaned_data["time_zone"]
        user.save(update_fields=["language", "time_zone"])
        with translation.override(user.language):
            messages.success(request, gettext("Your language and time zone are saved."))
        url = reverse("accounts:profile")
        response = HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        set_language_cookie(response, user.language)
        return response
    return render(request, "accounts/preferences.html", {"form": form})
