"""One client per (service, region, account), shared by the worker threads, every request paced and counted.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from pytest_proton_sync.aws.accounts import Accounts
from pytest_proton_sync.aws.clients import (
    ClientMaker,
    FetchSettings,
    before_parse,
    botocore_config,
    default_client,
    default_region,
)
from pytest_proton_sync.aws.deadline import THREAD, Aborted, Call, current_call, watch_connections
from pytest_proton_sync.fetch import cancel
from pytest_proton_sync.fetch.pacing import KeyPacer, Pacing
from pytest_proton_sync.model import AccountSpec, Target
from pytest_proton_sync.text.redact import redact


class ClientPool:
    """One client per (service, region, account), created in the calling thread and then shared by every worker
    thread: clients are thread-safe, sessions are not. ``accounts`` holds each account's session (one per run).

    Every HTTP request of its clients, retries included, first passes its key's :class:`KeyPacer` (``pacing``:
    --proton-max-rps per key, and what throttling taught) and is counted for :func:`sent_requests`, through a
    ``before-send`` handler on the client's own event hooks, bound to the key; a ``before-parse`` handler checks
    each 200 answer's body before botocore parses it (see :func:`check_body`).
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
        self.pacing = Pacing(settings.max_rps, round_size=settings.concurrency)

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
                pacer = self.pacer(service, region, account)
                events.register("before-send", functools.partial(self._before_send, pacer),
                                unique_id=f"pytest-proton-sync-{id(self)}")
                events.register("before-parse", before_parse, unique_id=f"pytest-proton-sync-parse-{id(self)}")
                self._instrumented.add(key)
            if watch_connections(client):
                self._abortable.add(key)
            self._clients[key] = client
        return self._clients[key]

    def instrumented(self, service: str, region: str, account: AccountSpec | None = None) -> bool:
        """Whether the client's requests pass the limiter and are counted (any botocore client is)."""
        return (service, region, account) in self._instrumented

    def endpoint(self, service: str, region: str, account: AccountSpec | None = None) -> str:
        client = self._clients.get((service, region, account))
        return redact(str(getattr(getattr(client, "meta", None), "endpoint_url", "") or f"{service} in {region}"))

    def pacer(self, service: str, region: str, account: AccountSpec | None = None) -> KeyPacer:
        """The pacer of one (service, region, account): AWS counts its quotas per account, region and API."""
        return self.pacing.for_key((service, region, account))

    def _before_send(self, pacer: KeyPacer, **kwargs: Any) -> None:
        call = current_call()
        if call is not None:
            call.check()
        pace(pacer, call)
        THREAD.count = getattr(THREAD, "count", 0) + 1
        THREAD.sent_in_call = getattr(THREAD, "sent_in_call", 0) + 1
        # None: a value here would stand in for the HTTP response.


def pace(pacer: KeyPacer, call: Call | None) -> None:
    """Wait until ``pacer`` lets a request go (cancellable). Time spent here does not count against the call's
    deadline: the deadline bounds time on the network, and pacing is the fetch's own choice."""
    delay = pacer.delay()
    if delay <= 0:
        return
    token = cancel.current()
    paused = time.monotonic()
    if call is not None:
        call.paused = True
    try:
        while delay > 0:
            if token.wait(delay):
                raise Aborted("cancelled")
            if pacer.refusing:  # the key refuses everything (rate_learning, "Refusing"): this request is not sent
                if call is not None:
                    call.abort("refused")
                raise Aborted("refused")
            delay = pacer.delay()
    finally:
        if call is not None:
            call.deadline += time.monotonic() - paused
            call.paused = False
