"""One client per (service, region, account), shared by the worker threads, every request paced and counted.
"""

from __future__ import annotations

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
from pytest_proton_sync.aws.deadline import THREAD, current_call, watch_connections
from pytest_proton_sync.fetch.pacing import Pacer
from pytest_proton_sync.model import AccountSpec, Target
from pytest_proton_sync.text.redact import redact


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

    def _before_send(self, **kwargs: Any) -> None:
        call = current_call()
        if call is not None:
            call.check()
        self.limiter.acquire(call)
        THREAD.count = getattr(THREAD, "count", 0) + 1
        THREAD.sent_in_call = getattr(THREAD, "sent_in_call", 0) + 1
        # None: a value here would stand in for the HTTP response.
