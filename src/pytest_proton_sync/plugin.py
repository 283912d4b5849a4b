"""pytest hooks only: options, collection, item glue, report header and summary. The work lives elsewhere.

Nothing heavy is imported at plugin load: boto3, PyYAML, jsonschema and the fake are imported only once a
manifest is in play, so a pytest run without one pays nothing for having the plugin installed.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .keys import RUN_KEY

if TYPE_CHECKING:
    from .collect import ManifestFile
    from .run import ProtonSyncRun


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("proton-sync", "AWS Proton sync gate (pytest-proton-sync)")
    group.addoption("--proton-manifest", action="append", dest="proton_manifests", metavar="PATH",
                    help="manifest of expected template syncs; repeatable. Without other paths, only the "
                    "manifests' checks are collected.")
    parser.addini("proton_manifests", type="linelist", help="manifests, relative to the ini file's directory")
    group.addoption("--proton-region", dest="proton_region", metavar="REGION",
                    help="region for entries that name none (default: AWS_REGION, then boto3's chain)")
    parser.addini("proton_region", help="default for --proton-region")
    group.addoption("--proton-fake", dest="proton_fake", metavar="STATE",
                    help="start the bundled fake Proton endpoint on 127.0.0.1 with this state file and point "
                    "every client at it (no AWS credentials or calls)")
    _number_option(parser, group, "--proton-concurrency", "proton_concurrency", int,
                   "targets asked at once (default 32)")
    _number_option(parser, group, "--proton-wait", "proton_wait", float,
                   "wait up to SECONDS for targets to sync; a failed sync of the expected commit fails at "
                   "once (default 0: look once)")
    _number_option(parser, group, "--proton-poll-interval", "proton_poll_interval", float,
                   "seconds between polls while waiting, with jitter; doubles under throttling (default 10)")
    _number_option(parser, group, "--proton-max-attempts", "proton_max_attempts", int,  # WIRING(hostile)
                   "attempts per API call, retries included (default 10)")  # WIRING(hostile)
    _number_option(parser, group, "--proton-call-timeout", "proton_call_timeout", float,  # WIRING(hostile)
                   "deadline of one API call: connect, read, retries (default 30)")  # WIRING(hostile)
    group.addoption("--proton-retry-mode", dest="proton_retry_mode", choices=("standard", "adaptive"),
                    help="botocore retry mode (default standard)")
    parser.addini("proton_retry_mode", help="default for --proton-retry-mode")
    _number_option(parser, group, "--proton-connect-timeout", "proton_connect_timeout", float,
                   "seconds to connect (default 5)")
    _number_option(parser, group, "--proton-read-timeout", "proton_read_timeout", float,
                   "seconds to wait for an answer (default 20)")
    _number_option(parser, group, "--proton-max-rps", "proton_max_rps", float,
                   "client-side cap on requests per second across all targets (default: none)")


def _number_option(parser: pytest.Parser, group: Any, flag: str, dest: str, kind: type, text: str) -> None:
    # Parsed and checked with the ini value in run.py, so both get the same one-line usage error.
    group.addoption(flag, dest=dest, metavar="N" if kind is int else "SECONDS", help=text)
    parser.addini(dest, help=f"default for {flag}")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import defaults, hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.register(defaults, "proton_sync_defaults")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # With manifests and no paths, only the manifests are collected (pytest_configure). Look for the first
    # conftest.py files beside them too, not in testpaths: a gate run in a repository must not fail because
    # tests/conftest.py imports the unit tests' own dependencies. (known_args_namespace is the pre-parse
    # namespace pytest itself reads here; it has no underscore but no documentation either.)
    namespace = early_config.known_args_namespace
    if getattr(namespace, "file_or_dir", None):
        return
    manifests = _manifests(early_config, getattr(namespace, "proton_manifests", None) or [])
    for path in manifests:
        # Said here, before pytest would fall back to loading conftest.py files from tests/ and the like.
        if not (early_config.invocation_params.dir / path).is_file():
            raise pytest.UsageError(f"proton-sync manifest not found: {path}")
    if manifests:
        namespace.file_or_dir = [str(path) for path in manifests]


def _run(config: pytest.Config) -> ProtonSyncRun | None:
    return config.stash.get(RUN_KEY, None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "proton_sync: a sync check generated from a proton-sync manifest")
    manifests = _manifests(config)
    if not manifests:
        return
    from .run import ProtonSyncRun

    run = ProtonSyncRun(config, manifests)
    config.stash[RUN_KEY] = run
    # Manifests are what to collect. With no explicit paths on the command line, collect only them: a pipeline
    # gate should not also run the repository's unit tests found through testpaths.
    wanted = [str(path) for path in manifests]
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = wanted
        # Say so in the header too: pytest would otherwise print "testpaths: ..." it no longer collects.
        config.args_source = pytest.Config.ArgsSource.ARGS
    else:
        config.args.extend(a for a in wanted if a not in config.args)
    config.pluginmanager.register(_ReportRecorder(run), "proton_sync_recorder")
    run.start()


def _manifests(config: pytest.Config, given_on_command_line: list[str] | None = None) -> list[Path]:
    """--proton-manifest paths as given; else ini proton_manifests, relative to the ini file's directory."""
    if given_on_command_line is None:
        given_on_command_line = config.getoption("proton_manifests")
    given = [Path(p) for p in given_on_command_line or []]
    if given:
        return given
    base = config.inipath.parent if config.inipath else config.invocation_params.dir
    return [base / p for p in config.getini("proton_manifests") or []]


def pytest_unconfigure(config: pytest.Config) -> None:
    run = _run(config)
    if run is not None:
        run.stop()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ManifestFile | None:
    run = _run(parent.config)
    if run is None or not run.is_manifest(file_path):
        return None
    from .collect import ManifestFile

    return ManifestFile.from_parent(parent, path=file_path)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    run = _run(config)
    return run.header_lines() if run is not None else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    run = _run(session.config)
    if run is None or not run.is_xdist_worker or run.exchange is None or session.testsfailed:
        return
    # tryfirst: written before xdist tells the controller this worker's collection is finished.
    from .collect import TargetItem

    worker_id = session.config.workerinput["workerid"]  # type: ignore[attr-defined]
    run.exchange.write_targets(worker_id, [i.target for i in session.items if isinstance(i, TargetItem)])


# trylast: innermost of the wrappers, so pytest's logging capture (and --log-cli-level) is already set up and
# sees botocore's logs of the fetch, masked by redact.py.
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    run = _run(session.config)
    config = session.config
    cancellation = None  # WIRING(hostile): SIGTERM/SIGINT during the fetch -> targets "cancelled", summary, JUnit
    if run is not None and not run.is_xdist_worker:  # WIRING(hostile)
        from . import cancel  # WIRING(hostile)

        cancellation = cancel.install()  # WIRING(hostile)
    if (
        run is not None
        and not run.is_xdist_worker
        and not run.is_xdist_controller
        and not config.option.collectonly
        # pytest's own loop stops on collection errors; no API call may be made for an invalid manifest.
        and not (session.testsfailed and not config.option.continue_on_collection_errors)
    ):
        from .collect import TargetItem

        targets = [item.target for item in session.items if isinstance(item, TargetItem)]
        if targets:
            run.fetch(targets, background=True)
    try:
        return (yield)
    finally:
        if run is not None:
            run.finish_fetch()
        if cancellation is not None:  # WIRING(hostile)
            cancel.finish(cancellation)  # WIRING(hostile): pytest.exit with 2 (SIGINT) or 143 (SIGTERM)


@pytest.hookimpl(wrapper=True)  # WIRING(hostile): after JUnit and the summary, exit 143 for SIGTERM
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, object, object]:  # WIRING(hostile)
    result = yield  # WIRING(hostile)
    if _run(session.config) is not None:  # WIRING(hostile)
        from . import cancel  # WIRING(hostile)

        session.exitstatus = cancel.exit_status(session.exitstatus)  # WIRING(hostile)
    return result  # WIRING(hostile)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if call.excinfo is None or _run(item.config) is None:
        return report  # the common case, and every test of a run without a manifest: import nothing
    from .collect import CouldNotCheck

    # Setup errors normally get a traceback (pytest asks repr_failure only for the call phase); a target that
    # could not be checked deserves the same short text as a failure.
    if call.excinfo is not None and isinstance(call.excinfo.value, CouldNotCheck):
        report.longrepr = str(call.excinfo.value)
    return report


class _ReportRecorder:
    """Registered only when a manifest is in play. Records outcomes from test reports, which reach the xdist
    controller too, so the summary table is right under -n N."""

    def __init__(self, run: ProtonSyncRun) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.run.record(report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = _run(config)
    if run is None:
        return
    lines = run.summary_lines(verbose=config.option.verbose > 0)
    if lines:
        terminalreporter.write_sep("=", "proton sync")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: tell each worker where the controller will hand over the observations."""
    run = _run(node.config)
    if run is not None:
        from .run import EXCHANGE_INPUT

        node.workerinput[EXCHANGE_INPUT] = run.prepare_exchange()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist controller: the first finished collection triggers the one fetch, before any test is scheduled."""
    run = _run(node.config)
    if run is not None and not node.config.option.collectonly:
        run.fetch_for_worker(node.workerinput["workerid"])
