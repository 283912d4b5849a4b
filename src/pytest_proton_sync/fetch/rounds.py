"""Rounds of looks: worker threads, polling until settled or the wait budget ends, progress, one observation
per target.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pytest_proton_sync.fetch import cancel
from pytest_proton_sync.fetch.errors import TRANSIENT_CODES, cancelled_error
from pytest_proton_sync.fetch.fetcher import Fetcher, Outcome
from pytest_proton_sync.model import CheckError, Observation, SyncStatus, Target, Verdict
from pytest_proton_sync.text.safetext import clean
from pytest_proton_sync.verdict.judge import wait_note

MAX_POLL_INTERVAL = 120.0


@dataclass(frozen=True)
class Progress:
    settled: int
    pending: int
    failed: int
    errors: int
    seconds_left: float
    polls: int
    in_flight: int = 0  # API calls under way right now
    longest: float = 0.0  # seconds the oldest of them has been under way
    oldest: tuple[str, ...] = ()  # target ids of the oldest calls under way (a few)

    @property
    def line(self) -> str:
        """One plain line: counts, and what is pending."""
        line = (f"proton-sync: {self.settled} settled, {self.pending} pending, {self.failed} failed, "
                f"{self.errors} errors")
        if self.seconds_left > 0:
            line += f"; {self.seconds_left:.0f} s left"
        if self.in_flight:
            oldest = ", ".join(self.oldest)
            calls = "call" if self.in_flight == 1 else "calls"
            line += f"; {self.in_flight} {calls} under way, the longest for {self.longest:.0f} s: {oldest}"
        return line


@dataclass
class _Track:
    """Mutable per-target bookkeeping inside one observe() call."""

    target: Target
    status: SyncStatus | None = None
    error: CheckError | None = None
    polls: int = 0
    settled: bool = False
    verdict: Verdict | None = None

    @property
    def passes(self) -> bool:
        return self.verdict is not None and self.verdict.passed


Assess = Callable[[Target, SyncStatus], "tuple[Verdict, bool]"]  # -> (verdict, settled)


class _Workers:
    """Daemon worker threads: a call the watchdog cannot reach (a client without botocore's connection pool)
    can never hold the interpreter's exit, unlike ThreadPoolExecutor's threads, which exit waits for."""

    def __init__(self, count: int, fetcher: Fetcher, done: queue.SimpleQueue[tuple[_Track, Outcome]]) -> None:
        self._jobs: queue.SimpleQueue[_Track | None] = queue.SimpleQueue()
        self._fetcher = fetcher
        self._done = done
        self._threads = [threading.Thread(target=self._work, name=f"proton-sync-{i}", daemon=True)
                         for i in range(max(1, count))]
        for thread in self._threads:
            thread.start()

    def submit(self, track: _Track) -> None:
        self._jobs.put(track)

    def _work(self) -> None:
        while (track := self._jobs.get()) is not None:
            try:
                outcome = self._fetcher.ask(track.target)
            except BaseException as exc:  # a bug must not leave the fetch waiting forever
                outcome = (None, CheckError(type(exc).__name__, f"unexpected error: {clean(str(exc))}"), False)
            self._done.put((track, outcome))

    def stop(self, grace: float) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        end = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))


def observe(
    targets: Iterable[Target],
    fetcher: Fetcher,
    assess: Assess,
    progress: Callable[[Progress], None] | None = None,
    on_final: Callable[[Observation], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[tuple[str, ...], Observation]:
    """Look at every distinct target once, concurrently; with a wait budget, poll the unsettled ones until they
    settle (``assess`` says when), fail fast, or the deadline passes. Returns one Observation per target key.

    Without a wait budget each target's observation is final at its first answer and is handed to ``on_final``
    at once (from this thread), so a caller can use it while the others are still on their way.
    Cancellation (:mod:`cancel`: SIGTERM, SIGINT), Ctrl-C in this thread or ``stop`` end the work within a fraction
    of a second, requests in flight included; every unsettled target is then an error "Cancelled".
    ``progress`` is called after each look, each second of a wait, and every ``progress_every`` seconds while
    calls are pending.
    """
    return _Observer(targets, fetcher, assess, progress, on_final, stop).run()


class _Observer:
    """One :func:`observe` call: the targets' tracks, the rounds of looks, and the observations they end in."""

    def __init__(
        self,
        targets: Iterable[Target],
        fetcher: Fetcher,
        assess: Assess,
        progress: Callable[[Progress], None] | None,
        on_final: Callable[[Observation], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self.fetcher, self.assess, self.progress, self.on_final, self.stop = fetcher, assess, progress, on_final, stop
        self.settings = fetcher.settings
        self.token = cancel.current()
        self.tracks: dict[tuple[str, ...], _Track] = {}
        for target in targets:
            self.tracks.setdefault(target.key, _Track(target))
        self.waiting = self.settings.wait_seconds > 0
        self.started = time.monotonic()
        self.deadline = self.started + max(0.0, self.settings.wait_seconds)
        self.interval = max(0.01, self.settings.poll_interval)
        self.interrupted = False
        self.why = "stopped"  # set when interrupted: which signal, Ctrl-C, or the caller's ``stop``
        self.last_report = time.monotonic()

    def run(self) -> dict[tuple[str, ...], Observation]:
        for key, setup_error in self.fetcher.prepare(t.target for t in self.tracks.values()).items():
            self.tracks[key].error = setup_error
            self.tracks[key].settled = True
            self.final(self.tracks[key])
        done: queue.SimpleQueue[tuple[_Track, Outcome]] = queue.SimpleQueue()
        due_count = sum(1 for t in self.tracks.values() if not t.settled)
        workers = _Workers(min(max(1, self.settings.concurrency), max(1, due_count)), self.fetcher, done)
        self.token.fetch_started()
        try:
            with self.fetcher.watching():
                try:
                    self.rounds(workers, done)
                except KeyboardInterrupt:
                    self.interrupted = True
                    if self.token.requested:
                        self.why = self.token.reason
                    elif self.stop is None or not self.stop.is_set():
                        self.why = "cancelled by SIGINT"  # Ctrl-C with no handler of ours: a KeyboardInterrupt
                finally:
                    if self.interrupted:
                        self.fetcher.abort_all()  # requests in flight end now; their threads follow within the grace
                    workers.stop(grace=2.0)
        finally:
            self.token.fetch_ended()
        elapsed = time.monotonic() - self.started
        return {key: self.observation_of(track, elapsed) for key, track in self.tracks.items()}

    def rounds(self, workers: _Workers, done: queue.SimpleQueue[tuple[_Track, Outcome]]) -> None:
        """Look at every unsettled target; while waiting, again after each pause, until all settle or time is up."""
        first = True
        while True:
            due = [t for t in self.tracks.values() if not t.settled]
            if not due:
                return
            if not first:
                pause = min(self.interval * random.uniform(0.9, 1.1), self.deadline - time.monotonic())
                # The last pause ends at the deadline and is followed by one last look.
                _sleep_with_progress(pause, self.report, self.stopped)
                self.fetcher.new_round()
            throttled = self.look(due, workers, done)
            self.report()
            first = False
            if not self.waiting or time.monotonic() >= self.deadline:
                return
            if throttled:
                self.interval = min(self.interval * 2, MAX_POLL_INTERVAL)

    def look(self, due: list[_Track], workers: _Workers, done: queue.SimpleQueue[tuple[_Track, Outcome]]) -> bool:
        """One round: every due target asked once; each answer assessed as it arrives. Whether any was throttled."""
        throttled = False
        # Completed calls arrive on a queue: O(1) per answer however many are pending, and the short get() timeout
        # keeps this thread responsive to Ctrl-C, cancellation and ``stop``.
        for track in due:
            workers.submit(track)
        for _ in due:
            track, (status, problem, was_throttled) = self.next_answer(done)
            throttled = throttled or was_throttled
            track.polls += 1
            track.status, track.error = status, problem
            if problem is not None:
                track.settled = not (self.waiting and problem.code in TRANSIENT_CODES)
            elif status is not None:
                track.verdict, settled = self.assess(track.target, status)
                track.settled = not self.waiting or settled
            if track.settled:
                self.final(track)
        return throttled

    def next_answer(self, done: queue.SimpleQueue[tuple[_Track, Outcome]]) -> tuple[_Track, Outcome]:
        while True:
            if self.stopped():
                raise KeyboardInterrupt
            try:
                return done.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() - self.last_report >= self.settings.progress_every:
                    self.report()

    def stopped(self) -> bool:
        return self.token.requested or (self.stop is not None and self.stop.is_set())

    def final(self, track: _Track) -> None:
        if self.on_final is not None and not self.waiting:
            self.on_final(self.observation_of(track, 0.0))

    def report(self) -> None:
        self.last_report = time.monotonic()
        if self.progress is None:
            return
        tracks = self.tracks.values()
        settled = [t for t in tracks if t.settled]
        flying = self.fetcher.in_flight()
        self.progress(Progress(
            settled=len(settled),
            pending=len(self.tracks) - len(settled),
            failed=sum(1 for t in settled if t.error is None and not t.passes),
            errors=sum(1 for t in settled if t.error is not None),
            seconds_left=max(0.0, self.deadline - time.monotonic()),
            polls=max((t.polls for t in tracks), default=0),
            in_flight=len(flying),
            longest=flying[0][1] if flying else 0.0,
            oldest=tuple(t.id for t, _ in flying[:3]),
        ))

    def observation_of(self, track: _Track, elapsed: float) -> Observation:
        note = None
        error = track.error
        if not track.settled and (self.waiting or self.interrupted):
            note = wait_note(track.target, track.status, elapsed)
            if self.interrupted:
                seen = self.waiting and track.polls
                detail = f"while waiting; last seen: {note}" if seen else "before the API answered"
                note = f"{self.why}: {note}"
                error = cancelled_error(error.attempts if error else 0, detail, self.why)
        return Observation(
            target=track.target,
            status=track.status,
            error=error,
            region=self.fetcher.clients.region_for(track.target) or "",
            polls=track.polls,
            waited_seconds=elapsed if self.waiting else 0.0,
            wait_note=note,
            verdict=track.verdict if track.status is not None and error is None else None,
        )


def _sleep_with_progress(seconds: float, report: Callable[[], None], stopped: Callable[[], bool]) -> None:
    """Sleep in short steps so the progress line counts down and a cancellation (or ``stop``) is seen at once."""
    token = cancel.current()
    now = time.monotonic()
    end, next_report = now + max(0.0, seconds), now + 1.0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        token.wait(min(0.1, left))
        if stopped():
            raise KeyboardInterrupt
        if time.monotonic() >= next_report:
            report()
            next_report += 1.0
