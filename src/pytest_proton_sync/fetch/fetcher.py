"""Turn targets into observations with boto3: shared clients, concurrency, bounded retried calls, pacing, polling.

Imports no pytest. boto3 is imported here and only here, and this module is imported only when a manifest is in
play, so a pytest run without one pays nothing for it.

Every API call is bounded (see FetchSettings): the plugin runs its own retry loop (botocore makes one attempt per
call) with capped exponential backoff and full jitter, inside an overall per-call deadline that a watchdog enforces
by shutting down the socket of a request still in flight, however its bytes arrive (a trickle included). A
throttled answer slows the whole fetch down (:class:`Pacer`), not only the call that met it. A 200 whose body is
not a JSON object of the documented shape is an error (``MalformedAnswer``), retried like a 5xx. Cancellation
(:mod:`cancel`) aborts every request in flight at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

import boto3
import botocore.awsrequest
import botocore.config
import botocore.exceptions

from pytest_proton_sync import __version__, options
from pytest_proton_sync.aws import foreign_answers
from pytest_proton_sync.aws.accounts import Account, Accounts, AccountUnavailable
from pytest_proton_sync.aws.answers import MalformedAnswer
from pytest_proton_sync.aws.hermetic import fake_client
from pytest_proton_sync.fetch import cancel
from pytest_proton_sync.kinds import Kind, kind_of
from pytest_proton_sync.model import AccountSpec, CheckError, Observation, SyncStatus, Target, Verdict
from pytest_proton_sync.text.redact import redact
from pytest_proton_sync.text.safetext import clean, excerpt
from pytest_proton_sync.verdict.judge import wait_note

# Codes worth asking again on the next poll while waiting; anything else (access denied, bad region) will not
# change by itself, so waiting on it would only hide the real problem until the deadline.
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "InternalServerException", "ServiceUnavailable", "EndpointUnreachable", "ReadTimeout",
    "MalformedAnswer", "DeadlineExceeded", "EndpointUnresponsive",
})
THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "ProvisionedThroughputExceededException",
})
RETRYABLE_CODES = frozenset({
    "InternalServerException", "InternalFailure", "InternalError", "ServiceUnavailable", "ServiceUnavailableException",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
})
_DEFAULTS = options.defaults()
MAX_POLL_INTERVAL = 120.0
_LOG = logging.getLogger("pytest_proton_sync.fetch")
MESSAGE_LIMIT = 300  # characters of an API error message shown


@dataclass(frozen=True)
class FetchSettings:
    """How to fetch. The defaults of what users can set are options.py's (the one place they live)."""

    concurrency: int = _DEFAULTS.concurrency
    max_attempts: int = _DEFAULTS.max_attempts  # HTTP attempts per API call, retries included
    retry_mode: str = _DEFAULTS.retry_mode  # botocore's "standard" or "adaptive" (adaptive adds client-side pacing)
    connect_timeout: float = _DEFAULTS.connect_timeout  # per connection attempt
    read_timeout: float = _DEFAULTS.read_timeout  # per socket read: a trickle never trips it, call_timeout does
    max_rps: float | None = _DEFAULTS.max_rps
    wait_seconds: float = _DEFAULTS.wait
    poll_interval: float = _DEFAULTS.poll_interval
    region: str | None = None  # --proton-region: used for entries that name none
    endpoint_url: str | None = None  # set by --proton-fake only; otherwise boto3's own chain decides
    use_fake_credentials: bool = False  # --proton-fake: a fresh machine has no credentials, and needs none
    # Overall deadline of one API call: connect + read + every retry and backoff.
    call_timeout: float = _DEFAULTS.call_timeout
    # -- internal bounds, not options --
    backoff_base: float = 0.25  # retry n sleeps uniform(0, min(backoff_cap, backoff_base * 2**n)) ("full jitter")
    backoff_cap: float = 5.0
    connect_attempts: int = 3  # attempts when the endpoint cannot be reached at all (refused, DNS, connect timeout)
    unresponsive_limit: int = 3  # this many calls in a row to one endpoint without any answer: the rest are not sent
    progress_every: float = 10.0  # seconds between progress reports while calls are pending


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


ClientMaker = Callable[[str, str, "Account | None"], Any]  # (service, region, account) -> botocore client


def botocore_config(settings: FetchSettings) -> botocore.config.Config:
    # One attempt per botocore call: the plugin's own loop retries (Fetcher.ask), inside the call deadline, with
    # no client-wide retry quota that a storm could drain.
    return botocore.config.Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": 1},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.concurrency),
        user_agent_extra=f"pytest-proton-sync/{__version__}",
    )


def default_client(service: str, region: str, settings: FetchSettings, account: Account | None = None) -> Any:
    """A client from boto3's standard chain, or from ``account``'s own session (its assumed role or profile);
    only --proton-fake overrides its endpoint and credentials (and then no account's credentials are used)."""
    if settings.use_fake_credentials and settings.endpoint_url:
        # --proton-fake: nothing of the user's AWS set-up may break or redirect it
        return fake_client(service, region, settings.endpoint_url, botocore_config(settings))
    extra: dict[str, Any] = {}
    if settings.endpoint_url:
        extra["endpoint_url"] = settings.endpoint_url
    if account is not None:
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


# -- one API call in flight --------------------------------------------------------------------------------------
class _Call:
    """One API call of one worker thread: its deadline, and the connection its current attempt uses, so that the
    watchdog can end the attempt by shutting the socket down (botocore's timeouts are per socket read)."""

    def __init__(self, target: Target, deadline: float, endpoint: tuple[str, str] = ("", "")) -> None:
        self.target = target
        self.endpoint = endpoint  # (service, region)
        self.started = time.monotonic()
        self.deadline = deadline
        self.aborted: str | None = None  # "deadline" | "cancelled" | "unresponsive"
        self.paused = False  # waiting for the Pacer: the deadline is moved on by that wait
        self._conn: Any = None
        self._lock = threading.Lock()

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn
            aborted = self.aborted
        if aborted:
            _shut(conn)

    def detach(self, conn: Any) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None

    def abort(self, why: str) -> None:
        with self._lock:
            if self.aborted is None:
                self.aborted = why
            conn = self._conn
        if conn is not None:
            _shut(conn)

    def check(self) -> None:
        """Before each attempt: past the deadline or cancelled means no further request."""
        if self.aborted is None and time.monotonic() >= self.deadline:
            self.abort("deadline")
        if self.aborted is not None:
            raise _Aborted(self.aborted)


class _Aborted(Exception):
    """Raised inside a call that the watchdog (deadline) or a cancellation ended."""


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its SSL object under a
            # concurrent read. A blocked recv() returns at once; the request fails and the call reports why.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


# Per worker thread: the call in progress, HTTP requests it sent, and what the before-parse check made of the answer.
_THREAD = threading.local()


def _current_call() -> _Call | None:
    return getattr(_THREAD, "call", None)


class _WatchedPool(botocore.awsrequest.AWSHTTPConnectionPool):  # type: ignore[misc]
    """urllib3's pool, telling the thread's call which connection its request uses."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        call = _current_call()
        if call is not None:
            call.attach(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        call = _current_call()
        if call is not None:
            call.detach(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(botocore.awsrequest.AWSHTTPSConnectionPool):  # type: ignore[misc]
    _get_conn = _WatchedPool._get_conn
    _put_conn = _WatchedPool._put_conn


def _watch_connections(client: Any) -> bool:
    """Make the client's connections abortable; False if it is not a botocore client as we know it (its calls are
    then bounded by its own timeouts only)."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    schemes: Any = getattr(session, "_pool_classes_by_scheme", None)
    manager = getattr(session, "_manager", None)
    if not isinstance(schemes, dict) or getattr(manager, "pool_classes_by_scheme", None) is not schemes:
        return False
    pools = cast("dict[str, Any]", schemes)
    pools["http"] = _WatchedPool
    pools["https"] = _WatchedHTTPSPool
    return True


class ClientPool:
    """One client per (service, region, account), created in the calling thread and then shared by every worker
    thread: clients are thread-safe, sessions are not. ``accounts`` holds each account's session (one per run).

    Every HTTP request of its clients, retries included, first passes ``limiter`` (the :class:`Pacer`:
    --proton-max-rps, and slower after throttling) and is counted for :func:`sent_requests`, through a
    ``before-send`` handler on the client's own event hooks; a ``before-parse`` handler checks each 200 answer's
    body before botocore parses it (see :func:`check_body`).
    """

    def __init__(self, settings: FetchSettings, make_client: ClientMaker | None = None) -> None:
        self._settings = settings
        self._make_client: ClientMaker = make_client or (
            lambda service, region, account: default_client(service, region, settings, account)
        )
        self.accounts = Accounts(botocore_config(settings))
        self._clients: dict[tuple[str, str, AccountSpec | None], Any] = {}
        self._instrumented: set[tuple[str, str, AccountSpec | None]] = set()
        self._abortable: set[tuple[str, str, AccountSpec | None]] = set()
        self._default_region: str | None = None
        self._default_region_known = False
        self.limiter = Pacer(settings.max_rps)

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
                events.register("before-parse", _before_parse, unique_id=f"pytest-proton-sync-parse-{id(self)}")
                self._instrumented.add(key)
            if _watch_connections(client):
                self._abortable.add(key)
            self._clients[key] = client
        return self._clients[key]

    def instrumented(self, service: str, region: str, account: AccountSpec | None = None) -> bool:
        """Whether the client's requests pass the limiter and are counted (any botocore client is)."""
        return (service, region, account) in self._instrumented

    def endpoint(self, service: str, region: str, account: AccountSpec | None = None) -> str:
        client = self._clients.get((service, region, account))
        return redact(str(getattr(getattr(client, "meta", None), "endpoint_url", "") or f"{service} in {region}"))

    def _before_send(self, **kwargs: Any) -> None:
        call = _current_call()
        if call is not None:
            call.check()
        self.limiter.acquire(call)
        _THREAD.count = getattr(_THREAD, "count", 0) + 1
        _THREAD.sent_in_call = getattr(_THREAD, "sent_in_call", 0) + 1
        # None: a value here would stand in for the HTTP response.


def _before_parse(operation_model: Any = None, response_dict: Any = None, **kwargs: Any) -> None:
    normalise = getattr(_THREAD, "normalise", None)
    if normalise is None or not isinstance(response_dict, Mapping) or response_dict.get("status_code") != 200:
        return
    headers = response_dict.get("headers") or {}
    _THREAD.answer = check_body(response_dict.get("body") or b"", str(headers.get("content-type", "")), normalise)


def check_body(body: bytes, content_type: str, normalise: Callable[[Mapping[str, Any]], SyncStatus]) -> SyncStatus:
    """A 200 answer's raw body -> SyncStatus, or MalformedAnswer saying what came back (content type, length, a
    short sanitised excerpt). botocore would read an empty body, an HTML page or broken JSON as an empty answer,
    i.e. "never synced"; and a member of the wrong type can crash its parser."""

    def what(problem: str) -> MalformedAnswer:
        shown = f": {excerpt(body)}" if body else ""
        return MalformedAnswer(
            f"{problem} (HTTP 200, Content-Type {clean(content_type, 80) or '(none)'}, {len(body)} bytes){shown}"
        )

    if not body.strip():
        return _raise(what("an empty answer where a JSON object was expected"))
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            at_end = exc.pos >= len(exc.doc.rstrip())
            detail = f"{exc.msg.removesuffix(' at')}: character {exc.pos} of {len(exc.doc)}"
            detail += ", cut short?" if at_end or exc.msg.startswith("Unterminated") else ""
        else:
            detail = "not UTF-8"
        looks = "an HTML page" if body.lstrip()[:1] == b"<" else "not JSON"
        return _raise(what(f"{looks} where a JSON object was expected ({detail})"))
    if not isinstance(data, dict):
        return _raise(what(f"a JSON {type(data).__name__} where a JSON object was expected"))
    try:
        return normalise(data)
    except MalformedAnswer as exc:
        raise MalformedAnswer(f"not the documented shape: {exc}") from None
    except RecursionError:
        return _raise(what("nested too deeply"))


def _raise(error: Exception) -> SyncStatus:
    raise error


def sent_requests() -> int:
    """HTTP requests sent since this thread's last :func:`reset_sent_requests` (0 for uninstrumented clients)."""
    return int(getattr(_THREAD, "count", 0))


def reset_sent_requests() -> None:
    _THREAD.count = 0


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

    def acquire(self, call: _Call | None = None) -> None:
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
                    raise _Aborted("cancelled")
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


# -- errors ----------------------------------------------------------------------------------------------------------
def _gave_up(attempts: int, settings: FetchSettings, detail: str = "") -> str:
    return f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}{detail}"


def _fits(error: CheckError) -> CheckError:
    """Credentials masked (URL userinfo included) and every line safe to print."""
    lines = redact(error.message).split("\n")
    return replace(error, code=clean(error.code, 80), message="\n".join(clean(line, 2 * MESSAGE_LIMIT)
                                                                        for line in lines[:12]))


def classify_error(
    exc: BaseException, kind: Kind, region: str, settings: FetchSettings, attempts: int | None = None
) -> CheckError:
    """An exception from botocore (or our own checks) -> a CheckError a person can act on. Never includes
    credentials; API text in it is cleaned and capped (safetext).

    ``attempts``: HTTP requests this call sent, when known.
    """
    if isinstance(exc, AccountUnavailable):  # the account's role or profile, not this target, is the problem
        return _fits(CheckError(exc.code, exc.message))
    return _fits(_classify_error(exc, kind, region, settings, attempts or 1))


def _classify_error(exc: BaseException, kind: Kind, region: str, settings: FetchSettings, attempts: int) -> CheckError:
    gave_up = _gave_up(attempts, settings)
    if isinstance(exc, MalformedAnswer):
        return CheckError(
            "MalformedAnswer",
            f"{clean(str(exc), 2 * MESSAGE_LIMIT)}\n  {gave_up}\n  fix: this is not a {kind.operation_name} answer: "
            "check AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL and any proxy in between.",
            attempts,
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = clean(str(error.get("Message", "")) or str(exc), MESSAGE_LIMIT)
        metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata", {})
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
        status = int(metadata.get("HTTPStatusCode", 0) or 0)
        if foreign_answers.is_foreign(code, status):  # a page from something that is not the API: its own message
            retried = _retried_status(status)
            # The raw page: describe() makes its own one-line, printable excerpt (tags and white space folded).
            page = str(error.get("Message", "")) or str(exc)
            return CheckError(code, foreign_answers.describe(status, page, kind.service, kind.operation_name,
                                                             gave_up if retried else ""), attempts)
        if status in foreign_answers.NOT_RETRIED_5XX:
            return CheckError(code, foreign_answers.not_retried(status, message, kind.service), attempts)
        if code in THROTTLING_CODES or status == 429:
            return CheckError(
                code,
                f"throttled by the API and {gave_up}\n  fix: raise --proton-max-attempts or --proton-call-timeout, "
                "or lower --proton-concurrency / set --proton-max-rps.",
                attempts,
            )
        if status >= 500 or code in RETRYABLE_CODES:
            return CheckError(
                code,
                f"{message} (HTTP {status})\n  {gave_up}\n  fix: a problem on the service's side; re-run later, or "
                "raise --proton-max-attempts.",
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
        return CheckError(
            "ReadTimeout",
            f"{clean(str(exc), MESSAGE_LIMIT)}\n  no answer within the read timeout of {settings.read_timeout:g} s; "
            f"{gave_up}\n  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL) and the network, or "
            "raise --proton-read-timeout if it is only slow.",
            attempts,
        )
    if isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        timeouts = f" (connect timeout {settings.connect_timeout:g} s, read timeout {settings.read_timeout:g} s)"
        return CheckError(
            "EndpointUnreachable",
            f"{clean(str(exc), MESSAGE_LIMIT)}\n  {_gave_up(attempts, settings, timeouts)}\n  fix: check "
            "the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL), the region and the network.",
            attempts,
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return CheckError(type(exc).__name__, clean(str(exc), MESSAGE_LIMIT), attempts)
    return CheckError(type(exc).__name__, f"unexpected error: {clean(str(exc), MESSAGE_LIMIT)}", attempts)


def _deadline_error(settings: FetchSettings, attempts: int, last: str) -> CheckError:
    return _fits(CheckError(
        "DeadlineExceeded",
        f"no complete answer within the call deadline of {settings.call_timeout:g} s (connect, read and retries "
        f"together) after {attempts} attempt{'s' if attempts != 1 else ''}{'; last: ' + last if last else ''}\n"
        "  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL) and the network (an answer that "
        "arrives a few bytes at a time is cut off too), or raise --proton-call-timeout.",
        attempts,
    ))


def _cancelled_error(attempts: int, detail: str = "before the API answered", reason: str | None = None) -> CheckError:
    return CheckError("Cancelled", f"{reason or cancel.current().reason} {detail}", attempts)


_NO_REGION = (
    "no AWS region\n  fix: set AWS_REGION (or AWS_DEFAULT_REGION), give `region:` in the manifest's defaults, "
    "or pass --proton-region."
)

_Outcome = tuple[SyncStatus | None, CheckError | None, bool]  # (status, error, throttled on the way)


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
        self._calls: dict[int, _Call] = {}  # thread ident -> call in progress
        self._calls_lock = threading.Lock()
        self._silent: dict[tuple[str, str], int] = {}  # (service, region) -> calls in a row without any answer
        self._watching = threading.Event()

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
            thread.join()

    def _watch(self) -> None:
        token = cancel.current()
        while self._watching.is_set():
            cancelled = token.wait(0.05)
            now = time.monotonic()
            with self._calls_lock:
                calls = list(self._calls.values())
            for call in calls:
                if cancelled:
                    call.abort("cancelled")
                elif now >= call.deadline and not call.paused:
                    call.abort("deadline")
                elif self._silent.get(call.endpoint, 0) >= self.settings.unresponsive_limit:
                    call.abort("unresponsive")  # it will not fare better than the calls before it

    def in_flight(self) -> list[tuple[Target, float]]:
        """(target, seconds under way) of every call in progress, oldest first."""
        now = time.monotonic()
        with self._calls_lock:
            calls = list(self._calls.values())
        return sorted(((c.target, now - c.started) for c in calls), key=lambda pair: -pair[1])

    def abort_all(self) -> None:
        with self._calls_lock:
            calls = list(self._calls.values())
        for call in calls:
            call.abort("cancelled")

    def new_round(self) -> None:
        """Another poll: give a silent endpoint another chance."""
        self._silent.clear()

    # -- one look at one target -------------------------------------------------------------------------------
    def ask(self, target: Target) -> _Outcome:
        """One look at one target: the plugin's retry loop, inside the call deadline."""
        kind = kind_of(target)
        region = self.clients.region_for(target) or ""
        _THREAD.sent_in_call = 0
        endpoint_key = (kind.service, region)
        if self._silent.get(endpoint_key, 0) >= self.settings.unresponsive_limit:
            return None, self._unresponsive(kind, region, "not asked", 0), False
        call = _Call(target, time.monotonic() + self.settings.call_timeout, endpoint_key)
        ident = threading.get_ident()
        with self._calls_lock:
            self._calls[ident] = call
        _THREAD.call = call
        try:
            outcome, answered = self._attempts(call, kind, region)
        finally:
            _THREAD.call = None
            _THREAD.normalise = None
            with self._calls_lock:
                self._calls.pop(ident, None)
            # A look counts when a request went out (no credentials, say, sends none).
            if getattr(_THREAD, "sent_in_call", 0):
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
        return outcome

    def _with_blockers(self, target: Target, kind: Kind, region: str, status: SyncStatus) -> SyncStatus:
        """``status`` with the target's sync blockers: one call, within a call deadline of its own. A blockers call
        that fails leaves the status as it is (the status call's verdict stands); it is logged, not hidden."""
        blockers = kind.blockers
        assert blockers is not None
        call = _Call(target, time.monotonic() + self.settings.call_timeout, (kind.service, region))
        ident = threading.get_ident()
        with self._calls_lock:
            self._calls[ident] = call
        _THREAD.call, _THREAD.normalise = call, None  # no status normaliser for this answer's body
        try:
            client = self.clients.client(kind.service, region, target.account_spec)
            response = getattr(client, blockers.operation)(**blockers.build_request(target))
            return replace(status, blockers=blockers.normalise(response))
        except Exception as exc:  # any failure: no blockers known, the status speaks alone
            _LOG.info("%s for %s failed: %s", blockers.operation_name, target.id, clean(str(exc), MESSAGE_LIMIT))
            return status
        finally:
            _THREAD.call = None
            with self._calls_lock:
                self._calls.pop(ident, None)

    def _unresponsive(self, kind: Kind, region: str, what: str, attempts: int) -> CheckError:
        return _fits(CheckError(
            "EndpointUnresponsive",
            f"{what}: {self.settings.unresponsive_limit} calls in a row to "
            f"{self.clients.endpoint(kind.service, region)} got no answer within the call deadline of "
            f"{self.settings.call_timeout:g} s\n  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON / "
            "AWS_ENDPOINT_URL) and the network.",
            attempts,
        ))

    def _attempts(self, call: _Call, kind: Kind, region: str) -> tuple[_Outcome, bool]:
        """(outcome, whether anything at all came back from the endpoint)."""
        settings = self.settings
        pacer = self.clients.limiter
        token = cancel.current()
        throttled = answered = False
        attempts = 0
        last = ""
        while True:
            reset_sent_requests()
            _THREAD.answer = None
            _THREAD.normalise = kind.normalise
            retry = False
            try:
                call.check()
                account = call.target.account_spec
                client = self.clients.client(kind.service, region, account)
                if not self.clients.instrumented(kind.service, region, account):
                    pacer.acquire(call)  # a client without event hooks: at least one look per token
                    _THREAD.sent_in_call = getattr(_THREAD, "sent_in_call", 0) + 1  # called: count it as sent
                response = getattr(client, kind.operation)(**dict(call.target.request))
                attempts += max(1, sent_requests())
                status = _THREAD.answer or kind.normalise(response)
                pacer.answered()
                return (status, None, throttled), True
            except _Aborted:
                attempts += sent_requests()
            except botocore.exceptions.ClientError as exc:
                attempts += max(1, sent_requests())
                answered = True
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in kind.not_found_codes:
                    pacer.answered()
                    return (SyncStatus(found=False), None, throttled), True
                status_code = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                if code in THROTTLING_CODES or status_code == 429:
                    throttled = True
                    pacer.throttled()
                    retry = True
                else:
                    retry = _worth_retrying(code, status_code)
                error: BaseException = exc
            except MalformedAnswer as exc:
                attempts += max(1, sent_requests())
                answered = True
                retry, error = True, exc
            except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
                attempts += max(1, sent_requests())
                retry, error = True, exc
                if isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                                    botocore.exceptions.ConnectTimeoutError)):
                    # Refused, no such host, no route: this will not change in seconds.
                    retry = attempts < settings.connect_attempts
            except Exception as exc:
                attempts += sent_requests()
                return (None, classify_error(exc, kind, region, settings, attempts), throttled), answered
            if call.aborted == "cancelled" or token.requested:
                return (None, _cancelled_error(attempts), throttled), answered
            if call.aborted == "deadline":
                return (None, _deadline_error(settings, attempts, last), throttled), answered
            if call.aborted == "unresponsive":
                return (None, self._unresponsive(kind, region, "given up", attempts), throttled), answered
            last = _short_reason(error)
            if not retry or attempts >= settings.max_attempts:
                return (None, classify_error(error, kind, region, settings, attempts), throttled), answered
            delay = random.uniform(0, min(settings.backoff_cap, settings.backoff_base * 2 ** (attempts - 1)))
            if time.monotonic() + delay >= call.deadline:
                return (None, _deadline_error(settings, attempts, last), throttled), answered
            if token.wait(delay):
                return (None, _cancelled_error(attempts), throttled), answered


def _worth_retrying(code: str, status: int) -> bool:
    """A server error that asking again may fix. A 501 (not implemented) or 505 never is, whatever its code says
    (LocalStack answers InternalFailure with 501 for an API it lacks)."""
    if status in foreign_answers.NOT_RETRIED_5XX:
        return False
    return _retried_status(status) or code in RETRYABLE_CODES


def _retried_status(status: int) -> bool:
    """Server errors worth another attempt: 500, 502, 503, 504. A 501 (not implemented), 505 and the like will
    not change by asking again."""
    return status in foreign_answers.RETRIED_STATUSES


def _short_reason(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return clean(str(exc.response.get("Error", {}).get("Code", "")) or "error", 80)
    if isinstance(exc, MalformedAnswer):
        return "MalformedAnswer"
    return clean(type(exc).__name__, 80)


Assess = Callable[[Target, SyncStatus], "tuple[Verdict, bool]"]  # -> (verdict, settled)


class _Workers:
    """Daemon worker threads: a call the watchdog cannot reach (a client without botocore's connection pool)
    can never hold the interpreter's exit, unlike ThreadPoolExecutor's threads, which exit waits for."""

    def __init__(self, count: int, fetcher: Fetcher, done: queue.SimpleQueue[tuple[_Track, _Outcome]]) -> None:
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
        done: queue.SimpleQueue[tuple[_Track, _Outcome]] = queue.SimpleQueue()
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

    def rounds(self, workers: _Workers, done: queue.SimpleQueue[tuple[_Track, _Outcome]]) -> None:
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

    def look(self, due: list[_Track], workers: _Workers, done: queue.SimpleQueue[tuple[_Track, _Outcome]]) -> bool:
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

    def next_answer(self, done: queue.SimpleQueue[tuple[_Track, _Outcome]]) -> tuple[_Track, _Outcome]:
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
                error = _cancelled_error(error.attempts if error else 0, detail, self.why)
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
