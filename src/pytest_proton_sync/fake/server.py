"""A real HTTP/1.1 server on loopback that answers Proton's AWS JSON 1.0 protocol from a :class:`FakeState`.

Requests are ``POST /`` with ``X-Amz-Target: AwsProton20200720.<Operation>``, as botocore sends them, so
botocore's real serialisation, signing, parsing and retries run against it. Errors go out in the protocol's
shape: HTTP 400 (500 for server errors), ``x-amzn-ErrorType: <Code>``, ``x-amzn-RequestId`` and a body
``{"__type": "<Code>", "message": "..."}``.

Besides the API, ``GET /_fake/calls`` answers ``{"calls": {...}}`` (the per-key request counts) so a script
running the fake as a separate process can read them too.

Signatures are not verified (any credentials do), but a request without an ``Authorization`` header is
refused, as AWS refuses it; the header is never logged or echoed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from .api import TARGET_PREFIX, ApiError, answer, call_key
from .state import FakeState, FakeTemplate, Fault

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
CALLS_PATH = "/_fake/calls"

# How long stop() waits for handler threads to notice their connections were shut down. They are daemon
# threads, so a straggler cannot keep the process alive; the wait only lets counts settle before stop returns.
_STOP_GRACE_SECONDS = 1.0
# serve_forever checks for shutdown this often; stop() waits up to this long for the accept loop.
_POLL_INTERVAL_SECONDS = 0.05


class FakeServer:
    """The fake endpoint. Use as a context manager, or call :meth:`start` and :meth:`stop` yourself."""

    def __init__(
        self,
        state: FakeState,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_requests: bool = False,
        log_stream: TextIO | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.log_requests = log_requests
        self._log_stream = log_stream
        self._state = state
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._positions: Counter[str] = Counter()  # answered status calls per template, for sequences
        self._connections: set[socket.socket] = set()
        self._no_connections = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FakeServer:
        """Bind and serve on a background thread. Raises OSError if the address cannot be bound."""
        if self._httpd is not None:
            raise RuntimeError("the fake server is already running")
        self._stopping.clear()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd = _HTTPServer((self.host, self.port), self, family)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_SECONDS},
            name=f"fake-proton:{httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, shut down open keep-alive connections and wake sleeping answers; idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()  # returns once the accept loop has ended
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            # Unblocks a handler waiting for the next request on a kept-alive connection.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        with self._no_connections:
            while self._connections and (remaining := deadline - time.monotonic()) > 0:
                self._no_connections.wait(remaining)
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests look at ----------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; call start() or use it as a context manager")
        host, port = self._httpd.server_name, self._httpd.server_port
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def state(self) -> FakeState:
        return self._state

    @property
    def calls(self) -> dict[str, int]:
        """Requests received per ``"Operation TYPE/name@version"``, faulted and refused ones included."""
        with self._lock:
            return dict(self._calls)

    def total_calls(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(
                count for key, count in self._calls.items() if operation is None or key.split(" ", 1)[0] == operation
            )

    def set_state(self, state: FakeState) -> None:
        """Answer from ``state`` from the next request on; sequences start again from their first step."""
        with self._lock:
            self._state = state
            self._positions.clear()

    def reset_calls(self) -> None:
        """Forget the call counts (which also restarts fault decisions and sequences from call 0)."""
        with self._lock:
            self._calls.clear()
            self._positions.clear()

    # -- called by the handler -------------------------------------------------------------------------
    def _register(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            stopping = self._stopping.is_set()
        if stopping:  # accepted just as stop() ran: do not leave it waiting for a request
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _unregister(self, connection: socket.socket) -> None:
        with self._no_connections:
            self._connections.discard(connection)
            self._no_connections.notify_all()

    def _next_position(self, template: FakeTemplate) -> int:
        with self._lock:
            position = self._positions[template.id]
            self._positions[template.id] = position + 1
            return position

    def _log(self, line: str) -> None:
        if self.log_requests:
            stream = self._log_stream or sys.stderr
            print(line, file=stream, flush=True)

    def _handle_post(self, handler: _Handler) -> None:
        request_id = str(uuid.uuid4())
        body = handler.read_body()
        if body is None:
            handler.close_connection = True
            handler.send_json(
                400,
                _error_body("SerializationException", "bad Content-Length"),
                request_id,
                error_code="SerializationException",
            )
            return
        target = handler.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else (target or "-")
        params: Any
        try:
            params = json.loads(body) if body.strip() else {}
        except ValueError:
            params = None
        key = call_key(operation, params)
        with self._lock:
            state = self._state
            call_number = self._calls[key]
            self._calls[key] = call_number + 1

        fault = state.faults.decide(key, call_number)
        if fault is Fault.DROP:
            self._log(f"POST {key} -> dropped (fault)")
            handler.close_connection = True
            return
        if fault is Fault.SLOW and self._stopping.wait(state.faults.slow_seconds):
            handler.close_connection = True
            return
        if state.faults.latency_ms and self._stopping.wait(state.faults.latency_ms / 1000):
            handler.close_connection = True
            return

        try:
            if fault is Fault.THROTTLE:
                raise ApiError("ThrottlingException", "Rate exceeded (fault injected by the fake)")
            if fault is Fault.ERROR_5XX:
                raise ApiError("InternalServerException", "internal error (fault injected by the fake)", 500)
            if "Authorization" not in handler.headers:
                raise ApiError(
                    "MissingAuthenticationTokenException",
                    "Request is missing Authentication Token: the request must be signed (AWS Signature V4)",
                )
            if not target.startswith(TARGET_PREFIX):
                raise ApiError("UnknownOperationException", f"unknown X-Amz-Target {target or '(none)'!r}")
            if params is None:
                raise ApiError("SerializationException", "the request body is not valid JSON")
            output = answer(state, operation, params, self._next_position)
        except ApiError as error:
            note = f" (fault: {fault.value})" if fault is not Fault.NONE else ""
            self._log(f"POST {key} -> {error.status} {error.code}{note}")
            handler.send_json(error.status, _error_body(error.code, error.message), request_id, error_code=error.code)
            return
        except Exception:
            # A bug in the fake, not a client disconnect: say so loudly, and still answer like a server would.
            traceback.print_exc(file=sys.stderr)
            handler.send_json(
                500,
                _error_body("InternalServerException", "the fake failed; see its stderr"),
                request_id,
                error_code="InternalServerException",
            )
            return
        note = f" (slow: {state.faults.slow_seconds:g}s)" if fault is Fault.SLOW else ""
        self._log(f"POST {key} -> 200{note}")
        handler.send_json(200, output, request_id)

    def _handle_get(self, handler: _Handler) -> None:
        request_id = str(uuid.uuid4())
        if handler.path.split("?", 1)[0] == CALLS_PATH:
            handler.send_json(200, {"calls": self.calls}, request_id)
            return
        handler.send_json(
            404,
            _error_body("UnknownOperationException", "POST / with X-Amz-Target"),
            request_id,
            error_code="UnknownOperationException",
        )


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"__type": code, "message": message}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Our stop() shuts connections down itself and waits briefly; the stdlib's join-every-thread close would
    # hang on handlers sleeping in a slow fault.
    block_on_close = False
    request_queue_size = 256  # bursts of concurrent clients (xdist, thread pools) must not be refused
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer, family: socket.AddressFamily) -> None:
        self.address_family = family  # read by TCPServer.__init__ when it creates the socket
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can take seconds; not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host.decode() if isinstance(host, bytes) else str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # Answers are one write each, but without this a client's next small request can still wait for
        # a delayed ACK.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return  # the client went away: normal for dropped/slow faults and read timeouts
        if isinstance(error, OSError) and self.fake._stopping.is_set():
            return  # we shut the socket down ourselves
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses connections
    server_version = "pytest-proton-sync-fake"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after this long
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._unregister(self.connection)

    def do_POST(self) -> None:
        self.server.fake._handle_post(self)

    def do_GET(self) -> None:
        self.server.fake._handle_get(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the stdlib's lines would go to stderr for every request; FakeServer logs its own."""

    def read_body(self) -> bytes | None:
        raw_length = self.headers.get("Content-Length", "0")
        try:
            length = int(raw_length)
        except ValueError:
            return None
        if length < 0:
            return None
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, payload: Any, request_id: str, *, error_code: str | None = None) -> None:
        """Status line, headers and body in a single write.

        Separate writes for headers and body stall about 40 ms per call on Linux: Nagle's algorithm holds
        the body back until the client's delayed ACK of the headers.
        """
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {JSON_CONTENT_TYPE}",
            f"Content-Length: {len(body)}",
            f"x-amzn-RequestId: {request_id}",
        ]
        if error_code is not None:
            lines.append(f"x-amzn-ErrorType: {error_code}")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
