"""The portal in German, end to end, driven by the German labels; and a language picked
in the account menu, kept for the next login.

The browser speaks German (Accept-Language de-DE) and lives in Berlin (its clock's zone,
which the login page sends), so the lock message gives the Berlin time.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e import steps
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.steps import JS_MODES
from twofactor import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def german_page(browser, live_server, js_enabled):
    context = browser.new_context(
        viewport=DESKTOP,
        java_script_enabled=js_enabled,
        locale="de-DE",
        timezone_id="Europe/Berlin",
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.base_url = live_server.url
    yield page
    context.close()


def log_in(page, email: str) -> None:
    expect(page.get_by_role("heading", name="Anmelden", exact=True)).to_be_visible()
    page.get_by_label("E-Mail").fill(email)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden", exact=True).click()


def enter_code(page, code: str) -> None:
    expect(page.get_by_role("heading", name="Zwei-Faktor-Authentifizierung")).to_be_visible()
    page.get_by_label("Bestätigungscode").fill(code)
    page.get_by_role("button", name="Anmelden", exact=True).click()


def log_out(page) -> None:
    page.get_by_role("button", name="Kontomenü").click()
    page.locator("#account-menu").get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Anmelden", exact=True)).to_be_visible()


def set_time_zone(page, js_enabled: bool) -> None:
    """My profile's "Sprache und Zeitzone": with JavaScript the login already sent the
    browser's zone; without, the user picks it here."""
    opener = page.get_by_role("link", name="Sprache und Zeitzone")
    dialog = steps.open_dialog(page, js_enabled, opener, "Sprache und Zeitzone")
    zone = dialog.get_by_label("Zeitzone")
    expect(zone).to_have_value("Europe/Berlin" if js_enabled else "UTC")
    zone.select_option("Europe/Berlin")
    dialog.get_by_role("button", name="Speichern").click()
    expect(page.get_by_text("Ihre Sprache und Zeitzone wurden gespeichert.")).to_be_visible()
    expect(page.get_by_text("Europe/Berlin (CET)")).to_be_visible()


@pytest.mark.parametrize("js_enabled", **JS_MODES)
def test_a_german_user_enables_2fa_logs_in_with_a_code_and_reads_a_lock_in_berlin_time(
    german_page, user, app_code, wrong_code, js_enabled, step_shots
):
    page = german_page
    steps.start(page)
    expect(page.locator("html")).to_have_attribute("lang", "de")
    step_shots(page, "german-1-login")
    log_in(page, user.email)
    expect(page.get_by_role("heading", name="Mein Profil", level=1)).to_be_visible()
    section = page.get_by_role("region", name="Zwei-Faktor-Authentifizierung", exact=True)
    expect(section.get_by_text("Nicht aktiviert")).to_be_visible()
    set_time_zone(page, js_enabled)

    # Enable 2FA: confirm the password, scan the QR code, type the app's code.
    dialog = steps.open_dialog(
        page, js_enabled, section.get_by_role("link", name="2FA aktivieren"), "2FA aktivieren"
    )
    expect(dialog.get_by_text("Bestätigen Sie zuerst Ihre Identität.")).to_be_visible()
    dialog.get_by_label("Passwort").fill(PASSWORD)
    dialog.get_by_role("button", name="Weiter").click()
    expect(
        dialog.get_by_role("heading", name="Zwei-Faktor-Authentifizierung aktivieren")
    ).to_be_visible()
    image = dialog.get_by_role("img", name=re.compile("QR-Code"))
    secret = steps.parse_otpauth(steps.decode_qr(image.screenshot()))["secret"]
    step_shots(page, "german-2-enable")
    dialog.get_by_label("Sechsstelliger Code").fill(app_code(secret))
    dialog.get_by_role("button", name="Prüfen").click()
    expect(
        dialog.get_by_role("heading", name="Die Zwei-Faktor-Authentifizierung ist aktiviert")
    ).to_be_visible()
    dialog.get_by_label("Ich habe diese Codes gespeichert").check()
    dialog.get_by_role("button", name="Fertig").click()
    expect(section.get_by_text("Aktiviert", exact=True)).to_be_visible()
    expect(section.get_by_role("link", name="2FA deaktivieren")).to_be_visible()
    step_shots(page, "german-3-activated")

    # Log out and back in with the app's next code.
    log_out(page)
    log_in(page, user.email)
    expect(page.get_by_role("heading", name="Zwei-Faktor-Authentifizierung")).to_be_visible()
    step_shots(page, "german-4-code-step")
    enter_code(page, app_code(secret, seconds=30))
    expect(page.get_by_role("heading", name="Mein Profil", level=1)).to_be_visible()

    # Five wrong codes: locked, until a time on the Berlin clock: the one the login page's
    # script sent. Without JavaScript the browser cannot say its zone, and before the code
    # the account's saved one is not used (a password alone must not tell it): UTC.
    log_out(page)
    log_in(page, user.email)
    for _ in range(services.MAX_FAILURES):
        enter_code(page, wrong_code(secret))
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Zu viele falsche Codes.")
    zone = "CET" if js_enabled else "UTC"
    expect(alert).to_contain_text(re.compile(rf"bis \d\d:\d\d {zone} gesperrt"))
    step_shots(page, "german-5-locked")


@pytest.mark.parametrize("js_enabled", **JS_MODES)
def test_a_language_picked_in_the_account_menu_stays_after_the_next_login(
    german_page, user, js_enabled
):
    page = german_page
    steps.start(page)
    log_in(page, user.email)
    page.get_by_role("button", name="Kontomenü").click()
    menu = page.locator("#account-menu")
    menu.get_by_label("Sprache").select_option("fr")
    if not js_enabled:
        menu.get_by_role("button", name="Ändern").click()
    expect(page.get_by_role("heading", name="Mon profil", level=1)).to_be_visible()
    page.get_by_role("button", name="Menu du compte").click()
    page.locator("#account-menu").get_by_role("button", name="Se déconnecter").click()
    # The login page after logging out speaks French too, though the browser asks German.
    expect(page.get_by_role("heading", name="Se connecter", exact=True)).to_be_visible()
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", name="Mon profil", level=1)).to_be_visible()


def test_the_sessions_list_in_french_fits_its_card_on_a_phone(browser, live_server, user):
    # "Dernière activité le 3 décembre 2026, 11:31 UTC" is wider than a phone's card: it
    # wraps inside the card (it was kept on one line, past the card's edge).
    pages = []
    for _ in range(2):
        context = browser.new_context(viewport=PHONE, locale="fr-FR")
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("E-mail").fill(user.email)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter", exact=True).click()
        expect(page).to_have_url(re.compile(r"/accounts/profile/"))
        pages.append(page)
    page = pages[-1]  # its profile lists the first browser's session too
    card = page.get_by_role("region", name="Où vous êtes connecté")
    expect(card.get_by_text(re.compile("^Dernière activité le"))).to_be_visible()
    past_the_edge = card.evaluate(
        """card => {
            const edge = card.getBoundingClientRect().right;
            return [...card.querySelectorAll("span, strong")]
                .filter(e => e.getBoundingClientRect().right > edge + 0.5)
                .map(e => e.textContent);
        }"""
    )
    assert past_the_edge == []
    for page in pages:
        page.context.close()
