"""The shipped catalogs, read with polib: where they are, and what a message holds."""

import re
from collections import Counter
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[2]
# The project's catalogs and the reusable twofactor app's own.
LOCALE_DIRS = (ROOT / "locale", ROOT / "twofactor" / "locale")
LANGUAGES = ("de", "fr")
DOMAINS = ("django", "djangojs")
CATALOG_PATHS = [
    directory / language / "LC_MESSAGES" / f"{domain}.po"
    for directory in LOCALE_DIRS
    for language in LANGUAGES
    for domain in DOMAINS
]

# %(name)s, %s, %d; "%%" is a literal percent sign, not a placeholder.
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%[sdif]")
TAG = re.compile(r"</?([a-zA-Z][\w-]*)")


def catalog(path: Path) -> polib.POFile:
    return polib.pofile(str(path))


def placeholders(text: str) -> Counter:
    found = Counter()
    for match in PLACEHOLDER.finditer(text.replace("%%", "")):
        found[match.group(1) or match.group(0)] += 1
    return found


def tags(text: str) -> Counter:
    return Counter(name.lower() for name in TAG.findall(text))


def translations(entry: polib.POEntry) -> list[str]:
    if entry.msgid_plural:
        return [entry.msgstr_plural[index] for index in sorted(entry.msgstr_plural)]
    return [entry.msgstr]
