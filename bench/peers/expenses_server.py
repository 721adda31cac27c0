"""The Python SDK peer of the expenses benchmark: the expense tracker's `add_expense` and
`list_expenses` on the official Python SDK (PyPI `mcp` 2.3.0), written the way the SDK documents
a server: `MCPServer` (what was FastMCP in `mcp` 1.x) with `@srv.tool()` functions, typed
arguments with pydantic `Field` constraints, pydantic models as structured output, the stdlib
`sqlite3` module, `srv.run("stdio")` for stdio and `streamable_http_app()` under uvicorn
(default options: stateful sessions, SSE answers) for Streamable HTTP.

It keeps what `switchboard serve expenses` guarantees for these two tools:

- the same SQLite file layout: the `expenses` table and indexes of
  `servers/expenses/migrations/sqlite`, created if absent, in WAL mode with
  `synchronous=NORMAL`, a 5 s busy timeout and foreign keys on;
- money as integer minor units with an ISO 4217 code (USD by default): the amount is decimal
  text or a JSON number read from its shortest decimal form, never rounded, and refused when it
  has more decimals than the currency;
- dates as `YYYY-MM-DD` (today in UTC by default), a trimmed non-blank category;
- each write in one `BEGIN IMMEDIATE` transaction, so concurrent writers wait instead of
  failing;
- `list_expenses` newest first (date, then id) with category/start_date/end_date filters, a
  limit of 1 to 1000 (default 50) and the same opaque cursor (`date/id` in base64url).

Sync tools run in the SDK's worker threads; each thread keeps its own SQLite connection (our
server keeps a pool of up to 8).

Usage (with the venv from scripts/install-peers.sh):

    "$SWITCHBOARD_PY" bench/peers/expenses_server.py --db PATH --stdio
    "$SWITCHBOARD_PY" bench/peers/expenses_server.py --db PATH --http PORT   # http://127.0.0.1:PORT/mcp

In HTTP mode the process exits when its stdin closes, so it cannot outlive the benchmark that
started it (see `serving.py`).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import sqlite3
import sys
import threading
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BaseModel, Field

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from serving import add_transport_arguments, serve

# The DDL of servers/expenses/migrations/sqlite, with IF NOT EXISTS.
SCHEMA = """
CREATE TABLE IF NOT EXISTS expenses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spent_on TEXT NOT NULL
        CHECK (spent_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    category TEXT NOT NULL CHECK (length(category) BETWEEN 1 AND 64),
    description TEXT NOT NULL CHECK (length(description) <= 500)
);
CREATE INDEX IF NOT EXISTS expenses_by_date ON expenses (spent_on DESC, id DESC);
CREATE INDEX IF NOT EXISTS expenses_by_category ON expenses (category, spent_on DESC, id DESC);
"""

DEFAULT_CURRENCY = "USD"
MAX_AMOUNT_MINOR = 1_000_000_000_000
MAX_AMOUNT_CHARS = 32
DEFAULT_LIST_LIMIT = 50
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"

# ISO 4217 minor-unit exponents (the table of the `iso_currency` crate our server uses);
# codes without a minor unit (XAU, XDR, ...) are refused like ours does.
_EXPONENTS: dict[str, int] = {}
for _exponent, _codes in (
    (0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"),
    (
        2,
        "AED AFN ALL AMD XCG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
        "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
        "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR "
        "KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR "
        "MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK "
        "SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN "
        "UYU UZS VED VES WST XAD XCD YER ZAR ZMW ZWL ZWG",
    ),
    (3, "BHD IQD JOD KWD LYD OMR TND"),
    (4, "CLF UYW"),
):
    _EXPONENTS.update(dict.fromkeys(_codes.split(), _exponent))


class Expense(BaseModel):
    id: int
    date: str = Field(description="YYYY-MM-DD.")
    amount: str = Field(description='Decimal text with the currency\'s decimals, e.g. "12.50".')
    amount_minor: int = Field(description="The amount in the currency's minor unit (cents for USD), exact.")
    currency: str = Field(description="ISO 4217 code.")
    category: str
    description: str


class ExpenseOutput(BaseModel):
    expense: Expense


class ListOutput(BaseModel):
    expenses: list[Expense] = Field(description="Newest first (by date, then id).")
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null when this is the last page.")


def currency_exponent(code: str) -> tuple[str, int]:
    upper = code.strip().upper()
    if upper not in _EXPONENTS:
        raise ToolError(f"currency: {code!r} is not an ISO 4217 currency code with a minor unit; use a code like USD, EUR or JPY")
    return upper, _EXPONENTS[upper]


def format_minor(minor: int, exponent: int) -> str:
    if exponent == 0:
        return str(minor)
    digits = str(minor).rjust(exponent + 1, "0")
    return f"{digits[:-exponent]}.{digits[-exponent:]}"


def parse_amount(amount: str | float, code: str, exponent: int) -> int:
    # A JSON number arrives as a float; its repr is its shortest decimal form, so 12.345 stays
    # 12.345 and is refused for USD rather than rounded.
    text = amount.strip() if isinstance(amount, str) else repr(amount)
    try:
        if len(text) > MAX_AMOUNT_CHARS:
            raise InvalidOperation
        value = Decimal(text)
    except InvalidOperation:
        raise ToolError(f'amount: {amount!r} is not a decimal amount like "12.50"') from None
    if not value.is_finite() or value <= 0:
        raise ToolError(f"amount: {amount!r} must be greater than 0")
    places = max(0, -value.normalize().as_tuple().exponent)
    if places > exponent:
        raise ToolError(f"amount: {amount!r} has {places} decimal places, but {code} amounts have at most {exponent}")
    minor = int(value.scaleb(exponent))
    if minor > MAX_AMOUNT_MINOR:
        raise ToolError(f"amount: {amount!r} is larger than the largest amount recorded, {format_minor(MAX_AMOUNT_MINOR, exponent)}")
    return minor


def parse_date(text: str, field: str) -> str:
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ToolError(f'{field}: {text!r} is not a day of the calendar; use YYYY-MM-DD, like "2026-07-15"') from None


def non_blank(text: str, field: str) -> str:
    trimmed = text.strip()
    if not trimmed:
        raise ToolError(f"{field}: must not be blank")
    return trimmed


def encode_cursor(date: str, expense_id: int) -> str:
    return base64.urlsafe_b64encode(f"{date}/{expense_id}".encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        date, expense_id = text.split("/", 1)
        return parse_date(date, "cursor"), int(expense_id)
    except (ValueError, ToolError):
        raise ToolError(
            "cursor: is not a cursor from list_expenses; call list_expenses without a cursor to start again"
        ) from None


def row_to_expense(row: sqlite3.Row) -> Expense:
    exponent = _EXPONENTS.get(row["currency"], 2)
    return Expense(
        id=row["id"],
        date=row["spent_on"],
        amount=format_minor(row["amount_minor"], exponent),
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        category=row["category"],
        description=row["description"],
    )


class Database:
    """One SQLite connection per worker thread, opened like switchboard-store opens its pool."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        with self.connection() as connection:
            connection.executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            # isolation_level=None: transactions are exactly the BEGIN/COMMIT written below.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.executescript(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; "
                "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
            )
            self.local.connection = connection
        return connection


def build_server(db: Database) -> MCPServer:
    srv = MCPServer(
        name="py-expenses",
        version="1.0.0",
        instructions="An expense tracker. Record spending with add_expense and find it with list_expenses.",
    )

    @srv.tool(
        description=(
            'Record an expense: an amount (decimal text like "12.50" or a number), a category, a description, '
            "and optionally the day (YYYY-MM-DD, default today in UTC) and the ISO 4217 currency (default USD). "
            "Returns the new expense with its id."
        )
    )
    def add_expense(
        amount: Annotated[
            str | float,
            Field(description='The amount spent, greater than 0: decimal text like "12.50" or a number like 12.5.'),
        ],
        category: Annotated[str, Field(min_length=1, max_length=64, description='What kind of spending, e.g. "food".')],
        description: Annotated[str, Field(max_length=500, description="What the money was spent on.")],
        date: Annotated[
            str | None, Field(pattern=DATE_PATTERN, description="The day, YYYY-MM-DD. Today (UTC) when omitted.")
        ] = None,
        currency: Annotated[
            str | None, Field(pattern=CURRENCY_PATTERN, description="ISO 4217 currency code. USD when omitted.")
        ] = None,
    ) -> ExpenseOutput:
        code, exponent = currency_exponent(currency or DEFAULT_CURRENCY)
        amount_minor = parse_amount(amount, code, exponent)
        spent_on = (
            parse_date(date, "date") if date is not None else datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        )
        category = non_blank(category, "category")
        connection = db.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "INSERT INTO expenses (spent_on, amount_minor, currency, category, description) "
                "VALUES (?, ?, ?, ?, ?) "
                "RETURNING id, spent_on, amount_minor, currency, category, description",
                (spent_on, amount_minor, code, category, description.strip()),
            ).fetchone()
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return ExpenseOutput(expense=row_to_expense(row))

    @srv.tool(
        description=(
            "List expenses, newest first, optionally only one category and/or a date range (inclusive). "
            "Pages hold up to limit (default 50, at most 1000) expenses; pass next_cursor back as cursor for the next page."
        )
    )
    def list_expenses(
        category: Annotated[str | None, Field(min_length=1, max_length=64, description="Only this category.")] = None,
        start_date: Annotated[str | None, Field(pattern=DATE_PATTERN, description="Only on or after this day.")] = None,
        end_date: Annotated[str | None, Field(pattern=DATE_PATTERN, description="Only on or before this day.")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="How many expenses to return.")] = DEFAULT_LIST_LIMIT,
        cursor: Annotated[str | None, Field(max_length=200, description="The next_cursor of the previous page.")] = None,
    ) -> ListOutput:
        category = non_blank(category, "category") if category is not None else None
        start_date = parse_date(start_date, "start_date") if start_date is not None else None
        end_date = parse_date(end_date, "end_date") if end_date is not None else None
        after_date, after_id = decode_cursor(cursor) if cursor is not None else (None, None)
        # One more than asked tells whether there is a next page.
        rows = (
            db.connection()
            .execute(
                "SELECT id, spent_on, amount_minor, currency, category, description FROM expenses "
                "WHERE (:category IS NULL OR category = :category) "
                "AND (:start IS NULL OR spent_on >= :start) "
                "AND (:end IS NULL OR spent_on <= :end) "
                "AND (:after_date IS NULL OR spent_on < :after_date OR (spent_on = :after_date AND id < :after_id)) "
                "ORDER BY spent_on DESC, id DESC LIMIT :limit",
                {
                    "category": category,
                    "start": start_date,
                    "end": end_date,
                    "after_date": after_date,
                    "after_id": after_id,
                    "limit": limit + 1,
                },
            )
            .fetchall()
        )
        expenses = [row_to_expense(row) for row in rows[:limit]]
        next_cursor = encode_cursor(expenses[-1].date, expenses[-1].id) if len(rows) > limit else None
        return ListOutput(expenses=expenses, next_cursor=next_cursor)

    return srv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the SQLite file (created if absent)")
    add_transport_arguments(parser)
    args = parser.parse_args(argv)
    serve(build_server(Database(args.db)), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
