"""One look at one target: the plugin's retry loop, inside a call deadline that a watchdog enforces.

Imports no pytest. The fetch package is imported only when a manifest is in play, so a pytest run without one
pays nothing for boto3. The rest of the fetch: clients (clients.py), pacing (pacing.py), what an exception means
(errors.py), rounds and polling (rounds.py), botocore's connection pools (aws/deadline.py).

Every API call is bounded (see FetchSettings): the plugin runs its own retry loop (botocore makes one attempt per
call) with capped exponential backoff and full jitter, inside an overall per-call deadline that a watchdog enforces
by shutting down the socket of a request still in flight, however its bytes arrive (a trickle included). A
throttled answer paces its (account, region, service) (:mod:`pacing`), not only the call that met it. A 200 whose
body is not a JSON object of the documented shape is an error (``MalformedAnswer``), retried like a 5xx. Cancellation
(:mod:`cancel`) aborts every request in flight at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import botocore.exceptions

from pytest_proton_sync.aws.answers import MalformedAnswer
from pytest_proton_sync.aws.clients import (
    FetchSettings,
    default_credentials_missing,
    reset_sent_requests,
    sent_requests,
)
from pytest_proton_sync.aws.deadline import THREAD, Aborted, Call
from pytest_proton_sync.fetch import cancel
from pytest_proton_sync.fetch.clients import ClientPool, pace
from pytest_proton_sync.fetch.errors import (
    MESSAGE_LIMIT,
    NO_REGION,
    NO_REGION_NOR_CREDENTIALS,
    THROTTLING_CODES,
    cancelled_error,
    classify_error,
    deadline_error,
    fits,
    short_reason,
    worth_retrying,
)
from pytest_proton_sync.fetch.pacing import KeyPacer
from pytest_proton_sync.fetch.rate_learning import RateLearner
from pytest_proton_sync.kinds import Kind, kind_of
from pytest_proton_sync.model import CheckError, SyncStatus, Target
from pytest_proton_sync.text.safetext import clean

_LOG = logging.getLogger("pytest_proton_sync.fetch")

Outcome = tuple[SyncStatus | None, CheckError | None, bool]  # (status, error, throttled on the way)
WATCH_TICK = 0.25  # seconds: the longest the watchdog sleeps


class Fetcher:
    """Asks the API about targets: each distinct target once per look, many at a time, each call bounded."""

    def __init__(
        self,
        settings: FetchSettings,
        clients: ClientPool,
        needs_blockers: Callable[[Target, SyncStatus], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients
        # Whether to ask for a target's sync blockers after its status (when it does not pass): the caller's judge.
        self._needs_blockers = needs_blockers
        self.api_calls = 0  # looks that sent a request, not retries
        self._count_lock = threading.Lock()
        # Thread ident -> call in progress. No lock: each worker sets and pops its own entry, and readers take a copy
        # (single dict operations, atomic in CPython with or without the GIL).
        self._calls: dict[int, Call] = {}
        self._silent: dict[tuple[str, str], int] = {}  # (service, region) -> calls in a row without any answer
        self._watching = threading.Event()
        self._wake = threading.Event()  # the watchdog looks now: it is to stop, or an endpoint fell silent
        self._cancelled = False  # abort_all() was called: a call that starts later is ended at once too

    def prepare(self, targets: Iterable[Target]) -> dict[tuple[str, ...], CheckError]:
        """Create every client in this thread before any worker runs; returns set-up errors per target key."""
        problems: dict[tuple[str, ...], CheckError] = {}
        no_credentials: bool | None = None  # asked once, and only if some target of the standard chain lacks a region
        for target in targets:
            kind = kind_of(target)
            try:
                region = self.clients.region_for(target)
                if region is None:
                    standard_chain = target.account_spec is None and not self.settings.use_fake_credentials
                    if standard_chain and no_credentials is None:
                        no_credentials = default_credentials_missing()
                    message = NO_REGION_NOR_CREDENTIALS if standard_chain and no_credentials else NO_REGION
                    problems[target.key] = CheckError("NoRegion", message)
                    continue
                self.clients.client(kind.service, region, target.account_spec)
            except Exception as exc:
                problems[target.key] = classify_error(exc, kind, target.region or "?", self.settings)
        return problems

    # -- the watchdog -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """While inside: a thread ends calls past their deadline, and every call once the run is cancelled."""
        self._watching.set()
        thread = threading.Thread(target=self._watch, name="proton-sync-watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._watching.clear()
            self._wake.set()
            thread.join()

    def _watch(self) -> None:
        """Sleeps until the nearest deadline of a call under way (at most WATCH_TICK: a cancellation the fetch loop
        has not yet passed on, a deadline a pacing pause moved), not a fixed short poll."""
        token = cancel.current()
        while self._watching.is_set():
            self._wake.wait(self._until_next_look())
            self._wake.clear()
            cancelled = token.requested or self._cancelled
            now = time.monotonic()
            for call in self._calls_now():
                if cancelled:
                    call.abort("cancelled")
                elif now >= call.deadline and not call.paused:
                    call.abort("deadline")
                elif self._silent.get(call.endpoint, 0) >= self.settings.unresponsive_limit:
                    call.abort("unresponsive")  # it will not fare better than the calls before it

    def _until_next_look(self) -> float:
        # Paused (pacing moves the deadline on) and ended calls have no deadline to watch.
        deadlines = [call.deadline for call in self._calls_now() if not call.paused and call.aborted is None]
        # A call that starts later has a deadline at least call_timeout away, later than any of these.
        return max(0.001, min(WATCH_TICK, min(deadlines, default=WATCH_TICK) - time.monotonic()))

    def _calls_now(self) -> list[Call]:
        return list(self._calls.copy().values())

    def in_flight(self) -> list[tuple[Target, float]]:
        """(target, seconds under way) of every call in progress, oldest first."""
        now = time.monotonic()
        return sorted(((c.target, now - c.started) for c in self._calls_now()), key=lambda pair: -pair[1])

    def abort_all(self) -> None:
        self._cancelled = True
        for call in self._calls_now():
            call.abort("cancelled")
        self._wake.set()

    def new_round(self) -> None:
        """Another poll: give a silent endpoint, and a key that refused everything, another chance."""
        self._silent.clear()
        self.clients.pacing.another_chance()

    # -- one look at one target -------------------------------------------------------------------------------
    def ask(self, target: Target) -> Outcome:
        """One look at one target: the plugin's retry loop, inside the call deadline."""
        kind = kind_of(target)
        region = self.clients.region_for(target) or ""
        THREAD.sent_in_call = 0
        endpoint_key = (kind.service, region)
        if self._silent.get(endpoint_key, 0) >= self.settings.unresponsive_limit:
            return None, self._unresponsive(kind, region, "not asked", 0), False
        if self.clients.pacer(kind.service, region, target.account_spec).refusing:
            return None, self._refused(kind, region, "not asked", 0), False
        call = Call(target, time.monotonic() + self.settings.call_timeout, endpoint_key)
        ident = threading.get_ident()
        self._register(ident, call)
        THREAD.call = call
        try:
            outcome, answered = self._attempts(call, kind, region)
        finally:
            THREAD.call = None
            THREAD.normalise = None
            self._calls.pop(ident, None)
            # A look counts when a request went out (no credentials, say, sends none).
            if getattr(THREAD, "sent_in_call", 0):
                with self._count_lock:
                    self.api_calls += 1
        status = outcome[0]
        if status is not None and status.found and kind.blockers is not None and self._needs_blockers is not None \
                and self._needs_blockers(target, status):
            outcome = (self._with_blockers(target, kind, region, status), *outcome[1:])
        if answered:
            self._silent[endpoint_key] = 0
        elif outcome[1] is not None and outcome[1].code in ("DeadlineExceeded", "ReadTimeout") and \
                outcome[1].attempts > 0:
            # Past unresponsive_limit, the watchdog ends the other calls to it still under way, so a silent
            # endpoint costs one deadline, not one per --proton-concurrency targets.
            self._silent[endpoint_key] = self._silent.get(endpoint_key, 0) + 1
            if self._silent[endpoint_key] >= self.settings.unresponsive_limit:
                self._wake.set()
        return outcome

    def _register(self, ident: int, call: Call) -> None:
        """``call`` under way in thread ``ident``; ended at once if everything was aborted, or its endpoint fell
        silent, meanwhile (the watchdog's last look may have missed it)."""
        self._calls[ident] = call
        if self._cancelled:
            call.abort("cancelled")
        elif self._silent.get(call.endpoint, 0) >= self.settings.unresponsive_limit:
            call.abort("unresponsive")

    def _with_blockers(self, target: Target, kind: Kind, region: str, status: SyncStatus) -> SyncStatus:
        """``status`` with the target's sync blockers: one call, within a call deadline of its own. A blockers call
        that fails leaves the status as it is (the status call's verdict stands); it is logged, not hidden."""
        blockers = kind.blockers
        assert blockers is not None
        call = Call(target, time.monotonic() + self.settings.call_timeout, (kind.service, region))
        ident = threading.get_ident()
        self._register(ident, call)
        THREAD.call, THREAD.normalise = call, None  # no status normaliser for this answer's body
        try:
            client = self.clients.client(kind.service, region, target.account_spec)
            response = getattr(client, blockers.operation)(**blockers.build_request(target))
            return replace(status, blockers=blockers.normalise(response))
        except Exception as exc:  # any failure: no blockers known, the status speaks alone
            _LOG.info("%s for %s failed: %s", blockers.operation_name, target.id, clean(str(exc), MESSAGE_LIMIT))
            return status
        finally:
            THREAD.call = None
            self._calls.pop(ident, None)

    def _unresponsive(self, kind: Kind, region: str, what: str, attempts: int) -> CheckError:
        return fits(CheckError(
            "EndpointUnresponsive",
            f"{what}: {self.settings.unresponsive_limit} calls in a row to "
            f"{self.clients.endpoint(kind.service, region)} got no answer within the call deadline of "
            f"{self.settings.call_timeout:g} s\n  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON / "
            "AWS_ENDPOINT_URL) and the network.",
            attempts,
        ))

    def _refused(self, kind: Kind, region: str, what: str, attempts: int) -> CheckError:
        return fits(CheckError(
            "ThrottlingException",
            f"{what}: the last {RateLearner.REFUSED_RUN} requests to {self.clients.endpoint(kind.service, region)} "
            f"were all throttled, over {RateLearner.REFUSED_SECONDS:g} s or more at the lowest rate: the API refuses "
            "everything for now\n  fix: run again once what else spends this account's quota for "
            f"{kind.operation_name} is done, or ask AWS to raise that quota (Service Quotas).",
            attempts,
        ))

    def _attempts(self, call: Call, kind: Kind, region: str) -> tuple[Outcome, bool]:
        """(outcome, whether anything at all came back from the endpoint)."""
        tries = _Tries()
        token = cancel.current()
        while True:
            outcome = self._attempt(call, kind, region, tries)
            if outcome is None:
                outcome = self._after_failure(call, kind, region, tries, token)
            if outcome is not None:
                return outcome, tries.answered

    def _attempt(self, call: Call, kind: Kind, region: str, tries: _Tries) -> Outcome | None:
        """One request: its outcome, or None when it failed (``tries.error``) and may be retried (``tries.retry``)."""
        pacer = self.clients.pacer(kind.service, region, call.target.account_spec)
        reset_sent_requests()
        THREAD.answer = None
        THREAD.normalise = kind.normalise
        tries.retry = False
        try:
            call.check()
            account = call.target.account_spec
            client = self.clients.client(kind.service, region, account)
            if not self.clients.instrumented(kind.service, region, account):
                pace(pacer, call)  # a client without event hooks: at least one look per token
                THREAD.sent_in_call = getattr(THREAD, "sent_in_call", 0) + 1  # called: count it as sent
            response = getattr(client, kind.operation)(**dict(call.target.request))
            tries.attempts += max(1, sent_requests())
            status = THREAD.answer or kind.normalise(response)
            pacer.answered()
            return status, None, tries.throttled
        except Aborted:
            tries.attempts += sent_requests()
        except botocore.exceptions.ClientError as exc:
            tries.attempts += max(1, sent_requests())
            tries.answered = True
            return self._error_answer(exc, kind, tries, pacer)
        except MalformedAnswer as exc:
            tries.attempts += max(1, sent_requests())
            tries.answered = True
            tries.retry, tries.error = True, exc
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
            tries.attempts += max(1, sent_requests())
            tries.retry, tries.error = True, exc
            if isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                                botocore.exceptions.ConnectTimeoutError)):
                # Refused, no such host, no route: this will not change in seconds.
                tries.retry = tries.attempts < self.settings.connect_attempts
        except Exception as exc:
            tries.attempts += sent_requests()
            return None, classify_error(exc, kind, region, self.settings, tries.attempts), tries.throttled
        return None

    def _error_answer(
        self, exc: botocore.exceptions.ClientError, kind: Kind, tries: _Tries, pacer: KeyPacer
    ) -> Outcome | None:
        """An error answer: "not found" is an outcome; anything else is a failure, retried if worth it."""
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in kind.not_found_codes:
            pacer.answered()
            return SyncStatus(found=False), None, tries.throttled
        status_code = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in THROTTLING_CODES or status_code == 429:
            tries.throttled = True
            pacer.throttled()
            tries.retry = True
            if pacer.refusing:  # the key refuses everything: no more attempts (rate_learning, "Refusing")
                tries.refused = True
        else:
            pacer.answered()  # an answer all the same: the request was not refused for the rate
            tries.retry = worth_retrying(code, status_code)
        tries.error = exc
        return None

    def _after_failure(
        self, call: Call, kind: Kind, region: str, tries: _Tries, token: cancel.Cancellation
    ) -> Outcome | None:
        """After a failed attempt: the outcome that ends the call, or None after the backoff before the next one."""
        settings, attempts, throttled = self.settings, tries.attempts, tries.throttled
        if call.aborted == "cancelled" or token.requested:
            return None, cancelled_error(attempts), throttled
        if call.aborted == "deadline":
            return None, deadline_error(settings, attempts, tries.last), throttled
        if call.aborted == "unresponsive":
            return None, self._unresponsive(kind, region, "given up", attempts), throttled
        if call.aborted == "refused" or tries.refused:
            return None, self._refused(kind, region, "given up", attempts), True
        assert tries.error is not None  # every failed attempt that is not an abort says why
        tries.last = short_reason(tries.error)
        if not tries.retry or attempts >= settings.max_attempts:
            return None, classify_error(tries.error, kind, region, settings, attempts), throttled
        delay = random.uniform(0, min(settings.backoff_cap, settings.backoff_base * 2 ** (attempts - 1)))
        if time.monotonic() + delay >= call.deadline:
            return None, deadline_error(settings, attempts, tries.last), throttled
        if token.wait(delay):
            return None, cancelled_error(attempts), throttled
        return None


@dataclass
class _Tries:
    """Mutable bookkeeping of one call's attempts."""

    attempts: int = 0  # HTTP requests sent
    throttled: bool = False  # any attempt throttled
    answered: bool = False  # anything at all came back from the endpoint
    retry: bool = False  # the last failure is worth another attempt
    error: BaseException | None = None  # the last failure
    refused: bool = False  # the key refuses everything: no further attempt
    last: str = ""  # its short reason, for the deadline's text
