"""Pacing: a shared token bucket, and the Pacer that slows the whole fetch down when the service throttles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pytest_proton_sync.aws.deadline import Aborted, Call
from pytest_proton_sync.fetch import cancel


# -- pacing --------------------------------------------------------------------------------------------------------
class RateLimiter:
    """A shared token bucket: at most ``rate`` requests a second across all threads, with a burst of one second's
    worth (at least one request, so a rate below 1 spaces requests 1/rate seconds apart)."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._capacity = max(1.0, rate or 0.0)
        self._tokens = self._capacity
        self._last = clock()

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            self._refill()
            self.rate = rate
            self._capacity = max(1.0, rate or 0.0)
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
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self) -> None:
        while (delay := self.try_acquire()) > 0:
            self._sleep(delay)


class Pacer:
    """Paces every request of a fetch: at most --proton-max-rps and, when throttling is the service saying "too
    fast" for the whole account, no faster than it accepts requests.

    Judged per one-second window of answers: when more than a third of at least 10 answers were throttles, the
    rate drops to the rate requests were accepted at in that window (at most halving it per window, never below
    MIN_RATE); when under a tenth
    were, it grows by half again, and pacing stops once it is well above what is being sent anyway. Scattered
    throttles (a storm of 25% at random) cut nothing: the per-call retries ride them out, while a real rate limit
    is met at the rate it allows instead of being hammered by every retry.
    """

    MIN_RATE = 1.0
    WINDOW = 1.0
    MIN_SAMPLES = 10
    CUT_ABOVE = 1 / 3
    GROW_BELOW = 0.1

    def __init__(self, max_rps: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.cap = max_rps
        self.bucket = RateLimiter(max_rps, clock=clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._accepted = 0
        self._throttled = 0
        self.throttles = 0
        self.cuts = 0

    @property
    def rate(self) -> float | None:
        return self.bucket.rate

    def acquire(self, call: Call | None = None) -> None:
        """Wait for a token (cancellable). Time spent here does not count against the call's deadline: the
        deadline bounds time on the network, and pacing is the fetch's own choice."""
        token = cancel.current()
        delay = self.bucket.try_acquire()
        if delay <= 0:
            return
        paused = time.monotonic()
        if call is not None:
            call.paused = True
        try:
            while delay > 0:
                if token.wait(delay):
                    raise Aborted("cancelled")
                delay = self.bucket.try_acquire()
        finally:
            if call is not None:
                call.deadline += time.monotonic() - paused
                call.paused = False

    def throttled(self) -> None:
        self._count(throttled=True)

    def answered(self) -> None:
        self._count(throttled=False)

    def _count(self, throttled: bool) -> None:
        with self._lock:
            if throttled:
                self.throttles += 1
                self._throttled += 1
            else:
                self._accepted += 1
            now = self._clock()
            elapsed = now - self._window_start
            if elapsed < self.WINDOW:
                return
            accepted, total = self._accepted, self._accepted + self._throttled
            self._window_start, self._accepted, self._throttled = now, 0, 0
            if total < self.MIN_SAMPLES:
                return
            share = (total - accepted) / total
            rate = self.bucket.rate
            new: float | None = rate
            if share > self.CUT_ABOVE:
                # The rate it accepted, but at most halved per window: a burst of throttles must not stall a fetch.
                new = max(self.MIN_RATE, accepted / elapsed, total / elapsed / 2)
                if rate is not None:
                    new = min(rate, new)
                self.cuts += 1
            elif share < self.GROW_BELOW and rate is not None:
                new = rate * 1.5
                if self.cap is not None:
                    new = min(self.cap, new)
                elif new > 2 * total / elapsed:
                    new = None
        if new != rate:
            self.bucket.set_rate(new)
