"""The observations of one run: fetched once, judged once, handed to whoever asks for a target.

Two ways to fetch, both through :func:`pytest_proton_sync.fetch.rounds.observe`:
- in the background (no waiting): items run while the rest is still on its way; each item waits for its own target;
- at once (waiting, or for the xdist controller): the caller gets every observation when all have settled.

The judge runs once per answer, where the answer arrives (it also decides whether polling goes on); its verdict
travels in the Observation, to the item and through the xdist hand-over. Imports no pytest; boto3 through
the fetch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from pytest_proton_sync.aws.clients import FetchSettings
from pytest_proton_sync.fetch.clients import ClientPool
from pytest_proton_sync.fetch.fetcher import Fetcher
from pytest_proton_sync.fetch.rounds import Progress, observe
from pytest_proton_sync.model import CheckError, Observation, SyncStatus, Target, Verdict
from pytest_proton_sync.verdict.judge import is_settled, with_blockers

Judge = Callable[[Target, SyncStatus], Verdict]
Key = tuple[str, ...]


class ObservationStore:
    def __init__(self, settings: FetchSettings, clients: Callable[[], ClientPool], judge: Judge) -> None:
        self._settings = settings
        self._clients = clients
        self._judge = judge
        self._changed = threading.Condition()
        self._observations: dict[Key, Observation] = {}
        self._again: dict[Key, Observation] = {}  # newer answers from fetch_again, which win over the first ones
        self._fetching = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.api_calls = 0  # looks at the API made by this process (polls count; botocore retries do not)
        self.fetched_here = False  # whether this process asked the API at all (under xdist: the controller)
        self._judged: dict[Key, tuple[SyncStatus, Verdict]] = {}
        self._judged_lock = threading.Lock()
        self.on_wait: Callable[[], None] | None = None  # while an item waits for its answer (progress in CI logs)
        self.wait_report_every = 10.0

    # -- fetching -------------------------------------------------------------------------------------------
    def _assess(self, target: Target, status: SyncStatus) -> tuple[Verdict, bool]:
        verdict = self._verdict_of(target, status)
        return verdict, is_settled(target, status, verdict)

    def _needs_blockers(self, target: Target, status: SyncStatus) -> bool:
        """The fetcher's question, from its worker thread, before the assessment: is this answer's verdict a pass?
        The verdict is kept for the assessment that follows (one entry per target: the next answer replaces it),
        so a passing target costs no extra call and a failing one is not judged again once its blockers are in."""
        verdict = self._verdict_of(target, status)
        with self._judged_lock:
            self._judged[target.key] = (status, verdict)
        return not verdict.passed

    def _verdict_of(self, target: Target, status: SyncStatus) -> Verdict:
        """The one place the judge is asked: once per answer. An answer the fetcher's question judged already is
        not judged again: the blockers call may have added blockers to its status since, and then the active ones
        go into that verdict (verdict.judge.with_blockers). Any other status -- one that is not that answer plus
        blockers -- is judged afresh."""
        with self._judged_lock:
            known = self._judged.pop(target.key, None)
        if known is not None:
            judged, verdict = known
            if status is judged:
                return verdict
            if replace(status, blockers=judged.blockers) == judged:
                return with_blockers(target, status, verdict)
        return self._judge(target, status)

    def fetch(self, targets: Sequence[Target], progress: Callable[[Progress], None] | None = None) -> None:
        """Ask about ``targets`` now and return when every one has its final observation."""
        fetcher = Fetcher(self._settings, self._clients(), self._needs_blockers)
        self.fetched_here = True
        try:
            found = observe(targets, fetcher, self._assess, progress, stop=self._stop)
        finally:
            self.api_calls += fetcher.api_calls
        with self._changed:
            self._observations.update(found)
            self._changed.notify_all()

    def fetch_in_background(
        self, targets: Sequence[Target], progress: Callable[[Progress], None] | None = None
    ) -> None:
        """Start asking about ``targets`` in a thread; :meth:`get` waits for each one's own answer."""
        # Clients are made here, before any worker thread.
        fetcher = Fetcher(self._settings, self._clients(), self._needs_blockers)
        self.fetched_here = True
        self._fetching = True

        def put(observation: Observation) -> None:
            with self._changed:
                self._observations[observation.target.key] = observation
                self._changed.notify_all()

        def work() -> None:
            found: dict[Key, Observation] = {}
            try:
                found = observe(targets, fetcher, self._assess, progress, on_final=put, stop=self._stop)
            finally:  # even after an unexpected error: no item may wait forever
                with self._changed:
                    self._observations.update(found)
                    self._fetching = False
                    self.api_calls += fetcher.api_calls
                    self._changed.notify_all()

        self._thread = threading.Thread(target=work, name="proton-sync-fetch", daemon=True)
        self._thread.start()

    def fetch_again(self, target: Target) -> Observation:
        """Ask about ``target`` once more, now (a rerun of its test): the newer answer is what the run reports."""
        fetcher = Fetcher(self._settings, self._clients(), self._needs_blockers)
        self.fetched_here = True
        try:
            found = observe([target], fetcher, self._assess, stop=self._stop)
        finally:
            with self._changed:
                self.api_calls += fetcher.api_calls
        observation = found.get(target.key) or Observation(
            target, error=CheckError("NotObserved", "the fetch ended before this target was asked again"))
        with self._changed:
            self._again[target.key] = observation
        return replace(observation, target=target)

    def finish(self) -> None:
        """Wait for a background fetch to end (it ends at once after :meth:`stop`)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def stop(self) -> None:
        """Stop fetching at the next step (Ctrl-C, -x, the end of the run)."""
        self._stop.set()

    # -- reading --------------------------------------------------------------------------------------------
    def get(self, target: Target) -> Observation | None:
        """The target's observation: waits while a background fetch may still deliver it, calling ``on_wait``
        (from this, the main, thread) every ``wait_report_every`` seconds meanwhile."""
        with self._changed:
            while not self._changed.wait_for(lambda: target.key in self._observations or not self._fetching,
                                             timeout=self.wait_report_every):
                if self.on_wait is not None:
                    self.on_wait()
            observation = self._again.get(target.key) or self._observations.get(target.key)
        return None if observation is None else replace(observation, target=target)

    def get_or_fetch(self, target: Target) -> Observation:
        """Like :meth:`get`, but asks for a target nobody fetched (an item run outside the run loop by some
        plugin), alone, so that no target is ever asked twice."""
        observation = self.get(target)
        if observation is None and not self._fetching:
            self.fetch([target])
            observation = self.get(target)
        ended = "the fetch ended before this target was asked (see the errors above)"
        return observation or Observation(target, error=CheckError("NotObserved", ended))

    def everything(self) -> dict[Key, Observation]:
        with self._changed:
            return {**self._observations, **self._again}
