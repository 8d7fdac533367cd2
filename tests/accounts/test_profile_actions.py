"""My profile's actions over HTTP: Edit details, Change password, Change email, Delete account.

Each is behind "confirm it's you", recorded in the security log and announced by
e-mail; every refusal is a message on the page and changes nothing.
"""

import html
import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts.models import EmailChange, SecurityEvent
from tests.conftest import PASSWORD
from twofactor.models import BackupCode, TOTPDevice

Kind = SecurityEvent.Kind
User = get_user_model()
NEW_PASSWORD = "a completely new passphrase 2026"  # noqa: S105 - test value


@pytest.fixture
def me(client, user, log_in_with_sudo):
    """Ann's browser, logged in and proven ("confirm it's you") a moment ago."""
    return log_in_with_sudo(client, user)


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """send(fn): run fn as a committing request would, so its e-mails go out."""

    def run(fn):
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    return run


def page(response) -> str:
    return " ".join(html.unescape(response.content.decode()).split())


def kinds(user) -> list[str]:
    return list(
        SecurityEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True)
    )


# --- Behind "confirm it's you" ------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["/accounts/profile/details/", "/accounts/profile/password/", "/accounts/profile/email/",
     "/accounts/profile/delete/"],
)  # fmt: skip
def test_every_action_asks_to_confirm_it_is_you_first(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert "Confirm it's you first." in page(response)
    response = client.post(url, {"name": "Mallory", "email": "x@example.com"})
    assert "Confirm it's you first." in page(response)
    user.refresh_from_db()
    assert (user.name, user.email) == ("Ann Example", "ann@example.com")


def test_the_profile_offers_the_four_actions(me):
    html = page(me.get("/accounts/profile/"))
    for label in ("Edit details", "Change password", "Change email", "Delete account"):
        assert f">{label}</a>" in html


# --- Edit details -----------------------------------------------------------------------
def test_edit_details_trims_the_name_and_records_and_mails_it(me, user, send, mailoutbox):
    response = send(lambda: me.post("/accounts/profile/details/", {"name": "  Ann   Archer  "}))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.name == "Ann Archer"
    assert kinds(user) == [Kind.NAME_CHANGED]
    assert [m.subject for m in mailoutbox] == [
        "The name on your Customer Portal account was changed"
    ]


def test_a_name_is_shown_escaped_everywhere(me, user, send, mailoutbox):
    send(lambda: me.post("/accounts/profile/details/", {"name": "<script>alert(1)</script>"}))
    html = me.get("/accounts/profile/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in mailoutbox[0].alternatives[0][0]


def test_a_too_long_name_is_refused_with_a_message(me, user):
    response = me.post("/accounts/profile/details/", {"name": "x" * 151})
    assert response.status_code == 200
    assert "Use at most 150 characters." in page(response)
    user.refresh_from_db()
    assert user.name == "Ann Example"


# --- Change password ------------------------------------------------------------------------
def password_form(old=PASSWORD, new=NEW_PASSWORD, again=None) -> dict:
    return {"old_password": old, "new_password1": new, "new_password2": again or new}


def test_changing_the_password_keeps_this_session_and_ends_the_others(me, user, send, mailoutbox):
    other = Client()
    other.force_login(user)
    response = send(lambda: me.post("/accounts/profile/password/", password_form()))
    assert response.status_code == 302
    assert me.get("/accounts/profile/").status_code == 200  # this one goes on
    assert other.get("/accounts/profile/").status_code == 302  # the other is signed out
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert Kind.PASSWORD_CHANGED in kinds(user)
    assert "password of your Customer Portal account was changed" in mailoutbox[0].subject


def test_changing_the_password_voids_a_half_finished_login(
    me, user, enrolled, totp_code, log_in_with_sudo
):
    secret = enrolled(user, at=timezone.now() - timedelta(minutes=2))
    thief = Client()
    thief.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    log_in_with_sudo(me, user)
    me.post("/accounts/profile/password/", password_form())
    response = thief.post("/2fa/login/", {"code": totp_code(secret)})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert thief.get("/accounts/profile/").status_code == 302


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (password_form(old="not it"), "That is not your current password."),
        (password_form(new=PASSWORD), "The new password is your current one."),
        (password_form(again="something else entirely"), "The two password fields didn"),
        (
            password_form(new="short pw 1"),
            "This password is too short. It must contain at least 12 characters.",
        ),
        (password_form(new="password1234"), "This password is too common."),
        (password_form(new="482910375610"), "This password is entirely numeric."),
        (password_form(new="ann.example.com"), "The password is too similar to the"),
    ],
    ids=["wrong-current", "same-as-old", "mismatch", "too-short", "common", "numeric", "similar"],
)
def test_a_refused_password_change_says_why_under_the_field_and_changes_nothing(
    me, user, form, message
):
    response = me.post("/accounts/profile/password/", form)
    assert response.status_code == 200
    html = page(response)
    assert message in html
    assert 'class="field-errors"' in html
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_current_password_is_asked_even_inside_the_sudo_window(me, user):
    response = me.post(
        "/accounts/profile/password/",
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert "This field is required." in page(response)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_guesses_at_the_current_password_count_towards_the_lock(me, user, settings):
    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "3/h"
    for _ in range(3):
        me.post("/accounts/profile/password/", password_form(old="a guess"))
    response = me.post("/accounts/profile/password/", password_form())
    assert "Too many wrong passwords for this account lately." in page(response)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert kinds(user).count(Kind.CONFIRM_FAILED) == 3


# --- Change email -----------------------------------------------------------------------------
def ask_for(me, send, email: str):
    return send(lambda: me.post("/accounts/profile/email/", {"email": email}))


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/profile/email/[^/\s]+/)", message.body)[1]


def test_a_new_address_gets_a_link_and_the_old_one_logs_in_until_it_is_opened(
    me, user, send, mailoutbox
):
    response = ask_for(me, send, "ann.new@example.com")
    assert (response.status_code, response["Location"]) == (302, "/accounts/profile/email/sent/")
    sent = me.get("/accounts/profile/email/sent/")
    assert "We sent a link to <strong>ann.new@example.com</strong>" in page(sent)
    me.get("/accounts/profile/email/sent/")  # a reload sends nothing again
    confirms = [m for m in mailoutbox if m.to == ["ann.new@example.com"]]
    assert len(confirms) == 1 and "24 hours" in confirms[0].body
    user.refresh_from_db()
    assert user.email == "ann@example.com"
    login = Client().post("/accounts/login/", {"username": "ann@example.com", "password": PASSWORD})
    assert login.status_code == 302


def test_opening_the_link_logged_in_moves_the_account_and_tells_the_old_address(
    me, user, send, mailoutbox, staff_user, log_in_verified
):
    ask_for(me, send, "ann.new@example.com")
    link = link_in(mailoutbox[-1])
    assert "Confirm new email" in page(me.get(link))  # opening it alone changes nothing
    user.refresh_from_db()
    assert user.email == "ann@example.com"
    mailoutbox.clear()
    response = send(lambda: me.post(link))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "ann.new@example.com"
    assert sorted(m.to[0] for m in mailoutbox) == ["ann.new@example.com", "ann@example.com"]
    to_old = next(m for m in mailoutbox if m.to == ["ann@example.com"])
    assert "contact support" in to_old.body and "support@portal.example" in to_old.body
    event = SecurityEvent.objects.get(user=user, kind=Kind.EMAIL_CHANGED)
    assert event.detail == "from ann@example.com to ann.new@example.com"
    staff = Client()
    log_in_verified(staff, staff_user)
    assert "ann.new@example.com" in staff.get("/accounts/users/").content.decode()
    old = Client().post("/accounts/login/", {"username": "ann@example.com", "password": PASSWORD})
    assert old.status_code == 200  # the old address no longer logs in


@pytest.mark.parametrize("taken", ["bob@example.com", "BOB@Example.com", "ｂｏｂ@example.com"])
def test_an_address_another_account_uses_is_refused_however_it_is_spelled(
    me, user, make_user, send, mailoutbox, taken
):
    make_user("bob@example.com")
    response = ask_for(me, send, taken)
    assert response.status_code == 200
    assert "Another account uses that address." in page(response)
    assert mailoutbox == [] and not EmailChange.objects.exists()


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not an address", "Enter a whole email address"),
        ("ANN@example.com", "already your address"),
    ],
)
def test_a_malformed_or_unchanged_address_is_refused(me, send, mailoutbox, email, message):
    response = ask_for(me, send, email)
    assert response.status_code == 200 and message in page(response)
    assert mailoutbox == []


def test_a_link_expires_after_24_hours(me, user, send, mailoutbox, freeze_clock, log_in_with_sudo):
    clock = freeze_clock(timezone.now())
    ask_for(me, send, "ann.new@example.com")
    link = link_in(mailoutbox[-1])
    clock.advance(hours=24, seconds=1)
    log_in_with_sudo(me, user)
    response = me.post(link)
    assert response.status_code == 400
    assert "This link does not work any more" in page(response)
    user.refresh_from_db()
    assert user.email == "ann@example.com"


def test_a_link_works_once(me, user, send, mailoutbox):
    ask_for(me, send, "ann.new@example.com")
    link = link_in(mailoutbox[-1])
    send(lambda: me.post(link))
    ask_for(me, send, "ann.third@example.com")  # ...and a later change elsewhere
    again = me.post(link)
    assert again.status_code == 400 and "already used" in page(again)
    user.refresh_from_db()
    assert user.email == "ann.new@example.com"


def test_a_newer_request_voids_the_older_link(me, user, send, mailoutbox):
    ask_for(me, send, "first@example.com")
    first = link_in(mailoutbox[-1])
    ask_for(me, send, "second@example.com")
    assert me.post(first).status_code == 400
    user.refresh_from_db()
    assert user.email == "ann@example.com"


def test_a_link_opened_by_another_account_changes_nothing(me, user, make_user, send, mailoutbox):
    ask_for(me, send, "ann.new@example.com")
    link = link_in(mailoutbox[-1])
    bob = Client()
    bob.force_login(make_user("bob@example.com"))
    response = bob.post(link)
    assert response.status_code == 400 and "This link is for another account." in page(response)
    user.refresh_from_db()
    assert user.email == "ann@example.com"


def test_a_link_opened_logged_out_asks_to_log_in_first(me, user, send, mailoutbox):
    ask_for(me, send, "ann.new@example.com")
    link = link_in(mailoutbox[-1])
    response = Client().get(link)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_a_tampered_link_is_refused(me, user):
    response = me.post("/accounts/profile/email/eyJjaGFuZ2UiOjF9:forged:sig/")
    assert response.status_code == 400 and "does not work any more" in page(response)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_openings_of_one_link_at_once_change_the_address_once(
    user, mailoutbox, log_in_with_sudo
):
    browser = log_in_with_sudo(Client(), user)
    browser.post("/accounts/profile/email/", {"email": "ann.new@example.com"})
    link = link_in(next(m for m in mailoutbox if m.to == ["ann.new@example.com"]))
    clients = []
    for _ in range(6):
        other = Client()
        other.force_login(user)
        clients.append(other)
    barrier = threading.Barrier(len(clients))
    statuses: list = []

    def confirm(client):
        try:
            barrier.wait(timeout=10)
            statuses.append(client.post(link).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [302] + [400] * 5
    assert SecurityEvent.objects.filter(user=user, kind=Kind.EMAIL_CHANGED).count() == 1


# --- Delete account --------------------------------------------------------------------------
def test_deleting_the_account_needs_the_email_typed(me, user):
    response = me.post("/accounts/profile/delete/", {"email": "someone@else.example"})
    assert response.status_code == 200
    assert "That is not this account's email address." in page(response)
    assert User.objects.get(pk=user.pk).is_active


def test_deleting_the_account_asks_for_a_code_when_2fa_is_on(client, user, enrolled):
    enrolled(user, at=timezone.now() - timedelta(minutes=2))
    client.force_login(user)
    response = client.get("/accounts/profile/delete/")
    assert 'name="code"' in response.content.decode()


def test_deleting_the_account_removes_its_data_and_keeps_an_anonymous_log(
    me, user, enrolled, send, mailoutbox, log_in_with_sudo
):
    enrolled(user, at=timezone.now() - timedelta(minutes=2))
    log_in_with_sudo(me, user)
    other = Client()
    other.force_login(user)
    user.refresh_from_db()
    SecurityEvent.objects.create(user=user, kind=Kind.LOGIN, ip="203.0.113.9")
    response = send(lambda: me.post("/accounts/profile/delete/", {"email": " ANN@example.com "}))
    assert response.status_code == 302 and response["Location"] == "/accounts/closed/"
    gone = User.objects.get(pk=user.pk)
    assert not gone.is_active and not gone.has_usable_password()
    assert "ann" not in gone.email and gone.name == ""
    assert not TOTPDevice.objects.filter(user=gone).exists()
    assert not BackupCode.objects.filter(user=gone).exists()
    assert other.get("/accounts/profile/").status_code == 302  # every session is signed out
    assert not [
        s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    assert Kind.ACCOUNT_CLOSED in kinds(gone) and Kind.LOGIN in kinds(gone)  # the audit trail
    goodbye = [m for m in mailoutbox if m.to == ["ann@example.com"]]
    assert [m.subject for m in goodbye] == ["Your Customer Portal account is closed"]
    login = Client().post("/accounts/login/", {"username": "ann@example.com", "password": PASSWORD})
    assert login.status_code == 200


def test_the_last_superuser_cannot_delete_their_account(client, db, log_in_with_sudo):
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    log_in_with_sudo(client, root)
    from tests.conftest import PASSWORD as _  # noqa: F401 - the fixture password

    response = client.post("/accounts/profile/delete/", {"email": root.email})
    assert response.status_code == 200
    assert "This is the last superuser account" in page(response)
    assert User.objects.get(pk=root.pk).is_active
    User.objects.create_superuser("second@example.com", PASSWORD)
    assert client.post("/accounts/profile/delete/", {"email": root.email}).status_code == 302


# --- Second review ---------------------------------------------------------------------------
def test_confirmation_links_are_spaced_and_greet_nobody_by_name(me, user, send, mailoutbox):
    me.post("/accounts/profile/details/", {"name": "Your bank account is frozen"})
    mailoutbox.clear()
    for _ in range(5):
        response = ask_for(me, send, "stranger@example.org")
    assert "A link was sent a moment ago" in page(response)
    to_stranger = [m for m in mailoutbox if m.to == ["stranger@example.org"]]
    assert len(to_stranger) == 1
    text = to_stranger[0].body + to_stranger[0].alternatives[0][0]
    assert "frozen" not in text and "Hello," in text


def test_a_closed_account_keeps_no_address_in_its_log(me, user, send):
    ask_for(me, send, "ann.private@home.example")
    send(lambda: me.post("/accounts/profile/delete/", {"email": user.email}))
    details = SecurityEvent.objects.filter(user_id=user.pk).values_list("detail", flat=True)
    assert not any("@" in detail for detail in details)


def test_a_closed_account_cannot_be_brought_back_in_the_admin(
    me, user, send, log_in_verified, log_in_with_sudo
):
    send(lambda: me.post("/accounts/profile/delete/", {"email": user.email}))
    root = User.objects.create_superuser("root@example.com", PASSWORD)
    admin = Client()
    log_in_verified(admin, root)  # switches 2FA on for root: the admin asks for it
    log_in_with_sudo(admin, root)
    response = admin.post(f"/admin/accounts/user/{user.pk}/change/", {"email": "me@evil.example"})
    assert response.status_code == 403
    assert User.objects.get(pk=user.pk).is_closed


def test_confirm_its_you_never_writes_a_password_back_into_the_page(client, user, freeze_clock):
    client.force_login(user)
    response = client.post("/accounts/profile/password/", password_form())
    html = page(response)
    assert "Confirm it's you first." in html
    assert PASSWORD not in html and NEW_PASSWORD not in html


def test_an_address_taken_at_the_moment_of_confirming_is_a_message(
    me, user, make_user, send, mailoutbox, monkeypatch
):
    from accounts import account_changes

    ask_for(me, send, "shared@example.org")
    link = link_in(next(m for m in mailoutbox if m.to == ["shared@example.org"]))
    make_user("shared@example.org")  # another account takes it between check and save
    monkeypatch.setattr(account_changes, "address_is_taken", lambda *a, **k: False)
    response = me.post(link)
    assert response.status_code == 400 and "Another account started using" in page(response)
    assert User.objects.get(pk=user.pk).email == "ann@example.com"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_superusers_deleting_themselves_at_once_leave_one(db, log_in_with_sudo):
    from tests.concurrency import all_at_once

    first = User.objects.create_superuser("root1@example.com", PASSWORD)
    second = User.objects.create_superuser("root2@example.com", PASSWORD)
    clients = [log_in_with_sudo(Client(), first), log_in_with_sudo(Client(), second)]
    emails = {id(clients[0]): first.email, id(clients[1]): second.email}
    all_at_once(clients, lambda c: c.post("/accounts/profile/delete/", {"email": emails[id(c)]}))
    assert User.objects.filter(is_superuser=True, is_active=True).count() == 1


def test_a_reset_link_posted_twice_at_once_saves_one_password(user):
    from accounts import account_changes
    from accounts.models import SecurityEvent, User

    first, second = User.objects.get(pk=user.pk), User.objects.get(pk=user.pk)  # two posts
    account_changes.reset_password(user=first, password="the first new passphrase 1")
    with pytest.raises(account_changes.ResetLinkUsed):
        account_changes.reset_password(user=second, password="the second new passphrase 2")
    user.refresh_from_db()
    assert user.check_password("the first new passphrase 1")
    kinds = list(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))
    assert kinds == [SecurityEvent.Kind.PASSWORD_RESET]
