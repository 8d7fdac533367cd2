"""Checks over the project's own template files."""

import re
from pathlib import Path

import pytest

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
