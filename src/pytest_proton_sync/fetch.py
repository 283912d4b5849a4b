"""Turn targets into observations with boto3: shared clients, concurrency, retries, rate cap and polling.

Imports no pytest. boto3 is imported here and only here, and this module is imported only when a manifest is in
play, so a pytest run without one pays nothing for it.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from . import __version__, foreign_answers
from .accounts import Account, Accounts, AccountUnavailable
from .kinds import Kind, kind_of
from .model import AccountSpec, CheckError, Observation, SyncStatus, Target, Verdict
from .redact import redact
from .verdict import wait_note

# Codes worth asking again on the next poll while waiting; anything else (access denied, bad region) will not
# change by itself, so waiting on it would only hide the real problem until the deadline.
TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "InternalServerException", "ServiceUnavailable", "EndpointUnreachable", "ReadTimeout"}
)
MAX_POLL_INTERVAL = 120.0
FAKE_CREDENTIALS = {"aws_access_key_id": "fake-access-key", "aws_secret_access_key": "fake-secret-key"}


@dataclass(frozen=True)
class FetchSettings:
    concurrency: int = 16
    max_attempts: int = 5
    retry_mode: str = "standard"  # botocore's "standard" or "adaptive"
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_rps: float | None = None
    wait_seconds: float = 0.0
    poll_interval: float = 10.0
    region: str | None = None  # --proton-region: used for entries that name none
    endpoint_url: str | None = None  # set by --proton-fake only; otherwise boto3's own chain decides
    use_fake_credentials: bool = False  # --proton-fake: a fresh machine has no credentials, and needs none


@dataclass(frozen=True)
class Progress:
    settled: int
    pending: int
    failed: int
    errors: int
    seconds_left: float
    polls: int


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


ClientMaker = Callable[[str, str, "Account | None"], Any]  # (service, region, account) -> botocore client


def botocore_config(settings: FetchSettings) -> botocore.config.Config:
    return botocore.config.Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.concurrency),
        user_agent_extra=f"pytest-proton-sync/{__version__}",
    )


def default_client(service: str, region: str, settings: FetchSettings, account: Account | None = None) -> Any:
    """A client from boto3's standard chain, or from ``account``'s own session (its assumed role or profile);
    only --proton-fake overrides its endpoint and credentials (and then no account's credentials are used)."""
    if settings.use_fake_credentials and settings.endpoint_url:
        from .hermetic import fake_client  # --proton-fake: nothing of the user's AWS set-up may break or redirect it

        return fake_client(service, region, settings.endpoint_url, botocore_config(settings))
    extra: dict[str, Any] = {}
    if settings.endpoint_url:
        extra["endpoint_url"] = settings.endpoint_url
    if settings.use_fake_credentials:
        extra.update(FAKE_CREDENTIALS)
    elif account is not None:
        session = account.session(region)
        return session.client(service, region_name=region, config=botocore_config(settings), **extra)
    session = boto3.session.Session()
    return session.client(service, region_name=region, config=botocore_config(settings), **extra)


def default_region(settings: FetchSettings) -> str | None:
    """--proton-region, then AWS_REGION (which other AWS SDKs honour), then boto3's own chain."""
    if settings.region:
        return settings.region
    if settings.use_fake_credentials:
        return "us-east-1"  # --proton-fake: neither the environment nor a profile may break it; the fake ignores it
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"]
    region = boto3.session.Session().region_name
    return str(region) if region else None


# HTTP requests sent by the current API call of this thread: botocore retries inside the calling thread, so a
# before-send handler counting here sees every attempt of exactly that call (exceptions carry no such count).
_SENT = threading.local()


class ClientPool:
    """One client per (service, region, account), created in the calling thread and then shared by every worker
    thread: clients are thread-safe, sessions are not. ``accounts`` holds each account's session (one per run).

    Every HTTP request of its clients, retries included, first passes ``limiter`` (--proton-max-rps) and is
    counted for :func:`sent_requests`, through a ``before-send`` handler on the client's own event hooks.
    """

    def __init__(self, settings: FetchSettings, make_client: ClientMaker | None = None) -> None:
        self._settings = settings
        self._make_client: ClientMaker = make_client or (
            lambda service, region, account: default_client(service, region, settings, account)
        )
        self.accounts = Accounts(botocore_config(settings))
        self._clients: dict[tuple[str, str, AccountSpec | None], Any] = {}
        self._instrumented: set[tuple[str, str, AccountSpec | None]] = set()
        self._default_region: str | None = None
        self._default_region_known = False
        self.limiter = RateLimiter(settings.max_rps)

    def region_for(self, target: Target) -> str | None:
        if target.region:
            return target.region
        if not self._default_region_known:
            self._default_region = default_region(self._settings)
            self._default_region_known = True
        return self._default_region

    def client(self, service: str, region: str, account: AccountSpec | None = None) -> Any:
        key = (service, region, account)
        if key not in self._clients:
            client = self._make_client(service, region, self.accounts.get(account))
            events = getattr(getattr(client, "meta", None), "events", None)
            if events is not None:
                # A client's event hooks are its own copy; the unique id keeps one handler per pool even if a
                # make_client hook hands out one client for several keys.
                events.register("before-send", self._before_send, unique_id=f"pytest-proton-sync-{id(self)}")
                self._instrumented.add(key)
            self._clients[key] = client
        return self._clients[key]

    def instrumented(self, service: str, region: str, account: AccountSpec | None = None) -> bool:
        """Whether the client's requests pass the limiter and are counted (any botocore client is)."""
        return (service, region, account) in self._instrumented

    def _before_send(self, **kwargs: Any) -> None:
        self.limiter.acquire()
        _SENT.count = getattr(_SENT, "count", 0) + 1
        # None: a value here would stand in for the HTTP response.


def sent_requests() -> int:
    """HTTP requests sent since this thread's last :func:`reset_sent_requests` (0 for uninstrumented clients)."""
    return int(getattr(_SENT, "count", 0))


def reset_sent_requests() -> None:
    _SENT.count = 0


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

    def acquire(self) -> None:
        if not self.rate:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                delay = (1 - self._tokens) / self.rate
            self._sleep(delay)


def _attempts(error: botocore.exceptions.ClientError) -> int:
    metadata: Mapping[str, Any] = error.response.get("ResponseMetadata", {})
    return int(metadata.get("RetryAttempts", 0)) + 1


def _quota_stopped(attempts: int, settings: FetchSettings, quota_reached: bool = False) -> bool:
    """Whether botocore's retry quota, not the attempt budget, ended the retries of a retryable error.

    Fewer attempts than the budget can only mean the quota: a client-wide allowance (500 units in botocore
    1.4x; each retry takes 5 after throttling, 14 after other errors, and success gives some back) that stops
    every retry of the client once failures have drained it.
    """
    return quota_reached or attempts < settings.max_attempts


def _gave_up(attempts: int, settings: FetchSettings, quota_stopped: bool, detail: str = "") -> str:
    if quota_stopped:
        return (f"gave up after {attempts} of {settings.max_attempts} attempts{detail}: botocore's retry quota "
                "for this client ran out (too many failed requests across all targets)")
    return f"gave up after {attempts} attempts{detail}"


def classify_error(
    exc: Exception, kind: Kind, region: str, settings: FetchSettings, attempts: int | None = None
) -> CheckError:
    """An exception from botocore -> a CheckError a person can act on. Never includes credentials.

    ``attempts``: HTTP requests this call sent, when known (see :func:`sent_requests`).
    """
    if isinstance(exc, AccountUnavailable):  # the account's role or profile, not this target, is the problem
        return CheckError(exc.code, redact(exc.message))
    error = _classify_error(exc, kind, region, settings, attempts)
    return replace(error, message=redact(error.message))


def _classify_error(
    exc: Exception, kind: Kind, region: str, settings: FetchSettings, sent: int | None
) -> CheckError:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or str(exc)
        metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata", {})
        attempts = max(sent or 0, _attempts(exc))
        quota_reached = bool(metadata.get("RetryQuotaReached"))
        status = int(metadata.get("HTTPStatusCode", 0) or 0)
        if foreign_answers.is_foreign(code, status):  # a page from something that is not the API: its own message
            retried = status in foreign_answers.RETRIED_STATUSES
            gave_up = _gave_up(attempts, settings, _quota_stopped(attempts, settings, quota_reached)) if retried \
                else (f"after {attempts} attempts" if attempts > 1 else "")
            return CheckError(
                code, foreign_answers.describe(status, message, kind.service, kind.operation_name, gave_up), attempts
            )
        if code in ("AccessDeniedException", "AccessDenied"):
            return CheckError(
                code,
                f"{message}\n  fix: allow {kind.operation_name} for this identity in {region} "
                "(see the README's IAM policy).",
                attempts,
            )
        if code in ("UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                    "InvalidClientTokenId", "MissingAuthenticationTokenException"):
            return CheckError(code, f"{message}\n  fix: refresh or correct the AWS credentials.", attempts)
        quota = _quota_stopped(attempts, settings, quota_reached)
        if code == "ThrottlingException":
            fix = (
                "lower --proton-concurrency or set --proton-max-rps so fewer requests are throttled at once "
                "(raising --proton-max-attempts does not lift the quota)" if quota else
                "raise --proton-max-attempts, or lower --proton-concurrency / set --proton-max-rps"
            )
            return CheckError(
                code, f"throttled by the API and {_gave_up(attempts, settings, quota)}\n  fix: {fix}.", attempts
            )
        if status in foreign_answers.NOT_RETRIED_5XX and attempts == 1 and code not in TRANSIENT_CODES:
            # botocore retries 500, 502, 503 and 504 only: one attempt says nothing of a budget or quota.
            return CheckError(code, foreign_answers.not_retried(status, message, kind.service), attempts)
        if status >= 500 or code in TRANSIENT_CODES:
            return CheckError(
                code,
                f"{message} (HTTP {status})\n  {_gave_up(attempts, settings, quota)}\n  fix: a problem on the "
                "service's side; re-run later, or raise --proton-max-attempts.",
                attempts,
            )
        return CheckError(code, message, attempts)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return CheckError(
            "NoCredentials",
            "no AWS credentials found\n  fix: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
            "run in a role, or try the bundled fake with --proton-fake STATE.",
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return CheckError("NoRegion", _NO_REGION)
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        attempts = sent or settings.max_attempts
        gave_up = _gave_up(attempts, settings, _quota_stopped(attempts, settings))
        return CheckError(
            "ReadTimeout",
            f"{exc}\n  no answer within the read timeout of {settings.read_timeout:g} s; {gave_up}\n  fix: check "
            "the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL) and the network, or raise "
            "--proton-read-timeout if it is only slow.",
            attempts,
        )
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                        botocore.exceptions.ConnectTimeoutError)):
        # Connection errors are always retried, so fewer attempts than the budget means the quota stopped them.
        attempts = sent or settings.max_attempts
        timeouts = f" (connect timeout {settings.connect_timeout:g} s, read timeout {settings.read_timeout:g} s)"
        return CheckError(
            "EndpointUnreachable",
            f"{exc}\n  {_gave_up(attempts, settings, _quota_stopped(attempts, settings), timeouts)}\n  fix: check "
            "the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL), the region and the network.",
            attempts,
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return CheckError(type(exc).__name__, str(exc))
    return CheckError(type(exc).__name__, f"unexpected error: {exc}")


_NO_REGION = (
    "no AWS region\n  fix: set AWS_REGION (or AWS_DEFAULT_REGION), give `region:` in the manifest's defaults, "
    "or pass --proton-region."
)


class Fetcher:
    """Asks the API about targets: each distinct target once per look, many at a time."""

    def __init__(self, settings: FetchSettings, clients: ClientPool) -> None:
        self.settings = settings
        self.clients = clients
        self.api_calls = 0  # looks that sent a request, not retries
        self._count_lock = threading.Lock()

    def prepare(self, targets: Iterable[Target]) -> dict[tuple[str, ...], CheckError]:
        """Create every client in this thread before any worker runs; returns set-up errors per target key."""
        problems: dict[tuple[str, ...], CheckError] = {}
        for target in targets:
            kind = kind_of(target)
            try:
                region = self.clients.region_for(target)
                if region is None:
                    problems[target.key] = CheckError("NoRegion", _NO_REGION)
                    continue
                self.clients.client(kind.service, region, target.account_spec)
            except Exception as exc:
                problems[target.key] = classify_error(exc, kind, target.region or "?", self.settings)
        return problems

    def ask(self, target: Target) -> tuple[SyncStatus | None, CheckError | None, bool]:
        """One look at one target: (status, error, throttled-on-the-way)."""
        kind = kind_of(target)
        region = self.clients.region_for(target) or ""
        reset_sent_requests()
        calling = False
        try:
            client = self.clients.client(kind.service, region, target.account_spec)
            if not self.clients.instrumented(kind.service, region, target.account_spec):
                self.clients.limiter.acquire()  # a client without event hooks: at least one look per token
            calling = True
            response = getattr(client, kind.operation)(**dict(target.request))
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in kind.not_found_codes:
                return SyncStatus(found=False), None, _attempts(exc) > 1
            error = classify_error(exc, kind, region, self.settings, attempts=sent_requests() or None)
            return None, error, code == "ThrottlingException"
        except Exception as exc:
            return None, classify_error(exc, kind, region, self.settings, attempts=sent_requests() or None), False
        finally:
            # A look counts when a request went out (no credentials, say, sends none); a client without event
            # hooks cannot say, so its look counts once it was called.
            if sent_requests() if self.clients.instrumented(kind.service, region, target.account_spec) else calling:
                with self._count_lock:
                    self.api_calls += 1
        retried = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) > 0
        return kind.normalise(response), None, retried


Assess = Callable[[Target, SyncStatus], "tuple[Verdict, bool]"]  # -> (verdict, settled)


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
    Ctrl-C (in the main thread) or ``stop`` ends the work at once; what is known is returned, each unfinished
    target saying so.
    """
    settings = fetcher.settings
    tracks: dict[tuple[str, ...], _Track] = {}
    for target in targets:
        tracks.setdefault(target.key, _Track(target))
    waiting = settings.wait_seconds > 0
    started = time.monotonic()
    deadline = started + max(0.0, settings.wait_seconds)
    interval = max(0.01, settings.poll_interval)
    interrupted = False

    def observation_of(track: _Track, elapsed: float) -> Observation:
        note = None
        error = track.error
        if not track.settled and (waiting or interrupted):
            note = wait_note(track.target, track.status, elapsed)
            if interrupted:
                note = "interrupted (Ctrl-C) " + note
            if track.status is None and error is None:
                error = CheckError("Interrupted", "stopped by Ctrl-C before the API answered")
        return Observation(
            target=track.target,
            status=track.status,
            error=error,
            region=fetcher.clients.region_for(track.target) or "",
            polls=track.polls,
            waited_seconds=elapsed if waiting else 0.0,
            wait_note=note,
            verdict=track.verdict if track.status is not None and error is None else None,
        )

    def final(track: _Track) -> None:
        if on_final is not None and not waiting:
            on_final(observation_of(track, 0.0))

    for key, setup_error in fetcher.prepare(t.target for t in tracks.values()).items():
        tracks[key].error = setup_error
        tracks[key].settled = True
        final(tracks[key])

    def report() -> None:
        if progress is None:
            return
        settled = [t for t in tracks.values() if t.settled]
        progress(
            Progress(
                settled=len(settled),
                pending=len(tracks) - len(settled),
                failed=sum(1 for t in settled if t.error is None and not t.passes),
                errors=sum(1 for t in settled if t.error is not None),
                seconds_left=max(0.0, deadline - time.monotonic()),
                polls=max((t.polls for t in tracks.values()), default=0),
            )
        )

    pool = ThreadPoolExecutor(max_workers=max(1, settings.concurrency), thread_name_prefix="proton-sync")
    try:
        first = True
        while True:
            due = [t for t in tracks.values() if not t.settled]
            if not due:
                break
            if not first:
                pause = min(interval * random.uniform(0.9, 1.1), deadline - time.monotonic())
                # The last pause ends at the deadline and is followed by one last look.
                _sleep_with_progress(pause, report, stop)
            throttled = False
            # Completed futures arrive on a queue: O(1) per answer however many are pending (waiting on the
            # whole pending set for each answer costs O(N) per answer), and the short get() timeout keeps this
            # thread responsive to Ctrl-C and ``stop``.
            done: queue.SimpleQueue[tuple[_Track, _Answer]] = queue.SimpleQueue()
            for track in due:
                pool.submit(fetcher.ask, track.target).add_done_callback(_deliver_to(done, track))
            for _ in due:
                while True:
                    if stop is not None and stop.is_set():
                        raise KeyboardInterrupt
                    try:
                        track, future = done.get(timeout=0.5)
                        break
                    except queue.Empty:
                        continue
                status, problem, was_throttled = future.result()
                throttled = throttled or was_throttled
                track.polls += 1
                track.status, track.error = status, problem
                if problem is not None:
                    track.settled = not (waiting and problem.code in TRANSIENT_CODES)
                elif status is not None:
                    track.verdict, settled = assess(track.target, status)
                    track.settled = not waiting or settled
                if track.settled:
                    final(track)
            report()
            first = False
            if not waiting or time.monotonic() >= deadline:
                break
            if throttled:
                interval = min(interval * 2, MAX_POLL_INTERVAL)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # After Ctrl-C, don't wait for requests in flight (up to a read timeout): report now.
        pool.shutdown(wait=not interrupted, cancel_futures=True)

    elapsed = time.monotonic() - started
    return {key: observation_of(track, elapsed) for key, track in tracks.items()}


_Answer = Future[tuple[SyncStatus | None, CheckError | None, bool]]


def _deliver_to(done: queue.SimpleQueue[tuple[_Track, _Answer]], track: _Track) -> Callable[[_Answer], None]:
    def deliver(answer: _Answer) -> None:
        done.put((track, answer))

    return deliver


def _sleep_with_progress(seconds: float, report: Callable[[], None], stop: threading.Event | None) -> None:
    """Sleep in short steps so the progress line counts down and Ctrl-C (or ``stop``) is seen at once."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        if stop is not None and stop.wait(min(1.0, left)):
            raise KeyboardInterrupt
        if stop is None:
            time.sleep(min(1.0, left))
        report()
