"""The call deadline: botocore's connection pools subclassed so a watchdog can end a request in flight.

The one module that reaches into botocore's internals (``AWSHTTPConnectionPool._get_conn``/``_put_conn``, a
client's ``_endpoint.http_session`` pool classes); ``tests/test_botocore_internals.py`` fails if the installed
botocore changes them, and :func:`watch_connections` declines (returns False) rather than guess.
Per worker thread (:data:`THREAD`): the call in progress, the HTTP requests it sent, the checked answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, cast

import botocore.awsrequest
import botocore.config
import botocore.exceptions

from pytest_proton_sync.model import Target


# -- one API call in flight --------------------------------------------------------------------------------------
class Call:
    """One API call of one worker thread: its deadline, and the connection its current attempt uses, so that the
    watchdog can end the attempt by shutting the socket down (botocore's timeouts are per socket read)."""

    def __init__(self, target: Target, deadline: float, endpoint: tuple[str, str] = ("", "")) -> None:
        self.target = target
        self.endpoint = endpoint  # (service, region)
        self.started = time.monotonic()
        self.deadline = deadline
        self.aborted: str | None = None  # "deadline" | "cancelled" | "unresponsive" | "refused"
        self.paused = False  # waiting for its key's pacer: the deadline is moved on by that wait
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
            raise Aborted(self.aborted)


class Aborted(Exception):
    """Raised inside a call that the watchdog (deadline) or a cancellation ended."""


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its SSL object under a
            # concurrent read. A blocked recv() returns at once; the request fails and the call reports why.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


# Per worker thread: the call in progress, HTTP requests it sent, and what the before-parse check made of the answer.
THREAD = threading.local()


def current_call() -> Call | None:
    return getattr(THREAD, "call", None)


class _WatchedPool(botocore.awsrequest.AWSHTTPConnectionPool):  # type: ignore[misc]
    """urllib3's pool, telling the thread's call which connection its request uses."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        call = current_call()
        if call is not None:
            call.attach(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        call = current_call()
        if call is not None:
            call.detach(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(botocore.awsrequest.AWSHTTPSConnectionPool):  # type: ignore[misc]
    _get_conn = _WatchedPool._get_conn
    _put_conn = _WatchedPool._put_conn


def watch_connections(client: Any) -> bool:
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
