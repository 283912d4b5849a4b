"""The stateful part of a gate run, registered with pytest only when a manifest is in play.

The way pytest-xdist registers its ``DSession`` only when distributing, ``plugin.py`` registers one
:class:`ProtonSyncSession` only when there is a manifest; its methods are hook implementations, so a run without a
manifest pays nothing for them. The session owns: the bundled fake's lifecycle, log masking, the observation
store (fetching once), the xdist hand-over side, the results of every target and what is written from them (outputs.py).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Generator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_proton_sync.aws.accounts import Account
from pytest_proton_sync.aws.clients import FetchSettings
from pytest_proton_sync.fetch import cancel
from pytest_proton_sync.fetch.clients import ClientPool
from pytest_proton_sync.fetch.link_health import LinkHealth
from pytest_proton_sync.fetch.observations import ObservationStore
from pytest_proton_sync.git.expectations import Repository
from pytest_proton_sync.manifest.loader import Manifest
from pytest_proton_sync.model import CheckError, Observation, SyncStatus, Target, Verdict
from pytest_proton_sync.options import Options
from pytest_proton_sync.reports import coverage, junit, outputs
from pytest_proton_sync.reports.facts import TargetFacts
from pytest_proton_sync.reports.github import defuse, manifest_annotation_lines
from pytest_proton_sync.reports.results import RunResults, TargetResult, manifest_rank
from pytest_proton_sync.reports.table import junit_properties
from pytest_proton_sync.session import xdist_handover
from pytest_proton_sync.session.coverage_check import start_for
from pytest_proton_sync.session.header import header_lines
from pytest_proton_sync.session.heap import HeapFreezer, skip_collection_at_exit
from pytest_proton_sync.session.items import SESSION_KEY as SESSION_KEY  # plugin.py stores the session there
from pytest_proton_sync.session.items import CouldNotCheck, ManifestFile, TargetItem
from pytest_proton_sync.session.manifests import RunManifests, resolved
from pytest_proton_sync.session.progress import ProgressPrinter
from pytest_proton_sync.text.redact import install, redact
from pytest_proton_sync.yamlcheck.messages import plural
from pytest_proton_sync.yamlcheck.problems import Problem


class ProtonSyncSession:
    def __init__(self, config: pytest.Config, manifests: Sequence[Path], options: Options,
                 heap: HeapFreezer | None = None) -> None:
        self.config = config
        self.manifests = tuple(manifests)
        self.options = options
        self._resolved_manifests = frozenset(resolved(path) for path in self.manifests)
        self._manifest_paths_and_parents = frozenset(
            place
            for path in self.manifests
            for whole in {resolved(path), (config.invocation_params.dir / path).absolute()}
            for place in (whole, *whole.parents)
        )
        self.fake: Any = None  # FakeServer under --proton-fake
        self.results = RunResults()  # every target's outcome, text and facts, from its test reports
        self.per_target_properties = junit.per_target_properties(config)
        self.report_path: Path | None = None  # --proton-report, resolved
        self._started = datetime.now(timezone.utc)
        self._junit_writer: Any = None
        self._junit_writer_looked_up = False
        self._store: ObservationStore | None = None
        self._settings: FetchSettings | None = None
        self._clients: ClientPool | None = None
        self._worker: xdist_handover.WorkerSide | None = None
        self._unredact: Any = None
        self._repository: Repository | None = None
        self.run_manifests = RunManifests(self.manifests, config.invocation_params.dir)
        self._testcases: dict[int, str] = {}  # id() of the JUnit writer's testcase objects -> node id
        self._facts: dict[str, TargetFacts] = {}  # node id -> its facts record, while its test runs
        self._coverage_check: Any = None  # session/coverage_check.CoverageCheck under --proton-coverage warn|fail
        self.coverage: Any = None  # its reports/coverage.Coverage, once the run's checks are done
        self._link_health: Any = None  # fetch/link_health.LinkHealth, made for the first failing stack
        # A gate run's long-lived objects out of the full garbage collections (frozen since configure, if the plugin
        # could tell then that the run has manifests only).
        self._heap = heap or HeapFreezer()

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Mask credentials in the AWS libraries' log records; set up the xdist side of this process; in the process
        that asks the API, start the fake when asked for."""
        # Checked first: a usage error raised after install() would leave the masking installed (this session is
        # registered, and so unconfigured, only once start() returns).
        self.report_path = _report_path(self.config, self.options.report)
        self._unredact = install()
        self._heap.install(self.config)
        if xdist_handover.is_worker(self.config):
            self._worker = xdist_handover.WorkerSide(self.config)
            self.config.pluginmanager.register(self._worker, "proton_sync_xdist_worker")
            return
        if xdist_handover.distributes(self.config):
            controller = xdist_handover.ControllerSide(self._fetch_for_workers)
            self.config.pluginmanager.register(controller, "proton_sync_xdist_controller")
        if self.options.fake:
            self.fake = _start_fake(self.options.fake)  # a usage error still reaches this session's unconfigure

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._store is not None:
            self._store.stop()  # a background fetch still running (Ctrl-C, -x) stops at its next step
        skip_collection_at_exit()
        if self._unredact is not None:
            self._unredact()
            self._unredact = None
        if self.fake is not None:
            self.fake.stop()
            self.fake = None
        if self._repository is not None:
            self._repository.close()

    def settings(self) -> FetchSettings:
        if self._settings is None:
            self._settings = FetchSettings(
                self.options,
                endpoint_url=self.fake.endpoint_url if self.fake is not None else None,
                use_fake_credentials=self.fake is not None,
            )
        return self._settings

    def client_pool(self) -> ClientPool:
        if self._clients is None:
            settings = self.settings()
            hook = self.config.hook

            def make_client(service: str, region: str, account: Account | None) -> Any:
                return hook.pytest_proton_sync_make_client(
                    service=service, region=region, settings=settings, account=account
                )

            self._clients = ClientPool(settings, make_client)
        return self._clients

    @property
    def repository(self) -> Repository:
        """The git checkouts that ``rev:`` and ``match: content`` entries read (opened on first use)."""
        if self._repository is None:
            self._repository = Repository(self.options.git_dir)
        return self._repository

    @property
    def store(self) -> ObservationStore:
        if self._store is None:
            self._store = ObservationStore(self.settings(), self.client_pool, self._judge)
        return self._store

    # -- collection -------------------------------------------------------------------------------------------
    def manifest(self, path: Path) -> Manifest:
        """The manifest at ``path``, read once with the run's others; raises ManifestError (manifests.py)."""
        return self.run_manifests.get(path)

    def record_manifest_problems(self, path: Path, problems: Sequence[Problem]) -> None:
        """What collecting ``path`` found wrong (``()``: nothing), for the GitHub annotations and summary."""
        self.run_manifests.record(path, problems)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # here or, under xdist, a worker's collection handed to the controller
            self.run_manifests.collection_failed = True

    def manifest_problems(self) -> list[Problem]:
        """Every manifest problem of the run, in manifest order (manifests.py)."""
        return self.run_manifests.problems(lambda manifest, shown: self.repository.resolve(manifest, shown))

    @pytest.hookimpl(tryfirst=True)
    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        # A manifest in play is collected wherever it lives, as if it were on the command line: pytest drops a
        # path that a directory argument holds, and its walk skips dot-directories such as .github/.
        return False if collection_path in self._manifest_paths_and_parents else None

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> ManifestFile | None:
        if resolved(file_path) not in self._resolved_manifests:
            return None
        return ManifestFile.from_parent(parent, path=file_path)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        fake = self.fake.endpoint_url if self.fake is not None else None
        targets = self.run_manifests.targets() if fake is None else None
        return header_lines(self.manifests, fake, targets or (), self.settings())

    # -- running ----------------------------------------------------------------------------------------------
    # trylast: innermost of the wrappers, so pytest's logging capture (and --log-cli-level) is already set up and
    # sees botocore's logs of the fetch, masked by redact.py.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        config = session.config
        cancellation = None
        items = getattr(session, "items", ())
        self._heap.loop_started(bool(items) and all(isinstance(item, TargetItem) for item in items))
        if self._worker is None:
            # SIGTERM/SIGINT during the fetch: unsettled targets become errors "cancelled", then summary and JUnit.
            cancellation = cancel.install()
        if (
            self._worker is None
            and not config.option.collectonly
            # pytest's own loop stops on collection errors; no API call may be made for an invalid manifest.
            and not (session.testsfailed and not config.option.continue_on_collection_errors)
        ):
            # A target whose expectation the checkout cannot give is an error without asking the API. An xdist
            # controller collects nothing (pytest 7 does not even set session.items): it fetched for the workers.
            targets = [item.target for item in items
                       if isinstance(item, TargetItem) and item.target.expectation.history_problem is None]
            if self.options.coverage != "off":  # concurrently with the status calls; see session/coverage_check.py
                self._coverage_check = start_for(self.options.coverage, self.run_manifests.targets() or [],
                                                 self.client_pool())
            if targets:
                if self.options.wait > 0:
                    self._fetch_with_progress(targets)
                else:
                    # What is still pending is printed from the main thread, while an item waits for its answer.
                    printer = ProgressPrinter(self.config)
                    self.store.on_wait = printer.print_latest
                    self.store.fetch_in_background(targets, progress=printer.remember)
        try:
            return (yield)
        finally:
            if self._store is not None:
                self._store.finish()
            if cancellation is not None:
                cancel.finish(cancellation)  # pytest.exit with 2 (SIGINT) or 143 (SIGTERM) after a cancellation

    def pytest_runtest_logfinish(self) -> None:
        self._heap.target_done()

    def _fetch_with_progress(self, targets: Sequence[Target]) -> None:
        printer = ProgressPrinter(self.config)
        try:
            self.store.fetch(targets, printer)
        finally:
            printer.finish()

    def _fetch_for_workers(self, targets: Sequence[Target]) -> dict[tuple[str, ...], Observation]:
        """xdist controller: the first worker's collection is in; ask the API once for all, before scheduling."""
        if self.options.wait > 0:
            self._fetch_with_progress(targets)
        else:
            self.store.fetch(targets)
        return self.store.everything()

    def observation_for(self, target: Target, rerun: bool = False) -> Observation:
        """The target's observation. A rerun (pytest-rerunfailures) asks the API again, in the process that asks
        (a rerun exists to see whether things changed); an xdist worker cannot ask, and reuses the hand-over."""
        if target.expectation.history_problem is not None:
            return Observation(target, error=CheckError("HistoryMissing", target.expectation.history_problem))
        if self._worker is not None:
            observation = self._worker.observation(target.key)
            if observation is None:
                return Observation(target, error=CheckError(
                    "NoObservation", "the xdist controller did not hand over this target's sync status"))
            observation = replace(observation, target=target)
        elif rerun:
            observation = self.store.fetch_again(target)
        else:
            observation = self.store.get_or_fetch(target)
        return observation

    def link_health(self, observation: Observation) -> str:
        """The repository link's failed sync as the cause of a failing stack (fetch/link_health.py); "" if none. Asked
        where the API is asked: not in an xdist worker."""
        if self._worker is not None or observation.target.kind != "stack":
            return ""
        if self._link_health is None:
            pool = self.client_pool()
            self._link_health = LinkHealth(lambda region, spec: pool.client("codeconnections", region, spec))
        text: str = self._link_health.text(observation)
        return text

    def _judge(self, target: Target, status: SyncStatus) -> Verdict:
        compare = self.repository.compare if target.expectation.match == "content" else None
        verdict: Verdict = self.config.hook.pytest_proton_sync_judge(
            target=target, status=status, compare_content=compare
        )
        return verdict

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        if not isinstance(item, TargetItem):
            return report
        # Setup errors normally get a traceback (pytest asks repr_failure only for the call phase); a target that
        # could not be checked deserves the same short text as a failure. So does pytest.fail() from another
        # plugin (pytest-timeout's "Timeout"), whose traceback would be pytest's and pluggy's frames.
        raised = call.excinfo.value if call.excinfo is not None else None
        if isinstance(raised, CouldNotCheck):
            report.longrepr = str(raised)
        elif call.when == "setup" and isinstance(raised, pytest.fail.Exception):
            report.longrepr = f"{item.target.id} could not be checked: {raised}"
            if _is_timeout(raised):
                # pytest-timeout also dumped every thread's stack (the fetch's: botocore, pluggy) into the captured
                # output; what the reader needs is that no answer came in time, not ~150 lines per target of it.
                report.sections = [(title, text) for title, text in report.sections if TIMEOUT_BANNER not in text]
                report.longrepr += "\n  no answer before pytest-timeout's limit (see --proton-read-timeout)"
        if isinstance(report.longrepr, str):  # our texts quote the API's: no line of them may be a CI command
            report.longrepr = defuse(report.longrepr)
        facts = self._facts_of(item, call.when)
        # The record itself, read back in this process; pytest_report_to_serializable below makes it plain JSON
        # for whatever carries reports elsewhere (pytest-xdist to its controller, pytest-reportlog to its file).
        report.proton_sync = facts
        if self.per_target_properties and facts.observed:  # JUnit's <properties>, replaced on a rerun
            report.user_properties = [p for p in report.user_properties if not str(p[0]).startswith("proton.")]
            report.user_properties += junit_properties(facts)
        return report

    def _facts_of(self, item: TargetItem, when: str) -> TargetFacts:
        """The target's facts record, made once per run of its test: at its setup report, where the observation
        is decided; the call's and teardown's reports carry the same one."""
        facts = self._facts.get(item.nodeid)
        if facts is None or when == "setup":
            facts = TargetFacts.of(item.target, item.observation, str(item.path),
                                   with_document=self.report_path is not None)
            self._facts[item.nodeid] = facts
        if when == "teardown":
            del self._facts[item.nodeid]
        return facts

    # tryfirst: before pytest's JUnit writer sees the report (the classname must be set by then).
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Test reports reach the xdist controller too, so the summary is right under -n N.
        carried = getattr(report, "proton_sync", None)
        if isinstance(carried, TargetFacts):
            facts = carried
        elif isinstance(carried, dict):  # from an xdist worker
            facts = TargetFacts.from_wire(carried)
        else:
            return
        text = report.longreprtext if report.outcome in ("failed", "rerun") else None
        self.results.record(report.nodeid, report.when, report.outcome, facts, text, report.duration)
        writer = self.junit_writer()
        if writer is not None:
            testcase = junit.set_classname(writer, report, junit.classname(facts))
            self._testcases[id(testcase)] = report.nodeid  # the writer empties it once written; kept alive by it
            if report.failed and isinstance(report.longrepr, str):
                # JUnit's message attribute: the first reason and the next step, not the first lines of the text
                # (which stop before the mismatch); the element text keeps the whole report.
                # pytest types longrepr with its own (non-public) TerminalRepr; this one is read the same way.
                report.longrepr = junit.ShortMessage(  # type: ignore[assignment]
                    report.longrepr, junit.short_message(facts, report.longrepr))

    @pytest.hookimpl(wrapper=True)
    def pytest_report_to_serializable(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        data = yield
        if isinstance(data, dict) and isinstance(data.get("proton_sync"), TargetFacts):
            data["proton_sync"] = data["proton_sync"].wire()
        return data

    def junit_writer(self) -> Any:
        if not self._junit_writer_looked_up:  # pytest's is registered in pytest_configure, maybe after this session
            self._junit_writer = junit.junit_writer(self.config)
            self._junit_writer_looked_up = True
        return self._junit_writer

    # A wrapper: what comes before the yield runs before pytest's JUnit writer writes its file (suite properties
    # must be in by then); after it, the exit status of a SIGTERM (143), once JUnit and the summary are written.
    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, object, object]:
        self._before_sessionfinish(session)
        try:
            return (yield)
        finally:
            session.exitstatus = cancel.exit_status(session.exitstatus)

    def _before_sessionfinish(self, session: pytest.Session) -> None:
        if self._store is not None and self._store.fetched_here:
            observations = list(self._store.everything().values())
            self.config.hook.pytest_proton_sync_observed(observations=observations, config=self.config)
        if self._worker is not None:
            return
        if self._coverage_check is not None:
            self.coverage = self._coverage_check.result()
            if self.coverage.failed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        results = self.ordered_results()
        writer = self.junit_writer()
        if writer is not None:
            junit.add_suite_properties(writer, outputs.suite_properties(self.manifests, results, self.api_calls()))
            junit.order_testcases(writer, [result.nodeid for result in results], self._testcases)
            if self.coverage is not None:
                junit.add_suite_properties(writer, coverage.junit_properties(self.coverage))
        if self.report_path is not None:
            problem = outputs.write_json_report(
                self.report_path, started_at=self._started, manifests=self.manifests, api_calls=self.api_calls(),
                exit_status=int(session.exitstatus), results=results,
                coverage=coverage.report_section(self.coverage) if self.coverage is not None else None)
            if problem:
                _warn(self.config, problem)
                if session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if os.environ.get("GITHUB_ACTIONS") == "true":
            problem = outputs.append_step_summary(os.environ.get("GITHUB_STEP_SUMMARY"), results,
                                                  self.manifest_problems(), os.environ.get("GITHUB_WORKSPACE"))
            if problem:
                _warn(self.config, problem)

    def api_calls(self) -> int | None:
        """Sync-status calls this process made (None where it asked nothing: an xdist worker, --collect-only)."""
        return self._store.api_calls if self._store is not None and self._store.fetched_here else None

    def ordered_results(self) -> list[TargetResult]:
        ranks: dict[str, int] = {}
        for index, path in enumerate(self.manifests):
            ranks.setdefault(str(resolved(path)), index)
        rank = manifest_rank(ranks)
        key = functools.lru_cache(maxsize=None)(lambda path: str(resolved(Path(path))))  # a few manifests
        return self.results.ordered(lambda path: rank(key(path)) if path else len(ranks))

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        results = self.ordered_results()
        lines = outputs.summary_lines(results, show_passed=config.option.verbose > 0)
        if lines:
            calls = self.api_calls()
            if calls is not None:
                lines.append(f"{plural(calls, 'sync-status call')} (one per target and poll; retries not counted)"
                             if calls else "no sync-status call was sent (each target stopped before a request)")
            terminalreporter.write_sep("=", "proton sync")
            for line in lines:
                terminalreporter.write_line(line)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            # Workflow commands on stdout, one per line. Beside pytest-github-actions-annotate-failures, which
            # annotates failures (not setup errors) itself, only errors are annotated here: never twice.
            workspace = os.environ.get("GITHUB_WORKSPACE")
            for line in manifest_annotation_lines(self.manifest_problems(), workspace):
                terminalreporter.write_line(line)
            other = outputs.other_annotator_active(config)
            for line in outputs.github_annotations(results, workspace, errors_only=other):
                terminalreporter.write_line(line)
        if self.coverage is not None:
            terminalreporter.write_sep("=", "proton coverage")
            for line in coverage.summary_lines(self.coverage):
                terminalreporter.write_line(line)
            if os.environ.get("GITHUB_ACTIONS") == "true":
                for line in coverage.github_annotations(self.coverage, os.environ.get("GITHUB_WORKSPACE")):
                    terminalreporter.write_line(line)


# pytest-timeout's banner around the stacks it dumps, and the start of its failure message.
TIMEOUT_BANNER = "+ Timeout +"


# pytest-timeout's pytest.fail() text: "Timeout >0.3s" (2.2), "Timeout (>0.3s) from pytest-timeout." (2.3 and later)
_TIMEOUT_MESSAGE = re.compile(r"Timeout \(?>[0-9.e+-]+s\)?( from pytest-timeout\.)?\Z")


def _is_timeout(exception: BaseException) -> bool:
    return isinstance(exception, pytest.fail.Exception) and _TIMEOUT_MESSAGE.match(str(exception)) is not None


def _report_path(config: pytest.Config, value: str | None) -> Path | None:
    """--proton-report relative to where pytest was started; ini proton_report relative to the ini file."""
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        given = config.getoption("proton_report", None)
        base = config.invocation_params.dir if given or not config.inipath else config.inipath.parent
        path = base / path
    if not path.parent.is_dir():
        raise pytest.UsageError(f"--proton-report {value}: directory {path.parent} does not exist")
    return path


def _warn(config: pytest.Config, message: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(redact(f"proton-sync: {message}"), red=True)


def _start_fake(state: str) -> Any:
    # Imported here, as the command line does for its commands: only --proton-fake runs pay for the fake (its
    # HTTP server, API tables and state schema: about 25 ms and 15 dataclasses, a tenth of the plugin's start-up).
    from pytest_proton_sync.fake import FakeServer, FakeState, FakeStateError

    try:
        return FakeServer(FakeState.from_file(Path(state))).start()
    except (FakeStateError, OSError) as exc:
        raise pytest.UsageError(f"--proton-fake {state}: {exc}") from None

