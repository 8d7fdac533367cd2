"""German and French ship complete: every message translated, none fuzzy, and each
translation keeps its message's placeholders and markup (a lost %(time)s is a crash
or a silent gap on a German page; a lost <a> is a dead link)."""

import subprocess

import pytest

from tests.i18n.catalogs import CATALOG_PATHS, ROOT, catalog, placeholders, tags, translations

IDS = [str(path.relative_to(ROOT)) for path in CATALOG_PATHS]


@pytest.fixture(params=CATALOG_PATHS, ids=IDS)
def po(request):
    assert request.param.exists(), f"{request.param} is missing: run make messages"
    return catalog(request.param)


def test_every_message_is_translated(po):
    missing = [entry.msgid for entry in po if not all(translations(entry))]
    assert missing == []


def test_no_message_is_fuzzy(po):
    # A fuzzy entry is a guess by makemessages; gettext ignores it, so the page shows English.
    assert [entry.msgid for entry in po.fuzzy_entries()] == []


def test_translations_keep_their_placeholders(po):
    wrong = []
    for entry in po.translated_entries():
        if entry.msgid_plural:
            # A singular may say "one" in words; every form uses only the message's own
            # placeholders, and the other forms all of the plural's.
            allowed = placeholders(entry.msgid) | placeholders(entry.msgid_plural)
            forms = translations(entry)
            if any(set(placeholders(form)) - set(allowed) for form in forms) or any(
                placeholders(form) != placeholders(entry.msgid_plural) for form in forms[1:]
            ):
                wrong.append(entry.msgid)
        elif placeholders(entry.msgstr) != placeholders(entry.msgid):
            wrong.append(entry.msgid)
    assert wrong == []


def test_translations_keep_their_markup(po):
    wrong = [
        entry.msgid
        for entry in po.translated_entries()
        if any(
            tags(text) != tags(entry.msgid_plural or entry.msgid) for text in translations(entry)
        )
    ]
    assert wrong == []


def test_plural_forms_are_declared(po):
    # German and French both have two forms; French uses the singular for 0 and 1.
    expected = {"de": "nplurals=2; plural=(n != 1);", "fr": "nplurals=2; plural=(n > 1);"}
    assert po.metadata["Plural-Forms"] == expected[po.metadata["Language"]]


def test_no_compiled_catalog_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files", "*.mo"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""


@pytest.mark.parametrize("language", ["de", "fr"])
def test_a_message_in_both_catalogs_reads_the_same(language):
    # The project's catalog wins over twofactor's for a shared message: one wording for
    # both, or the app's own pages would change words when the app moves to a project.
    project, app = (
        {(e.msgctxt, e.msgid): translations(e) for e in catalog(path)}
        for path in CATALOG_PATHS
        if f"/{language}/" in str(path) and path.name == "django.po"
    )
    assert {key: text for key, text in project.items() if key in app and app[key] != text} == {}
