"""Benchmark pytest-proton-sync against hand-written alternatives, on the bundled fake, with public tools only.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench.py            # everything (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick    # skips the ~2 minute sequential pytest at N=2000

Every timed run is a whole child process (Python start-up included) against the bundled fake AWS Proton
endpoint, started in this process on 127.0.0.1. The report (markdown) goes to stdout and to
``benchmarks/results.md``; progress lines go to stderr. See ``benchmarks/README.md`` for the method.

Needs nothing beyond the project's own dependencies (pytest, boto3, PyYAML) and the standard library.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from pytest_proton_sync.fake import FakeServer, FakeState

# --- what is measured --------------------------------------------------------------------------------------

REPOSITORY: dict[str, str] = {"provider": "GITHUB", "name": "acme/platform-templates", "branch": "main"}
REGION = "us-east-1"
OPERATION = "GetTemplateSyncStatus"

LATENCY_MS = 50  # per answer, for the comparison runs and wait mode
COMPARISON_SIZES = (100, 500, 2000)
REPEATED_UP_TO = 500  # sizes up to this are timed REPEATS times (median reported); larger ones once
REPEATS = 3
QUICK_SKIPS_SEQUENTIAL_AT = 2000
THREAD_LOOP_WORKERS = 32

SCALE_SIZE = 10_000  # targets for the wall-time / peak-memory run, at 0 ms latency
IDLE_REPEATS = 15
WAIT_TARGETS = 40
WAIT_MAX_POLLS = 3  # target i needs i % 4 extra polls: 0, 1, 2 or 3
WAIT_POLL_INTERVAL = 1.0
WAIT_BUDGET = 120.0

# Goals (reported as PASS/MISS, never asserted).
GOAL_PLUGIN_VS_LOOP = 1.3  # plugin whole run <= 1.3 x the 32-thread loop's, at N=500
GOAL_SEQUENTIAL_VS_PLUGIN = 15.0  # plugin >= 15 x faster than the sequential pytest, at N=500
GOAL_IDLE_OVERHEAD = 0.05  # <= 5 % slower with the plugin installed and no manifest
GOAL_WAIT_SLACK_INTERVALS = 1.0  # wait mode finishes within about one poll interval of the ideal

CHILD_TIMEOUT_SECONDS = 900.0
HEAVY_MODULES = ("boto3", "botocore", "yaml", "jsonschema")

# --- the hand-written alternatives, as a person would write them ---------------------------------------------

SEQUENTIAL_TEST = '''\
"""One test per manifest entry, one call after another: the obvious hand-written gate."""

from pathlib import Path

import boto3
import pytest
import yaml

MANIFEST = yaml.safe_load((Path(__file__).parent / "manifest.yaml").read_text())
CLIENT = boto3.client("proton")


@pytest.mark.parametrize(
    "entry", MANIFEST["templates"], ids=[f"{e['type']}/{e['name']}@{e['version']}" for e in MANIFEST["templates"]]
)
def test_synced(entry):
    response = CLIENT.get_template_sync_status(
        templateName=entry["name"], templateType=entry["type"], templateVersion=str(entry["version"])
    )
    assert response["latestSuccessfulSync"]["targetRevision"]["sha"] == entry["sha"]
'''

THREAD_LOOP = f'''\
"""Every manifest entry checked by {THREAD_LOOP_WORKERS} threads sharing one client: the fast hand-written gate."""

import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.config
import yaml

with open(sys.argv[1]) as handle:
    MANIFEST = yaml.safe_load(handle)
CLIENT = boto3.client("proton", config=botocore.config.Config(max_pool_connections={THREAD_LOOP_WORKERS}))


def synced(entry):
    response = CLIENT.get_template_sync_status(
        templateName=entry["name"], templateType=entry["type"], templateVersion=str(entry["version"])
    )
    return response["latestSuccessfulSync"]["targetRevision"]["sha"] == entry["sha"]


with ThreadPoolExecutor({THREAD_LOOP_WORKERS}) as pool:
    results = list(pool.map(synced, MANIFEST["templates"]))
failed = results.count(False)
print(f"{{len(results) - failed}} in sync, {{failed}} not")
sys.exit(1 if failed else 0)
'''

# Not a gate: N no-op tests and no network. What "one pytest test per entry" costs before any API call.
FLOOR_TEST = """\
import pytest


@pytest.mark.parametrize("index", range({count}))
def test_nothing(index):
    pass
"""

IDLE_TEST = "def test_x():\n    pass\n"

MODULE_PROBE = f"""\
import sys

HEAVY = {HEAVY_MODULES!r}


def pytest_unconfigure(config):
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
    ours = sorted(name for name in sys.modules if name.startswith("pytest_proton_sync"))
    print("PROBE heavy=" + ",".join(sorted({{name.split(".")[0] for name in loaded}})), file=sys.stderr)
    print("PROBE ours=" + ",".join(ours), file=sys.stderr)
"""


# --- fixtures: states and manifests --------------------------------------------------------------------------


def sha_of(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    name: str
    type: str
    version: str
    sha: str

    def manifest_entry(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "version": self.version, "sha": self.sha}


def make_entries(count: int) -> list[Entry]:
    return [
        Entry(
            name=f"tmpl-{index:05d}",
            type="ENVIRONMENT" if index % 2 else "SERVICE",
            version=str(index % 3 + 1),
            sha=sha_of(f"commit-{index}"),
        )
        for index in range(count)
    ]


def in_sync_state(entries: Sequence[Entry], latency_ms: float) -> FakeState:
    templates = [{"name": e.name, "type": e.type, "version": e.version, "synced": e.sha} for e in entries]
    return fake_state(templates, latency_ms)


def converging_state(entries: Sequence[Entry], polls: Sequence[int], latency_ms: float) -> FakeState:
    """Entry i answers IN_PROGRESS (of its expected sha) polls[i] times, then synced from it."""
    templates: list[dict[str, Any]] = []
    for entry, extra_polls in zip(entries, polls, strict=True):
        template: dict[str, Any] = {"name": entry.name, "type": entry.type, "version": entry.version}
        if extra_polls == 0:
            template["synced"] = entry.sha
        else:
            template["synced"] = sha_of(f"older-{entry.name}")
            syncing = {"latest": {"status": "IN_PROGRESS", "sha": entry.sha}}
            template["sequence"] = [syncing] * extra_polls + [{"synced": entry.sha}]
        templates.append(template)
    return fake_state(templates, latency_ms)


def fake_state(templates: list[dict[str, Any]], latency_ms: float) -> FakeState:
    return FakeState.from_mapping(
        {
            "defaults": {"repository": dict(REPOSITORY)},
            "templates": templates,
            "faults": {"latency_ms": latency_ms, "seed": 1},
        },
        source="benchmarks/bench.py",
    )


def write_manifest(path: Path, entries: Sequence[Entry]) -> Path:
    document = {
        "version": 1,
        "defaults": {"region": REGION, "repository": dict(REPOSITORY)},
        "templates": [entry.manifest_entry() for entry in entries],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# --- running children ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    wall_seconds: float
    max_rss_mib: float
    exit_code: int
    output: str


def child_environment(endpoint_url: str | None) -> dict[str, str]:
    """The caller's environment without anything that could change what AWS or pytest do, plus dummy creds."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "PYTEST_", "BOTO_")) and key not in ("PYTHONPATH", "PYTHONSTARTUP")
    }
    missing = str(Path(tempfile.gettempdir()) / "pytest-proton-sync-bench-no-such-file")
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": missing,
            "AWS_SHARED_CREDENTIALS_FILE": missing,
        }
    )
    if endpoint_url is not None:
        env["AWS_ENDPOINT_URL_PROTON"] = endpoint_url
    return env


def _max_rss_mib(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes.
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def run_child(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> ChildRun:
    """Run one child to completion; wall time from spawn to exit, and that child's own peak RSS.

    The child is reaped with ``os.wait4``, which returns the resource usage of exactly that process (unlike
    ``getrusage(RUSAGE_CHILDREN)``, a running maximum over all children ever reaped).
    """
    with tempfile.TemporaryFile(mode="w+b") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
        timer = threading.Timer(CHILD_TIMEOUT_SECONDS, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; stop Popen from waiting again
        output.seek(0)
        text = output.read().decode("utf-8", errors="replace")
    return ChildRun(wall, _max_rss_mib(usage.ru_maxrss), process.returncode, text)


class BenchmarkError(RuntimeError):
    pass


def checked(run: ChildRun, what: str) -> ChildRun:
    """A timing of a run that did not do its job is meaningless: stop with its output."""
    if run.exit_code != 0:
        tail = "\n".join(run.output.splitlines()[-30:])
        raise BenchmarkError(f"{what} exited with {run.exit_code}; its output ends with:\n{tail}")
    return run


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the three ways to gate on N targets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    command: list[str]  # run in the work directory that holds manifest.yaml and the hand-written scripts


def contenders(python: str) -> list[Contender]:
    return [
        Contender(
            "plugin",
            "plugin",
            [python, "-m", "pytest", "--proton-manifest", "manifest.yaml", "-q", "-p", "no:cacheprovider"],
        ),
        Contender(
            "sequential",
            "sequential pytest",
            [python, "-m", "pytest", "test_sequential.py", "-q", "-p", "no:cacheprovider", "-p", "no:proton_sync"],
        ),
        Contender("loop", f"{THREAD_LOOP_WORKERS}-thread loop", [python, "thread_loop.py", "manifest.yaml"]),
        Contender(
            "floor",
            "pytest floor",
            [python, "-m", "pytest", "test_floor.py", "-q", "-p", "no:cacheprovider", "-p", "no:proton_sync"],
        ),
    ]


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    max_rss_mib: list[float] = field(default_factory=list)

    def add(self, run: ChildRun, calls: int) -> None:
        self.seconds.append(run.wall_seconds)
        self.calls.append(calls)
        self.max_rss_mib.append(run.max_rss_mib)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def calls_text(self) -> str:
        low, high = min(self.calls), max(self.calls)
        return str(low) if low == high else f"{low}-{high}"


def timed_call_counted(
    server: FakeServer, argv: Sequence[str], cwd: Path, env: Mapping[str, str], what: str
) -> tuple[ChildRun, int]:
    server.reset_calls()
    run = checked(run_child(argv, cwd, env), what)
    return run, server.total_calls(operation=OPERATION)


def prepare_workdir(work: Path, entries: Sequence[Entry]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    write_manifest(work / "manifest.yaml", entries)
    (work / "test_sequential.py").write_text(SEQUENTIAL_TEST, encoding="utf-8")
    (work / "thread_loop.py").write_text(THREAD_LOOP, encoding="utf-8")
    (work / "test_floor.py").write_text(FLOOR_TEST.format(count=len(entries)), encoding="utf-8")


@dataclass
class ComparisonRow:
    size: int
    repeats: int
    samples: dict[str, Samples]
    skipped: set[str]


def compare(root: Path, python: str, quick: bool) -> list[ComparisonRow]:
    rows: list[ComparisonRow] = []
    everyone = contenders(python)
    # Warm-up (not recorded): fills the OS file cache and writes the .pyc files every later run reads.
    warm = root / "warm-up"
    entries = make_entries(20)
    prepare_workdir(warm, entries)
    with FakeServer(in_sync_state(entries, 0)) as server:
        env = child_environment(server.endpoint_url)
        for contender in everyone:
            progress(f"warm-up: {contender.label}")
            timed_call_counted(server, contender.command, warm, env, f"warm-up {contender.label}")

    for size in COMPARISON_SIZES:
        entries = make_entries(size)
        work = root / f"compare-{size}"
        prepare_workdir(work, entries)
        repeats = REPEATS if size <= REPEATED_UP_TO else 1
        skipped = {"sequential"} if quick and size >= QUICK_SKIPS_SEQUENTIAL_AT else set()
        row = ComparisonRow(size, repeats, {c.key: Samples() for c in everyone}, skipped)
        with FakeServer(in_sync_state(entries, LATENCY_MS)) as server:
            env = child_environment(server.endpoint_url)
            # Interleaved (plugin, sequential, loop, plugin, ...) so slow drift in the machine hits all alike.
            for repeat in range(1, repeats + 1):
                for contender in everyone:
                    if contender.key in skipped:
                        continue
                    progress(f"N={size}: {contender.label}, run {repeat}/{repeats}")
                    run, calls = timed_call_counted(server, contender.command, work, env, f"N={size} {contender.label}")
                    row.samples[contender.key].add(run, calls)
        rows.append(row)
    return rows


# --- scale: many targets, no latency -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleResult:
    size: int
    plugin: ChildRun
    plugin_calls: int
    loop: ChildRun
    loop_calls: int
    floor: ChildRun


def scale(root: Path, python: str) -> ScaleResult:
    entries = make_entries(SCALE_SIZE)
    work = root / f"scale-{SCALE_SIZE}"
    prepare_workdir(work, entries)
    by_key = {c.key: c for c in contenders(python)}
    with FakeServer(in_sync_state(entries, 0)) as server:
        env = child_environment(server.endpoint_url)
        progress(f"N={SCALE_SIZE} at 0 ms: plugin")
        plugin, plugin_calls = timed_call_counted(server, by_key["plugin"].command, work, env, "scale plugin")
        progress(f"N={SCALE_SIZE} at 0 ms: {THREAD_LOOP_WORKERS}-thread loop (reference)")
        loop, loop_calls = timed_call_counted(server, by_key["loop"].command, work, env, "scale loop")
        progress(f"N={SCALE_SIZE}: pytest floor (reference)")
        floor = checked(run_child(by_key["floor"].command, work, env), "scale pytest floor")
    return ScaleResult(SCALE_SIZE, plugin, plugin_calls, loop, loop_calls, floor)


# --- idle overhead -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleResult:
    with_plugin: list[float]
    without_plugin: list[float]
    importtime_modules: list[str]
    pytest_modules: set[str]
    run_heavy_modules: str
    run_our_modules: str

    @property
    def overhead(self) -> float:
        base = statistics.median(self.without_plugin)
        return (statistics.median(self.with_plugin) - base) / base


def imported_modules(python: str, code: str, env: Mapping[str, str], cwd: Path) -> list[str]:
    """Module names ``python -X importtime -c code`` reports, in import order."""
    completed = subprocess.run(
        [python, "-X", "importtime", "-c", code], cwd=cwd, env=dict(env), capture_output=True, text=True, check=True
    )
    names: list[str] = []
    for line in completed.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.append(name)
    return names


def idle(root: Path, python: str) -> IdleResult:
    work = root / "idle"
    work.mkdir()
    (work / "test_idle.py").write_text(IDLE_TEST, encoding="utf-8")
    env = child_environment(None)
    base = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_idle.py"]
    with_plugin: list[float] = []
    without_plugin: list[float] = []
    checked(run_child(base, work, env), "idle warm-up")
    checked(run_child([*base, "-p", "no:proton_sync"], work, env), "idle warm-up")
    for repeat in range(1, IDLE_REPEATS + 1):
        progress(f"idle overhead: pair {repeat}/{IDLE_REPEATS}")
        with_plugin.append(checked(run_child(base, work, env), "idle with plugin").wall_seconds)
        without_plugin.append(
            checked(run_child([*base, "-p", "no:proton_sync"], work, env), "idle without plugin").wall_seconds
        )

    progress("idle: import-time and module probes")
    plugin_modules = imported_modules(python, "import pytest_proton_sync.plugin", env, work)
    pytest_modules = set(imported_modules(python, "import pytest", env, work))
    # What a whole pytest run without a manifest ends up importing (the hooks run, not just the import).
    probe = root / "probe"
    probe.mkdir()
    (probe / "conftest.py").write_text(MODULE_PROBE, encoding="utf-8")
    (probe / "test_idle.py").write_text(IDLE_TEST, encoding="utf-8")
    probe_run = checked(run_child([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], probe, env), "probe")
    heavy = ours = "?"
    for line in probe_run.output.splitlines():
        if line.startswith("PROBE heavy="):
            heavy = line.split("=", 1)[1] or "none"
        elif line.startswith("PROBE ours="):
            ours = line.split("=", 1)[1] or "none"
    return IdleResult(with_plugin, without_plugin, plugin_modules, pytest_modules, heavy, ours)


# --- wait mode -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitResult:
    targets: int
    polls: list[int]
    waiting: ChildRun
    waiting_calls: int
    baseline: ChildRun  # the same manifest, all in sync, looked at once
    baseline_calls: int

    @property
    def expected_calls(self) -> int:
        return sum(p + 1 for p in self.polls)

    @property
    def ideal_extra_seconds(self) -> float:
        return max(self.polls) * WAIT_POLL_INTERVAL

    @property
    def extra_seconds(self) -> float:
        return self.waiting.wall_seconds - self.baseline.wall_seconds


def wait_mode(root: Path, python: str) -> WaitResult:
    entries = make_entries(WAIT_TARGETS)
    polls = [index % (WAIT_MAX_POLLS + 1) for index in range(WAIT_TARGETS)]
    work = root / "wait"
    prepare_workdir(work, entries)
    plugin = [python, "-m", "pytest", "--proton-manifest", "manifest.yaml", "-q", "-p", "no:cacheprovider"]
    wait_options = ["--proton-wait", f"{WAIT_BUDGET:g}", "--proton-poll-interval", f"{WAIT_POLL_INTERVAL:g}"]
    with FakeServer(in_sync_state(entries, LATENCY_MS)) as server:
        env = child_environment(server.endpoint_url)
        progress(f"wait mode: baseline, {WAIT_TARGETS} targets already in sync")
        baseline, baseline_calls = timed_call_counted(server, [*plugin, *wait_options], work, env, "wait baseline")
        server.set_state(converging_state(entries, polls, LATENCY_MS))
        progress(f"wait mode: {WAIT_TARGETS} targets converging after 0-{WAIT_MAX_POLLS} polls")
        waiting, waiting_calls = timed_call_counted(server, [*plugin, *wait_options], work, env, "wait mode")
    return WaitResult(WAIT_TARGETS, polls, waiting, waiting_calls, baseline, baseline_calls)


# --- the report ----------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def usable_cores() -> str:
    logical = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return str(logical)
    return f"{usable} usable of {logical} logical"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def source_revision() -> str:
    """The commit the plugin was measured at, and whether the working tree had changes on top of it."""
    repository = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} (+ uncommitted changes in src/)" if changes else commit


def machine_lines() -> list[str]:
    rows = [
        ("CPU", cpu_model()),
        ("cores", usable_cores()),
        ("RAM", memory_gib()),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        *[(name, version_of(name)) for name in ("pytest-proton-sync", "pytest", "boto3", "botocore", "PyYAML")],
        ("plugin source", source_revision()),
    ]
    return ["| | |", "| --- | --- |", *[f"| {key} | {value} |" for key, value in rows]]


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def comparison_lines(rows: Sequence[ComparisonRow]) -> list[str]:
    lines = [
        f"Whole runs as child processes (Python start-up included), fake latency {LATENCY_MS} ms per call, all "
        "targets in sync. Median of the repeats. The pytest floor is N no-op parametrized tests without network: "
        "what one pytest test per entry costs before any API call.",
        "",
        "| N | repeats | plugin | sequential pytest | 32-thread loop | plugin / loop | sequential / plugin "
        "| API calls (plugin / sequential / loop) | pytest floor (no-op tests) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        plugin, sequential, loop, floor = (row.samples[key] for key in ("plugin", "sequential", "loop", "floor"))
        skipped = "sequential" in row.skipped
        sequential_text = "skipped (--quick)" if skipped else seconds(sequential.median)
        speedup = "-" if skipped else f"{sequential.median / plugin.median:.1f}x"
        calls = " / ".join(("-" if skipped and s is sequential else s.calls_text) for s in (plugin, sequential, loop))
        lines.append(
            f"| {row.size} | {row.repeats} | {seconds(plugin.median)} | {sequential_text} | {seconds(loop.median)} "
            f"| {plugin.median / loop.median:.2f}x | {speedup} | {calls} | {seconds(floor.median)} |"
        )
    lines += [
        "",
        "Every sample (seconds, in run order):",
        "",
        "| N | plugin | sequential pytest | 32-thread loop | pytest floor |",
        "| ---: | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [
            "skipped" if key in row.skipped else ", ".join(f"{s:.2f}" for s in row.samples[key].seconds)
            for key in ("plugin", "sequential", "loop", "floor")
        ]
        lines.append(f"| {row.size} | {' | '.join(cells)} |")
    return lines


def scale_lines(result: ScaleResult) -> list[str]:
    return [
        f"{result.size} targets, fake latency 0 ms, default concurrency; peak RSS of the child itself (os.wait4).",
        "",
        "| run | wall time | peak RSS | API calls |",
        "| --- | ---: | ---: | ---: |",
        f"| plugin | {seconds(result.plugin.wall_seconds)} | {result.plugin.max_rss_mib:.0f} MiB "
        f"| {result.plugin_calls} |",
        f"| 32-thread loop (reference) | {seconds(result.loop.wall_seconds)} | {result.loop.max_rss_mib:.0f} MiB "
        f"| {result.loop_calls} |",
        f"| pytest floor: {result.size} no-op tests (reference) | {seconds(result.floor.wall_seconds)} "
        f"| {result.floor.max_rss_mib:.0f} MiB | 0 |",
        "",
        f"plugin / loop: {result.plugin.wall_seconds / result.loop.wall_seconds:.2f}x",
    ]


def idle_lines(result: IdleResult) -> list[str]:
    with_median, without_median = statistics.median(result.with_plugin), statistics.median(result.without_plugin)
    beyond_pytest = [name for name in result.importtime_modules if name not in result.pytest_modules]
    heavy_at_import = sorted({name.split(".")[0] for name in result.importtime_modules} & set(HEAVY_MODULES))
    return [
        f"A trivial run (one `def test_x(): pass`, no manifest), {IDLE_REPEATS} alternating repeats each, median.",
        "",
        "| run | median | min | max |",
        "| --- | ---: | ---: | ---: |",
        f"| plugin installed | {with_median * 1000:.0f} ms | {min(result.with_plugin) * 1000:.0f} ms "
        f"| {max(result.with_plugin) * 1000:.0f} ms |",
        f"| `-p no:proton_sync` | {without_median * 1000:.0f} ms | {min(result.without_plugin) * 1000:.0f} ms "
        f"| {max(result.without_plugin) * 1000:.0f} ms |",
        "",
        f"Overhead: {result.overhead * 100:+.1f} % ({(with_median - without_median) * 1000:+.0f} ms).",
        "",
        f'`python -X importtime -c "import pytest_proton_sync.plugin"`: {len(result.importtime_modules)} modules; '
        f"{len(beyond_pytest)} of them beyond what `import pytest` loads: "
        f"{', '.join(f'`{name}`' for name in beyond_pytest) or 'none'}.",
        f"boto3 / botocore / yaml / jsonschema imported at plugin load: {', '.join(heavy_at_import) or 'none'}.",
        f"After a whole pytest run without a manifest: heavy modules loaded: {result.run_heavy_modules}; "
        f"plugin modules loaded: {result.run_our_modules}.",
    ]


def wait_lines(result: WaitResult) -> list[str]:
    distribution = ", ".join(f"{result.polls.count(p)} x {p}" for p in range(WAIT_MAX_POLLS + 1))
    return [
        f"{result.targets} targets, fake latency {LATENCY_MS} ms; target i answers IN_PROGRESS for i % 4 polls "
        f"({distribution} extra polls), then synced. `--proton-wait {WAIT_BUDGET:g} --proton-poll-interval "
        f"{WAIT_POLL_INTERVAL:g}` (the interval has +-10 % jitter). The baseline is the same command with every "
        "target already in sync (one look), so start-up and collection cancel out.",
        "",
        "| run | wall time | API calls | expected calls |",
        "| --- | ---: | ---: | ---: |",
        f"| baseline (in sync, one look) | {seconds(result.baseline.wall_seconds)} | {result.baseline_calls} "
        f"| {result.targets} |",
        f"| converging | {seconds(result.waiting.wall_seconds)} | {result.waiting_calls} | {result.expected_calls} |",
        "",
        f"Time spent waiting: {seconds(result.extra_seconds)}; ideal for the slowest target "
        f"({max(result.polls)} intervals): {seconds(result.ideal_extra_seconds)}; excess: "
        f"{seconds(result.extra_seconds - result.ideal_extra_seconds)}.",
    ]


def goal_lines(
    rows: Sequence[ComparisonRow], scale_result: ScaleResult, idle_result: IdleResult, wait_result: WaitResult
) -> list[str]:
    lines = ["| goal | measured | result |", "| --- | --- | --- |"]
    at_500 = next((row for row in rows if row.size == 500), None)
    if at_500 is not None:
        plugin = at_500.samples["plugin"].median
        loop = at_500.samples["loop"].median
        ratio = plugin / loop
        lines.append(
            f"| N=500, {LATENCY_MS} ms: plugin <= {GOAL_PLUGIN_VS_LOOP}x the 32-thread loop | {ratio:.2f}x "
            f"({seconds(plugin)} vs {seconds(loop)}) | {verdict(ratio <= GOAL_PLUGIN_VS_LOOP)} |"
        )
        sequential = at_500.samples["sequential"].median
        speedup = sequential / plugin
        lines.append(
            f"| N=500, {LATENCY_MS} ms: plugin >= {GOAL_SEQUENTIAL_VS_PLUGIN:g}x faster than sequential pytest "
            f"| {speedup:.1f}x ({seconds(sequential)} vs {seconds(plugin)}) "
            f"| {verdict(speedup >= GOAL_SEQUENTIAL_VS_PLUGIN)} |"
        )
    plugin_calls = [(row.size, calls) for row in rows for calls in row.samples["plugin"].calls]
    plugin_calls.append((scale_result.size, scale_result.plugin_calls))
    wrong = [f"N={size}: {calls}" for size, calls in plugin_calls if calls != size]
    lines.append(
        f"| plugin API calls == targets (every plugin run: {len(plugin_calls)}) "
        f"| {'; '.join(wrong) or 'all equal'} | {verdict(not wrong)} |"
    )
    lines.append(
        f"| idle overhead <= {GOAL_IDLE_OVERHEAD * 100:g} % | {idle_result.overhead * 100:+.1f} % "
        f"| {verdict(idle_result.overhead <= GOAL_IDLE_OVERHEAD)} |"
    )
    heavy_at_import = {name.split(".")[0] for name in idle_result.importtime_modules} & set(HEAVY_MODULES)
    lines.append(
        f"| no boto3/botocore/yaml/jsonschema at plugin load | {', '.join(sorted(heavy_at_import)) or 'none'} "
        f"| {verdict(not heavy_at_import)} |"
    )
    excess = wait_result.extra_seconds - wait_result.ideal_extra_seconds
    lines.append(
        f"| wait mode within ~1 poll interval of the slowest target | excess {seconds(excess)} "
        f"(interval {WAIT_POLL_INTERVAL:g} s) | {verdict(excess <= GOAL_WAIT_SLACK_INTERVALS * WAIT_POLL_INTERVAL)} |"
    )
    lines.append(
        f"| wait mode API calls == sum(polls + 1) | {wait_result.waiting_calls} vs {wait_result.expected_calls} "
        f"| {verdict(wait_result.waiting_calls == wait_result.expected_calls)} |"
    )
    return lines


class Report:
    """Markdown printed as it is produced, and kept for benchmarks/results.md."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def section(self, title: str, lines: Sequence[str]) -> None:
        self.add(f"## {title}", "", *lines, "")

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pytest-proton-sync-bench-") as directory:
        yield Path(directory)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help=f"skip the sequential pytest at N={QUICK_SKIPS_SEQUENTIAL_AT} (~2 min)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent / "results.md",
        help="where to write the markdown report (default: benchmarks/results.md)",
    )
    options = parser.parse_args(argv)
    python = sys.executable
    command = shlex.join(["python", "benchmarks/bench.py", *(["--quick"] if options.quick else [])])

    report = Report()
    report.add(
        "# pytest-proton-sync benchmark",
        "",
        f"Command: `{command}` (with {python}), started {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
    )
    report.section("Machine", machine_lines())
    started = time.perf_counter()
    try:
        with workspace() as root:
            rows = compare(root, python, options.quick)
            report.section(f"1. Plugin vs hand-written gates ({LATENCY_MS} ms per call)", comparison_lines(rows))
            scale_result = scale(root, python)
            report.section(f"2. Scale: {SCALE_SIZE} targets at 0 ms", scale_lines(scale_result))
            idle_result = idle(root, python)
            report.section("3. Idle overhead (plugin installed, no manifest)", idle_lines(idle_result))
            wait_result = wait_mode(root, python)
            report.section("4. Wait mode", wait_lines(wait_result))
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    report.section("Goals", goal_lines(rows, scale_result, idle_result, wait_result))
    report.add(f"Total benchmark time: {time.perf_counter() - started:.0f} s.")
    options.output.write_text(report.text(), encoding="utf-8")
    progress(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
