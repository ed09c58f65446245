"""Documents of an account: the monthly statement (HTML) and CSV exports.

* ``statement_html`` renders the statement of a closed month from the close's
  ledger entry and lines (immutable rows), plus the credits, coupons and
  debits posted in that month, with the opening and closing balance. The
  same close always renders the same document.
* ``ledger_csv``: every ledger row posted in the month (account timezone),
  columns as the seed's ledger ``Type, Date, Description, Logbit, Cost (€),
  Document``; service lines follow their entry.
* ``usage_csv``: the hourly usage rollups of the month, as the collector
  stored them (``usage_hourly``): hour (UTC), device, service, subject,
  unit, quantity, records.

The PDF of a statement (``collector.billing.pdf``) is drawn from this HTML.
"""

from __future__ import annotations

import csv
import html
import io

from collector.billing.errors import CloseError
from collector.billing.ledger import LedgerEntry, account_timezone, entries, render
from collector.billing.money import ZERO, format_logbit
from collector.billing.periods import Month, month_of, zone
from collector.billing.repository import repo_of
from collector.store import repo_billing_orders as repo
from collector.store.codec import to_text
from collector.store.db import Session


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except (ValueError, CloseError) as exc:
        raise CloseError(f"month must look like 2026-05, got {text!r}") from exc


def _entries_in(session: Session, account_id: str, month: Month) -> list[LedgerEntry]:
    tz = zone(account_timezone(session, account_id))
    start, end = month.start_utc(tz), month.end_utc(tz)
    return [e for e in entries(session, account_id, limit=1_000_000) if start <= e.ts < end]


def ledger_csv(session: Session, account_id: str, month: str) -> str:
    """The month's ledger rows as CSV (header first)."""
    m = _month(month)
    rows = render(_entries_in(session, account_id, m), account_timezone(session, account_id))
    return _csv(rows)


def usage_csv(session: Session, account_id: str, month: str) -> str:
    """The month's hourly usage rollups as CSV (header first)."""
    m = _month(month)
    tz = zone(account_timezone(session, account_id))
    start, end = to_text(m.start_utc(tz)), to_text(m.end_utc(tz))
    rows: list[tuple[str, ...]] = [
        ("hour_utc", "device", "service", "subject", "unit", "quantity", "records")
    ]
    for r in repo.usage_hours(session, account_id, start, end):
        rows.append(tuple(str(v) for v in r))
    return _csv(rows)


def statement_html(session: Session, account_id: str, month: str) -> str:
    """The statement of a closed month; CloseError if the month is not closed."""
    m = _month(month)
    close = repo_of(session).month_close(account_id, str(m))
    if close is None:
        raise CloseError(f"{m} is not closed for account {account_id}")
    tzname = account_timezone(session, account_id)
    tz = zone(tzname)
    # An entry belongs to the month it closes (a close is posted on the 1st of
    # the next month), otherwise to the month it is dated in.
    every = entries(session, account_id, limit=1_000_000)
    owner = {
        x.id: Month.parse(x.close_month) if x.close_month else month_of(x.ts, tz) for x in every
    }
    in_month = [x for x in every if owner[x.id] == m]
    opening = sum((x.logbit for x in every if owner[x.id] < m), ZERO)
    closing = opening + sum((x.logbit for x in in_month), ZERO)
    rows = render(sorted(in_month, key=lambda x: (x.ts, x.id)), tzname)
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    closed = close[2].astimezone(tz)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Statement {e(str(m))} — {e(account_id)}</title></head><body>"
        f"<h1>Logbot statement {e(str(m))}</h1>"
        f"<p>Account {e(account_id)} — closed {closed:%d/%m/%Y %H:%M} ({e(tzname)})</p>"
        f"<p>Opening balance {e(format_logbit(opening))} logbit</p>"
        f"<table><caption>Ledger</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
        f"<p>Closing balance <strong>{e(format_logbit(closing))} logbit</strong></p>"
        "</body></html>"
    )


def _csv(rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue()
