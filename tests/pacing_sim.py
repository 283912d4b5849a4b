"""A discrete-event simulation of one key's workers against a throttling service, on a fake clock.

Workers ask the :class:`KeyPacer` for a token before every request (retries included), as the client pool's
before-send hook does; a throttled request is retried after the fetcher's backoff (full jitter). The service is
a token bucket (a quota) and/or throttles at random (a storm), and answers after ``latency`` seconds, taking its
token when it answers, as benchmarks/quota.py does.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from pytest_proton_sync.fetch.pacing import KeyPacer
from pytest_proton_sync.fetch.rate_learning import Ticket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Bucket:
    """The service's side of a quota: ``rate`` tokens a second, at most ``burst`` held, full at first; a request
    that finds no token is refused. Shared by the simulation and the end-to-end test's endpoint."""

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Service:
    rate: float | None = None  # the quota's refill rate (None: no quota)
    burst: float = 0.0
    storm: float = 0.0  # share of requests throttled at random
    latency: float = 0.02
    quota_until: float = float("inf")  # the quota is lifted at this time
    bucket: Bucket | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.bucket = Bucket(self.rate, self.burst) if self.rate is not None else None

    def answer(self, now: float, rng: random.Random) -> bool:
        """Whether a request answered at ``now`` is accepted."""
        if self.storm and rng.random() < self.storm:
            return False
        if self.bucket is None or now >= self.quota_until:
            return True
        return self.bucket.take(now)


class _Events:
    """The simulation's future: (time, what, attempt, ticket), popped in time order (ties: first scheduled)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, int, Ticket | None]] = []
        self._order = 0

    def __bool__(self) -> bool:
        return bool(self._heap)

    def at(self, when: float, what: str, attempt: int, ticket: Ticket | None = None) -> None:
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, what, attempt, ticket))

    def pop(self) -> tuple[float, str, int, Ticket | None]:
        when, _, what, attempt, ticket = heapq.heappop(self._heap)
        return when, what, attempt, ticket

    def start(self, targets: int, workers: int, spacing: float) -> int:
        """One first request per worker, the threads starting one after another; returns the targets left."""
        for worker in range(min(workers, targets)):
            self.at(worker * spacing, "send", 1)
        return targets - min(workers, targets)


def backoff(rng: random.Random, attempt: int, base: float, cap: float) -> float:
    """The fetcher's wait before the next attempt: full jitter."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


@dataclass
class Outcome:
    seconds: float  # until the last target was answered
    requests: int
    throttled: int
    accepted_at: list[float]  # when each accepted answer came back
    rates: list[tuple[float, float | None]]  # (time, the pacer's rate) at every change


def simulate(
    pacer: KeyPacer,
    clock: FakeClock,
    service: Service,
    targets: int,
    workers: int = 32,
    seed: int = 1,
    backoff_base: float = 0.25,
    backoff_cap: float = 5.0,
    send_cost: float = 0.001,
    limit: float = 600.0,
    jitter: float = 0.0,
) -> Outcome:
    """Run ``targets`` looks with ``workers`` workers; each target asked until its first accepted answer.
    ``jitter``: each request reaches the service up to this much later than sent, and its answer reaches the
    worker up to this much later than given (a busy machine's threads and sockets): neither the order the pacer
    handed out tickets in nor the order answers come back in is the order the service saw."""
    rng = random.Random(seed)
    events = _Events()
    at = events.at
    remaining = events.start(targets, workers, send_cost)
    requests = throttled = 0
    accepted_at: list[float] = []
    rates: list[tuple[float, float | None]] = [(0.0, pacer.rate)]
    while events:
        clock.now, what, attempt, ticket = events.pop()
        assert clock.now < limit, "the simulation did not finish"
        if what == "send":
            delay, ticket = pacer.try_send()
            if ticket is None:
                at(clock.now + delay, "send", attempt)
                continue
            requests += 1
            late = rng.uniform(0.0, jitter) if jitter else 0.0
            at(clock.now + late + service.latency, "serve", attempt, ticket)
            continue
        if what == "serve":
            late = rng.uniform(0.0, jitter) if jitter else 0.0
            at(clock.now + late, "accepted" if service.answer(clock.now, rng) else "throttled", attempt, ticket)
            continue
        ok = what == "accepted"
        pacer.record(ticket, throttled=not ok)
        if pacer.rate != rates[-1][1]:
            rates.append((clock.now, pacer.rate))
        if not ok:
            throttled += 1
            at(clock.now + backoff(rng, attempt, backoff_base, backoff_cap), "send", attempt + 1)
            continue
        accepted_at.append(clock.now)
        if remaining:
            remaining -= 1
            at(clock.now + send_cost, "send", 1)
    return Outcome(max(accepted_at), requests, throttled, accepted_at, rates)


@dataclass
class Refusal:
    seconds: float  # until the last target ended (every one an error)
    requests: int  # sent
    asked_after_refusing: int  # requests sent once the pacer said the key refuses everything
    rates: list[tuple[float, float | None]]


def simulate_refusal(
    pacer: KeyPacer,
    clock: FakeClock,
    targets: int,
    attempts: int,
    workers: int = 32,
    latency: float = 0.02,
    seed: int = 1,
    backoff_base: float = 0.25,
    backoff_cap: float = 5.0,
) -> Refusal:
    """A service that throttles every request: each target is tried up to ``attempts`` times, as the fetcher does,
    and ends (an error) at its last attempt or as soon as its key's pacer says the key refuses everything."""
    rng = random.Random(seed)
    events = _Events()
    at = events.at
    remaining = events.start(targets, workers, 0.001)
    requests = after = 0
    ended = 0.0
    rates: list[tuple[float, float | None]] = [(0.0, pacer.rate)]

    def end() -> None:
        nonlocal remaining, ended
        ended = clock.now
        if remaining:
            remaining -= 1
            at(clock.now + 0.001, "send", 1)

    while events:
        clock.now, what, attempt, ticket = events.pop()
        assert clock.now < 3600, "the simulation did not finish"
        if what == "send":
            if pacer.refusing:
                end()  # not asked
                continue
            delay, ticket = pacer.try_send()
            if ticket is None:
                at(clock.now + delay, "send", attempt)
                continue
            requests += 1
            after += pacer.refusing
            at(clock.now + latency, "answer", attempt, ticket)
            continue
        pacer.record(ticket, throttled=True)
        if pacer.rate != rates[-1][1]:
            rates.append((clock.now, pacer.rate))
        if attempt >= attempts or pacer.refusing:
            end()
        else:
            at(clock.now + backoff(rng, attempt, backoff_base, backoff_cap), "send", attempt + 1)
    return Refusal(ended, requests, after, rates)
