"""Open dedup gaps, and closing one by an operator's decision, with an audit row.

A gap of a device epoch's watermark (``watermark.py``) is a range of
sequences below the mark that the collector has not received. The device's
own ``floor`` closes the gaps it can never fill; a gap that stays open is
either still coming (an outbox that has not resent yet) or will never come
(an agent without ``floor``, an outbox lost with its device). Only an
operator can tell, so a gap is closed here explicitly — never by a timeout:

* ``open_gaps`` lists them per device epoch, with the mark and when the
  record just above the gap was received (the gap was open by then; unknown
  once that raw row has expired);
* ``close_gap`` refuses a range that is not wholly inside one open gap, and
  otherwise, in one write transaction, closes it in ``dedup_marks`` and
  writes who, when, why and which range to ``dedup_gap_closures``.

After the close a record sent inside the range is a duplicate: receipted,
never charged. Both engines through ``Database`` sessions: on SQLite
``write()`` holds the single write lock; on PostgreSQL the watermark row is
also locked ``FOR UPDATE``, the lock a group commit takes on it, so a commit
of the same device epoch waits rather than overwriting the close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.errors import CollectorError
from collector.store.db import Session
from collector.store.watermark import Watermark

MAX_REASON = 500


class GapRefused(CollectorError):
    """A gap cannot be closed as asked (not open, no such device epoch, no reason)."""


@dataclass(frozen=True, slots=True)
class OpenGap:
    """One open gap: ``lo..hi`` of ``device``'s ``epoch``, below ``mark``."""

    device: str
    epoch: str
    lo: int
    hi: int
    mark: int
    open_by: str | None  # received_at of the record at hi + 1, while its raw row is kept

    @property
    def size(self) -> int:
        """How many sequences the gap awaits."""
        return self.hi - self.lo + 1


@dataclass(frozen=True, slots=True)
class Closure:
    """What ``close_gap`` did (the audit row's content)."""

    device: str
    epoch: str
    lo: int
    hi: int
    closed: int  # sequences
    mark: int
    closed_by: str
    closed_at: str
    reason: str


def _seed_gaps(session: Session, device: str, epoch: str) -> list[tuple[int, int]]:
    rows = session.rows(
        "SELECT lo, hi FROM dedup_seed_gaps WHERE device_id = :d AND epoch = :e ORDER BY lo",
        {"d": device, "e": epoch},
    )
    return [(int(lo), int(hi)) for lo, hi in rows]


def _watermark(session: Session, device: str, epoch: str, mark: object, gaps: object) -> Watermark:
    if gaps is None:  # seeded by V4 from raw rows; folded at the first commit (dedup.py)
        return Watermark(int(str(mark)), _seed_gaps(session, device, epoch))
    return Watermark.load(int(str(mark)), str(gaps))


def _open_by(session: Session, device: str, epoch: str, seq: int) -> str | None:
    """When the record just above a gap arrived (usage or data row), by the compact key."""
    value = session.scalar(
        "SELECT MIN(u.received_at) FROM usage_streams s JOIN usage_records u"
        " ON u.stream = s.stream AND u.seq = :seq WHERE s.device_id = :d AND s.epoch = :e",
        {"d": device, "e": epoch, "seq": seq},
    )
    return None if value is None else str(value)


def open_gaps(session: Session, device: str | None = None) -> list[OpenGap]:
    """Every open gap (of ``device`` only, if given), by device, epoch and range."""
    sql = "SELECT device_id, epoch, mark, gaps FROM dedup_marks"
    params: dict[str, str] = {}
    if device is not None:
        sql += " WHERE device_id = :d"
        params["d"] = device
    out: list[OpenGap] = []
    with session.read():
        for dev, epoch, mark, gaps in session.rows(sql + " ORDER BY device_id, epoch", params):
            if gaps == "[]":
                continue
            wm = _watermark(session, str(dev), str(epoch), mark, gaps)
            for lo, hi in wm.gaps:
                since = _open_by(session, str(dev), str(epoch), hi + 1)
                out.append(OpenGap(str(dev), str(epoch), lo, hi, wm.mark, since))
    return out


def _check(lo: int, hi: int, reason: str) -> str:
    if lo < 1 or hi < lo:
        raise GapRefused(f"--from {lo} --to {hi} is not a range of sequences (1 <= from <= to)")
    reason = " ".join(reason.split())
    if not reason:
        raise GapRefused("give a --reason: the audit row says why the gap was closed")
    if len(reason) > MAX_REASON:
        raise GapRefused(f"the reason is longer than {MAX_REASON} characters")
    return reason


def _inside(gaps: Sequence[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(a <= lo and hi <= b for a, b in gaps)


def _no_mark(device: str, epoch: str) -> str:
    return f"device {device} has no watermark for epoch {epoch}; nothing closed"


def _not_inside(device: str, epoch: str, lo: int, hi: int, gaps: Sequence[tuple[int, int]]) -> str:
    shown = ", ".join(f"{a}-{b}" for a, b in gaps[:5])
    more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
    open_ = f"open gaps: {shown}{more}" if gaps else "it has no open gap"
    where = f"device {device} epoch {epoch}"
    return f"{lo}-{hi} is not inside an open gap of {where} ({open_}); nothing closed"


def close_gap(
    session: Session,
    *,
    device: str,
    epoch: str,
    lo: int,
    hi: int,
    reason: str,
    closed_by: str,
    now: str,
) -> Closure:
    """Close ``lo..hi`` (wholly inside one open gap) and audit it, in one write transaction."""
    reason = _check(lo, hi, reason)
    lock = " FOR UPDATE" if session.dialect == "postgresql" else ""
    with session.write():
        found = session.one(
            "SELECT mark, gaps FROM dedup_marks WHERE device_id = :d AND epoch = :e" + lock,  # noqa: S608 (a fixed suffix)
            {"d": device, "e": epoch},
        )
        if found is None:
            raise GapRefused(_no_mark(device, epoch))
        mark, gaps = found
        wm = _watermark(session, device, epoch, mark, gaps)
        if not _inside(wm.gaps, lo, hi):
            raise GapRefused(_not_inside(device, epoch, lo, hi, wm.gaps))
        closed = wm.close(lo, hi)
        if gaps is None:  # the seed rows are folded into the JSON now, as a commit would
            session.execute(
                "DELETE FROM dedup_seed_gaps WHERE device_id = :d AND epoch = :e",
                {"d": device, "e": epoch},
            )
        session.execute(
            "UPDATE dedup_marks SET gaps = :g, updated_at = :now"
            " WHERE device_id = :d AND epoch = :e",
            {"g": wm.gaps_text(), "now": now, "d": device, "e": epoch},
        )
        done = Closure(device, epoch, lo, hi, closed, wm.mark, closed_by, now, reason)
        session.execute(
            "INSERT INTO dedup_gap_closures"
            " (device_id, epoch, lo, hi, mark, closed_by, closed_at, reason)"
            " VALUES (:d, :e, :lo, :hi, :mark, :by, :at, :why)",
            {
                "d": device, "e": epoch, "lo": lo, "hi": hi, "mark": done.mark,
                "by": closed_by, "at": now, "why": reason,
            },
        )  # fmt: skip
    return done


def closable(
    session: Session, *, device: str, epoch: str, lo: int, hi: int, reason: str
) -> OpenGap:
    """The open gap holding ``lo..hi`` wholly (what the CLI shows before asking); else refuse."""
    _check(lo, hi, reason)
    found = session.one(
        "SELECT mark, gaps FROM dedup_marks WHERE device_id = :d AND epoch = :e",
        {"d": device, "e": epoch},
    )
    if found is None:
        raise GapRefused(_no_mark(device, epoch))
    wm = _watermark(session, device, epoch, *found)
    for a, b in wm.gaps:
        if a <= lo and hi <= b:
            return OpenGap(device, epoch, a, b, wm.mark, _open_by(session, device, epoch, b + 1))
    raise GapRefused(_not_inside(device, epoch, lo, hi, wm.gaps))


def closures(session: Session, device: str | None = None) -> list[Closure]:
    """The audit rows, oldest first (of ``device`` only, if given)."""
    sql = (
        "SELECT device_id, epoch, lo, hi, mark, closed_by, closed_at, reason"
        " FROM dedup_gap_closures"
    )
    params: dict[str, str] = {}
    if device is not None:
        sql += " WHERE device_id = :d"
        params["d"] = device
    return [
        Closure(str(d), str(e), int(lo), int(hi), int(hi) - int(lo) + 1, int(m), str(by),
                str(at), str(why))
        for d, e, lo, hi, m, by, at, why in session.rows(sql + " ORDER BY id", params)
    ]  # fmt: skip
