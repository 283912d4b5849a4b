"""One pytest run's proton-sync state: settings from options, the bundled fake, fetching once, the summary.

plugin.py's hooks delegate here; this module is imported only when a manifest is in play.
"""

from __future__ import annotations

import contextlib  # WIRING(hostile)
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .exchange import Exchange
from .model import CheckError, Observation, SyncStatus, Target
from .report import Row, format_table

EXCHANGE_INPUT = "proton_sync_exchange"

NON_TTY_PROGRESS_EVERY = 10.0  # seconds between plain progress lines in CI logs  # WIRING(hostile): was 30


def _option(config: pytest.Config, name: str, ini: str | None = None) -> Any:
    value = config.getoption(name)
    if value is None and ini is not None:
        raw = config.getini(ini)
        value = raw if raw not in ("", None) else None
    return value


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _number(config: pytest.Config, dest: str, kind: type[Any], default: Any, minimum: float = 0.0) -> Any:
    """An option's value, else the ini value, else ``default``; a bad value is a usage error, not a traceback."""
    value = _option(config, dest, dest)
    if value is None:
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"{_flag(dest)} (ini {dest}) takes a {'whole ' if kind is int else ''}number, not {value!r}"
        ) from None
    if number < minimum:
        raise pytest.UsageError(f"{_flag(dest)} (ini {dest}) must be at least {minimum:g}, not {value!r}")
    return number


def _choice(config: pytest.Config, dest: str, allowed: tuple[str, ...], default: str) -> str:
    value = _option(config, dest, dest)
    if value is None:
        return default
    if value not in allowed:
        raise pytest.UsageError(f"{_flag(dest)} (ini {dest}) is one of {', '.join(allowed)}, not {value!r}")
    return str(value)


class ProtonSyncRun:
    def __init__(self, config: pytest.Config, manifests: Sequence[Path]) -> None:
        self.config = config
        self.manifests = tuple(manifests)
        self._resolved_manifests = frozenset(_resolved(path) for path in self.manifests)
        self.fake: Any = None  # FakeServer under --proton-fake
        self.observations: dict[tuple[str, ...], Observation] | None = None
        self.exchange: Exchange | None = None
        self.api_calls = 0
        self._fetched_at_all = False
        self._pool: Any = None
        self._settings: Any = None
        self._outcomes: dict[str, str] = {}
        self._rows: dict[str, Row] = {}
        self._board: ObservationBoard | None = None
        self._fetch_thread: threading.Thread | None = None
        self._stop_fetching = threading.Event()
        self._unredact: Callable[[], None] | None = None

    def is_manifest(self, path: Path) -> bool:
        """Whether pytest's collection reached one of the manifests (called for every file it walks)."""
        return _resolved(path) in self._resolved_manifests

    # -- set-up -------------------------------------------------------------------------------------------
    @property
    def is_xdist_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def is_xdist_controller(self) -> bool:
        return self.config.pluginmanager.hasplugin("dsession")

    def start(self) -> None:
        """Mask credentials in the AWS libraries' log records; in the process that asks the API (not an xdist
        worker), start the fake when asked for."""
        from .redact import install

        self._unredact = install()
        if self.is_xdist_worker:
            directory = self.config.workerinput.get(EXCHANGE_INPUT)  # type: ignore[attr-defined]
            self.exchange = Exchange(Path(directory)) if directory else None
            return
        self.settings()  # every option and ini value checked now: a bad one is a usage error before anything starts
        self._settings = None  # made again below, once the fake's address is known
        state = self.config.getoption("proton_fake")
        if state:
            from .fake import FakeServer, FakeState, FakeStateError

            try:
                self.fake = FakeServer(FakeState.from_file(Path(state))).start()
            except (FakeStateError, OSError) as exc:
                raise pytest.UsageError(f"--proton-fake {state}: {exc}") from None

    def stop(self) -> None:
        self._stop_fetching.set()  # a background fetch still running (Ctrl-C, -x) stops at its next step
        _skip_garbage_collection_at_exit()
        if self._unredact is not None:
            self._unredact()
            self._unredact = None
        if self.fake is not None:
            self.fake.stop()
            self.fake = None
        if self.exchange is not None and not self.is_xdist_worker:
            self.exchange.remove()

    def settings(self) -> Any:
        if self._settings is None:
            from .fetch import FetchSettings

            config = self.config
            self._settings = FetchSettings(
                concurrency=_number(config, "proton_concurrency", int, 32, minimum=1),
                max_attempts=_number(config, "proton_max_attempts", int, 10, minimum=1),  # WIRING(hostile)
                call_timeout=_number(config, "proton_call_timeout", float, 30.0, minimum=0.001),  # WIRING(hostile)
                retry_mode=_choice(config, "proton_retry_mode", ("standard", "adaptive"), "standard"),
                connect_timeout=_number(config, "proton_connect_timeout", float, 5.0, minimum=0.001),
                read_timeout=_number(config, "proton_read_timeout", float, 20.0, minimum=0.001),
                max_rps=_number(config, "proton_max_rps", float, 0.0) or None,
                wait_seconds=_number(config, "proton_wait", float, 0.0),
                poll_interval=_number(config, "proton_poll_interval", float, 10.0, minimum=0.01),
                region=_option(config, "proton_region", "proton_region"),
                endpoint_url=self.fake.endpoint_url if self.fake is not None else None,
                use_fake_credentials=self.fake is not None,
            )
        return self._settings

    def client_pool(self) -> Any:
        if self._pool is None:
            from .fetch import ClientPool

            settings = self.settings()
            hook = self.config.hook

            def make_client(service: str, region: str) -> Any:
                return hook.pytest_proton_sync_make_client(service=service, region=region, settings=settings)

            self._pool = ClientPool(settings, make_client)
        return self._pool

    def header_lines(self) -> list[str]:
        names = ", ".join(str(path) for path in self.manifests)
        lines = [f"proton-sync: manifests {names}"]
        if self.fake is not None:
            lines.append(f"proton-sync: endpoint {self.fake.endpoint_url} (bundled fake, no AWS calls)")
            return lines
        try:
            from .fetch import default_region

            region = default_region(self.settings())
            where = f"region {region}" if region else (
                "no default region (AWS_REGION, AWS_DEFAULT_REGION, --proton-region unset): entries must name one"
            )
            endpoint = ""
            if region:
                url = str(self.client_pool().client("proton", region).meta.endpoint_url)
                if not url.endswith(".amazonaws.com") and ".amazonaws.com/" not in url:
                    from .redact import redact as masked  # WIRING(hostile)

                    endpoint = f", endpoint {masked(url)}"  # WIRING(hostile): user:password@ masked
            lines.append(f"proton-sync: {where}{endpoint}")
        except Exception as exc:
            from .redact import redact

            lines.append(f"proton-sync: AWS configuration problem: {type(exc).__name__}: {redact(str(exc))}")
        return lines

    # -- fetching -----------------------------------------------------------------------------------------
    def fetch(self, targets: Sequence[Target], background: bool = False) -> None:
        """Ask the API about every selected target, once, and keep the observations.

        ``background`` (only without --proton-wait): fetch in a thread and let each item wait for its own
        target, so pytest runs and reports the first items while the rest are still on their way.
        """
        from .fetch import Fetcher, observe
        from .verdict import is_settled

        hook = self.config.hook

        def assess(target: Target, status: SyncStatus) -> tuple[bool, bool]:
            passes = bool(hook.pytest_proton_sync_judge(target=target, status=status).passed)
            return passes, passes or is_settled(target, status)

        fetcher = Fetcher(self.settings(), self.client_pool())
        if background and self.settings().wait_seconds <= 0:
            self._fetch_in_background(targets, fetcher, assess)
            return
        printer = ProgressPrinter(self.config) if self.settings().wait_seconds > 0 else None
        try:
            self.observations = observe(targets, fetcher, assess, printer)
        finally:
            if printer is not None:
                printer.finish()
        self._fetched_at_all = True
        self.api_calls += fetcher.api_calls
        hook.pytest_proton_sync_observed(observations=list(self.observations.values()), config=self.config)

    def _fetch_in_background(self, targets: Sequence[Target], fetcher: Any, assess: Any) -> None:
        from .fetch import observe

        printer = ProgressPrinter(self.config)  # WIRING(hostile): what is pending, every 10 s, from the main thread
        board = self._board = ObservationBoard(on_wait=printer.print_latest)  # WIRING(hostile)
        stop = self._stop_fetching

        def work() -> None:
            observations: dict[tuple[str, ...], Observation] = {}
            try:
                # Clients are made here, in this one thread, before any worker thread uses them.
                observations = observe(targets, fetcher, assess, on_final=board.put, stop=stop,
                                       progress=printer.remember)  # WIRING(hostile)
            finally:
                board.finish(observations)  # even after an unexpected error: no item may wait forever
                self.api_calls += fetcher.api_calls

        self._fetch_thread = threading.Thread(target=work, name="proton-sync-fetch", daemon=True)
        self._fetch_thread.start()

    def finish_fetch(self) -> None:
        """After the run loop: wait for a background fetch and tell the hooks what was observed."""
        thread, board = self._fetch_thread, self._board
        if thread is None or board is None:
            return
        self._fetch_thread = None
        thread.join()
        self.observations = board.everything()
        self._fetched_at_all = True
        self.config.hook.pytest_proton_sync_observed(
            observations=list(self.observations.values()), config=self.config
        )

    def observation_for(self, target: Target) -> Observation:
        from dataclasses import replace

        if self._board is not None:
            observation = self._board.get(target.key)
            if observation is None:
                return Observation(target, error=CheckError(
                    "NotObserved", "the fetch ended before this target was asked (see the errors above)"))
            return replace(observation, target=target)
        if self.observations is None and self.exchange is not None:
            self.observations = self.exchange.read_observations()
        observation = (self.observations or {}).get(target.key)
        if observation is None and not self.is_xdist_worker:
            # Not fetched up front (e.g. a plugin that runs items outside the run loop): ask for this one alone,
            # keeping what was already observed, so no target is asked twice.
            earlier = self.observations or {}
            self.fetch([target])
            self.observations = {**earlier, **(self.observations or {})}
            observation = self.observations.get(target.key)
        if observation is None:
            return Observation(target, error=CheckError(
                "NoObservation", "the xdist controller did not hand over this target's sync status"))
        return replace(observation, target=target)

    # -- xdist --------------------------------------------------------------------------------------------
    def prepare_exchange(self) -> str:
        if self.exchange is None:
            self.exchange = Exchange.create()
        return str(self.exchange.directory)

    def fetch_for_worker(self, worker_id: str) -> None:
        """Controller: the first worker's collection is in; ask the API once for all, before scheduling."""
        if self.exchange is None or self._fetched_at_all:
            return
        targets = self.exchange.read_targets(worker_id)
        if targets is None:
            return
        self.fetch(targets)
        assert self.observations is not None
        self.exchange.write_observations(self.observations)

    # -- reporting ----------------------------------------------------------------------------------------
    def record(self, report: pytest.TestReport) -> None:
        outcome = self._outcomes.get(report.nodeid)
        if report.when == "setup" and report.failed:
            outcome = "error"
        elif report.when == "call":
            outcome = "passed" if report.passed else "failed" if report.failed else "skipped"
        elif report.skipped and outcome is None:
            outcome = "skipped"
        if outcome is not None:
            self._outcomes[report.nodeid] = outcome
        if report.when == "teardown":
            row = Row.from_properties(report.user_properties, self._outcomes.get(report.nodeid, "error"))
            if row is not None:
                self._rows[report.nodeid] = row

    def summary_lines(self, verbose: bool) -> list[str]:
        if not self._rows:
            return []
        lines = format_table(list(self._rows.values()), show_passed=verbose or len(self._rows) <= 50)
        if self._fetched_at_all:  # in the process that asked (under xdist: the controller)
            lines.append(f"{self.api_calls} sync-status calls (one per target and poll; botocore retries not counted)")
        return lines


_EXIT_HOOK_REGISTERED = False


def _skip_garbage_collection_at_exit() -> None:
    """At interpreter exit, spare the final garbage collections the walk over every object still alive.

    A gate run ends with some 110,000 tracked objects (pytest's, botocore's service models, one item per target);
    CPython's shutdown runs full collections over all of them, which cost about 0.3 s of a 1.6 s run at 500
    targets, for memory the OS takes back anyway. gc.freeze() in an atexit handler runs only when the process
    really exits, so a long-lived host that calls pytest.main() repeatedly is not affected. (Python never
    promised __del__ for objects alive at exit; flushing stdout/stderr and atexit handlers are unaffected.)
    """
    global _EXIT_HOOK_REGISTERED
    if not _EXIT_HOOK_REGISTERED:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _EXIT_HOOK_REGISTERED = True


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


class ObservationBoard:
    """Observations as a background fetch delivers them; an item waits only for its own target's."""

    def __init__(self, on_wait: Callable[[], None] | None = None) -> None:  # WIRING(hostile)
        self._on_wait = on_wait  # WIRING(hostile)
        self._changed = threading.Condition()
        self._observations: dict[tuple[str, ...], Observation] = {}
        self._finished = False

    def put(self, observation: Observation) -> None:
        with self._changed:
            self._observations[observation.target.key] = observation
            self._changed.notify_all()

    def finish(self, observations: dict[tuple[str, ...], Observation]) -> None:
        with self._changed:
            self._observations.update(observations)
            self._finished = True
            self._changed.notify_all()

    def get(self, key: tuple[str, ...]) -> Observation | None:
        with self._changed:
            while not self._changed.wait_for(lambda: key in self._observations or self._finished,
                                             timeout=NON_TTY_PROGRESS_EVERY):  # WIRING(hostile)
                if self._on_wait is not None:  # WIRING(hostile)
                    self._on_wait()  # WIRING(hostile)
            return self._observations.get(key)

    def everything(self) -> dict[tuple[str, ...], Observation]:
        with self._changed:
            return dict(self._observations)


class ProgressPrinter:
    """While waiting: a live status line on a terminal; a plain line every so often in a CI log."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config  # WIRING(hostile)
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.live = bool(self.reporter is not None and self.reporter.isatty)
        self._last_plain = 0.0
        self._printed = False

    def __call__(self, progress: Any) -> None:
        if self.reporter is None:
            return
        line = progress.line  # WIRING(hostile): says which calls are under way, and for how long
        now = time.monotonic()
        if self.live:
            self.reporter.rewrite(line, erase=True)
            self._printed = True
        elif now - self._last_plain >= NON_TTY_PROGRESS_EVERY or progress.pending == 0:
            self.reporter.write_line(line)
            self._last_plain = now

    def remember(self, progress: Any) -> None:  # WIRING(hostile): background fetch, printed by print_latest
        self._latest = progress  # WIRING(hostile)

    def print_latest(self) -> None:  # WIRING(hostile): called by the main thread while an item waits
        latest = getattr(self, "_latest", None)  # WIRING(hostile)
        capman = self.config.pluginmanager.get_plugin("capturemanager")  # WIRING(hostile)
        if latest is not None and self.reporter is not None:  # WIRING(hostile)
            with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():  # WIRING(hostile)
                self.reporter.write_line(latest.line)  # WIRING(hostile)

    def finish(self) -> None:
        if self.reporter is not None and self.live and self._printed:
            self.reporter.write_line("")
