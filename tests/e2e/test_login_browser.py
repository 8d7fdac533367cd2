import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_user_logs_in_and_reaches_profile_through_the_avatar_menu(page, user, screenshot):
    page.goto(page.base_url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    screenshot(page, "login")

    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="My profile")).to_be_visible()
    expect(page.get_by_text("Not activated")).to_be_visible()
    screenshot(page, "profile")
