"""Every page and e-mail in German shows no English.

Two checks, over the same pages, each rendered once in English and once in German
from the same state:
- no sentence of the source catalog (an English msgid) is on the German page: a
  marked string that is not translated, or one evaluated before the language was known;
- no run of English words is the same on both pages: a string that was never marked
  (names, addresses, app names and other data are the same in every language, and listed).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts import account_changes, notifications, security_log
from accounts.models import RateWindow, SecurityEvent, User
from tests.conftest import PASSWORD
from tests.i18n.catalogs import CATALOG_PATHS, PLACEHOLDER, TAG, catalog
from tests.keys import add_keys
from twofactor import services

# The same in every language: people, places and products, not sentences of ours.
DATA = {
    "Customer Portal",
    "Ann Example",
    "Sam Staff",
    "Bob Basic",
    "Google Authenticator",
    "Microsoft Authenticator",
    "Aegis (Android)",
    "English",
    "Deutsch",
    "Français",
}
WORD = re.compile(r"[A-Za-z]*[a-z][A-Za-z]+")
EMAIL = re.compile(r"\S+@\S+|https?://\S+")  # addresses and links
ZONE = re.compile(r"\b[A-Z][a-z]+/[A-Za-z_/]+\b( \([A-Z]{3,4}\))?")
# Shown codes and secrets are data too: backup codes ("abcde fghij"), key groups.
CODE = re.compile(r"^[a-z0-9]{5} [a-z0-9]{5}$")


class VisibleText(HTMLParser):
    """What a reader sees or hears: text, and the attributes a screen reader speaks."""

    SPOKEN = ("aria-label", "title", "placeholder", "alt", "aria-description")
    SKIPPED = {"script", "style", "code", "kbd", "samp"}

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.skipping: list[str] = []
        self.select_names: list[str] = []
        self.joining = False  # after a <wbr>, which splits no word

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        if tag == "wbr":
            self.joining = True
            return
        if tag == "select":
            self.select_names.append(attributes.get("name") or "")
        if tag in self.SKIPPED:
            self.skipping.append(tag)
        for name in self.SPOKEN:
            if attributes.get(name):
                self.chunks.append(attributes[name])
        if tag == "input" and attributes.get("type") in ("submit", "button"):
            self.chunks.append(attributes.get("value") or "")

    def handle_endtag(self, tag) -> None:
        if tag == "select" and self.select_names:
            self.select_names.pop()
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data) -> None:
        # The language and time zone lists name languages and cities, the same everywhere.
        if self.skipping or (self.select_names and self.select_names[-1] in ("time_zone",)):
            return
        if self.joining and self.chunks:
            self.chunks[-1] += data
        else:
            self.chunks.append(data)
        self.joining = False


def visible_chunks(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return [" ".join(chunk.split()) for chunk in parser.chunks if chunk.strip()]


def is_english_words(chunk: str) -> bool:
    if CODE.match(chunk):
        return False
    words = ZONE.sub(" ", EMAIL.sub(" ", chunk))
    for data in DATA:
        words = words.replace(data, " ")
    return len(WORD.findall(words)) >= 2


def catalog_sentences() -> set[str]:
    """The English of every message, cut at its placeholders and tags: runs of three
    words or more that German never reuses (a brand name in a translation may)."""
    german = [catalog(path) for path in CATALOG_PATHS if "/de/" in str(path)]
    translated = " ".join(
        text
        for po in german
        for entry in po
        for text in (entry.msgstr, *entry.msgstr_plural.values())
    )
    sentences = set()
    for po in german:
        for entry in po:
            for source in (entry.msgid, entry.msgid_plural):
                for piece in re.split(f"{PLACEHOLDER.pattern}|{TAG.pattern}[^>]*>", source or ""):
                    piece = " ".join((piece or "").split()).strip(" .,:;()")
                    if len(WORD.findall(piece)) >= 3 and piece not in translated:
                        sentences.add(piece)
    return sentences


@dataclass
class Portal:
    """The state every page is rendered from: a customer with 2FA, one without, staff."""

    customer: object
    secret: str
    newcomer: object
    superuser: object

    def set_language(self, language: str) -> None:
        for user in (self.customer, self.newcomer, self.superuser):
            user.language = language
            user.save(update_fields=["language"])


@pytest.fixture
def portal(make_user, enrolled, log_in_verified):
    customer = make_user("ann@example.com", name="Ann Example", time_zone="Europe/Berlin")
    secret = enrolled(customer, at=timezone.now() - timedelta(minutes=5))
    services.regenerate_backup_codes(user=customer)
    add_keys(customer, 1)
    newcomer = make_user("bob@example.com", name="Bob Basic", time_zone="Europe/Berlin")
    superuser = make_user("staff@example.com", name="Sam Staff", is_staff=True, is_superuser=True)
    superuser.user_permissions.add(*Permission.objects.filter(content_type__app_label="accounts"))
    enrolled(superuser, at=timezone.now() - timedelta(minutes=5))
    # Something in every log: a login, a failed code, a lock, backup codes, a change.
    for user in (customer, superuser):
        security_log.record_event(user=user, kind=SecurityEvent.Kind.LOGIN, detail="password only")
    return Portal(customer, secret, newcomer, superuser)


def browser(language: str) -> Client:
    return Client(
        HTTP_ACCEPT_LANGUAGE=language,
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0",
    )


def signed_in(language: str, user, log_in_with_sudo) -> Client:
    return log_in_with_sudo(browser(language), user)


Page = Callable[[str, Portal, Callable], str]


def pages() -> Iterator[tuple[str, Page]]:
    """(name, render(language, portal, log_in_with_sudo) -> html) for every page."""

    def get(url: str, who: str | None = None) -> Page:
        def render(language, portal, sudo):
            client = signed_in(language, getattr(portal, who), sudo) if who else browser(language)
            response = client.get(url, follow=True)
            assert response.status_code < 500
            return response.content.decode()

        return render

    def login_wrong_password(language, portal, sudo):
        response = browser(language).post(
            "/accounts/login/", {"username": "ann@example.com", "password": "not it"}
        )
        return response.content.decode()

    def code_step(wrong: bool) -> Page:
        def render(language, portal, sudo):
            client = browser(language)
            client.post("/accounts/login/", {"username": "ann@example.com", "password": PASSWORD})
            if wrong:
                return client.post("/2fa/login/", {"code": "000000"}).content.decode()
            return client.get("/2fa/login/").content.decode()

        return render

    def new_backup_codes(language, portal, sudo):
        client = signed_in(language, portal.customer, sudo)
        response = client.post("/2fa/backup-codes/", {"generate": "1"}, follow=True)
        assert response.content.count(b"<li><code>") == 5
        return response.content.decode()

    yield "login", get("/accounts/login/")
    yield "login, wrong password", login_wrong_password
    yield "password reset", get("/accounts/password-reset/")
    yield "password reset sent", get("/accounts/password-reset/sent/")
    yield "password reset, bad link", get("/accounts/password-reset/MQ/bad-token/")
    yield "not found", get("/no-such-page/")
    yield "code step", code_step(wrong=False)
    yield "code step, wrong code", code_step(wrong=True)
    yield "profile with 2FA", get("/accounts/profile/", "customer")
    yield "profile without 2FA", get("/accounts/profile/", "newcomer")
    yield "enable 2FA", get("/2fa/enable/", "newcomer")
    yield "disable 2FA", get("/2fa/disable/", "customer")
    yield "backup codes", get("/2fa/backup-codes/", "customer")
    yield "new backup codes", new_backup_codes
    yield "add a key", get("/2fa/keys/add/", "customer")
    yield "edit details", get("/accounts/profile/details/", "customer")
    yield "change password", get("/accounts/profile/password/", "customer")
    yield "change e-mail", get("/accounts/profile/email/", "customer")
    yield "close account", get("/accounts/profile/delete/", "customer")
    yield "language and time zone", get("/accounts/profile/preferences/", "customer")
    yield "security history", get("/accounts/security/", "customer")
    yield "all users", get("/accounts/users/", "superuser")
    yield "all users, activated", get("/accounts/users/?two_factor=activated", "superuser")
    yield "all users, search", get("/accounts/users/?q=nobody", "superuser")
    yield "security policy", get("/2fa/policy/", "superuser")


def staff_page(path: str) -> Page:
    def render(language, portal, sudo):
        client = signed_in(language, portal.superuser, sudo)
        response = client.get(path.format(customer=portal.customer.pk), follow=True)
        return response.content.decode()

    return render


STAFF_PAGES = [
    ("user's history", "/accounts/users/{customer}/security/"),
    ("user's sessions", "/accounts/users/{customer}/sessions/"),
    ("end user's sessions", "/accounts/users/{customer}/sessions/end/"),
    ("reset 2FA", "/accounts/users/{customer}/reset-2fa/"),
]
PAGES = [*pages(), *((name, staff_page(path)) for name, path in STAFF_PAGES)]


def render_both(render: Page, portal: Portal, sudo) -> tuple[list[str], list[str]]:
    texts = {}
    for language in ("en", "de"):
        portal.set_language(language)
        texts[language] = visible_chunks(render(language, portal, sudo))
    return texts["en"], texts["de"]


@pytest.mark.parametrize("render", [render for _, render in PAGES], ids=[n for n, _ in PAGES])
def test_page_in_german_shows_no_english(render, portal, log_in_with_sudo):
    english, german = render_both(render, portal, log_in_with_sudo)
    assert english != german, "the page did not change with the language"
    same = sorted({chunk for chunk in german if chunk in english and is_english_words(chunk)})
    assert same == [], "not marked for translation"
    page = " | ".join(german)
    leftovers = sorted(sentence for sentence in catalog_sentences() if sentence in page)
    assert leftovers == [], "marked but shown in English"


def mails_of_every_kind(portal: Portal, django_capture_on_commit_callbacks) -> list[str]:
    mail.outbox.clear()
    RateWindow.objects.all().delete()  # the reset mail's spacing: one round per language
    now = timezone.now()
    extra_by_kind = {SecurityEvent.Kind.ACCOUNT_LOCKED: {"until": now + timedelta(minutes=5)}}
    with django_capture_on_commit_callbacks(execute=True):
        for kind, template in {
            **notifications.TEMPLATES,
            "key_sign_count": notifications.KEY_SIGN_COUNT_TEMPLATE,
        }.items():
            event = security_log.record_event(
                user=portal.customer,
                kind=kind if kind in SecurityEvent.Kind.values else SecurityEvent.Kind.CODE_FAILED,
            )
            notifications.notify(
                user=portal.customer, event=event, template=template, extra=extra_by_kind.get(kind)
            )
        # The mails that are no log event's: a reset link, a new address to confirm (and,
        # once confirmed, the word to the old address), a closed account.
        browser(portal.newcomer.language).post(
            "/accounts/password-reset/", {"email": portal.newcomer.email}
        )
        language = portal.customer.language
        token = account_changes.request_email_change(
            user=portal.customer, new_email=f"ann.{language}@example.com", link_for=lambda t: "/x/"
        )
        account_changes.confirm_email_change(user=portal.customer, token=token)
        leaving = User.objects.create_user(
            email=f"leaving.{language}@example.com", password=PASSWORD, language=language
        )
        account_changes.close_account(user=leaving)
    # One of each: the log's (the password's twice: changed, reset) and the four others.
    # Every template once (the new address's twice: from the loop and the real change).
    assert len({message.subject for message in mail.outbox}) == len(mail.outbox) - 1 == 20
    texts = []
    for message in mail.outbox:
        texts.append(message.subject)
        texts.append(message.body)
        texts.extend(content for content, _ in message.alternatives)
    return texts


def test_every_email_in_german_shows_no_english(portal, django_capture_on_commit_callbacks):
    texts = {}
    for language in ("en", "de"):
        portal.set_language(language)
        chunks = []
        for text in mails_of_every_kind(portal, django_capture_on_commit_callbacks):
            chunks += (
                visible_chunks(text)
                if "<" in text
                else [" ".join(line.split()) for line in text.splitlines() if line.strip()]
            )
        texts[language] = chunks
    same = sorted({c for c in texts["de"] if c in texts["en"] and is_english_words(c)})
    assert same == [], "not marked for translation"
    mails = " | ".join(texts["de"])
    assert sorted(s for s in catalog_sentences() if s in mails) == []
