"""Pacing per (account, region, service): the learner on a fake clock (simulated workers against a simulated
quota or storm), and two regions paced independently through the fake over HTTP."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from typing import Any

import pytest

from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.fake.api import ApiError
from pytest_proton_sync.fake.state import Fault
from pytest_proton_sync.fetch.pacing import KeyPacer, Pacing
from pytest_proton_sync.fetch.rate_learning import RateLearner

from .conftest import SHA_A, fake_state, template, write_manifest
from .pacing_sim import Bucket, FakeClock, Service, simulate, simulate_refusal


def a_pacer(cap: float | None = None) -> tuple[KeyPacer, FakeClock]:
    clock = FakeClock()
    return KeyPacer(cap, clock=clock), clock


# -- a quota: learned, held just under, few throttles --------------------------------------------------------------
@pytest.mark.parametrize(("rate", "burst", "latency"), [
    (25.0, 25.0, 0.02),  # the benchmark's quota
    (100.0, 100.0, 0.02),
    (200.0, 200.0, 0.005),
    (25.0, 100.0, 0.02),  # a burst of four seconds' worth, larger than the opening round
])
def test_a_quota_is_learned_and_held_just_under_its_rate(rate: float, burst: float, latency: float) -> None:
    pacer, clock = a_pacer()
    targets = int(burst + rate * 10)  # the floor: 10 s
    outcome = simulate(pacer, clock, Service(rate=rate, burst=burst, latency=latency), targets, workers=32)
    assert outcome.seconds <= 10 * 1.05  # the quota's capacity is used
    late = [t for t in outcome.accepted_at if t >= 5.0]
    accepted_rate = len(late) / (outcome.seconds - 5.0)
    assert rate * 0.9 <= accepted_rate <= rate * 1.1
    # Held near it while there was work (the last window, as the targets run out, measures the tail, not the rate).
    middle = [held for at, held in outcome.rates if 2.0 <= at <= 9.0]
    assert middle and None not in middle, outcome.rates
    assert rate * 0.8 <= statistics.median(middle) <= rate * 1.2, outcome.rates
    # Throttles: the opening round's overflow plus a few probes (the long burst's overflow: a one-off).
    assert outcome.throttled <= (0.05 if burst <= 32 else 0.15) * outcome.requests


def test_a_quota_throttles_little_however_many_workers() -> None:
    for workers in (4, 8, 32, 64):
        pacer, clock = a_pacer()
        outcome = simulate(pacer, clock, Service(rate=25, burst=25), 275, workers=workers)
        assert outcome.seconds <= 10 * 1.05, workers
        assert outcome.throttled <= 0.05 * outcome.requests, (workers, outcome.throttled)


def test_a_burst_below_the_rate_is_outgrown_in_seconds() -> None:
    """The opening's estimate (what the round accepted, per second) is the burst: too low when the burst is
    smaller than the rate. Clean windows double the step until throttles say where the rate is."""
    pacer, clock = a_pacer()
    outcome = simulate(pacer, clock, Service(rate=50, burst=10, latency=0.01), 510, workers=32)
    assert outcome.rates[1][1] is not None and outcome.rates[1][1] <= 12  # the opening's estimate
    assert outcome.seconds <= 10 * 1.4
    assert pacer.rate is not None and 40 <= pacer.rate <= 60


def test_the_opening_round_is_answered_before_a_second_one_is_sent() -> None:
    clock = FakeClock()
    pacer = KeyPacer(None, clock=clock, round_size=3)
    tickets = []
    for _ in range(3):
        delay, ticket = pacer.try_send()
        assert delay == 0.0 and ticket is not None
        tickets.append(ticket)
    clock.now = 0.01
    pacer.record(tickets[0], throttled=False)
    delay, ticket = pacer.try_send()
    assert delay > 0 and ticket is None  # held: two of the round are still out
    pacer.record(tickets[1], throttled=False)
    pacer.record(tickets[2], throttled=False)
    assert pacer.try_send()[0] == 0.0  # the round is answered: unpaced, nothing was throttled
    assert pacer.rate is None


@pytest.mark.parametrize(("round_trip", "held_for"), [(0.01, 0.25), (0.2, 0.4)])
def test_an_unanswered_opening_round_holds_for_two_round_trips_or_a_quarter_second(
    round_trip: float, held_for: float
) -> None:
    clock = FakeClock()
    pacer = KeyPacer(None, clock=clock, round_size=2)
    first = pacer.try_send()[1]
    pacer.try_send()  # its answer never comes (a dropped connection)
    clock.now = round_trip
    pacer.record(first, throttled=False)
    clock.now = held_for - 0.01
    assert pacer.try_send()[0] > 0
    clock.now = held_for + 0.01
    assert pacer.try_send()[0] == 0.0


def test_a_quota_met_in_the_opening_round_is_held_at_what_it_accepted() -> None:
    clock = FakeClock()
    pacer = KeyPacer(None, clock=clock, round_size=32)
    tickets = [pacer.try_send()[1] for _ in range(32)]
    clock.now = 0.02
    for index, ticket in enumerate(tickets):  # a bucket of 25: the last 7 sent were refused
        pacer.record(ticket, throttled=index >= 25)
    assert pacer.rate == 25.0


def test_a_quota_is_read_from_the_order_its_answers_came_back_in_when_sending_order_was_scrambled() -> None:
    """A busy machine: the tickets' order says little (threads reached their sockets in another order), but the
    bucket's refusals were the last answers to come back."""
    clock = FakeClock()
    pacer = KeyPacer(None, clock=clock, round_size=32)
    tickets = [pacer.try_send()[1] for _ in range(32)]
    refused = {1, 5, 9, 13, 17, 21, 30}  # scattered by ticket
    clock.now = 0.02
    for ticket in sorted(tickets, key=lambda ticket: ticket.seq in refused):  # answered: accepted ones first
        pacer.record(ticket, throttled=ticket.seq in refused)
    assert pacer.rate == 25.0


def scattered_opening(pacer: KeyPacer, clock: FakeClock) -> None:
    """A first round of 32 with every fourth request refused, by ticket and by answer: a storm, or a quota seen
    through a busy machine."""
    tickets = [pacer.try_send()[1] for _ in range(32)]
    clock.now = 0.02
    for index, ticket in enumerate(tickets):
        pacer.record(ticket, throttled=index % 4 == 1)


@pytest.mark.parametrize(("refused", "rate"), [(2, None), (0, None), (6, 24.0), (8, 24.0)])
def test_scattered_throttles_in_the_opening_round_are_probed_by_a_small_round(refused: int, rate: float | None) -> None:
    """A storm throttles about its share of the probe (unpaced); a quota's bucket, still empty, nearly all of it
    (held at what the first round accepted, per second)."""
    clock = FakeClock()
    pacer = KeyPacer(None, clock=clock, round_size=32)
    scattered_opening(pacer, clock)
    assert pacer.rate is None and not pacer.learner.held  # not judged yet
    probe = [pacer.try_send() for _ in range(RateLearner.PROBE_ROUND)]
    assert all(delay == 0.0 and ticket is not None for delay, ticket in probe)
    assert pacer.try_send()[0] > 0  # nothing more until the probe is answered
    clock.now = 0.04
    for index, (_, ticket) in enumerate(probe):
        pacer.record(ticket, throttled=index < refused)
    assert pacer.rate == rate
    assert pacer.try_send()[0] == 0.0


def test_a_probe_that_is_never_answered_ends_as_the_opening_does() -> None:
    clock = FakeClock()
    pacer = KeyPacer(None, clock=clock, round_size=32)
    scattered_opening(pacer, clock)
    for _ in range(RateLearner.PROBE_ROUND):
        pacer.try_send()
    clock.now = 0.03
    assert pacer.try_send()[0] > 0
    clock.now = 0.02 + RateLearner.OPENING_MIN_WAIT + 0.01
    assert pacer.try_send()[0] == 0.0  # no answers: nothing throttled, unpaced
    assert pacer.rate is None


@pytest.mark.parametrize("jitter", [0.005, 0.02, 0.04])
def test_a_quota_seen_through_a_busy_machine_still_throttles_little(jitter: float) -> None:
    """Requests reach the service, and answers the workers, up to ``jitter`` late: neither order is the one the
    bucket saw. Still few throttles (the benchmark's quota, 300 targets)."""
    throttles = []
    for seed in range(20):
        pacer, clock = a_pacer()
        outcome = simulate(pacer, clock, Service(rate=25, burst=25), 300, seed=seed, jitter=jitter)
        assert outcome.seconds <= 11.0 * 1.1, seed
        throttles.append(outcome.throttled / outcome.requests)
    assert statistics.median(throttles) <= 0.05 and max(throttles) <= 0.08, throttles


# -- a storm: no sustained cut --------------------------------------------------------------------------------------
@pytest.mark.parametrize("jitter", [0.0, 0.02])
def test_a_storm_of_scattered_throttles_cuts_nothing_for_long(jitter: float) -> None:
    paced_runs = 0
    for seed in range(100):
        pacer, clock = a_pacer()
        outcome = simulate(pacer, clock, Service(storm=0.25, latency=0.003), 210, workers=32, seed=seed, jitter=jitter)
        assert pacer.rate is None, seed  # unpaced at the end, whatever happened
        if pacer.learner.cuts:
            paced_runs += 1
            # A storm taken for a quota is seen as one within a window or two, and the rate is given back.
            paced_until = next(t for t, rate in outcome.rates[1:] if rate is None)
            assert paced_until <= 4.0, (seed, outcome.rates)
    assert paced_runs <= 3


def test_a_rate_limit_that_ends_is_given_back() -> None:
    """15 requests a second for 4 s, then no quota any more: the rate grows back to where it no longer holds the
    32 workers back (the key is unpaced once the rate is well above what they send)."""
    pacer, clock = a_pacer()
    outcome = simulate(pacer, clock, Service(rate=15, burst=15, quota_until=4.0), 2000, workers=32)
    held = [rate for t, rate in outcome.rates if 1.0 <= t < 4.0]
    assert held and all(rate is not None and 10 <= rate <= 20 for rate in held)
    grown = [t for t, rate in outcome.rates if t > 4.0 and (rate is None or rate >= 10 * 15)]
    assert grown and grown[0] <= 4.0 + 10.0, outcome.rates
    assert pacer.rate is None


# -- a key that refuses everything ---------------------------------------------------------------------------------
@pytest.mark.parametrize("targets", [20, 100, 500])
def test_a_key_that_refuses_everything_is_given_up_in_seconds_whatever_the_targets(targets: int) -> None:
    """Held at the lowest rate, 500 targets with 10 attempts each took 44 simulated minutes (pacing does not count
    against a call's deadline); unpaced, they would be 5,000 requests in a minute. Given up once 20 throttles in a
    row span 10 s: seconds, a few dozen requests, and none sent after that."""
    pacer, clock = a_pacer()
    refusal = simulate_refusal(pacer, clock, targets, attempts=10)
    assert pacer.refusing
    assert refusal.seconds <= 15.0
    assert refusal.requests <= 32 + 15  # the opening round, then about one a second
    assert refusal.asked_after_refusing == 0
    assert all(rate is not None and rate <= 1.0 for _, rate in refusal.rates[1:])  # never a stampede


def test_an_accepted_answer_or_a_new_poll_ends_a_refusal() -> None:
    pacer, clock = a_pacer()
    for _ in range(RateLearner.REFUSED_RUN - 1):  # a run that is long enough in time, one throttle short
        pacer.record(pacer.try_send()[1], throttled=True)
        clock.now += 1.0
    assert not pacer.refusing
    pacer.record(None, throttled=True)
    assert pacer.refusing
    pacer.record(None, throttled=False)
    assert not pacer.refusing
    for _ in range(RateLearner.REFUSED_RUN):  # as many throttles, all within a second: a burst, not a refusal
        pacer.record(None, throttled=True)
        clock.now += 0.04
    assert not pacer.refusing
    clock.now += RateLearner.REFUSED_SECONDS
    pacer.record(None, throttled=True)
    assert pacer.refusing
    pacer.another_chance()  # a new poll (wait mode)
    assert not pacer.refusing


def test_a_storm_or_a_quota_never_reads_as_refusing() -> None:
    for seed in range(20):
        pacer, clock = a_pacer()
        simulate(pacer, clock, Service(storm=0.5, latency=0.003), 300, workers=32, seed=seed)
        assert not pacer.refusing, seed
    pacer, clock = a_pacer()
    simulate(pacer, clock, Service(rate=2, burst=2, latency=0.02), 60, workers=32)  # a tiny quota, held under
    assert not pacer.refusing


# -- --proton-max-rps, per key -------------------------------------------------------------------------------------
def test_max_rps_caps_each_key_on_its_own() -> None:
    clock = FakeClock()
    pacing = Pacing(10.0, clock=clock)
    sent: Counter[str] = Counter()
    while clock.now < 2.0:
        for key in ("us-east-1", "eu-west-1"):
            while pacing.for_key(key).try_send()[1] is not None:
                sent[key] += 1
        clock.now += 0.01
    # One second's burst, then 10 a second, for each key: neither took the other's share.
    assert 28 <= sent["us-east-1"] <= 31 and 28 <= sent["eu-west-1"] <= 31


def test_a_learned_rate_never_exceeds_max_rps() -> None:
    pacer, clock = a_pacer(cap=20.0)
    outcome = simulate(pacer, clock, Service(rate=100, burst=10, latency=0.01), 300, workers=32)
    assert all(rate is not None and rate <= 20.0 for _, rate in outcome.rates)


# -- end to end: two regions, paced independently ------------------------------------------------------------------
class RegionQuotaServer(FakeServer):
    """The fake, with a quota (token bucket) on one region's requests only; every request recorded in order."""

    def __init__(self, region: str, rate: float, burst: float) -> None:
        super().__init__(fake_state())
        self.quota_region = region
        self._bucket = Bucket(rate, burst, time.monotonic())
        self._order_lock = threading.Lock()
        self.answers: list[tuple[str, bool]] = []  # (region, throttled), in the order answered

    def _refuse_what_is_wrong(self, fault: Fault, handler: Any, protocol: Any, decode_problem: str | None) -> None:
        authorization = handler.headers.get("Authorization") or ""
        region = authorization.split("Credential=")[-1].split("/")[2] if "Credential=" in authorization else ""
        with self._order_lock:
            allowed = region != self.quota_region or self._bucket.take(time.monotonic())
            self.answers.append((region, not allowed))
        if not allowed:
            raise ApiError("ThrottlingException", "Rate exceeded", 400)
        super()._refuse_what_is_wrong(fault, handler, protocol, decode_problem)


@pytest.fixture
def region_quota(monkeypatch: pytest.MonkeyPatch, aws_env: FakeServer) -> Any:
    server = RegionQuotaServer("eu-west-1", rate=5.0, burst=5.0)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", server.endpoint_url)
    try:
        yield server
    finally:
        server.stop()


def test_a_throttled_region_does_not_slow_another(
    pytester: pytest.Pytester, region_quota: RegionQuotaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys: dict[int, Any] = {}  # id(pacer) -> its key
    pacers: dict[str, KeyPacer] = {}  # region -> its key's pacer
    rates: dict[str, list[float | None]] = {"eu-west-1": [], "us-east-1": []}  # the key's rate at each token
    for_key, delay = Pacing.for_key, KeyPacer.delay

    def recording_for_key(self: Pacing, key: Any) -> KeyPacer:
        pacer = for_key(self, key)
        keys[id(pacer)] = key
        pacers[key[1]] = pacer
        return pacer

    def recording_delay(self: KeyPacer) -> float:
        wait = delay(self)
        if wait <= 0:
            rates[keys[id(self)][1]].append(self.rate)
        return wait

    monkeypatch.setattr(Pacing, "for_key", recording_for_key)
    monkeypatch.setattr(KeyPacer, "delay", recording_delay)
    throttled_region = [template(f"q{i:02d}", SHA_A, region="eu-west-1") for i in range(20)]
    free_region = [template(f"f{i:03d}", SHA_A, region="us-east-1") for i in range(150)]
    region_quota.set_state(fake_state(*[
        {"name": e["name"], "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}
        for e in throttled_region + free_region
    ]))
    manifest = write_manifest(pytester.path, *throttled_region, *free_region)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=170)
    answers = region_quota.answers
    assert not any(throttled for region, throttled in answers if region == "us-east-1")
    assert any(throttled for region, throttled in answers if region == "eu-west-1")  # the quota bit
    # us-east-1 was never held to eu-west-1's 5 a second: all of its 150 requests were answered before
    # eu-west-1's 20 targets (3 s of quota after a burst of 5) were done.
    last_free = max(i for i, (region, _) in enumerate(answers) if region == "us-east-1")
    last_throttled_region = max(i for i, (region, _) in enumerate(answers) if region == "eu-west-1")
    assert last_free < last_throttled_region
    # One pacer per key; the quota was learned on its own key (a cut; whether a retry then took a token while it
    # was held is timing, so the learner's own count says it), and every us-east-1 request went out unpaced.
    assert pacers["eu-west-1"] is not pacers["us-east-1"]
    assert pacers["eu-west-1"].learner.cuts >= 1
    assert pacers["us-east-1"].learner.cuts == 0 and pacers["us-east-1"].throttles == 0
    assert len(rates["us-east-1"]) == 150 and all(rate is None for rate in rates["us-east-1"])
