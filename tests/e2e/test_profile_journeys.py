"""My profile's own actions in a real browser, with and without JavaScript:
Edit details, Change password, Change email (with its link) and Delete account."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e import steps
from tests.e2e.steps import JS_MODES
from tests.e2e.test_accessibility import assert_accessible

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

js_modes = pytest.mark.parametrize("js_enabled", **JS_MODES)
NEW_PASSWORD = "another long passphrase 2026"  # noqa: S105 - test value


def details(page):
    return page.get_by_role("region", name="Your details")


def logged_in(page, user):
    steps.start(page)
    steps.log_in_with_password(page, user.email)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


@js_modes
def test_edit_details(page, user, js_enabled, step_shots):
    logged_in(page, user)
    step_shots(page, "profile-1-actions")
    dialog = steps.open_dialog(
        page, js_enabled, details(page).get_by_role("link", name="Edit details"), "Edit details"
    )
    steps.confirm_identity(dialog)
    dialog.get_by_label("Name").fill("  Ann   <b>Archer</b> ")
    step_shots(page, "profile-2-edit-details")
    if js_enabled:  # axe runs as a page script: not in a browser with JavaScript off
        assert_accessible(page, "Edit details")
    dialog.get_by_role("button", name="Save").click()
    expect(details(page).get_by_text("Ann <b>Archer</b>", exact=True)).to_be_visible()  # escaped
    expect(page.get_by_text("Your details are saved.")).to_be_visible()


@js_modes
def test_change_password(page, user, js_enabled, step_shots):
    logged_in(page, user)
    dialog = steps.open_dialog(
        page, js_enabled, details(page).get_by_role("link", name="Change password"),
        "Change password",
    )  # fmt: skip
    steps.confirm_identity(dialog)
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_label("New password", exact=True).fill("short")
    dialog.get_by_label("New password again").fill("short")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_text(re.compile("This password is too short"))).to_be_visible()
    step_shots(page, "profile-3-password-refused")
    if js_enabled:  # axe runs as a page script: not in a browser with JavaScript off
        assert_accessible(page, "Change password with errors")
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    dialog.get_by_label("New password again").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Change password").click()
    expect(
        page.get_by_text("Your password is changed. Other browsers were signed out.")
    ).to_be_visible()
    steps.log_out(page)
    steps.log_in_with_password(page, user.email, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="My profile", level=1)).to_be_visible()


@js_modes
def test_change_email_with_its_link(page, user, js_enabled, step_shots):
    logged_in(page, user)
    dialog = steps.open_dialog(
        page, js_enabled, details(page).get_by_role("link", name="Change email"), "Change email"
    )
    steps.confirm_identity(dialog)
    dialog.get_by_label("New email").fill("not an address")
    dialog.get_by_role("button", name="Send confirmation link").click()
    expect(dialog.get_by_text("Enter a whole email address")).to_be_visible()
    dialog.get_by_label("New email").fill("ann.new@example.com")
    dialog.get_by_role("button", name="Send confirmation link").click()
    expect(dialog.get_by_role("heading", name="Check your inbox")).to_be_visible()
    step_shots(page, "profile-4-email-sent")
    link = next(
        re.search(r"https?://\S+/accounts/profile/email/\S+/", m.body)[0]
        for m in mail.outbox
        if m.to == ["ann.new@example.com"]
    )
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your new email")).to_be_visible()
    step_shots(page, "profile-5-email-confirm")
    page.get_by_role("button", name="Confirm new email").click()
    expect(page.get_by_text("Your email address is now ann.new@example.com.")).to_be_visible()
    expect(details(page).get_by_text("ann.new@example.com", exact=True)).to_be_visible()
    page.goto(link)  # once only
    page.get_by_role("button", name="Confirm new email").click()
    expect(page.get_by_role("alert")).to_contain_text("This link does not work any more")


@js_modes
def test_delete_account(page, user, js_enabled, step_shots):
    logged_in(page, user)
    region = page.get_by_role("region", name="Delete account")
    dialog = steps.open_dialog(
        page, js_enabled, region.get_by_role("link", name="Delete account"), "Delete account"
    )
    steps.confirm_identity(dialog)
    expect(dialog.get_by_role("heading", name="Delete account?")).to_be_visible()
    dialog.get_by_label("Type your email address to confirm").fill("someone@else.example")
    dialog.get_by_role("button", name="Delete account").click()
    expect(dialog.get_by_text("That is not this account's email address.")).to_be_visible()
    step_shots(page, "profile-6-delete")
    if js_enabled:  # axe runs as a page script: not in a browser with JavaScript off
        assert_accessible(page, "Delete account")
    dialog.get_by_label("Type your email address to confirm").fill(user.email)
    dialog.get_by_role("button", name="Delete account").click()
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    step_shots(page, "profile-7-deleted")
    page.get_by_role("link", name="Back to the login page").click()
    steps.log_in_with_password(page, user.email)
    expect(page.get_by_text("That email and password do not match an account.")).to_be_visible()
