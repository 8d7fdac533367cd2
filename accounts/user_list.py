"""The staff "All users" list: which users match, in what order, one page at a time.

Built for a million users:
- the 2FA status comes from twofactor.queries as subqueries inside the one
  query that reads a page (never one query per row);
- every sort is an indexed column with the unique `id` as tiebreaker
  (accounts_user_*_idx), so a page is an index range scan, not a sort of the table;
- a page is read as a "deferred join": the inner query walks the index for the
  50 ids of the page (OFFSET skips cheap index entries), the outer one computes
  the 2FA columns for those 50 rows only;
- the count avoids a per-user EXISTS when there is no search, and is cached
  until a user or a 2FA status changes (see count_users).
"""

import hashlib
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from twofactor import queries as twofactor_queries
from twofactor.models import TwoFactorPolicy

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2_000
COUNT_CACHE_SECONDS = 60
COUNT_GENERATION_KEY = "all_users:count-generation"
COUNT_KEY_PREFIX = "all_users:count"

# Sort key in the query string -> ORDER BY. Only indexed columns are offered:
# sorting a million rows by a computed column (the 2FA date) cannot use an index.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "id"),
    "email": ("email",),  # unique already: no tiebreaker needed
    "last_login": ("last_login", "id"),
    "date_joined": ("date_joined", "id"),
}
DEFAULT_SORT = "email"
SORT_CHOICES = [key for base in SORTS for key in (base, f"-{base}")]


@dataclass(frozen=True)
class UserListQuery:
    two_factor: str = ""  # "", twofactor_queries.ACTIVATED, NOT_ACTIVATED, KEYS or PAST_DEADLINE
    search: str = ""
    sort: str = DEFAULT_SORT


@dataclass(frozen=True)
class UserPage:
    rows: list
    number: int
    count: int

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // PAGE_SIZE))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def start_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + len(self.rows)


@dataclass(frozen=True)
class Column:
    label: "StrOrPromise"
    sort_key: str | None = None  # None: not sortable
    direction: str = ""  # "ascending" / "descending" when the list is sorted by it
    next_sort: str = ""  # the sort value its header link asks for

    @property
    def aria_sort(self) -> str:
        return self.direction or "none"


COLUMNS = [
    (_("Name"), "name"),
    (_("Email"), "email"),
    (_("2FA status"), None),
    (_("Methods"), None),
    (_("2FA enabled"), None),
    (_("Unused backup codes"), None),
    (_("Last login"), "last_login"),
    (_("Date joined"), "date_joined"),
]


def columns(sort: str) -> list[Column]:
    """The table headers: a sorted column's link flips the direction, the others sort ascending."""
    sort = sort if sort in SORT_CHOICES else DEFAULT_SORT
    current, descending = sort.removeprefix("-"), sort.startswith("-")
    result = []
    for label, key in COLUMNS:
        if key is None:
            result.append(Column(label))
        elif key == current:
            direction = "descending" if descending else "ascending"
            result.append(Column(label, key, direction, key if descending else f"-{key}"))
        else:
            result.append(Column(label, key, "", key))
    return result


class PageOutOfRange(Exception):
    def __init__(self, number: int, last: int) -> None:
        super().__init__(
            gettext("There is no page %(number)s: the last page is %(last)s.")
            % {"number": number, "last": last}
        )
        self.number = number
        self.last = last


def ordering(sort: str) -> list[str]:
    descending = sort.startswith("-")
    columns = SORTS[sort.removeprefix("-")]
    return [f"-{column}" if descending else column for column in columns]


def matching_users(query: UserListQuery) -> QuerySet:
    """The users that match the filter and the search, unordered and without 2FA columns."""
    users = get_user_model().objects.all()
    if query.search:
        # Case-insensitive substring; on PostgreSQL the trigram indexes of
        # migration 0003 serve UPPER(column) LIKE UPPER('%term%').
        users = users.filter(Q(email__icontains=query.search) | Q(name__icontains=query.search))
    return twofactor_queries.filter_by_two_factor(users, query.two_factor)


def count_users(query: UserListQuery) -> int:
    """The number of matching users: exact, from the shared cache when nothing changed.

    COUNT(*) is the one part of a page that grows with the table (about 0.1 s
    for a million users here), while the number rarely changes. So a count is
    kept for COUNT_CACHE_SECONDS, and forgotten at once when something that
    changes a count happens (see forget_counts); bulk inserts that send no
    signals are covered by the time limit.
    """
    if query.two_factor == twofactor_queries.PAST_DEADLINE:
        # Changes with the clock (a deadline passes) without any event to forget it by;
        # the filter is small (users without 2FA under a requirement): counted each time.
        return count_users_now(query)
    generation = cache.get(COUNT_GENERATION_KEY, 0)
    digest = hashlib.sha256(f"{query.two_factor}\0{query.search}".encode()).hexdigest()
    key = f"{COUNT_KEY_PREFIX}:{generation}:{digest}"
    count = cache.get(key)
    if count is None:
        count = count_users_now(query)
        cache.set(key, count, COUNT_CACHE_SECONDS)
    return count


def count_users_now(query: UserListQuery) -> int:
    """The count in one query, always from the database.

    Without a search, the filter is counted from the small partial index of
    devices (Not activated = all users - Activated), or from the table of keys
    alone, rather than by probing an index once per user.
    """
    if not query.search and query.two_factor == twofactor_queries.ACTIVATED:
        return twofactor_queries.count_activated()
    if not query.search and query.two_factor == twofactor_queries.KEYS:
        return twofactor_queries.count_with_keys()
    if not query.search and query.two_factor == twofactor_queries.NOT_ACTIVATED:
        users = get_user_model().objects.order_by()
        count = Count("pk") - twofactor_queries.activated_count()
        return users.aggregate(count=count)["count"]
    return matching_users(query).count()


def forget_counts() -> None:
    """Every cached count is stale: a new generation makes new cache keys.

    Bumped now and again after the commit: a page counted by another request
    between the two saw the database before the change and must not be kept.
    """
    _new_count_generation()
    transaction.on_commit(_new_count_generation)


def _new_count_generation() -> None:
    cache.set(COUNT_GENERATION_KEY, time.time_ns(), None)


def get_page(
    query: UserListQuery, number: int, *, policy: TwoFactorPolicy | None = None
) -> UserPage:
    """Page `number` (from 1): one query for the count, one for the rows (and one for the
    security policy, for the rows' deadlines, unless the caller has read it already)."""
    count = count_users(query)
    last = max(1, -(-count // PAGE_SIZE))
    if number > last:
        raise PageOutOfRange(number, last)
    order = ordering(query.sort)
    offset = (number - 1) * PAGE_SIZE
    page_ids = matching_users(query).order_by(*order).values("pk")[offset : offset + PAGE_SIZE]
    users = get_user_model().objects.filter(pk__in=page_ids)
    rows = list(twofactor_queries.with_two_factor_status(users).order_by(*order))
    policy = policy or TwoFactorPolicy.current()
    now = timezone.now()
    for row in rows:  # words from the annotations already read: no query
        row.two_factor_methods = two_factor_methods(
            app=row.two_factor_enabled_at is not None, keys=row.webauthn_credential_count
        )
        row.two_factor_deadline = twofactor_queries.two_factor_deadline(row, policy=policy)
        row.past_deadline = row.two_factor_deadline is not None and row.two_factor_deadline <= now
    return UserPage(rows=rows, number=number, count=count)


def two_factor_methods(*, app: bool, keys: int) -> str:
    """A user's second factors in words, in the active language, as the table and the
    export show them ("" for none)."""
    methods = [gettext("Authenticator app")] if app else []
    if keys:
        methods.append(
            ngettext(
                "%(count)s passkey or security key", "%(count)s passkeys or security keys", keys
            )
            % {"count": keys}
        )
    return ", ".join(methods)


# --- CSV export --------------------------------------------------------------------
EXPORT_HEADER = [
    "name",
    "email",
    "two_factor_status",
    "two_factor_methods",
    "two_factor_enabled_at",
    "unused_backup_codes",
    "last_login",
    "date_joined",
]
# OWASP "CSV injection": a cell whose first character is one of these is a
# formula (or a DDE call: "|", "%" in older Excel) to Excel, LibreOffice or
# Google Sheets. A user could name themselves '=HYPERLINK("https://evil...")'
# and have staff's spreadsheet run it. U+2212 (the minus sign) survives NFKC
# but some spreadsheets read it as "-".
FORMULA_TRIGGERS = frozenset("=+-@|%\u2212")
# OWASP lists tab and carriage return as triggers of their own; line feed too, for
# the same reason (an importer may drop it and find the formula behind it).
LEADING_TRIGGERS = ("\t", "\r", "\n")
# Skipped before looking for a trigger, because spreadsheets skip them too (or
# show nothing for them): " \t\n=1+1", "\u200b=1+1" and "\x00=1+1" are formulas.
_INVISIBLE_CATEGORIES = ("C", "Z", "M")  # control/format, separators, combining marks


def _is_invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith(_INVISIBLE_CATEGORIES)


def spreadsheet_safe(text: str) -> str:
    """The cell as text no spreadsheet evaluates: a leading apostrophe when needed.

    The check runs on the NFKC form, so full-width and other look-alike forms
    ("＝", "＋", "﹫") count as the characters they stand for; the cell itself
    is written unchanged after the apostrophe.
    """
    if text[:1].isascii() and text[:1].isalnum():
        # Most cells (names, addresses, dates, counts): no normalisation can
        # turn a leading ASCII letter or digit into a trigger. Keeps a
        # million-row export from paying for NFKC seven million times.
        return text
    normal = unicodedata.normalize("NFKC", text)
    first_visible = next((char for char in normal if not _is_invisible(char)), "")
    if normal.startswith(LEADING_TRIGGERS) or first_visible in FORMULA_TRIGGERS:
        return f"'{text}"
    return text


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _export_methods(*, app: bool, keys: int) -> str:
    # The export is data for other programs: English, as its header and status column,
    # whatever language the staff member reads the portal in.
    if not (app or keys):
        return ""
    with translation.override("en"):
        return two_factor_methods(app=app, keys=keys)


def export_rows(query: UserListQuery) -> Iterator[list[str]]:
    """Header, then one row per matching user, read in chunks (never all in memory).

    Only what the page shows: no password hash, no secret, no backup code.
    """
    yield EXPORT_HEADER
    users = twofactor_queries.with_two_factor_status(matching_users(query))
    users = users.order_by(*ordering(query.sort)).values_list(
        "name",
        "email",
        "two_factor_active",
        "two_factor_enabled_at",
        "webauthn_credential_count",
        "unused_backup_codes",
        "last_login",
        "date_joined",
    )
    for name, email, active, enabled_at, keys, unused, last_login, joined in users.iterator(
        chunk_size=EXPORT_CHUNK_SIZE
    ):
        row = [
            name,
            email,
            "Activated" if active else "Not activated",
            _export_methods(app=enabled_at is not None, keys=keys),
            _iso(enabled_at),
            str(unused),
            _iso(last_login),
            _iso(joined),
        ]
        # Every cell, not only the ones users type today: a column added later
        # is covered without anyone having to remember this.
        yield [spreadsheet_safe(cell) for cell in row]
