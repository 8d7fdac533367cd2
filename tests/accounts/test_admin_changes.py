"""Every change the admin makes to a user, or to a group's rights, needs "confirm it's you"
(the same sudo proof as Reset 2FA) and leaves a SecurityEvent naming the staff member.

All through HTTP: a staff session that passed the second factor but has no recent proof
is what a hijacked admin tab looks like.
"""

from datetime import UTC, datetime

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from accounts.models import SecurityEvent
from tests.conftest import PASSWORD

Kind = SecurityEvent.Kind
CONFIRM = "Confirm it's you first."
USERS = "/admin/accounts/user/"
GROUPS = "/admin/auth/group/"
NEW_PASSWORD = "a different horse, same battery"  # noqa: S105 - test value


def permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="accounts", codename=codename)


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root@example.com", PASSWORD, name="Root")


@pytest.fixture
def ann(make_user):
    # A round date_joined: the change form posts it back unchanged.
    return make_user(
        "ann@example.com", name="Ann Archer", date_joined=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    )


@pytest.fixture
def support(ann):
    group = Group.objects.create(name="Support")
    group.permissions.add(permission("view_user"))
    ann.groups.add(group)
    return group


@pytest.fixture
def admin_client(client, root, log_in_verified):
    """root's session: past the second factor (the admin opens), no recent sudo proof."""
    secret = log_in_verified(client, root)
    client.secret = secret
    return client


def confirm_its_me(client, url: str) -> None:
    """Answer "confirm it's you" at `url`, as the page asks: password and a current code."""
    answer = {"sudo": "1", "password": PASSWORD, "code": pyotp.TOTP(client.secret).now()}
    response = client.post(url, answer)
    assert (response.status_code, response["Location"]) == (302, url)


def change_data(user, **changes) -> dict:
    """What the admin's change form posts for `user` (unchanged unless `changes` say so)."""
    joined = timezone.localtime(user.date_joined)
    data = {
        "email": user.email,
        "name": user.name,
        "date_joined_0": f"{joined:%Y-%m-%d}",
        "date_joined_1": f"{joined:%H:%M:%S}",
        # A callable default (timezone.now) makes the form compare with these.
        "initial-date_joined_0": f"{joined:%Y-%m-%d}",
        "initial-date_joined_1": f"{joined:%H:%M:%S}",
        "last_login_0": "",
        "last_login_1": "",
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [],
        "_save": "Save",
    }
    flags = {"is_active": user.is_active, "is_staff": user.is_staff}
    flags["is_superuser"] = user.is_superuser
    flags.update({key: value for key, value in changes.items() if key.startswith("is_")})
    data.update({key: "on" for key, value in flags.items() if value})
    data.update({key: value for key, value in changes.items() if not key.startswith("is_")})
    return data


def staff_events(user) -> list[SecurityEvent]:
    kinds = [Kind.ACCOUNT_CREATED, Kind.ACCOUNT_CHANGED, Kind.ACCOUNT_DELETED]
    return list(SecurityEvent.objects.filter(user=user, kind__in=kinds))


# --- Without a recent proof: the question, and no change ---------------------------------
@pytest.mark.parametrize(
    "url_of",
    [
        lambda ann, group: f"{USERS}add/",
        lambda ann, group: f"{USERS}{ann.pk}/change/",
        lambda ann, group: f"{USERS}{ann.pk}/password/",
        lambda ann, group: f"{USERS}{ann.pk}/delete/",
        lambda ann, group: f"{GROUPS}add/",
        lambda ann, group: f"{GROUPS}{group.pk}/change/",
        lambda ann, group: f"{GROUPS}{group.pk}/delete/",
    ],
    ids=["user-add", "user-change", "user-password", "user-delete", "group-add",
         "group-change", "group-delete"],
)  # fmt: skip
def test_every_admin_form_that_changes_rights_asks_to_confirm_it_is_you_first(
    admin_client, ann, support, url_of
):
    response = admin_client.get(url_of(ann, support))
    html = response.content.decode()
    assert response.status_code == 200
    assert CONFIRM in html
    # The question only: no form to fill in and lose at the POST.
    assert 'name="is_superuser"' not in html and 'name="permissions"' not in html
    assert 'name="password1"' not in html and 'name="post"' not in html


def test_a_post_that_would_make_a_superuser_without_the_proof_changes_nothing(admin_client, ann):
    url = f"{USERS}{ann.pk}/change/"
    response = admin_client.post(url, change_data(ann, is_staff=True, is_superuser=True))
    assert CONFIRM in response.content.decode()
    ann.refresh_from_db()
    assert (ann.is_staff, ann.is_superuser) == (False, False)
    assert staff_events(ann) == []


def test_a_post_that_would_add_a_user_without_the_proof_creates_nobody(admin_client, db):
    data = {"email": "mallory@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = admin_client.post(f"{USERS}add/", data)
    assert CONFIRM in response.content.decode()
    assert not get_user_model().objects.filter(email="mallory@example.com").exists()


def test_a_password_post_without_the_proof_keeps_the_password(admin_client, ann):
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    response = admin_client.post(f"{USERS}{ann.pk}/password/", data)
    assert CONFIRM in response.content.decode()
    ann.refresh_from_db()
    assert ann.check_password(PASSWORD)


def test_a_delete_post_without_the_proof_deletes_nothing(admin_client, ann):
    response = admin_client.post(f"{USERS}{ann.pk}/delete/", {"post": "yes"})
    assert CONFIRM in response.content.decode()
    assert get_user_model().objects.filter(pk=ann.pk).exists()


def test_a_group_post_without_the_proof_grants_nothing(admin_client, support):
    data = {"name": "Support", "permissions": [permission("change_user").pk]}
    response = admin_client.post(f"{GROUPS}{support.pk}/change/", data)
    assert CONFIRM in response.content.decode()
    assert not support.permissions.filter(codename="change_user").exists()


def test_a_wrong_password_is_no_proof(admin_client, ann):
    url = f"{USERS}{ann.pk}/change/"
    code = pyotp.TOTP(admin_client.secret).now()
    response = admin_client.post(url, {"sudo": "1", "password": "not it", "code": code})
    assert "That password is not right." in response.content.decode()
    assert CONFIRM in admin_client.get(url).content.decode()


def test_the_proof_expires_after_ten_minutes(admin_client, ann, freeze_clock):
    clock = freeze_clock(timezone.now())
    url = f"{USERS}{ann.pk}/change/"
    confirm_its_me(admin_client, url)
    assert CONFIRM not in admin_client.get(url).content.decode()
    clock.advance(minutes=11)
    assert CONFIRM in admin_client.get(url).content.decode()


# --- "Delete selected" and other paths around the question ------------------------------
@pytest.mark.parametrize("proven", [False, True])
def test_the_bulk_delete_action_is_not_there_even_with_the_proof(admin_client, ann, proven):
    if proven:
        confirm_its_me(admin_client, f"{USERS}{ann.pk}/change/")
    changelist = admin_client.get(USERS)
    assert b"delete_selected" not in changelist.content
    bulk = {"action": "delete_selected", "_selected_action": [ann.pk], "index": "0", "post": "yes"}
    admin_client.post(USERS, bulk)
    assert get_user_model().objects.filter(pk=ann.pk).exists()


def test_the_group_bulk_delete_action_is_not_there(admin_client, support):
    bulk = {
        "action": "delete_selected",
        "_selected_action": [support.pk],
        "index": "0",
        "post": "yes",
    }
    admin_client.post(GROUPS, bulk)
    assert Group.objects.filter(pk=support.pk).exists()


def test_staff_who_may_only_view_users_see_the_form_read_only_without_the_question(
    client, ann, make_user, log_in_verified
):
    viewer = make_user("viewer@example.com", is_staff=True)
    viewer.user_permissions.add(permission("view_user"))
    log_in_verified(client, viewer)
    url = f"{USERS}{ann.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and CONFIRM not in page.content.decode()
    assert b'name="is_superuser"' not in page.content  # read-only: no field to post
    assert client.post(url, change_data(ann, is_superuser=True)).status_code == 403
    ann.refresh_from_db()
    assert not ann.is_superuser


# --- With the proof: the change, and the event naming the staff member ------------------
def test_with_the_proof_a_change_is_saved_and_recorded_with_the_actor(admin_client, root, ann):
    group = Group.objects.create(name="Support")
    url = f"{USERS}{ann.pk}/change/"
    confirm_its_me(admin_client, url)
    assert 'name="is_superuser"' in admin_client.get(url).content.decode()
    response = admin_client.post(url, change_data(ann, is_staff=True, groups=[group.pk]))
    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.is_staff and list(ann.groups.all()) == [group]
    [event] = staff_events(ann)
    assert (event.kind, event.actor, event.detail) == (
        Kind.ACCOUNT_CHANGED,
        root,
        "staff status, groups",
    )
    assert event.description == "Account changed by staff (staff status, groups)"


def test_a_save_that_changes_nothing_records_nothing(admin_client, ann):
    url = f"{USERS}{ann.pk}/change/"
    confirm_its_me(admin_client, url)
    assert admin_client.post(url, change_data(ann)).status_code == 302
    assert staff_events(ann) == []


def test_making_a_superuser_is_named_in_the_event(admin_client, root, ann):
    url = f"{USERS}{ann.pk}/change/"
    confirm_its_me(admin_client, url)
    admin_client.post(url, change_data(ann, is_staff=True, is_superuser=True))
    ann.refresh_from_db()
    assert ann.is_superuser
    [event] = staff_events(ann)
    assert event.detail == "staff status, superuser status"
    assert event.actor == root


def test_with_the_proof_a_new_user_is_created_and_recorded(admin_client, root):
    url = f"{USERS}add/"
    confirm_its_me(admin_client, url)
    data = {"email": "new@example.com", "name": "New", "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD, "usable_password": "true", "_save": "Save"}  # fmt: skip
    assert admin_client.post(url, data).status_code == 302
    new = get_user_model().objects.get(email="new@example.com")
    events = list(SecurityEvent.objects.filter(user=new))
    assert [(e.kind, e.actor) for e in events] == [(Kind.ACCOUNT_CREATED, root)]
    assert NEW_PASSWORD not in events[0].detail and new.password not in events[0].detail


def test_with_the_proof_a_password_change_is_recorded_once_with_the_actor(admin_client, root, ann):
    url = f"{USERS}{ann.pk}/password/"
    confirm_its_me(admin_client, url)
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    assert admin_client.post(url, data).status_code == 302
    ann.refresh_from_db()
    assert ann.check_password(NEW_PASSWORD)
    events = list(SecurityEvent.objects.filter(user=ann))
    assert [(e.kind, e.actor) for e in events] == [(Kind.PASSWORD_CHANGED, root)]
    assert NEW_PASSWORD not in events[0].detail and ann.password not in events[0].detail


@pytest.mark.parametrize("change", ["password", "address"])
def test_the_users_mail_about_a_staff_change_names_no_address_or_browser(
    admin_client, ann, mailoutbox, django_capture_on_commit_callbacks, change
):
    # They are the staff member's: the user's pages do not show them either.
    if change == "password":
        url = f"{USERS}{ann.pk}/password/"
        data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    else:
        url = f"{USERS}{ann.pk}/change/"
        data = change_data(ann, email="ann.other@example.com")
    confirm_its_me(admin_client, url)
    staff_browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko Firefox/120.0"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, data, REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT=staff_browser
        )
    assert response.status_code == 302
    assert mailoutbox
    for mail in mailoutbox:
        for body in [mail.body, *(content for content, _ in mail.alternatives)]:
            assert "203.0.113.77" not in body and "Firefox" not in body, mail.to


def test_with_the_proof_disabling_password_login_is_recorded(admin_client, root, ann):
    url = f"{USERS}{ann.pk}/password/"
    confirm_its_me(admin_client, url)
    data = {"usable_password": "false", "unset-password": "1"}
    assert admin_client.post(url, data).status_code == 302
    ann.refresh_from_db()
    assert not ann.has_usable_password()
    events = list(SecurityEvent.objects.filter(user=ann))
    assert [(e.kind, e.actor, e.detail) for e in events] == [
        (Kind.ACCOUNT_CHANGED, root, "password login disabled")
    ]


def test_with_the_proof_a_delete_is_recorded_on_the_staff_members_log(admin_client, root, ann):
    url = f"{USERS}{ann.pk}/delete/"
    confirm_its_me(admin_client, url)
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not get_user_model().objects.filter(pk=ann.pk).exists()
    # Ann's own log went with her account: the deletion is kept on the actor's.
    [event] = staff_events(root)
    assert (event.kind, event.actor) == (Kind.ACCOUNT_DELETED, root)
    assert event.description == f"Deleted a user account (ann@example.com, user {ann.pk})"


def test_with_the_proof_a_group_rights_change_is_recorded_on_each_member(
    admin_client, root, ann, support
):
    url = f"{GROUPS}{support.pk}/change/"
    confirm_its_me(admin_client, url)
    rights = [permission("view_user").pk, permission("reset_two_factor").pk]
    assert admin_client.post(url, {"name": "Support", "permissions": rights}).status_code == 302
    assert support.permissions.filter(codename="reset_two_factor").exists()
    [event] = staff_events(ann)
    assert (event.kind, event.actor) == (Kind.ACCOUNT_CHANGED, root)
    assert event.detail == "permissions of group Support"


def test_with_the_proof_deleting_a_group_is_recorded_on_each_member(
    admin_client, root, ann, support
):
    url = f"{GROUPS}{support.pk}/delete/"
    confirm_its_me(admin_client, url)
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Group.objects.filter(pk=support.pk).exists()
    [event] = staff_events(ann)
    assert (event.kind, event.actor, event.detail) == (
        Kind.ACCOUNT_CHANGED, root, "group Support deleted"
    )  # fmt: skip


# --- Only superusers grant rights -----------------------------------------------------------
@pytest.fixture
def support_admin(client, make_user, log_in_verified):
    """A staff member who may change users in the admin, but is no superuser."""
    agent = make_user("agent@example.com", name="Agent", is_staff=True)
    for codename in ("view_user", "change_user"):
        agent.user_permissions.add(permission(codename))
    client.secret = log_in_verified(client, agent)
    client.agent = agent
    return client


def test_staff_who_may_change_users_cannot_grant_rights(support_admin, ann):
    url = f"{USERS}{support_admin.agent.pk}/change/"
    confirm_its_me(support_admin, url)
    agent = support_admin.agent
    data = change_data(agent, is_staff="on", is_superuser="on")
    data["user_permissions"] = [p.pk for p in Permission.objects.all()]
    support_admin.post(url, data)
    agent.refresh_from_db()
    assert not agent.is_superuser
    assert set(agent.user_permissions.values_list("codename", flat=True)) == {
        "view_user",
        "change_user",
    }


def test_staff_who_may_change_users_cannot_touch_a_superuser(support_admin, root):
    confirm_its_me(support_admin, f"{USERS}{root.pk}/change/")  # proven for ten minutes
    for url in (f"{USERS}{root.pk}/change/", f"{USERS}{root.pk}/password/"):
        response = support_admin.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert response.status_code == 403
    root.refresh_from_db()
    assert root.check_password(PASSWORD)


def test_only_superusers_change_groups(support_admin, support):
    support_admin.agent.user_permissions.add(
        Permission.objects.get(content_type__app_label="auth", codename="change_group")
    )
    response = support_admin.post(
        f"{GROUPS}{support.pk}/change/",
        {"name": "Support", "permissions": [p.pk for p in Permission.objects.all()]},
    )
    assert response.status_code == 403
    assert support.permissions.count() == 1


def test_support_cannot_take_over_a_colleague(support_admin, make_user, enrolled, log_in_verified):
    # A colleague may hold rights support lacks: no password, address or delete for them.
    manager = make_user("mgr@example.com", name="Max Manager", is_staff=True)
    manager.user_permissions.add(permission("delete_user"))
    confirm_its_me(support_admin, f"{USERS}{support_admin.agent.pk}/change/")
    for url in (f"{USERS}{manager.pk}/change/", f"{USERS}{manager.pk}/password/"):
        response = support_admin.post(
            url, {**change_data(manager), "email": "agent+mgr@example.com",
                  "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )  # fmt: skip
        assert response.status_code == 403
    assert support_admin.post(f"{USERS}{manager.pk}/delete/", {"post": "yes"}).status_code == 403
    manager.refresh_from_db()
    assert manager.email == "mgr@example.com" and manager.check_password(PASSWORD)


def test_an_address_changed_in_the_admin_is_told_to_the_old_address(
    admin_client, ann, mailoutbox, django_capture_on_commit_callbacks
):
    url = f"{USERS}{ann.pk}/change/"
    confirm_its_me(admin_client, url)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, change_data(ann, email="ann.other@example.com"))
    assert response.status_code == 302
    assert sorted(m.to[0] for m in mailoutbox) == ["ann.other@example.com", "ann@example.com"]
    event = SecurityEvent.objects.get(user=ann, kind=Kind.EMAIL_CHANGED)
    assert event.actor.email == "root@example.com"


def test_confirm_its_you_as_a_page_of_its_own_posts_plainly(admin_client, ann):
    # In the admin the question is a whole page: an htmx post would swap the admin's
    # change form into a dialog card that is not there (a blank page).
    html = admin_client.get(f"{USERS}{ann.pk}/change/").content.decode()
    assert CONFIRM in html and "hx-post" not in html
    dialog = admin_client.get(f"{USERS}{ann.pk}/change/", HTTP_HX_REQUEST="true")
    assert "hx-post" in dialog.content.decode()


def test_adding_another_spelling_of_a_taken_address_is_a_message_not_a_500(admin_client, ann):
    url = f"{USERS}add/"
    confirm_its_me(admin_client, url)
    data = {"email": "ANN@Example.com", "name": "Twin", "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD, "usable_password": "true"}  # fmt: skip
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "A user with that email address already exists." in response.content.decode()
    assert get_user_model().objects.count() == 2  # ann and root
