"""Dependencies of the API routes.

Authentication is a hook: ``require_principal`` lets everyone in as an
unrestricted principal until the fleet component overrides it, e.g.
``app.dependency_overrides[require_principal] = my_auth``. A principal with
``accounts`` set sees only those accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from collector.clock import Clock, SystemClock
from collector.metrics import Metrics
from collector.store.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling; ``accounts=None`` means every account."""

    name: str
    accounts: frozenset[str] | None = None

    def may_see(self, account: str) -> bool:
        """Tell whether this principal may read ``account``."""
        return self.accounts is None or account in self.accounts


def require_principal() -> Principal:
    """Return the caller (default: anonymous and unrestricted; override to authenticate)."""
    return Principal("anonymous")


def get_ledger(request: Request) -> Ledger:
    """Return the ledger the app was started with."""
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_metrics(request: Request) -> Metrics:
    """Return the collector's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_clock(request: Request) -> Clock:
    """Return the collector's one clock (the system clock for an app built without one)."""
    clock: Clock | None = getattr(request.app.state, "clock", None)
    return clock or SystemClock()


ClockDep = Annotated[Clock, Depends(get_clock)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
