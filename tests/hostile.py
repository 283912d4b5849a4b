"""A hostile endpoint: a real HTTP/1.1 server on loopback that speaks Proton's AWS JSON 1.0 wire format but breaks
one thing per case. The case is chosen by the request's ``templateName``, so one manifest can hold every case.

Each case says what it sends and the one outcome the gate must give (passed, failed or error); a wrong *pass* is
the worst bug. Answers are written to the socket by hand, so a case can send anything: a body that is empty, an
HTML page, broken or truncated JSON, members of the wrong type, terminal escapes and CI workflow commands in
text, megabytes of events, a body trickled a byte at a time, or nothing at all.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .conftest import REPO, SHA_A, SHA_OLD

TARGET_PREFIX = "AwsProton20200720."
JSON_TYPE = "application/x-amz-json-1.0"
ESC = "\x1b"
# Text that must never reach a terminal or a CI log as it is.
NASTY = (f"{ESC}[2J{ESC}[H{ESC}[32mALL TARGETS PASSED{ESC}[0m\r\n::error file=app.py,line=1::pwned\n"
         "::set-output name=ok::true\n##vso[task.setvariable variable=ok]true\u2028\u202egnp.exe")


def revision(sha: str = SHA_A, **changes: Any) -> dict[str, Any]:
    data = {"sha": sha, "repositoryName": REPO["name"], "repositoryProvider": REPO["provider"],
            "branch": REPO["branch"], "directory": REPO["directory"]}
    data.update(changes)
    return data


def attempt(status: str = "SUCCEEDED", sha: str = SHA_A, events: list[dict[str, Any]] | None = None,
            **changes: Any) -> dict[str, Any]:
    data = {"status": status, "target": "hostile", "startedAt": 1_760_000_000.5, "events": events or [],
            "initialRevision": revision(sha), "targetRevision": revision(sha)}
    data.update(changes)
    return data


def good() -> dict[str, Any]:
    """A well-formed answer that passes: the latest successful sync is of SHA_A from the expected repository."""
    return {"desiredState": revision(), "latestSuccessfulSync": attempt(), "latestSync": attempt()}


def mutated(path: str, value: Any) -> dict[str, Any]:
    """``good()`` with one member (dotted path; ``-`` deletes it) changed."""
    data = good()
    *parents, last = path.split(".")
    node: Any = data
    for name in parents:
        node = node[name]
    if value == "-":
        del node[last]
    else:
        node[last] = value
    return data


def failed_latest(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Synced from an old commit; the sync of the expected one FAILED with these events (they are printed)."""
    return {"latestSuccessfulSync": attempt(sha=SHA_OLD), "latestSync": attempt("FAILED", events=events)}


# -- what a case can send -------------------------------------------------------------------------------------------
class Reply:
    """The raw socket of one request, and helpers to answer on it."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler
        self.stopping: threading.Event = handler.server.stopping  # type: ignore[attr-defined]

    def raw(self, data: bytes) -> None:
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def head(self, status: int, content_type: str = JSON_TYPE, length: int | None = None,
             extra: tuple[str, ...] = ()) -> bytes:
        lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", "x-amzn-RequestId: hostile-1", *extra]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        else:
            lines.append("Connection: close")
            self.handler.close_connection = True
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, status: int, body: bytes, content_type: str = JSON_TYPE, extra: tuple[str, ...] = ()) -> None:
        self.raw(self.head(status, content_type, len(body), extra) + body)

    def json(self, payload: Any, status: int = 200) -> None:
        self.send(status, json.dumps(payload).encode())

    def error(self, code: str, message: str, status: int = 400) -> None:
        self.send(status, json.dumps({"__type": code, "message": message}).encode(),
                  extra=(f"x-amzn-ErrorType: {code.splitlines()[0] if code else code}",))

    def trickle(self, payload: bytes, per_byte: float) -> None:
        self.raw(self.head(200, length=len(payload)))
        for index in range(len(payload)):
            if self.stopping.wait(per_byte):
                return
            self.raw(payload[index:index + 1])

    def silence(self) -> None:
        self.stopping.wait(600)
        self.handler.close_connection = True


Answer = Callable[[Reply, int], None]  # (reply, 0-based call number of this case)


@dataclass(frozen=True)
class Case:
    answer: Answer
    outcome: str  # "passed" | "failed" | "error"
    what: str  # the hostile answer, for the report's table
    repository: str | None = None  # the manifest's repository name, when not REPO's


def _json(payload: Callable[[], Any]) -> Answer:
    return lambda reply, _: reply.json(payload())


def _body(body: bytes, content_type: str = JSON_TYPE, status: int = 200) -> Answer:
    return lambda reply, _: reply.send(status, body, content_type)


def _then_good(first: Answer) -> Answer:
    """``first`` on the first call, a good answer after: a retried malformed answer must end in a pass."""
    return lambda reply, n: first(reply, n) if n == 0 else reply.json(good())


def _truncated_by_length(reply: Reply, _: int) -> None:
    body = json.dumps(good()).encode()
    reply.raw(reply.head(200, length=len(body)) + body[: len(body) // 2])
    reply.handler.close_connection = True


def _truncated_by_close(reply: Reply, _: int) -> None:
    body = json.dumps(good()).encode()
    reply.raw(reply.head(200, length=None) + body[: len(body) // 2])


def _deep(reply: Reply, _: int) -> None:
    reply.send(200, b'{"latestSuccessfulSync":' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def _many_events(reply: Reply, _: int) -> None:
    events = [{"event": f"step {i} {NASTY}", "type": "ERROR", "time": 1_760_000_000 + i} for i in range(100_000)]
    reply.json(failed_latest(events))


def _huge_message(reply: Reply, _: int) -> None:
    reply.json(failed_latest([{"event": "x" * 5_000_000, "type": "ERROR", "time": 1_760_000_000}]))


CASES: dict[str, Case] = {
    # controls: the server itself answers properly
    "good": Case(_json(good), "passed", "a well-formed matching answer (control)"),
    "never-synced": Case(_json(lambda: {}), "failed", "{} (no sync ever; control)"),
    "not-found": Case(lambda r, _: r.error("ResourceNotFoundException", "no such template"), "failed",
                      "400 ResourceNotFoundException (control)"),
    # bodies that are not an answer
    "empty-200": Case(_body(b""), "error", "200, empty body"),
    "html-200": Case(_body(b"<html><body><h1>Gateway login</h1></body></html>", "text/html"), "error",
                     "200, an HTML page"),
    "invalid-json": Case(_body(b'{"latestSuccessfulSync": {"status": "SUCC'), "error", "200, invalid JSON"),
    "truncated-length": Case(_truncated_by_length, "error", "200, Content-Length says more than is sent"),
    "truncated-close": Case(_truncated_by_close, "error", "200, no Content-Length, JSON cut short by close"),
    "json-array": Case(_body(b"[]"), "error", "200, a JSON list"),
    "json-null": Case(_body(b"null"), "error", "200, JSON null"),
    "json-string": Case(_body(b'"SUCCEEDED"'), "error", "200, a JSON string"),
    "deep-nesting": Case(_deep, "error", "200, lists nested 100,000 deep"),
    "not-utf8": Case(_body(b'{"x": "\xff\xfe"}'), "error", "200, not UTF-8"),
    "html-502": Case(_body(b"<html>502 Bad Gateway" + NASTY.encode() + b"</html>", "text/html", 502), "error",
                     "502 with an HTML page holding escapes"),
    # the documented shape broken one member at a time
    "latest-is-string": Case(_json(lambda: mutated("latestSuccessfulSync", "SUCCEEDED")), "error",
                             "latestSuccessfulSync is a string"),
    "sha-is-number": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.sha", 12345)), "error",
                          "targetRevision.sha is a number"),
    "events-is-object": Case(_json(lambda: mutated("latestSuccessfulSync.events", {})), "error",
                             "events is an object"),
    "no-target-revision": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision", "-")), "error",
                               "targetRevision missing"),
    "no-status": Case(_json(lambda: mutated("latestSuccessfulSync.status", "-")), "error", "status missing"),
    "unknown-status": Case(_json(lambda: mutated("latestSuccessfulSync.status", "DONE")), "error",
                           "status DONE (not in the enum)"),
    "status-lowercase": Case(_json(lambda: mutated("latestSuccessfulSync.status", "succeeded")), "error",
                             "status succeeded (lower case)"),
    "started-at-string": Case(_json(lambda: mutated("latestSuccessfulSync.startedAt", "yesterday")), "error",
                              "startedAt is a string"),
    "started-at-bool": Case(_json(lambda: mutated("latestSuccessfulSync.startedAt", True)), "error",
                            "startedAt is a boolean"),
    "started-at-huge": Case(_json(lambda: mutated("latestSuccessfulSync.startedAt", 1e300)), "error",
                            "startedAt is 1e300"),
    "event-not-object": Case(_json(lambda: mutated("latestSuccessfulSync.events", ["boom"])), "error",
                             "an event is a string"),
    # answers that contradict themselves or look alike: never a pass
    "successful-failed": Case(_json(lambda: mutated("latestSuccessfulSync.status", "FAILED")), "failed",
                              "latestSuccessfulSync.status FAILED"),
    "successful-in-progress": Case(_json(lambda: mutated("latestSuccessfulSync.status", "IN_PROGRESS")), "failed",
                                   "latestSuccessfulSync.status IN_PROGRESS"),
    "sha-with-suffix": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.sha", SHA_A + "deadbeef")),
                            "failed", "sha = expected + 'deadbeef'"),
    "sha-short": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.sha", SHA_A[:12])), "failed",
                      "sha = a 12-digit prefix of the expected"),
    "sha-workflow-command": Case(
        _json(lambda: mutated("latestSuccessfulSync.targetRevision.sha", SHA_A + "\n::error::x")), "error",
        "sha = expected + '\\n::error::x'"),
    "repo-kelvin": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.repositoryName",
                                              "acme/\u212a8s-templates")),
                        "failed", "repository acme/\u212a8s-templates (Kelvin sign) for acme/k8s-templates",
                        repository="acme/k8s-templates"),
    "provider-dotless-i": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.repositoryProvider",
                                                     "G\u0131THUB")), "failed", "provider with a dotless i"),
    "directory-ideographic-space": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.directory",
                                                              "\u3000templates\u3000")), "failed",
                                        "directory wrapped in U+3000"),
    "directory-line-separator": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.directory",
                                                           "templates\u2028")), "error",
                                     "directory ending in U+2028"),
    "branch-ansi": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.branch", f"main{ESC}[8m")),
                        "error", "branch with an ANSI escape"),
    "repo-bidi": Case(_json(lambda: mutated("latestSuccessfulSync.targetRevision.repositoryName",
                                            "acme/platform-templates\u202e")), "error",
                      "repository name with a bidi override"),
    # text that must be shown as data, and capped
    "nasty-events": Case(_json(lambda: failed_latest([{"event": NASTY, "type": f"ERROR{ESC}[31m",
                                                       "time": 1_760_000_000}])), "failed",
                         "FAILED sync whose event has escapes and workflow commands"),
    "many-events": Case(_many_events, "failed", "FAILED sync with 100,000 events"),
    "huge-message": Case(_huge_message, "failed", "FAILED sync with a 5 MB event message"),
    "nasty-error": Case(lambda r, _: r.error("ValidationException", NASTY * 20_000), "error",
                        "400 ValidationException whose message is 3 MB of escapes"),
    "nasty-error-code": Case(lambda r, _: r.error(f"Denied{ESC}[2J::error::x", NASTY), "error",
                             "400 whose error code has escapes"),
    # retried like a 5xx: malformed once, then good -> passes
    "html-then-good": Case(_then_good(_body(b"<html>busy</html>", "text/html")), "passed",
                           "200 HTML once, then a good answer"),
    "truncated-then-good": Case(_then_good(_truncated_by_close), "passed", "truncated once, then a good answer"),
}

# Bounded by the call deadline, not the read timeout: tested in subprocesses with tight bounds.
SLOW_CASES: dict[str, Case] = {
    "trickle": Case(lambda r, _: r.trickle(json.dumps(good()).encode(), 1.0), "error",
                    "a good answer trickled at 1 byte/s"),
    "silent": Case(lambda r, _: r.silence(), "error", "accepts the connection, never answers"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HostileServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        params = json.loads(self.rfile.read(length) or b"{}")
        name = str(params.get("templateName", ""))
        case = self.server.cases.get(name)
        with self.server.lock:
            number = self.server.calls[name]
            self.server.calls[name] += 1
        reply = Reply(self)
        if case is None or not self.headers.get("X-Amz-Target", "").startswith(TARGET_PREFIX):
            reply.error("ValidationException", f"no such case {name!r}")
            return
        try:
            case.answer(reply, number)
        except (ConnectionError, OSError):
            self.close_connection = True
        else:
            with self.server.lock:
                self.server.answered[name] += 1  # the whole answer is written (a hanging case never gets here)


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default listen backlog is 5. The fetch opens up to 32 connections at once; on a busy machine
    # the accept queue overflowed (the kernel's ListenOverflows rose by hundreds per run) and a connection the
    # client took for open was dropped before its answer: "Connection was closed before we received a valid
    # response", an attempt lost, once in about 20 runs three at a time. With 256: none in 36 such runs.
    request_queue_size = 256

    def __init__(self, cases: dict[str, Case] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cases = {**CASES, **SLOW_CASES} if cases is None else cases
        self.calls: Counter[str] = Counter()  # requests received, by case
        self.answered: Counter[str] = Counter()  # answers written in full, by case
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def server_bind(self) -> None:
        import socketserver

        socketserver.TCPServer.server_bind(self)  # no FQDN lookup
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def __enter__(self) -> HostileServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()


def main(argv: list[str] | None = None) -> None:
    """Serve every case until killed, printing the endpoint URL; with ``--manifest PATH [CASE|CASE*N ...]`` also
    write a manifest of those cases (default: every fast case), e.g. for the measurements in the report::

        python -m tests.hostile --manifest /tmp/m.yaml silent*200 &
        AWS_ENDPOINT_URL_PROTON=<url> AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1 \\
            pytest -p no:cacheprovider --proton-manifest /tmp/m.yaml
    """
    import argparse
    from pathlib import Path

    import yaml

    parser = argparse.ArgumentParser(prog="python -m tests.hostile")
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args(argv)
    with HostileServer() as server:
        entries = []
        for spec in args.cases or list(CASES):
            name, _, count = spec.partition("*")
            case = server.cases[name]
            names = [f"{name}{i}" for i in range(int(count))] if count else [name]
            for entry_name in names:
                server.cases[entry_name] = case
                repository = {**REPO, "name": case.repository} if case.repository else dict(REPO)
                entries.append({"name": entry_name, "type": "ENVIRONMENT", "version": "1", "sha": SHA_A,
                                "repository": repository})
        if args.manifest:
            args.manifest.write_text(yaml.safe_dump({"version": 1, "templates": entries}, sort_keys=False))
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
