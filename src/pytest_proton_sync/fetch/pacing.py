"""Pacing per (account, region, service), as AWS counts its quotas: a token bucket per key, and what it learns.

Pure logic (no boto3, no pytest, no sleeping): the clock is injected, a caller asks how long to wait and waits
itself (fetch/clients.py, cancellably). What the rate learns from, and why, is in :class:`RateLearner`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from pytest_proton_sync.fetch.rate_learning import RateLearner, Ticket


class RateLimiter:
    """A token bucket: at most ``rate`` requests a second across all threads, with a burst of ``burst`` seconds'
    worth (at least one request, so a rate below 1 spaces requests 1/rate seconds apart). ``None``: no limit."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        burst: float = 1.0,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._burst = burst
        self._lock = threading.Lock()
        self._capacity = self._capacity_for(rate)
        self._tokens = self._capacity
        self._last = clock()

    def _capacity_for(self, rate: float | None) -> float:
        return max(1.0, (rate or 0.0) * self._burst)

    def set_rate(self, rate: float | None, burst: float | None = None) -> None:
        """A new rate; the tokens held are kept (never more than the new capacity), so a change hands out no
        fresh burst."""
        with self._lock:
            self._refill()
            self.rate = rate
            if burst is not None:
                self._burst = burst
            self._capacity = self._capacity_for(rate)
            self._tokens = min(self._tokens, self._capacity)

    def _refill(self) -> None:
        now = self._clock()
        if self.rate:
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_acquire(self) -> float:
        """Take a token: 0.0, or the seconds to wait before trying again."""
        with self._lock:
            if not self.rate:
                return 0.0
            self._refill()
            if self._tokens >= 1 - 1e-9:  # a whole token, give or take a rounding error
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self) -> None:
        while (delay := self.try_acquire()) > 0:
            self._sleep(delay)


class KeyPacer:
    """The requests of one (account, region, service): a token bucket at the rate its :class:`RateLearner` holds.

    Thread-safe. A worker asks :meth:`delay` before each HTTP request (0.0: send now; the request is then
    recorded as this thread's) and reports how that request ended with :meth:`answered` or :meth:`throttled` from
    the same thread. :meth:`try_send` and :meth:`record` are the same with the ticket in the caller's hands.
    """

    # A learned rate is held with a small burst: requests evenly spaced, not bunched into a quota's empty bucket.
    HELD_BURST = 0.1

    def __init__(
        self, max_rps: float | None, clock: Callable[[], float] = time.monotonic, round_size: int = 32
    ) -> None:
        self._clock = clock
        self.learner = RateLearner(max_rps, round_size)
        self.bucket = RateLimiter(max_rps, clock=clock)
        self._lock = threading.Lock()
        self._thread = threading.local()

    @property
    def rate(self) -> float | None:
        return self.bucket.rate

    @property
    def throttles(self) -> int:
        return self.learner.throttles

    @property
    def refusing(self) -> bool:
        """Whether this key has refused everything for a while (RateLearner, "Refusing"): ask it no more."""
        return self.learner.refusing

    def another_chance(self) -> None:
        """A new poll: a key that was refusing is asked again."""
        with self._lock:
            self.learner.reset_refusal()

    def try_send(self) -> tuple[float, Ticket | None]:
        """(0.0, the request's ticket) to send now, or (seconds to wait before asking again, None)."""
        with self._lock:
            now = self._clock()
            held = self.learner.hold(now)
            if held > 0:
                return held, None
            self._apply()
            delay = self.bucket.try_acquire()
            if delay > 0:
                return delay, None
            return 0.0, self.learner.sent(now)

    def record(self, ticket: Ticket | None, throttled: bool) -> None:
        with self._lock:
            self.learner.record(ticket, throttled, self._clock())
            self._apply()

    def _apply(self) -> None:
        rate = self.learner.rate
        if rate != self.bucket.rate:
            self.bucket.set_rate(rate, burst=self.HELD_BURST if self.learner.held else 1.0)

    def delay(self) -> float:
        delay, ticket = self.try_send()
        if ticket is not None:
            self._thread.ticket = ticket
        return delay

    def answered(self) -> None:
        self.record(self._take_ticket(), throttled=False)

    def throttled(self) -> None:
        self.record(self._take_ticket(), throttled=True)

    def _take_ticket(self) -> Ticket | None:
        ticket: Ticket | None = getattr(self._thread, "ticket", None)
        self._thread.ticket = None
        return ticket


class Pacing:
    """One :class:`KeyPacer` per key (the client pool's (service, region, account)), each capped at
    --proton-max-rps: AWS counts a quota per account, region and API, so one throttled key slows no other."""

    def __init__(
        self, max_rps: float | None, clock: Callable[[], float] = time.monotonic, round_size: int = 32
    ) -> None:
        self.cap = max_rps
        self.round_size = round_size
        self._clock = clock
        self._lock = threading.Lock()
        self._pacers: dict[Hashable, KeyPacer] = {}

    def for_key(self, key: Hashable) -> KeyPacer:
        with self._lock:
            pacer = self._pacers.get(key)
            if pacer is None:
                pacer = self._pacers[key] = KeyPacer(self.cap, clock=self._clock, round_size=self.round_size)
            return pacer

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._pacers)

    def another_chance(self) -> None:
        """A new poll: every key that was refusing is asked again."""
        with self._lock:
            pacers = list(self._pacers.values())
        for pacer in pacers:
            pacer.another_chance()
