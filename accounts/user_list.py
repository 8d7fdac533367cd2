"""The staff "All users" list: which users match, in what order, one page at a time.

Built for a million users:
- the 2FA status comes from twofactor.queries as subqueries inside the one
  query that reads a page (never one query per row);
- every sort is an indexed column with the unique `id` as tiebreaker
  (accounts_user_*_idx), so a page is an index range scan, not a sort of the table;
- the pages the interface links to (First, Previous, Next, Last) are keyset
  ("seek") pages: a link carries the sort values of the row it continues from,
  and the page starts at that row's place in the index, so page 1,000 costs what
  page 1 costs (OFFSET would walk, and probe the 2FA filter for, every row before it);
- a page is read as a "deferred join": the inner query walks the index for the
  page's ids, the outer one computes the 2FA columns for those rows only;
- the count avoids a per-user EXISTS when there is no search, and is cached
  until a user or a 2FA status changes (see count_users).
"""

import base64
import hashlib
import json
import time
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Field, Func, OrderBy, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan, LessThan
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
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
# A sort's columns are also its keyset key: together they are unique.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "id"),
    "email": ("email",),  # unique already: no tiebreaker needed
    "last_login": ("last_login", "id"),
    "date_joined": ("date_joined", "id"),
}
# Sort columns that may be NULL (never logged in). NULLs come before every date
# ascending and after them descending, so "Last login" newest first opens with the latest
# logins, not with everyone who never logged in: the order of the index (migration 0015),
# spelled out so that PostgreSQL (NULLs last ascending by default) and SQLite agree.
NULLABLE_SORT_COLUMNS = frozenset({"last_login"})
DEFAULT_SORT = "email"
SORT_CHOICES = [key for base in SORTS for key in (base, f"-{base}")]
LAST_PAGE = "last"  # ?page=last, the pager's Last link
# Up to this many matches, a search's page sorts the matches rather than walking the
# sort's index (see ordering): about 15 ms for 20,000 of a million users here.
SEARCH_COLLECT_LIMIT = 20_000
CURSOR_SALT = "accounts.user_list.cursor"
MAX_PAGE_NUMBER = 10**9
MAX_KEY_INTEGER = 2**63 - 1


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
    has_previous: bool = False
    has_next: bool = False
    # The ?cursor= of the Previous and Next links ("" where there is none).
    previous_cursor: str = ""
    next_cursor: str = ""

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // PAGE_SIZE))

    @property
    def start_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + len(self.rows)


@dataclass(frozen=True)
class Cursor:
    """Where a Previous or Next link's page starts: right before or after one row."""

    key: tuple  # that row's values of the sort's columns (SORTS), in order
    before: bool  # True: the page before the row (Previous); False: the page after it (Next)
    number: int  # the number of the page it leads to, for "Page N of M" only


class InvalidCursor(Exception):
    """A cursor this list did not make: changed by hand, or made for another sort,
    filter or search (or under an old SECRET_KEY)."""


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


def ordering(sort: str, *, reverse: bool = False, indexed: bool = True) -> list[OrderBy]:
    """ORDER BY for `sort`; `reverse`: the other way round, as a page read backwards.

    `indexed=False`: the same order, spelled so that no index matches it
    (COALESCE(name, name)), for a search that matches few users: the database then
    collects the matches from the trigram indexes and sorts them. Otherwise
    PostgreSQL may walk the sort's index from the start and test every row
    against the search: for "user0123" that read 123,000 rows (60-200 ms), because
    an estimate from its sample of a hundred addresses said one row in a hundred.
    """
    descending = sort.startswith("-") != reverse
    order = []
    for column in SORTS[sort.removeprefix("-")]:
        nulls = True if column in NULLABLE_SORT_COLUMNS else None
        value = F(column) if indexed else Coalesce(F(column), F(column))
        order.append(value.desc(nulls_last=nulls) if descending else value.asc(nulls_first=nulls))
    return order


def matching_users(query: UserListQuery, *, policy: TwoFactorPolicy | None = None) -> QuerySet:
    """The users that match the filter and the search, unordered and without 2FA columns."""
    users = get_user_model().objects.all()
    if query.search:
        # Case-insensitive substring; on PostgreSQL the trigram indexes of
        # migration 0003 serve UPPER(column) LIKE UPPER('%term%').
        users = users.filter(Q(email__icontains=query.search) | Q(name__icontains=query.search))
    return twofactor_queries.filter_by_two_factor(users, query.two_factor, policy=policy)


def count_users(query: UserListQuery, *, policy: TwoFactorPolicy | None = None) -> int:
    """The number of matching users: exact, from the shared cache when nothing changed.

    COUNT(*) is the one part of a page that grows with the table (about 0.1 s
    for a million users here), while the number rarely changes. So a count is
    kept for COUNT_CACHE_SECONDS, and forgotten at once when something that
    changes a count happens (see forget_counts); bulk inserts that send no
    signals are covered by the time limit.
    """
    # Past the deadline also changes with the clock (a deadline passes) without an
    # event to forget it by: like a bulk insert, that shows within COUNT_CACHE_SECONDS.
    # (Counted on every request it cost 0.1-0.6 s for 66,700 overdue users of a million.)
    generation = cache.get(COUNT_GENERATION_KEY, 0)
    digest = hashlib.sha256(f"{query.two_factor}\0{query.search}".encode()).hexdigest()
    key = f"{COUNT_KEY_PREFIX}:{generation}:{digest}"
    count = cache.get(key)
    if count is None:
        count = count_users_now(query, policy=policy)
        cache.set(key, count, COUNT_CACHE_SECONDS)
    return count


def count_users_now(query: UserListQuery, *, policy: TwoFactorPolicy | None = None) -> int:
    """The count in one query, always from the database.

    Without a search, the filter is counted from the small partial index of
    devices (Not activated = all users - Activated), or from the table of keys or
    of deadlines alone, rather than by probing an index once per user.
    """
    if not query.search and query.two_factor == twofactor_queries.ACTIVATED:
        return twofactor_queries.count_activated()
    if not query.search and query.two_factor == twofactor_queries.KEYS:
        return twofactor_queries.count_with_keys()
    if not query.search and query.two_factor == twofactor_queries.PAST_DEADLINE:
        return twofactor_queries.count_past_deadline(policy=policy or TwoFactorPolicy.current())
    if not query.search and query.two_factor == twofactor_queries.NOT_ACTIVATED:
        users = get_user_model().objects.order_by()
        count = Count("pk") - twofactor_queries.activated_count()
        return users.aggregate(count=count)["count"]
    return matching_users(query, policy=policy).count()


def forget_counts() -> None:
    """Every cached count is stale: a new generation makes new cache keys.

    Bumped now and again after the commit: a page counted by another request
    between the two saw the database before the change and must not be kept.
    """
    _new_count_generation()
    transaction.on_commit(_new_count_generation)


def _new_count_generation() -> None:
    cache.set(COUNT_GENERATION_KEY, time.time_ns(), None)


# --- Pages ----------------------------------------------------------------------------
def get_page(
    query: UserListQuery,
    number: int | str = 1,
    *,
    cursor: Cursor | None = None,
    policy: TwoFactorPolicy | None = None,
) -> UserPage:
    """The page a link asks for: `cursor` (Previous, Next), `number` LAST_PAGE (Last) or 1
    (First). A page `number` above 1 is read with OFFSET: it still opens (old bookmarks),
    but the interface never links to one, since its cost grows with the number.

    One query for the count (none while it is cached) and one for the rows; a second
    read of rows only where a page runs from a nullable column's dates into its NULLs,
    or a stale link falls back to the first or last page. Plus one for the security
    policy (the rows' deadlines), unless the caller has read it already.
    """
    policy = policy or TwoFactorPolicy.current()
    pages = _Pages(query, policy=policy, count=count_users(query, policy=policy))
    if cursor is not None:
        return pages.before(cursor) if cursor.before else pages.after(cursor)
    if number == LAST_PAGE:
        return pages.last()
    if number == 1:
        return pages.first()
    if not isinstance(number, int) or number < 1:
        raise ValueError(f"page number {number!r}")
    return pages.numbered(number)


class _Pages:
    """The ways to a page of one list: index range scans, but numbered() (OFFSET)."""

    def __init__(self, query: UserListQuery, *, policy: TwoFactorPolicy, count: int) -> None:
        self.query = query
        self.policy = policy
        self.count = count
        self.num_pages = max(1, -(-count // PAGE_SIZE))
        # Few matches of a search: collected and sorted (see ordering); many: the index.
        self.indexed = not (query.search and count <= SEARCH_COLLECT_LIMIT)

    def first(self) -> UserPage:
        rows = self._read(key=None, backwards=False, limit=PAGE_SIZE + 1)
        return self._page(rows[:PAGE_SIZE], 1, has_previous=False, has_next=len(rows) > PAGE_SIZE)

    def last(self) -> UserPage:
        # Read from the other end: as cheap as the first page. It holds what the count
        # leaves over, so that its rows are numbered as the earlier pages' are.
        size = self.count - (self.num_pages - 1) * PAGE_SIZE
        size = size if 0 < size <= PAGE_SIZE else PAGE_SIZE
        rows = self._read(key=None, backwards=True, limit=size + 1)
        return self._page(
            rows[-size:], self.num_pages, has_previous=len(rows) > size, has_next=False
        )

    def after(self, cursor: Cursor) -> UserPage:
        rows = self._read(key=cursor.key, backwards=False, limit=PAGE_SIZE + 1)
        if not rows:  # everyone after it was deleted since: the end of the list
            return self.last()
        has_next = len(rows) > PAGE_SIZE
        return self._page(rows[:PAGE_SIZE], cursor.number, has_previous=True, has_next=has_next)

    def before(self, cursor: Cursor) -> UserPage:
        rows = self._read(key=cursor.key, backwards=True, limit=PAGE_SIZE + 1)
        if len(rows) < PAGE_SIZE:  # less than a page before it: that is the first page
            return self.first()
        has_previous = len(rows) > PAGE_SIZE
        return self._page(
            rows[-PAGE_SIZE:], cursor.number, has_previous=has_previous, has_next=True
        )

    def numbered(self, number: int) -> UserPage:
        if number > self.num_pages:
            raise PageOutOfRange(number, self.num_pages)
        offset = (number - 1) * PAGE_SIZE
        order = ordering(self.query.sort, indexed=self.indexed)
        rows = self._rows(self._matching(), order, offset, offset + PAGE_SIZE)
        has_next = number < self.num_pages
        return self._page(rows, number, has_previous=number > 1, has_next=has_next)

    def _read(self, *, key: tuple | None, backwards: bool, limit: int) -> list:
        """Up to `limit` rows after `key` (from the start without one), in the list's order
        or `backwards`; returned in the list's order."""
        order = ordering(self.query.sort, reverse=backwards, indexed=self.indexed)
        descending = self.query.sort.startswith("-") != backwards
        rows: list = []
        for condition in [None] if key is None else _after(self.query.sort, key, descending):
            users = self._matching() if condition is None else self._matching().filter(condition)
            rows += self._rows(users, order, 0, limit - len(rows))
            if len(rows) >= limit:
                break
        if backwards:
            rows.reverse()
        return rows

    def _matching(self) -> QuerySet:
        return matching_users(self.query, policy=self.policy)

    def _rows(self, users: QuerySet, order: list[OrderBy], start: int, stop: int) -> list:
        # The deferred join: the inner query finds the page's ids (on the sort's index,
        # or among a search's matches), the outer one computes the 2FA columns for
        # those rows only.
        page_ids = users.order_by(*order).values("pk")[start:stop]
        page = get_user_model().objects.filter(pk__in=page_ids)
        return list(twofactor_queries.with_two_factor_status(page).order_by(*order))

    def _page(self, rows: list, number: int, *, has_previous: bool, has_next: bool) -> UserPage:
        now = timezone.now()
        for row in rows:  # words from the annotations already read: no query
            row.two_factor_methods = two_factor_methods(
                app=row.two_factor_enabled_at is not None, keys=row.webauthn_credential_count
            )
            row.two_factor_deadline = twofactor_queries.two_factor_deadline(row, policy=self.policy)
            row.past_deadline = (
                row.two_factor_deadline is not None and row.two_factor_deadline <= now
            )
        # The number a link promised, within what the count allows: only "Page N of
        # M" shows it (users added or removed since the link was made can shift it).
        if not has_previous:
            number = 1
        elif not has_next:
            number = self.num_pages
        else:
            number = max(2, min(number, self.num_pages - 1))
        return UserPage(
            rows=rows,
            number=number,
            count=self.count,
            has_previous=has_previous,
            has_next=has_next,
            previous_cursor=self._cursor(rows[0], before=True, number=number - 1)
            if has_previous and rows
            else "",
            next_cursor=self._cursor(rows[-1], before=False, number=number + 1)
            if has_next and rows
            else "",
        )

    def _cursor(self, row: Any, *, before: bool, number: int) -> str:
        key = tuple(getattr(row, column) for column in SORTS[self.query.sort.removeprefix("-")])
        return make_cursor(self.query, Cursor(key=key, before=before, number=number))


class _Row(Func):
    """A row value, "(name, id)". Compared as a whole ("(name, id) > ('Ann', 7)") it is
    one range of the (name, id) index; the same test spelled with OR is not, for
    PostgreSQL, which would walk the index from its start."""

    function = ""
    output_field = Field()


def _after(sort: str, key: tuple, descending: bool) -> list:
    """Conditions for the rows strictly after `key` when read ascending or `descending`,
    in reading order: read one after the other until the page is full.

    A NULL compares as unknown, so a nullable column's NULLs are a range of their own,
    read before its dates ascending and after them descending (see ordering).
    """
    columns = SORTS[sort.removeprefix("-")]
    fields = _key_fields(sort)
    compare = LessThan if descending else GreaterThan
    values = [Value(value, output_field=field) for value, field in zip(key, fields, strict=True)]
    if len(columns) == 1:
        seek = compare(F(columns[0]), values[0])
    else:
        seek = compare(_Row(*(F(column) for column in columns)), _Row(*values))
    if columns[0] not in NULLABLE_SORT_COLUMNS:
        return [seek]
    value, pk = key  # a nullable column is sorted with the id as tiebreaker
    nulls = Q(**{f"{columns[0]}__isnull": True})
    if value is None:
        if descending:  # the NULLs come last: only those with a smaller id
            return [nulls & Q(pk__lt=pk)]
        return [nulls & Q(pk__gt=pk), ~nulls]  # the NULLs with a larger id, then every date
    return [seek, nulls] if descending else [seek]


def _key_fields(sort: str) -> list[Field]:
    """The model fields of the sort's columns (SORTS), in order."""
    fields = []
    for column in SORTS[sort.removeprefix("-")]:
        field = get_user_model()._meta.get_field(column)
        if not isinstance(field, Field):  # SORTS names columns, never relations
            raise TypeError(column)
        fields.append(field)
    return fields


def _cursor_salt(query: UserListQuery) -> str:
    # The list is part of the salt: a cursor pasted into another sort, filter or
    # search is refused like a changed one, and never seeks on the wrong column.
    digest = hashlib.sha256(f"{query.sort}\0{query.two_factor}\0{query.search}".encode())
    return f"{CURSOR_SALT}:{digest.hexdigest()}"


def _cursor_cipher(query: UserListQuery) -> Fernet:
    # Encrypted, not only signed: a cursor holds the sort values of the row at the page's
    # edge (an address, a name), which must not be readable in addresses, access logs and
    # browser history. Fernet authenticates too: only the list made it.
    key = salted_hmac(_cursor_salt(query), "cursor key", algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(key))


def make_cursor(query: UserListQuery, cursor: Cursor) -> str:
    """The cursor as the ?cursor= of a link: encrypted and authenticated."""
    key = [value.isoformat() if isinstance(value, datetime) else value for value in cursor.key]
    payload = [int(cursor.before), cursor.number, *key]
    # compress: a name of 150 emoji is 1,800 bytes of JSON escapes, a fifth of that zipped.
    data = zlib.compress(json.dumps(payload, separators=(",", ":")).encode())
    return _cursor_cipher(query).encrypt(data).decode("ascii").rstrip("=")


def read_cursor(token: str, query: UserListQuery) -> Cursor:
    """The cursor of a link, checked: its authenticity, and each value against its column."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = _cursor_cipher(query).decrypt(padded.encode("ascii"))
        # Unzipped only once authentic: no one else can send what it unzips to.
        before, number, *values = json.loads(zlib.decompress(data))
        fields = _key_fields(query.sort)
        if len(values) != len(fields) or before not in (0, 1) or type(number) is not int:
            raise InvalidCursor
        key = tuple(_key_value(field, value) for field, value in zip(fields, values, strict=True))
    except (
        InvalidToken,
        UnicodeError,
        zlib.error,
        ValueError,
        TypeError,
        ValidationError,
    ) as error:
        raise InvalidCursor from error
    if not 1 <= number <= MAX_PAGE_NUMBER:
        raise InvalidCursor
    return Cursor(key=key, before=bool(before), number=number)


def _key_value(field: Field, value: Any) -> Any:
    if value is None:
        if not field.null:
            raise InvalidCursor
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidCursor
    if isinstance(value, int) and not -MAX_KEY_INTEGER <= value <= MAX_KEY_INTEGER:
        raise InvalidCursor  # no column holds it (a 64-bit id at most): not one we made
    return field.to_python(value)


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
