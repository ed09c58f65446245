"""Sign-in throttling: failed attempts per account and per source address.

Each key (an e-mail address, a client address) may fail ``Limit.failures``
times within a sliding ``Limit.window``; further attempts are refused with
the number of seconds until the oldest failure leaves the window (HTTP 429
with ``Retry-After``). The default limits are 5 failures per account and
20 per address within 15 minutes.

An attempt counts as a failure *before* the password is checked and is
withdrawn when it succeeds, so concurrent guesses cannot slip past the
limit while their hashes are being computed. A successful sign-in clears
the account's failures. The state lives in memory (one collector process
serves the API); it holds at most ``max_keys`` keys, forgetting the least
recently used, so a flood of invented addresses cannot grow it without bound.
Windows run on the monotonic time of the collector's ``collector.clock.Clock``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from collector.clock import Clock, SystemClock


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``failures`` failed attempts within ``window`` seconds."""

    failures: int
    window: float


ACCOUNT_LIMIT = Limit(failures=5, window=15 * 60)
ADDRESS_LIMIT = Limit(failures=20, window=15 * 60)


class _Window:
    """Failure times per key within one limit, least recently used first."""

    def __init__(self, limit: Limit, max_keys: int) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        times = self.failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.limit.window:
            times.popleft()
        if not times:
            del self.failures[key]
            return 0.0
        if len(times) < self.limit.failures:
            return 0.0
        return times[0] + self.limit.window - now

    def add(self, key: str, now: float) -> None:
        self.failures.setdefault(key, deque()).append(now)
        self.failures.move_to_end(key)
        while len(self.failures) > self.max_keys:
            self.failures.popitem(last=False)

    def withdraw(self, key: str) -> None:
        times = self.failures.get(key)
        if times:
            times.pop()

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


class SignInThrottle:
    """Refuse sign-in attempts for an account or address that failed too often."""

    def __init__(
        self,
        *,
        per_account: Limit = ACCOUNT_LIMIT,
        per_address: Limit = ADDRESS_LIMIT,
        clock: Clock | None = None,
        max_keys: int = 100_000,
    ) -> None:
        self._accounts = _Window(per_account, max_keys)
        self._addresses = _Window(per_address, max_keys)
        self._clock = clock or SystemClock()  # its monotonic time: windows in seconds
        self._lock = threading.Lock()

    def attempt(self, account: str, address: str) -> int | None:
        """Start an attempt: None if allowed (counted as failed until :meth:`succeeded`),
        else the whole seconds to wait before trying again."""
        account = account.strip().lower()
        with self._lock:
            now = self._clock.monotonic()
            wait = max(self._accounts.wait(account, now), self._addresses.wait(address, now))
            if wait > 0:
                return max(1, math.ceil(wait))
            self._accounts.add(account, now)
            self._addresses.add(address, now)
            return None

    def succeeded(self, account: str, address: str) -> None:
        """The attempt was right: forget the account's failures and withdraw this one."""
        with self._lock:
            self._accounts.clear(account.strip().lower())
            self._addresses.withdraw(address)
