"""SIGTERM and SIGINT during a fetch or a wait: stop within a second or two, report what is known, exit non-zero.

CI sends SIGTERM when a job is cancelled or times out, and a person presses Ctrl-C (SIGINT). While the plugin is
asking the API, either signal sets one process-wide :class:`Cancellation`: the fetcher's watchdog shuts down the
sockets of requests in flight (so no hung endpoint can hold the process), every target not settled yet becomes an
*error* "cancelled", the remaining items report that at once, and then :func:`finish` ends the session with
``pytest.exit`` so the summary prints and JUnit is written: exit code 2 for SIGINT (as pytest does) and
:data:`SIGTERM_EXIT_CODE` (143, the shell's 128 + 15) for SIGTERM. A second signal, or a signal while no fetch is
running, interrupts at once as usual.

Signals are process-wide, so the token is too: :func:`install` makes a fresh one for a run (in the main thread)
and :func:`current` is what the fetcher consults. Imports no boto3; pytest only inside :func:`finish` and the
handler, where it is already loaded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGINT_EXIT_CODE = 2  # pytest's ExitCode.INTERRUPTED
SIGTERM_EXIT_CODE = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended
_EXIT_CODES = {"SIGINT": SIGINT_EXIT_CODE, "SIGTERM": SIGTERM_EXIT_CODE}


class Cancellation:
    """A cancellation token: ``event`` is set once a signal (or :meth:`cancel`) asks the run to stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None
        self._fetching = 0
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}

    # -- asking -----------------------------------------------------------------------------------------------
    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) when cancelled meanwhile."""
        return self.event.wait(max(0.0, seconds))

    @property
    def reason(self) -> str:
        return f"cancelled by {self.signal_name or 'request'}"

    @property
    def returncode(self) -> int:
        return _EXIT_CODES.get(self.signal_name or "", SIGTERM_EXIT_CODE)

    def cancel(self, signal_name: str = "SIGTERM") -> None:
        with self._lock:
            if self.signal_name is None:
                self.signal_name = signal_name
        self.event.set()

    # -- a fetch in progress ------------------------------------------------------------------------------------
    def fetch_started(self) -> None:
        with self._lock:
            self._fetching += 1

    def fetch_ended(self) -> None:
        with self._lock:
            self._fetching = max(0, self._fetching - 1)

    @property
    def fetching(self) -> bool:
        return self._fetching > 0

    # -- signals ------------------------------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        again = self.requested
        self.cancel(name)
        if again or not self.fetching:
            # Nothing of ours to wind down (or asked twice): interrupt now, the way pytest would.
            raise _interruption(self.signal_name or name)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set signal handlers (pytest embedded in a thread: leave them)
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue  # e.g. started with nohup: keep ignoring, as asked
            self._previous[signum] = previous
            signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
        self._previous.clear()


def _interruption(signal_name: str) -> BaseException:
    if signal_name == "SIGINT":
        return KeyboardInterrupt()
    import pytest

    return pytest.exit.Exception(f"cancelled by {signal_name}", returncode=_EXIT_CODES.get(signal_name, 1))


_CURRENT = Cancellation()


def current() -> Cancellation:
    """The token of the run in progress (an inert one between runs)."""
    return _CURRENT


def install() -> Cancellation:
    """A fresh token for this run, with SIGTERM and SIGINT handlers that set it (main thread only)."""
    global _CURRENT
    token = Cancellation()
    token.install()
    _CURRENT = token
    return token


_FINISHED: Cancellation | None = None


def finish(token: Cancellation, exit_: Callable[..., Any] | None = None) -> None:
    """End of the run loop: restore the previous handlers; if the run was cancelled, end the session as
    interrupted, so pytest prints the summary (it does so only for its own exit codes) and writes JUnit;
    :func:`exit_status` then gives the signal's own code."""
    global _CURRENT, _FINISHED
    token.uninstall()
    if _CURRENT is token:
        _CURRENT = Cancellation()
    _FINISHED = token if token.requested else None
    if token.requested:
        if exit_ is None:
            import pytest

            exit_ = pytest.exit
        exit_(f"{token.reason}: targets not settled were reported as errors", returncode=SIGINT_EXIT_CODE)


def exit_status(status: int) -> int:
    """After pytest_sessionfinish: the session's exit status, or the code of the signal that cancelled it."""
    global _FINISHED
    token, _FINISHED = _FINISHED, None
    return token.returncode if token is not None else status
