"""Where you're signed in: one record per logged-in session, listed on My profile, ended
from another browser, by "Sign out all other sessions", by logging out, or by staff.

Everything goes through HTTP with several test clients, each one browser: what a
signed-out browser sees is its next request answered with the login page.
"""

import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.db.utils import OperationalError
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.account_changes import close_account
from accounts.models import SecurityEvent, UserSession
from accounts.session_records import SESSION_RECORD_KEY
from tests.accounts.security_helpers import BROWSER, IP, USER_AGENT
from tests.conftest import PASSWORD
from twofactor import services
from twofactor.models import TrustedBrowser

Kind = SecurityEvent.Kind

LOGIN_URL = "/accounts/login/"
CODE_URL = "/2fa/login/"
PROFILE_URL = "/accounts/profile/"
LOGOUT_URL = "/accounts/logout/"
PASSWORD_URL = "/accounts/profile/password/"
OTHERS_URL = "/accounts/profile/sessions/sign-out-others/"
LOGIN_AFTER_PROFILE = "/accounts/login/?next=/accounts/profile/"
SIGNED_OUT = "This browser was signed out from another session. Please log in again."
NO_REASON = "Enter the reason for signing them out."

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
CHROME_BROWSER = "Chrome on macOS"
CHROME_IP = "198.51.100.23"
NEW_IP = "192.0.2.44"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sign_out_url(pk: int) -> str:
    return f"/accounts/profile/sessions/{pk}/sign-out/"


def user_sessions_url(user) -> str:
    return f"/accounts/users/{user.pk}/sessions/"


def end_url(user) -> str:
    return f"/accounts/users/{user.pk}/sessions/end/"


def browser(ip: str = IP, agent: str = USER_AGENT, **kwargs) -> Client:
    """A test client whose every request comes from `ip` with `agent`."""
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent, **kwargs)


def log_in(user, client: Client | None = None) -> Client:
    """Through the real login form (a user without 2FA lands on My profile)."""
    client = client or browser()
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, PROFILE_URL)
    return client


def confirm_it_is_me(client: Client, user) -> None:
    """ "Confirm it's you" answered just now, as log_in_with_sudo does, for a form login."""
    session = client.session
    session[services.SUDO_SESSION_KEY] = {"user_id": str(user.pk), "at": timezone.now().timestamp()}
    session.save()


def record_of(client: Client) -> UserSession:
    return UserSession.objects.get(pk=client.session[SESSION_RECORD_KEY])


def page(response) -> str:
    """What a user reads: entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(response.content.decode()).split())


def sessions_card(response) -> str:
    """My profile's "Where you're signed in" card, as text with its markup."""
    match = re.search(r'<section[^>]*id="sessions".*?</section>', response.content.decode(), re.S)
    assert match, "no sessions card on the page"
    return " ".join(html.unescape(match.group(0)).split())


def session_items(card: str) -> list[str]:
    return re.findall(r'<li class="key">.*?</li>', card)


def is_logged_in(client: Client) -> bool:
    return client.get(PROFILE_URL).status_code == 200


def usersession_updates(queries) -> list[str]:
    return [
        query["sql"]
        for query in queries
        if query["sql"].startswith("UPDATE") and "accounts_usersession" in query["sql"]
    ]


# --- A login makes one record, and My profile lists it ----------------------------------------
def test_a_login_through_the_form_creates_one_session_record(user):
    log_in(user)
    record = UserSession.objects.get(user=user)
    assert record.ended_at is None
    assert (record.ip, record.user_agent) == (IP, USER_AGENT)


def test_a_two_factor_login_creates_the_record_at_the_code_step_not_before(
    user_with_totp, totp_code
):
    user, secret = user_with_totp
    client = browser()
    password_step = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert password_step["Location"] == CODE_URL
    assert not UserSession.objects.filter(user=user).exists()  # not logged in yet

    code_step = client.post(CODE_URL, {"code": totp_code(secret)})

    assert code_step.status_code == 302
    record = UserSession.objects.get(user=user)
    assert (record.ip, record.user_agent, record.ended_at) == (IP, USER_AGENT, None)
    assert record_of(client) == record


def test_my_profile_lists_this_browser_as_active_now_with_its_name_and_ip(user):
    me = log_in(user)
    card = sessions_card(me.get(PROFILE_URL))
    [item] = session_items(card)
    assert BROWSER in item
    assert "This browser" in item
    assert "Active now" in item
    assert IP in item
    assert "Sign out" not in item  # this browser logs out with Log out, not from the list
    assert "You are signed in on this browser only." in card


def test_two_browsers_of_one_user_see_each_others_session(user):
    firefox = log_in(user)
    chrome = log_in(user, browser(CHROME_IP, CHROME))

    firefox_card = sessions_card(firefox.get(PROFILE_URL))
    chrome_card = sessions_card(chrome.get(PROFILE_URL))

    assert len(session_items(firefox_card)) == len(session_items(chrome_card)) == 2
    [other] = [item for item in session_items(firefox_card) if "This browser" not in item]
    assert CHROME_BROWSER in other and CHROME_IP in other and "Last active" in other
    assert f'action="{sign_out_url(record_of(chrome).pk)}"' in other
    [other] = [item for item in session_items(chrome_card) if "This browser" not in item]
    assert BROWSER in other and IP in other
    assert f'action="{sign_out_url(record_of(firefox).pk)}"' in other
    assert "Sign out all other sessions" in firefox_card


# --- Signing one session out -------------------------------------------------------------------
@pytest.fixture
def two_browsers(user):
    """Ann on her laptop (Firefox) and on another computer (Chrome)."""
    return log_in(user), log_in(user, browser(CHROME_IP, CHROME))


def test_signing_out_another_session_logs_that_browser_out_at_its_next_request(two_browsers):
    laptop, other = two_browsers
    laptop.post(sign_out_url(record_of(other).pk))

    response = other.get(PROFILE_URL, follow=True)

    assert response.redirect_chain == [(LOGIN_AFTER_PROFILE, 302)]
    assert SIGNED_OUT in page(response)
    assert not is_logged_in(other)


def test_the_browser_that_signed_another_out_stays_logged_in(two_browsers):
    laptop, other = two_browsers
    response = laptop.post(sign_out_url(record_of(other).pk), follow=True)
    assert response.redirect_chain == [(PROFILE_URL + "#sessions", 302)]
    assert "That session is signed out." in page(response)
    [item] = session_items(sessions_card(response))  # the other one dropped out of the list
    assert "This browser" in item
    assert is_logged_in(laptop)


def top_messages(response) -> str:
    """The messages at the top of the page, above its content."""
    match = re.search(r'<div class="messages".*?</div>', response.content.decode(), re.S)
    assert match, "no messages at the top of the page"
    return " ".join(html.unescape(match.group(0)).split())


@pytest.mark.parametrize("action", ["one", "all others"])
def test_what_signing_out_says_is_in_the_sessions_card_where_the_page_opens(two_browsers, action):
    laptop, other = two_browsers
    url = sign_out_url(record_of(other).pk) if action == "one" else OTHERS_URL
    response = laptop.post(url, follow=True)
    said = "That session is signed out." if action == "one" else "Signed out of 1 other session."
    assert response.redirect_chain == [(PROFILE_URL + "#sessions", 302)]
    assert said in sessions_card(response)
    assert said not in top_messages(response)
    # Read on any other page, it is at the top, as every message: nothing is lost.
    laptop.post(url)
    again = "That session was already signed out." if action == "one" else "You are not signed in"
    assert again in top_messages(laptop.get("/accounts/security/"))


def test_without_trusted_browsers_signing_out_says_nothing_of_trust(user, two_browsers):
    # The user has no 2FA, so no browser that skips a code: a word about codes would puzzle.
    laptop, other = two_browsers
    message = page(laptop.post(sign_out_url(record_of(other).pk), follow=True))
    assert "That session is signed out." in message
    assert "Trusted browsers" not in message and "without a code" not in message
    log_in(user, browser(NEW_IP))
    message = page(laptop.post(OTHERS_URL, follow=True))
    assert "Signed out of 1 other session." in message
    assert "ask for a code" not in message


def test_with_a_trusted_browser_signing_out_says_to_remove_its_trust_too(
    user, enrolled, log_in_verified
):
    enrolled(user)
    services.trust_browser(request=RequestFactory().get("/"), response=HttpResponse(), user=user)
    laptop, other = Client(), browser(CHROME_IP, CHROME)
    log_in_verified(laptop, user)
    log_in_verified(other, user)
    message = page(laptop.post(sign_out_url(record_of(other).pk), follow=True))
    assert "remove it under Trusted browsers too" in message
    log_in_verified(other, user)
    message = page(laptop.post(OTHERS_URL, follow=True))
    assert "Other browsers you trusted will ask for a code again." in message


def test_signing_out_this_browser_from_the_list_is_refused_with_a_pointer_to_log_out(user):
    me = log_in(user)
    response = me.post(sign_out_url(record_of(me).pk), follow=True)
    assert "To sign out of this browser, use Log out in the account menu." in page(response)
    assert record_of(me).ended_at is None
    assert is_logged_in(me)


def test_another_users_session_cannot_be_signed_out_by_its_id(user, make_user):
    ann = log_in(user)
    mallory = log_in(make_user("mallory@example.com", name="Mallory"), browser(CHROME_IP, CHROME))

    response = mallory.post(sign_out_url(record_of(ann).pk), follow=True)

    assert "That session was already signed out." in page(response)
    assert record_of(ann).ended_at is None
    assert is_logged_in(ann)
    assert not SecurityEvent.objects.filter(kind=Kind.SESSIONS_ENDED).exists()


def test_signing_out_a_session_by_get_is_refused(two_browsers):
    laptop, other = two_browsers
    response = laptop.get(sign_out_url(record_of(other).pk))
    assert response.status_code == 405
    assert record_of(other).ended_at is None
    assert is_logged_in(other)


def test_signing_out_a_session_needs_the_csrf_token(user):
    other = log_in(user, browser(CHROME_IP, CHROME))
    forger = browser(enforce_csrf_checks=True)
    forger.cookies = log_in(user).cookies  # a logged-in session, but no CSRF token sent
    response = forger.post(sign_out_url(record_of(other).pk))
    assert response.status_code == 403
    assert record_of(other).ended_at is None
    assert is_logged_in(other)


# --- Sign out all other sessions ---------------------------------------------------------------
def test_sign_out_all_other_sessions_keeps_this_one_and_ends_the_rest(user):
    laptop = log_in(user)
    others = [log_in(user, browser(CHROME_IP, CHROME)), log_in(user, browser(NEW_IP))]

    response = laptop.post(OTHERS_URL, follow=True)

    assert "Signed out of 2 other sessions." in page(response)
    assert [is_logged_in(other) for other in others] == [False, False]
    assert is_logged_in(laptop)
    assert record_of(laptop).ended_at is None
    [item] = session_items(sessions_card(laptop.get(PROFILE_URL)))
    assert "This browser" in item


def test_signing_out_all_other_sessions_is_recorded_as_sessions_ended(user):
    laptop = log_in(user)
    log_in(user, browser(CHROME_IP, CHROME))
    log_in(user, browser(NEW_IP))
    laptop.post(OTHERS_URL)
    [event] = SecurityEvent.objects.filter(user=user, kind=Kind.SESSIONS_ENDED)
    assert event.detail == "2 sessions"


def test_sign_out_all_other_sessions_alone_ends_nothing_and_says_so(user):
    me = log_in(user)
    response = me.post(OTHERS_URL, follow=True)
    assert "You are not signed in anywhere else." in page(response)
    assert is_logged_in(me)
    assert not SecurityEvent.objects.filter(user=user, kind=Kind.SESSIONS_ENDED).exists()


# --- Logging out, changing the password --------------------------------------------------------
def test_logging_out_ends_the_record_and_drops_it_from_the_list(two_browsers):
    laptop, other = two_browsers
    record = record_of(other)

    other.post(LOGOUT_URL)

    record.refresh_from_db()
    assert record.ended_at is not None
    [item] = session_items(sessions_card(laptop.get(PROFILE_URL)))
    assert "This browser" in item and CHROME_BROWSER not in item


def change_password(client: Client) -> None:
    response = client.post(
        PASSWORD_URL,
        {
            "old_password": PASSWORD,
            "new_password1": "a completely new passphrase 2026",
            "new_password2": "a completely new passphrase 2026",
        },
    )
    assert (response.status_code, response["Location"]) == (302, PROFILE_URL)


def test_a_password_change_drops_the_other_sessions_from_the_list(user):
    laptop = log_in(user)
    log_in(user, browser(CHROME_IP, CHROME))
    confirm_it_is_me(laptop, user)

    change_password(laptop)

    card = sessions_card(laptop.get(PROFILE_URL))
    assert CHROME_BROWSER not in card
    assert len(session_items(card)) == 1


def test_the_session_that_changed_the_password_stays_listed_as_this_browser(user):
    laptop = log_in(user)
    confirm_it_is_me(laptop, user)

    change_password(laptop)

    [item] = session_items(sessions_card(laptop.get(PROFILE_URL)))
    assert "This browser" in item and "Active now" in item and BROWSER in item
    assert record_of(laptop).ended_at is None


# --- Activity: written at most once a minute ---------------------------------------------------
def test_two_requests_within_a_minute_write_the_activity_once(user, freeze_clock):
    clock = freeze_clock(START)
    me = log_in(user)
    clock.advance(seconds=61)
    with CaptureQueriesContext(connection) as queries:
        me.get(PROFILE_URL)
        clock.advance(seconds=30)
        me.get(PROFILE_URL)
    assert len(usersession_updates(queries)) == 1


def test_a_request_within_the_minute_writes_nothing(user, freeze_clock):
    clock = freeze_clock(START)
    me = log_in(user)
    clock.advance(seconds=59)
    me.get(PROFILE_URL, REMOTE_ADDR=NEW_IP)
    record = record_of(me)
    assert (record.last_activity, record.ip) == (START, IP)


def test_after_a_minute_a_request_writes_its_time_and_ip(user, freeze_clock):
    clock = freeze_clock(START)
    me = log_in(user)
    clock.advance(seconds=61)
    me.get(PROFILE_URL, REMOTE_ADDR=NEW_IP)
    record = record_of(me)
    assert (record.last_activity, record.ip) == (START + timedelta(seconds=61), NEW_IP)


# --- Sessions without (or with a lost) record --------------------------------------------------
def test_a_session_from_before_records_existed_gets_a_record_instead_of_being_logged_out(user):
    me = log_in(user)
    session = me.session
    del session[SESSION_RECORD_KEY]
    session.save()
    UserSession.objects.all().delete()

    response = me.get(PROFILE_URL)

    assert response.status_code == 200
    record = UserSession.objects.get(user=user)
    assert (record.ip, record.ended_at) == (IP, None)
    assert record_of(me) == record
    [item] = session_items(sessions_card(response))
    assert "This browser" in item


def test_a_session_whose_record_was_deleted_is_logged_out(user):
    me = log_in(user)
    UserSession.objects.filter(user=user).delete()
    response = me.get(PROFILE_URL, follow=True)
    assert response.redirect_chain == [(LOGIN_AFTER_PROFILE, 302)]
    assert SIGNED_OUT in page(response)
    assert not is_logged_in(me)


def test_a_database_outage_at_the_record_check_answers_the_plain_503_page(user):
    me = log_in(user)

    def unreachable(execute, sql, params, many, context):
        if "accounts_usersession" in sql:
            raise OperationalError('connection to server at "127.0.0.1", port 5432 failed')
        return execute(sql, params, many, context)

    with connection.execute_wrapper(unreachable):
        response = me.get(PROFILE_URL)

    body = response.content.decode()
    assert response.status_code == 503
    assert "Temporarily unavailable" in body
    assert "Traceback" not in body and "OperationalError" not in body
    assert response["Retry-After"]


# --- Staff: a user's sessions, and "Sign out everywhere" ---------------------------------------
def permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename=codename)


@pytest.fixture
def ann(user):
    """Ann (a customer) logged in on her laptop; the test client of that laptop."""
    return log_in(user)


@pytest.fixture
def support(client, staff_user, enrolled, log_in_with_sudo):
    """Support staff (view_user, reset_two_factor) with 2FA, verified, and "confirm it's you"
    answered a moment ago."""
    enrolled(staff_user, at=timezone.now() - timedelta(minutes=2))
    return log_in_with_sudo(client, staff_user)


@pytest.fixture
def viewer(make_user):
    """Staff who may look (view_user) but not reset or sign anyone out."""
    staff = make_user("viewer@example.com", name="Vic Viewer", is_staff=True)
    staff.user_permissions.add(permission("view_user"))
    return get_user_model().objects.get(pk=staff.pk)


@pytest.fixture
def colleague(make_user):
    """Another staff member, logged in: support may not sign them out."""
    staff = make_user("colleague@example.com", name="Col League", is_staff=True)
    return staff, log_in(staff, browser(CHROME_IP, CHROME))


def test_staff_with_view_user_see_where_the_user_is_signed_in(
    client, ann, user, viewer, log_in_verified
):
    log_in_verified(client, viewer)
    response = client.get(user_sessions_url(user))
    assert response.status_code == 200
    text = page(response)
    assert f"Sessions of {user.email}" in text
    assert BROWSER in text and IP in text
    assert "Not signed in anywhere." not in text


def test_a_users_sessions_page_says_when_they_are_signed_in_nowhere(
    client, user, viewer, log_in_verified
):
    log_in_verified(client, viewer)
    assert "Not signed in anywhere." in page(client.get(user_sessions_url(user)))


def test_customers_get_403_on_a_users_sessions_page(ann, user, make_user):
    mallory = log_in(make_user("mallory@example.com", name="Mallory"), browser(CHROME_IP, CHROME))
    response = mallory.get(user_sessions_url(user))
    assert response.status_code == 403
    assert user.email not in page(response) and IP not in page(response)


def test_staff_without_a_verified_session_are_sent_to_my_profile(client, ann, user, viewer):
    client.force_login(viewer)  # password only
    response = client.get(user_sessions_url(user))
    assert (response.status_code, response["Location"]) == (302, PROFILE_URL)


def test_sign_out_everywhere_is_not_offered_without_the_reset_permission(
    client, ann, user, viewer, log_in_verified
):
    log_in_verified(client, viewer)
    assert "Sign out everywhere" not in page(client.get(user_sessions_url(user)))


def test_sign_out_everywhere_is_offered_to_support_for_a_customer(support, ann, user):
    html_text = support.get(user_sessions_url(user)).content.decode()
    assert "Sign out everywhere" in html_text
    assert f'href="{end_url(user)}?next=' in html_text


def test_sign_out_everywhere_is_not_offered_to_support_for_a_staff_member(support, colleague):
    staff, _ = colleague
    assert "Sign out everywhere" not in page(support.get(user_sessions_url(staff)))


def test_sign_out_everywhere_is_not_offered_for_ones_own_sessions(support, staff_user):
    assert "Sign out everywhere" not in page(support.get(user_sessions_url(staff_user)))


def test_sign_out_everywhere_is_offered_to_a_superuser_for_a_staff_member(
    client, colleague, enrolled, log_in_verified
):
    staff, _ = colleague
    root = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    log_in_verified(client, root)
    assert "Sign out everywhere" in page(client.get(user_sessions_url(staff)))


def test_sign_out_everywhere_logs_every_session_of_the_user_out(support, ann, user):
    other = log_in(user, browser(CHROME_IP, CHROME))

    response = support.post(end_url(user), {"reason": "Laptop stolen, reported by phone"})

    assert (response.status_code, response["Location"]) == (302, "/accounts/users/")
    assert [is_logged_in(ann), is_logged_in(other)] == [False, False]
    assert not UserSession.objects.open().filter(user=user).exists()
    assert is_logged_in(support)


def test_sign_out_everywhere_is_recorded_with_the_staff_member_and_the_reason(
    support, ann, user, staff_user
):
    support.post(end_url(user), {"reason": "  Laptop stolen, reported by phone "})
    [event] = SecurityEvent.objects.filter(user=user, kind=Kind.SESSIONS_ENDED_BY_STAFF)
    assert event.actor == staff_user
    assert event.detail == "Laptop stolen, reported by phone"


def test_sign_out_everywhere_mails_the_user_the_reason(
    support, ann, user, mailoutbox, django_capture_on_commit_callbacks
):
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        support.post(end_url(user), {"reason": "Laptop stolen, reported by phone"})
    [message] = [message for message in mailoutbox if message.to == [user.email]]
    assert "signed you out" in message.subject and "everywhere" in message.subject
    assert "Reason given: Laptop stolen, reported by phone" in message.body


@pytest.mark.parametrize("reason", ["", "   \t ", "\u200b\u200b", "\u200b \u2060"])
def test_sign_out_everywhere_without_a_reason_is_refused_and_ends_nothing(
    support, ann, user, reason
):
    response = support.post(end_url(user), {"reason": reason})
    assert response.status_code == 200
    assert NO_REASON in page(response)
    assert is_logged_in(ann)
    assert UserSession.objects.open().filter(user=user).count() == 1
    assert not SecurityEvent.objects.filter(kind=Kind.SESSIONS_ENDED_BY_STAFF).exists()


def test_sign_out_everywhere_asks_staff_to_confirm_it_is_them_first(
    client, ann, user, staff_user, log_in_verified
):
    log_in_verified(client, staff_user)  # verified, but no recent "confirm it's you"
    response = client.post(end_url(user), {"reason": "Laptop stolen"})
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
    assert is_logged_in(ann)


def test_staff_without_the_reset_permission_cannot_sign_anyone_out(
    client, ann, user, viewer, log_in_verified
):
    log_in_verified(client, viewer)
    response = client.post(end_url(user), {"reason": "Laptop stolen"})
    assert response.status_code == 403
    assert is_logged_in(ann)


def test_support_cannot_sign_a_staff_member_out(support, colleague):
    staff, colleague_browser = colleague
    response = support.post(end_url(staff), {"reason": "Laptop stolen"})
    assert response.status_code == 403
    assert "Only a superuser can sign a staff member out." in page(response)
    assert is_logged_in(colleague_browser)
    assert UserSession.objects.open().filter(user=staff).exists()


def test_nobody_signs_themselves_out_everywhere_here(support, staff_user):
    response = support.post(end_url(staff_user), {"reason": "My laptop was stolen"})
    assert response.status_code == 403
    assert "Use My profile to sign out of your own sessions." in page(response)
    assert is_logged_in(support)
    assert not SecurityEvent.objects.filter(kind=Kind.SESSIONS_ENDED_BY_STAFF).exists()


def test_a_superuser_can_sign_a_staff_member_out(client, colleague, enrolled, log_in_with_sudo):
    staff, colleague_browser = colleague
    root = get_user_model().objects.create_superuser("root@example.com", PASSWORD)
    enrolled(root, at=timezone.now() - timedelta(minutes=2))
    log_in_with_sudo(client, root)
    response = client.post(end_url(staff), {"reason": "Laptop stolen"})
    assert response.status_code == 302
    assert not is_logged_in(colleague_browser)


def test_a_session_in_daily_use_lasts_and_stays_listed(user, freeze_clock):
    # The record check saves the session again (at most once a minute), so a session
    # lasts SESSION_COOKIE_AGE from its last use, as the list assumes: a browser used
    # every day is not logged out on day 14 while the list still shows it.
    clock = freeze_clock(START)
    other = log_in(user, browser(CHROME_IP, CHROME))
    for _ in range(20):
        clock.advance(days=1)
        assert is_logged_in(other)
    laptop = log_in(user)
    items = session_items(sessions_card(laptop.get(PROFILE_URL)))
    assert len(items) == 2 and any(CHROME_BROWSER in item for item in items)


def test_a_session_left_unused_for_the_session_age_is_logged_out_and_unlisted(
    user, freeze_clock, settings
):
    clock = freeze_clock(START)
    other = log_in(user, browser(CHROME_IP, CHROME))
    clock.advance(seconds=settings.SESSION_COOKIE_AGE + 60)
    assert not is_logged_in(other)
    laptop = log_in(user)
    [item] = session_items(sessions_card(laptop.get(PROFILE_URL)))
    assert "This browser" in item and CHROME_BROWSER not in item


def test_a_session_idle_for_longer_than_the_session_age_drops_out_of_the_list(
    user, freeze_clock, settings
):
    clock = freeze_clock(START)
    log_in(user, browser(CHROME_IP, CHROME))
    clock.advance(seconds=settings.SESSION_COOKIE_AGE + 60)
    laptop = log_in(user)
    [item] = session_items(sessions_card(laptop.get(PROFILE_URL)))
    assert "This browser" in item and CHROME_BROWSER not in item


def test_sign_out_all_other_sessions_ends_a_session_that_has_no_record(user):
    # A session opened before records existed (kept over the upgrade) is not in the list,
    # yet "all other sessions" ends it too: the account's session generation moves on.
    legacy = log_in(user, browser(CHROME_IP, CHROME))
    session = legacy.session
    UserSession.objects.filter(pk=session.pop(SESSION_RECORD_KEY)).delete()
    session.save()
    owner = log_in(user)
    owner.post(OTHERS_URL)
    assert not is_logged_in(legacy)
    assert is_logged_in(owner)


def test_sign_out_all_other_sessions_records_trust_removed_even_with_no_session_ended(
    user, enrolled, log_in_verified
):
    enrolled(user)
    # A browser that trusted itself and then logged out: no session, but a trust.
    services.trust_browser(request=RequestFactory().get("/"), response=HttpResponse(), user=user)
    owner = Client()
    log_in_verified(owner, user)
    owner.post(OTHERS_URL)
    assert not TrustedBrowser.objects.filter(user=user).exists()
    event = SecurityEvent.objects.get(user=user, kind=Kind.SESSIONS_ENDED)
    assert event.detail == "0 sessions, 1 trusted browser"


def test_pruning_deletes_ended_and_idle_session_records_and_keeps_open_ones(user, freeze_clock):
    clock = freeze_clock(START)
    ended = log_in(user, browser(CHROME_IP, CHROME))
    ended_id = record_of(ended).pk
    ended.post(LOGOUT_URL)
    kept = log_in(user)
    idle = log_in(user, browser(NEW_IP, CHROME))
    idle_id = record_of(idle).pk
    clock.advance(days=10)
    kept.get(PROFILE_URL)  # active: written again
    clock.advance(days=5)  # idle is now 15 days without a request
    call_command("prune_security_events", stdout=io.StringIO())
    remaining = set(UserSession.objects.values_list("pk", flat=True))
    assert record_of(kept).pk in remaining
    assert ended_id not in remaining and idle_id not in remaining


def test_closing_the_account_deletes_its_session_records(user):
    client = log_in(user)
    assert UserSession.objects.filter(user=user).exists()
    close_account(user=user)
    assert not UserSession.objects.filter(user=user).exists()
    assert not is_logged_in(client)
