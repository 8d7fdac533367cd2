"""Choosing a language and a time zone, keeping them on the profile, and every time shown
in the reader's own zone with its abbreviation."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.preferences import TIME_ZONE_FIELD, TIME_ZONE_SESSION_KEY
from tests.conftest import OPEN_REDIRECTS, PASSWORD
from twofactor.models import TOTPDevice

LOGIN_URL = "/accounts/login/"
CODE_URL = "/2fa/login/"
LANGUAGE_URL = "/accounts/language/"
PREFERENCES_URL = "/accounts/profile/preferences/"
TOKYO = ZoneInfo("Asia/Tokyo")


def html_lang(response) -> str:
    return response.content.decode().split('<html lang="', 1)[1].split('"', 1)[0]


def fresh(user) -> User:
    return User.objects.get(pk=user.pk)


# --- The language before login ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"), [("de-DE,de;q=0.9", "de"), ("fr", "fr"), ("ja", "en")]
)
def test_first_visit_speaks_the_browsers_language(db, header, language):
    response = Client(HTTP_ACCEPT_LANGUAGE=header).get(LOGIN_URL)
    assert response.status_code == 200
    assert html_lang(response) == language
    assert response.headers["Content-Language"] == language


def test_login_page_has_a_language_picker(db):
    page = Client(HTTP_ACCEPT_LANGUAGE="de").get(LOGIN_URL).content.decode()
    assert f'action="{LANGUAGE_URL}"' in page
    assert '<option value="fr" lang="fr">Français</option>' in page
    assert '<option value="de" lang="de" selected>Deutsch</option>' in page


def test_picking_a_language_sets_the_cookie_and_returns_to_the_page(db):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(LANGUAGE_URL, {"language": "fr", "next": "/accounts/login/?next=/x/"})
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/x/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert html_lang(client.get(LOGIN_URL)) == "fr"


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_the_picker_never_sends_anyone_off_the_site(db, target):
    response = Client().post(LANGUAGE_URL, {"language": "de", "next": target})
    assert response.status_code == 302
    assert response.url == "/accounts/profile/"


@pytest.mark.parametrize("language", ["xx", "", "de'><script>", "en-us" * 20])
def test_an_unknown_language_is_refused_with_a_message(db, language):
    client = Client()
    response = client.post(LANGUAGE_URL, {"language": language, "next": LOGIN_URL}, follow=True)
    assert response.status_code == 200
    assert "That language is not offered" in response.content.decode()
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies


def test_the_picker_needs_a_post_with_csrf(db):
    # A GET changes nothing and goes back (the profile, or the login page before it).
    response = Client().get(LANGUAGE_URL)
    assert response.status_code == 302 and settings.LANGUAGE_COOKIE_NAME not in response.cookies
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(LANGUAGE_URL, {"language": "de"}).status_code == 403


# --- Kept on the profile ----------------------------------------------------------------


def test_language_picked_on_the_login_page_is_kept_on_the_profile(user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.post(LANGUAGE_URL, {"language": "de", "next": LOGIN_URL})
    client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert fresh(user).language == "de"


def test_a_cookie_alone_does_not_change_the_saved_language(make_user):
    # A language cookie left by the last person on a shared computer, or planted: the
    # account keeps its language (and its security e-mails stay readable to its owner).
    user = make_user(language="de")
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert fresh(user).language == "de"
    assert html_lang(client.get("/accounts/profile/")) == "de"


def test_the_language_cookie_is_http_only_same_site_and_lasts(db):
    response = Client().post(LANGUAGE_URL, {"language": "de", "next": LOGIN_URL})
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 365 * 24 * 60 * 60


def test_saved_language_wins_over_the_browser_after_login(make_user):
    user = make_user(language="fr")
    client = Client(HTTP_ACCEPT_LANGUAGE="de")
    client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    response = client.get("/accounts/profile/")
    assert html_lang(response) == "fr"
    assert fresh(user).language == "fr"
    # The cookie follows, so the login page after logging out speaks French too.
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    client.post("/accounts/logout/")
    assert html_lang(client.get(LOGIN_URL)) == "fr"


def test_first_login_keeps_the_browsers_language(user):
    Client(HTTP_ACCEPT_LANGUAGE="fr-CA,fr").post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD}
    )
    assert fresh(user).language == "fr"


def test_picking_a_language_while_logged_in_saves_it(user):
    client = Client()
    client.force_login(user)
    response = client.post(LANGUAGE_URL, {"language": "de", "next": "/accounts/profile/"})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"
    assert fresh(user).language == "de"
    assert html_lang(client.get("/accounts/profile/")) == "de"


def test_account_menu_has_the_language_picker(user):
    client = Client()
    client.force_login(user)
    page = client.get("/accounts/profile/").content.decode()
    menu = page.split('id="account-menu"', 1)[1].split("</div>", 1)[0]
    assert f'action="{LANGUAGE_URL}"' in menu


# --- Time zone ---------------------------------------------------------------------------


def test_first_login_takes_the_browsers_time_zone(user):
    Client().post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: "Asia/Tokyo"}
    )
    assert fresh(user).time_zone == "Asia/Tokyo"


def test_the_browser_does_not_change_a_time_zone_the_user_chose(make_user):
    user = make_user(time_zone="Europe/Paris")
    Client().post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: "Asia/Tokyo"}
    )
    assert fresh(user).time_zone == "Europe/Paris"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("Asia/Calcutta", "Asia/Kolkata"), ("Etc/UTC", "UTC"), ("Europe/Kiev", "Europe/Kyiv")],
)
def test_an_old_name_of_a_zone_is_kept_by_its_current_name(user, sent, kept):
    Client().post(LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: sent})
    assert fresh(user).time_zone == kept


def test_the_zone_picker_offers_current_names_under_regions_in_the_readers_language(make_user):
    client = Client()
    client.force_login(make_user(language="de", time_zone="Asia/Calcutta"))
    page = client.get(PREFERENCES_URL).content.decode()
    assert '<optgroup label="Europa">' in page and '<optgroup label="Asien">' in page
    # Cities named in German (CLDR): the zone the browser sent by its old name, selected.
    assert '<option value="Asia/Kolkata" selected>Kalkutta</option>' in page
    assert '<option value="Europe/Vienna">Wien</option>' in page
    assert 'value="Asia/Calcutta"' not in page and 'value="US/Eastern"' not in page


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "x" * 500])
def test_a_time_zone_that_does_not_exist_is_ignored(user, zone):
    response = Client().post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: zone}
    )
    assert response.status_code == 302
    assert fresh(user).time_zone == ""


def test_login_page_sends_the_browsers_time_zone(db):
    page = Client().get(LOGIN_URL).content.decode()
    assert f'name="{TIME_ZONE_FIELD}"' in page
    assert "js/time_zone.js" in page


def test_preferences_page_saves_language_and_time_zone(user):
    client = Client()
    client.force_login(user)
    page = client.get(PREFERENCES_URL).content.decode()
    assert '<option value="Asia/Tokyo">Tokyo</option>' in page
    response = client.post(PREFERENCES_URL, {"language": "fr", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    user = fresh(user)
    assert (user.language, user.time_zone) == ("fr", "Asia/Tokyo")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"


@pytest.mark.parametrize(
    "data",
    [{"language": "fr", "time_zone": "Mars/Olympus"}, {"language": "xx", "time_zone": "UTC"}, {}],
)
def test_preferences_page_refuses_bad_input_and_keeps_the_old_values(make_user, data):
    user = make_user(language="de", time_zone="Europe/Berlin")
    client = Client()
    client.force_login(user)
    response = client.post(PREFERENCES_URL, data)
    assert response.status_code == 200
    assert "errorlist" in response.content.decode() or "field-error" in response.content.decode()
    assert (fresh(user).language, fresh(user).time_zone) == ("de", "Europe/Berlin")


def test_profile_shows_language_and_time_zone(make_user):
    user = make_user(language="en", time_zone="Asia/Tokyo")
    client = Client()
    client.force_login(user)
    page = client.get("/accounts/profile/").content.decode()
    assert PREFERENCES_URL in page
    assert "Asia/Tokyo" in page


# --- Times in the reader's zone ------------------------------------------------------------


def test_a_user_in_tokyo_sees_the_lock_end_at_tokyo_time(make_user, enrolled, wrong_code):
    user = make_user(time_zone="Asia/Tokyo")
    secret = enrolled(user, at=timezone.now() - timedelta(minutes=5))
    client = Client()
    # The login page's script sends the browser's zone: the user is in Tokyo.
    client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: "Asia/Tokyo"}
    )
    assert client.session[TIME_ZONE_SESSION_KEY] == "Asia/Tokyo"
    for _ in range(5):
        response = client.post(CODE_URL, {"code": wrong_code(secret)})
    until = TOTPDevice.objects.get(user=user).locked_until
    assert until is not None
    assert f"{until.astimezone(TOKYO):%H:%M} JST" in response.content.decode()


def test_the_code_step_never_shows_the_accounts_saved_zone(make_user, enrolled, wrong_code):
    # A password alone must not tell where the account's owner lives.
    user = make_user(time_zone="America/Anchorage")
    secret = enrolled(user, at=timezone.now() - timedelta(minutes=5))
    client = Client()
    client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: "UTC"})
    for _ in range(5):
        response = client.post(CODE_URL, {"code": wrong_code(secret)})
    page = response.content.decode()
    assert "AKST" not in page and "AKDT" not in page
    assert " UTC" in page
    assert "America/Anchorage" not in str(dict(client.session))


def test_code_step_uses_the_browsers_zone_when_the_account_has_none(user_with_totp, wrong_code):
    user, secret = user_with_totp
    client = Client()
    client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: "Asia/Tokyo"}
    )
    for _ in range(5):
        response = client.post(CODE_URL, {"code": wrong_code(secret)})
    assert "JST" in response.content.decode()


def test_clock_drift_message_shows_local_time_and_utc(make_user, enrolled, totp_code):
    user = make_user()
    secret = enrolled(user, at=timezone.now() - timedelta(minutes=5))
    client = Client()
    client.post(
        LOGIN_URL,
        {"username": user.email, "password": PASSWORD, TIME_ZONE_FIELD: "America/New_York"},
    )
    response = client.post(CODE_URL, {"code": totp_code(secret, steps=4)})
    page = response.content.decode()
    assert "UTC" in page
    assert "EST" in page or "EDT" in page


def test_all_users_shows_times_in_the_staff_members_zone(make_user, log_in_verified):
    staff = make_user("boss@example.com", is_staff=True, is_superuser=True, time_zone="Asia/Tokyo")
    customer = make_user("cat@example.com")
    User.objects.filter(pk=customer.pk).update(last_login=datetime(2026, 12, 1, 23, 30, tzinfo=UTC))
    client = Client()
    log_in_verified(client, staff)
    page = client.get("/accounts/users/?q=cat").content.decode()
    assert "2 Dec 2026, 08:30 JST" in re.sub(r"<[^>]+>", "", page)


def test_all_users_counts_use_the_locales_separators(make_user, log_in_verified):
    staff = make_user("boss@example.com", is_staff=True, is_superuser=True, language="de")
    User.objects.bulk_create(
        User(email=f"user{number}@example.com", name=f"User {number}") for number in range(1234)
    )
    client = Client()
    log_in_verified(client, staff)
    page = client.get("/accounts/users/").content.decode()
    assert "1.235" in page


# --- The scripts' messages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "word"), [("de", "Kopiert"), ("fr", "presse-papiers"), ("xx", "")]
)
def test_the_javascript_catalog_speaks_the_language_its_url_names(make_user, asked, word):
    user = make_user(language="fr")
    client = Client()
    client.force_login(user)
    response = client.get(f"/jsi18n/?lang={asked}")
    assert response.status_code == 200
    body = response.content.decode()
    if word:
        assert word in body
    else:
        assert "Kopiert" not in body and "presse-papiers" not in body
    # One copy per URL for any cache, and nothing of the user's: no cookie set.
    assert "public" in response["Cache-Control"]
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_pages_ask_for_the_catalog_of_their_own_language(make_user):
    client = Client()
    client.force_login(make_user(language="de"))
    assert '/jsi18n/?lang=de"' in client.get("/accounts/profile/").content.decode()


# --- Pages the picker must not break, and pages that speak the account's language ----------


def test_the_page_that_shows_new_backup_codes_has_no_language_picker(
    user_with_totp, log_in_with_sudo
):
    # Changing the language reloads the page, and new codes are shown only once.
    user, _secret = user_with_totp
    client = log_in_with_sudo(Client(), user)
    page = client.post("/2fa/backup-codes/", {"generate": "1"}, follow=True).content.decode()
    assert page.count("<li><code>") == 5
    assert f'action="{LANGUAGE_URL}"' not in page
    assert f'action="{LANGUAGE_URL}"' in client.get("/accounts/profile/").content.decode()


def test_language_names_are_their_own_in_every_language(make_user):
    client = Client()
    client.force_login(make_user(language="de"))
    page = client.get("/accounts/profile/").content.decode()
    assert '<option value="en" lang="en">English</option>' in page
    assert "Englisch" not in page


def test_a_valid_reset_link_opens_in_the_accounts_language(
    make_user, mailoutbox, django_capture_on_commit_callbacks
):
    import re

    make_user(language="de")
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password-reset/", {"email": "ann@example.com"})
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mailoutbox[0].body)
    browser = Client(HTTP_ACCEPT_LANGUAGE="fr")
    page = browser.get(link.group(1), follow=True)
    assert html_lang(page) == "de"
    # A made-up link says nothing of any account, not even its language.
    assert html_lang(browser.get("/accounts/password-reset/MQ/bad-token/")) == "fr"


def test_the_first_visit_is_not_told_its_session_ended(db):
    page = Client().get("/", follow=True).content.decode()
    assert "Log in to continue" not in page
    assert (
        "Log in to continue" in Client().get("/accounts/login/?next=/2fa/enable/").content.decode()
    )
