"""The rate one (account, region, service) sustains, learned from how its requests were answered. Pure logic.

Two kinds of throttling look alike answer by answer and call for opposite responses:

- a **quota** (AWS's token bucket per account, region and API): throttles begin once the burst is spent and then
  come in a run, the share rising with the send rate; the service accepts requests at its refill rate whatever is
  sent. Sending faster only buys throttles, so the key is held just under the rate it accepted, and probes upwards
  slowly.
- a **storm** (throttles scattered at random, whatever the rate): the per-call retries ride it out. Cutting the
  rate would only slow the fetch, so the key stays unpaced.

How they are told apart:

1. **The opening round.** A key's first ``round_size`` requests (the fetch's concurrency), or as many as were
   sent when a first throttle comes back, go out unpaced: the service's bucket starts full, and its burst is what
   makes a fetch fast. Further requests wait until that round is answered (or two round trips have passed), so a
   quota's overflow is seen before a second round is sent into an empty bucket (after a clean round, the first
   throttle closes a round of the last ``round_size`` requests the same way). Throttles that came as a run at
   the end of the round (sent last, after the accepted ones), or as most of a later one, are a quota: held at the
   number of requests the round had accepted, per second (a bucket's burst is usually at least one second's
   worth, so this is at or above the rate; the next windows correct it).
   Order is only a hint: on a busy machine the round's requests reach the service in another order than they
   took their tickets in, so a quota's overflow can look scattered. The order the answers came back in is asked
   too (refusals that were the last answers back are a run as well); when both look scattered, the first
   round's throttles are **probed**: a small round of ``PROBE_ROUND`` requests goes out next, held as the
   opening was. A quota's bucket is still empty (it refilled for one round trip only), so nearly all of them are
   throttled, and the key is held as above; a storm throttles about the share it did before, and the key is
   unpaced. The probe costs a storm one round trip at a quarter of the concurrency, and a quota a handful of
   throttles instead of a whole round sent into its empty bucket.
2. **Unpaced**, a run of ``RUN_LENGTH`` throttles in a row, or more than half of a one-second window of at least
   ``FREE_MIN_SAMPLES`` answers throttled, is a quota met later.
3. **Held**, each window of at least ``MIN_SAMPLES`` answers to requests sent at the held rate is judged: any
   throttle cuts the rate to what that window accepted (times ``HOLD``, to a quarter at most), a clean window
   probes upwards by ``PROBE``; after SLOW_PROBES clean windows in a row (one, away from any rate measured under
   throttling) the step doubles with each more, so a lifted quota or a rate learned too low is outgrown in
   seconds. Two cuts in a row that did not make the throttles (mostly) go away mean a storm, not a quota: the key
   is unpaced again at once. Answers to requests sent before a change of rate never judge the new rate.

``--proton-max-rps`` caps the key throughout.

**Refusing.** A key whose last ``REFUSED_RUN`` answers were all throttles, over at least ``REFUSED_SECONDS``, is
refusing everything: its quota is spent by someone else, or the API is throttling the account whatever is sent.
Held at the lowest rate, its retries would take minutes per hundred targets (pacing does not count against a
call's deadline), and unpaced they would be a stampede; :attr:`RateLearner.refusing` tells the fetcher to stop
asking that key instead, so its targets end as errors that say so. An accepted answer ends it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Ticket:
    """One request as the learner saw it leave: its order among the key's requests and when it was sent."""

    seq: int
    sent_at: float


@dataclass
class _Window:
    """Answers to requests sent since ``start`` (when the rate last changed)."""

    start: float
    accepted: int = 0
    throttled: int = 0
    last_sent: float = 0.0

    @property
    def total(self) -> int:
        return self.accepted + self.throttled


OPENING, FREE, HELD = "opening", "free", "held"


class RateLearner:
    """The rate (requests a second, ``None`` for unpaced) one key's requests are held at. Not thread-safe: the
    :class:`~pytest_proton_sync.fetch.pacing.KeyPacer` owning it serialises every call."""

    MIN_RATE = 1.0
    OPENING_MIN_WAIT = 0.25  # the opening round's answers: waited for at least this, or two round trips
    OPENING_POLL = 0.005
    MIN_ROUND = 16  # a round closed by a throttle holds at least this many (fewer say little about order)
    RUN_MIN_THROTTLES = 3  # fewer throttles than this in the opening round say nothing about their order
    RUN_ORDER = 0.9  # share of (accepted, throttled) pairs in which the throttled request was sent later
    PROBE_ROUND = 8  # requests in the round after a first round with scattered throttles ...
    PROBE_QUOTA = 6  # ... of which this many throttled say a quota: a 25 % storm does that once in 240 probes
    RUN_LENGTH = 8  # throttles in a row while unpaced: 0.25**8 ~ 1.5e-5 per answer in a 25 % storm
    FREE_WINDOW = 1.0
    FREE_MIN_SAMPLES = 20
    FREE_CUT_SHARE = 0.5
    HELD_WINDOW = 0.25
    MIN_SAMPLES = 10
    HOLD = 0.97  # just under what was accepted
    MAX_CUT = 0.25  # at most to a quarter per window
    PROBE = 1.04  # per clean window; after SLOW_PROBES clean windows in a row the step doubles with each more,
    SLOW_PROBES = 10  # up to doubling the rate (a quota lifted, or a rate learned too low, is outgrown in seconds)
    MAX_PROBE = 2.0
    SLOW_PROBES_FAR = 1  # after one clean window, away from any rate measured under throttling:
    FAST_ABOVE = 1.5  # no rate measured yet (the opening's estimate), or this far above it
    STORM_KEEP = 0.5  # a cut that left half the throttle share (and at least STORM_MIN_SHARE) was a storm
    STORM_MIN_SHARE = 0.1
    STORM_CUTS = 2  # cuts in a row that changed little: a quota measured too high changes little once, not twice
    UNPACE_ABOVE = 2.0  # unpaced again once the rate is this far above what is being sent
    REFUSED_RUN = 20  # throttles in a row, with no accepted answer among them, ...
    REFUSED_SECONDS = 10.0  # ... over at least this long: the key refuses everything

    def __init__(self, cap: float | None, round_size: int = 32) -> None:
        self.cap = cap
        self.round_size = max(1, round_size)
        self.rate: float | None = cap
        self.state = OPENING
        self.throttles = 0
        self.cuts = 0
        self.storms = 0
        self.learned: float | None = None  # the accepted rate the last measured cut was based on
        self._seq = 0
        self._first_sent: float | None = None
        self._last_sent = 0.0
        self._first_answer: float | None = None
        self._round_from = 0  # the opening round: the requests after this one (their tickets' seq) ...
        self._round = self.round_size  # ... up to this one (a first throttle may close it earlier)
        self._round_sent: float | None = None  # when its last request was sent
        self._round_answers: deque[tuple[int, bool]] = deque(maxlen=self.round_size)
        self._armed = False  # the first round was clean: the next throttle closes a round of what is out
        self._probe_rate: float | None = None  # probing (a first round's scattered throttles): the rate to hold
        self._window = _Window(start=float("-inf"))
        self._recent: deque[bool] = deque(maxlen=self.RUN_LENGTH)
        self._accepted_at: deque[float] = deque()
        self._cut_share: float | None = None
        self._unhelped = 0  # cuts in a row after which the throttle share stayed
        self._clean = 0  # clean windows in a row at a held rate
        self._refused = 0  # throttles since the last accepted answer ...
        self._refused_since: float | None = None  # ... the first of them answered at this time
        self.refusing = False  # see "Refusing" above; once set, only an accepted answer (or reset_refusal) clears it

    @property
    def held(self) -> bool:
        return self.state == HELD

    def reset_refusal(self) -> None:
        """Forget a run of throttles (an accepted answer; or a new poll, which gives the key another chance)."""
        self._refused, self._refused_since, self.refusing = 0, None, False

    # -- sending ---------------------------------------------------------------------------------------------------
    def hold(self, now: float) -> float:
        """Seconds a request must wait before it may take a token (the opening round's answers), or 0.0."""
        if self.state != OPENING or self._round_sent is None:
            return 0.0
        if self._opening_over(now):
            self._end_opening(now)
            return 0.0
        return self.OPENING_POLL

    def sent(self, now: float) -> Ticket:
        self._seq += 1
        self._last_sent = now
        if self._first_sent is None:
            self._first_sent = now
        if self.state == OPENING and not self._armed and self._round_sent is None and self._seq == self._round:
            self._round_sent = now
        return Ticket(self._seq, now)

    # -- answers ---------------------------------------------------------------------------------------------------
    def record(self, ticket: Ticket | None, throttled: bool, now: float) -> None:
        """One answer (``ticket``: its request, if known): throttled or not."""
        if throttled:
            self.throttles += 1
            self._refused += 1
            if self._refused_since is None:
                self._refused_since = now
            if self._refused >= self.REFUSED_RUN and now - self._refused_since >= self.REFUSED_SECONDS:
                self.refusing = True
        else:
            self._accepted_at.append(now)
            self.reset_refusal()
        while self._accepted_at and self._accepted_at[0] < now - self.FREE_WINDOW:
            self._accepted_at.popleft()
        self._recent.append(throttled)
        if ticket is None:
            return
        if self.state == OPENING:
            self._record_opening(ticket, throttled, now)
            return
        window = self._window
        if ticket.sent_at >= window.start:
            window.accepted += not throttled
            window.throttled += throttled
            window.last_sent = max(window.last_sent, ticket.sent_at)
        if self.state == FREE:
            self._judge_free(throttled, now)
        else:
            self._judge_held(now)

    def _record_opening(self, ticket: Ticket, throttled: bool, now: float) -> None:
        if self._first_answer is None:
            self._first_answer = now
        if ticket.seq > self._round_from and (self._round_sent is None or ticket.seq <= self._round):
            self._round_answers.append((ticket.seq, throttled))
        if throttled and self._round_sent is None and self._probe_rate is None and (
            self._armed or self._seq >= min(self.round_size, self.MIN_ROUND)
        ):
            # A first throttle: the round is what was sent (after a clean first round: the last round's worth).
            self._round, self._round_sent = self._seq, self._last_sent
            if self._armed:
                self._round_from = max(self._round_from, self._seq - self.round_size)
                kept = [answer for answer in self._round_answers if answer[0] > self._round_from]
                self._round_answers = deque(kept, maxlen=self.round_size)
        if self._round_sent is not None and self._opening_over(now):
            self._end_opening(now)

    def _opening_over(self, now: float) -> bool:
        assert self._round_sent is not None and self._first_sent is not None
        if len(self._round_answers) >= self._round - self._round_from:
            return True
        round_trip = (self._first_answer - self._first_sent) if self._first_answer is not None else 0.0
        return now >= self._round_sent + max(self.OPENING_MIN_WAIT, 2 * round_trip)

    def _end_opening(self, now: float) -> None:
        answers = self._round_answers
        throttled = [seq for seq, was in answers if was]
        accepted = [seq for seq, was in answers if not was]
        if self._probe_rate is not None:  # the probe's answers decide
            rate, self._probe_rate = self._probe_rate, None
            if len(throttled) >= self.PROBE_QUOTA:  # (a probe cut short by the wait has fewer answers: unpaced)
                self._hold(rate, now, None)
            else:
                self._unpace(now)
            return
        if not throttled and not self._armed:  # a clean first round: watch for the first throttle
            self._armed, self._round_from, self._round_sent = True, self._seq, None
            self._round_answers.clear()
        elif throttled and (
            not accepted
            or self._in_a_run(accepted, throttled)
            or self._in_a_run(*self._answer_order(answers))
            or (self._armed and self._mostly(answers))
        ):
            rate = len(self._accepted_at) / self.FREE_WINDOW if self._armed else self._first_round(len(accepted), now)
            self._hold(rate, now, None)
        elif len(throttled) >= self.RUN_MIN_THROTTLES and not self._armed:  # scattered: a storm, or a busy machine
            self._probe_rate = self._first_round(len(accepted), now)
            self._round_from, self._round, self._round_sent = self._seq, self._seq + self.PROBE_ROUND, None
            self._round_answers.clear()
        else:
            self._unpace(now)

    def _first_round(self, accepted: int, now: float) -> float:
        """What the first round accepted, per second (at least one second: a bucket's burst is about that)."""
        assert self._first_sent is not None
        return accepted / max(1.0, now - self._first_sent)

    def _mostly(self, answers: deque[tuple[int, bool]]) -> bool:
        """Whether more than half of a round of at least MIN_ROUND answers were throttles (asked only after a clean
        first round: a storm throttles some of any round, a quota none of its burst)."""
        throttles = sum(1 for _, throttled in answers if throttled)
        return len(answers) >= self.MIN_ROUND and throttles > self.FREE_CUT_SHARE * len(answers)

    @staticmethod
    def _answer_order(answers: deque[tuple[int, bool]]) -> tuple[list[int], list[int]]:
        """The round's accepted and throttled answers by the order they came back in (not the order sent)."""
        accepted = [place for place, (_, was) in enumerate(answers) if not was]
        throttled = [place for place, (_, was) in enumerate(answers) if was]
        return accepted, throttled

    def _in_a_run(self, accepted: list[int], throttled: list[int]) -> bool:
        """Whether the throttled requests were sent after the accepted ones, as when a bucket ran dry."""
        if len(throttled) < self.RUN_MIN_THROTTLES or not accepted:
            return False
        later = sum(1 for t in throttled for a in accepted if t > a)
        return later >= self.RUN_ORDER * len(throttled) * len(accepted)

    # -- judging ---------------------------------------------------------------------------------------------------
    def _judge_free(self, throttled: bool, now: float) -> None:
        if throttled and len(self._recent) == self.RUN_LENGTH and all(self._recent):
            self._hold(len(self._accepted_at) / self.FREE_WINDOW, now, cut_share=None)
            return
        window = self._window
        elapsed = now - window.start
        if elapsed < self.FREE_WINDOW or window.total < self.FREE_MIN_SAMPLES:
            return
        share = window.throttled / window.total
        if share > self.FREE_CUT_SHARE:
            self._hold(max(window.accepted / elapsed, window.total / elapsed * self.MAX_CUT), now, cut_share=share)
        else:
            self._window = _Window(start=now)

    def _judge_held(self, now: float) -> None:
        window = self._window
        rate = self.rate
        assert rate is not None
        if now - window.start < self.HELD_WINDOW or window.total < self.MIN_SAMPLES:
            return
        span = max(0.0, window.last_sent - window.start) + 1 / rate
        share = window.throttled / window.total
        if window.throttled:
            unhelped = self._unhelped
            if self._cut_share is not None and share >= max(self.STORM_KEEP * self._cut_share, self.STORM_MIN_SHARE):
                unhelped += 1  # the cut changed little: the throttles may not be about the rate
                if unhelped >= self.STORM_CUTS:
                    self.storms += 1
                    self._unpace(now)
                    return
            else:
                unhelped = 0
            accepted_rate = window.accepted / span
            self.learned = accepted_rate
            self._hold(max(accepted_rate * self.HOLD, rate * self.MAX_CUT), now, cut_share=share)
            self._unhelped = unhelped
            return
        sent_rate = window.total / span
        self._clean += 1
        far = self.learned is None or rate >= self.FAST_ABOVE * self.learned  # from any rate seen throttling
        step = (self.PROBE - 1) * 2 ** max(0, self._clean - (self.SLOW_PROBES_FAR if far else self.SLOW_PROBES))
        new = rate * min(self.MAX_PROBE, 1 + step)
        if self.cap is None and rate > self.UNPACE_ABOVE * sent_rate:  # the limiter is not what holds it back
            self._unpace(now)
            return
        clean = self._clean
        self._set(new if self.cap is None else min(self.cap, new), HELD, now)
        self._clean = clean

    # -- changes ---------------------------------------------------------------------------------------------------
    def _hold(self, rate: float, now: float, cut_share: float | None) -> None:
        """Held at ``rate`` (never above the cap, nor above the rate already held)."""
        rate = max(self.MIN_RATE, rate)
        if self.held and self.rate is not None:
            rate = min(rate, self.rate)
        self.cuts += 1
        self._set(rate if self.cap is None else min(self.cap, rate), HELD, now)
        self._cut_share = cut_share

    def _unpace(self, now: float) -> None:
        self._set(self.cap, FREE, now)
        self._recent.clear()

    def _set(self, rate: float | None, state: str, now: float) -> None:
        self.rate, self.state = rate, state
        # A held rate is judged from its second request on: the first may meet the bucket the old rate emptied.
        self._window = _Window(start=now + (1 / rate if rate and state == HELD else 0.0))
        self._cut_share = None
        self._unhelped = 0
        self._clean = 0
