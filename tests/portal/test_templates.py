"""Checks over the project's own template files."""

import re
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    path
    for folder in ("templates", "accounts/templates", "twofactor/templates", "portal/templates")
    for path in (ROOT / folder).rglob("*.html")
)
# "{#" opens a comment that Django closes only on the same line: one that goes on to the next
# line is not a comment at all, and the page shows it as text.
UNCLOSED_COMMENT = re.compile(r"\{#(?!.*#\})")


def test_there_are_templates_to_check():
    assert len(TEMPLATES) > 20


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_a_short_comment_closes_on_its_own_line(path):
    unclosed = [
        number
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if UNCLOSED_COMMENT.search(line)
    ]
    assert not unclosed, f"{{# without #}} on line(s) {unclosed}: use {{% comment %}} instead"


@pytest.mark.django_db
def test_a_page_answering_a_post_is_marked_for_its_history_entry(client, django_user_model):
    django_user_model.objects.create_user(email="ann@example.com", password=PASSWORD)
    page = client.get("/accounts/login/").content.decode()
    assert "data-post-result" not in page
    refused = client.post("/accounts/login/", {"username": "ann@example.com", "password": "no"})
    assert refused.status_code == 200
    assert "<body" in refused.content.decode() and "data-post-result" in refused.content.decode()


@pytest.mark.django_db
def test_the_csrf_refusal_is_not_marked_its_address_may_take_posts_only():
    refused = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x"})
    assert refused.status_code == 403
    assert "Please try again" in refused.content.decode()
    assert "data-post-result" not in refused.content.decode()
