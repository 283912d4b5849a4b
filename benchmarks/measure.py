"""The measurements: each experiment sets up the fake and its work directory, runs the contenders, returns data.

Full run (the default): ``compare`` (plugin vs hand-written gates at N = 100, 500, 2000, 50 ms per call),
``scale`` (10,000 targets at 0 ms, wall time and peak memory), ``idle`` (plugin installed, no manifest, one
trivial test; plus what the plugin imports) and ``wait_mode`` (targets converging under ``--proton-wait``).

Focused modes, for one number each with paired, interleaved runs (within a pair the order alternates, so
neither side always runs first) and the median of the per-pair ratios: ``speed_pairs`` (plugin / 32-thread
loop at N=500, 50 ms) and ``idle_pairs`` (plugin installed / ``-p no:proton_sync`` over 2,000 no-op tests).

Nothing here formats text; ``table`` turns the results into the report.
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contenders import (
    FLOOR_TEST,
    IDLE_TEST,
    MODULE_PROBE,
    THREAD_LOOP_WORKERS,
    Contender,
    contenders,
    prepare_workdir,
)
from fakesetup import converging_state, in_sync_state, make_entries
from quota import QuotaFakeServer
from runner import (
    WITHOUT_PLUGIN,
    BenchmarkError,
    ChildRun,
    checked,
    child_environment,
    progress,
    run_child,
    timed_call_counted,
)

from pytest_proton_sync.fake import FakeServer

LATENCY_MS = 50  # per answer, for the comparison runs, speed mode and wait mode
COMPARISON_SIZES = (100, 500, 2000)
REPEATED_UP_TO = 500  # sizes up to this are timed REPEATS times (median reported); larger ones once
REPEATS = 3
QUICK_SKIPS_SEQUENTIAL_AT = 2000

SCALE_SIZE = 10_000  # targets for the wall-time / peak-memory run, at 0 ms latency
IDLE_REPEATS = 15
WAIT_TARGETS = 40
WAIT_MAX_POLLS = 3  # target i needs i % 4 extra polls: 0, 1, 2 or 3
WAIT_POLL_INTERVAL = 1.0
WAIT_BUDGET = 120.0

SPEED_SIZE = 500  # speed mode: targets, at LATENCY_MS
SPEED_PAIRS = 7
IDLE_RATIO_TESTS = 2000  # idle mode: no-op tests in the one test file, no manifest
IDLE_RATIO_PAIRS = 21

SCALE_PAIRS_SIZE = 5_000  # scale mode: targets at 0 ms, wall time, CPU and peak memory, paired with the loop
SCALE_PAIRS = 5
QUOTA_SIZE = 300  # quota mode: targets behind a token bucket of QUOTA_RATE requests/s, burst QUOTA_BURST
QUOTA_RATE = 25.0
QUOTA_BURST = 25.0
QUOTA_LATENCY_MS = 20
QUOTA_PAIRS = 5
QUOTA_FLOOR_SECONDS = (QUOTA_SIZE - QUOTA_BURST) / QUOTA_RATE  # the burst is free, the rest comes at the rate

# --- plugin vs hand-written gates ----------------------------------------------------------------------------


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


@dataclass
class ComparisonRow:
    size: int
    repeats: int
    samples: dict[str, Samples]
    skipped: set[str]


def compare(root: Path, python: str, quick: bool) -> list[ComparisonRow]:
    rows: list[ComparisonRow] = []
    everyone = [c for c in contenders(python) if c.key != "adaptive"]  # the adaptive loop is for the quota
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
    checked(run_child([*base, "-p", WITHOUT_PLUGIN], work, env), "idle warm-up")
    for repeat in range(1, IDLE_REPEATS + 1):
        progress(f"idle overhead: pair {repeat}/{IDLE_REPEATS}")
        with_plugin.append(checked(run_child(base, work, env), "idle with plugin").wall_seconds)
        without_plugin.append(
            checked(run_child([*base, "-p", WITHOUT_PLUGIN], work, env), "idle without plugin").wall_seconds
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


# --- focused modes: paired, interleaved runs -----------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One subject run and one reference run, back to back, in the order given by ``subject_first``."""

    subject_first: bool
    subject: ChildRun
    subject_calls: int
    reference: ChildRun
    reference_calls: int
    subject_throttled: int = 0  # requests the quota endpoint refused (quota mode only)
    reference_throttled: int = 0
    subject_span: float = 0.0  # seconds from its first request to its last (quota mode only)
    reference_span: float = 0.0

    @property
    def ratio(self) -> float:
        return self.subject.wall_seconds / self.reference.wall_seconds


@dataclass(frozen=True)
class PairedResult:
    subject: str  # label of the measured command, e.g. "plugin"
    reference: str  # label of what it is divided by
    pairs: list[Pair]

    @property
    def ratios(self) -> list[float]:
        return [pair.ratio for pair in self.pairs]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)


def run_pairs(
    subject: Contender,
    reference: Contender,
    count: int,
    server: FakeServer | None,
    work: Path,
    env: Mapping[str, str],
    what: str,
    expected_output: Mapping[str, str] | None = None,
) -> PairedResult:
    """``count`` pairs; even-numbered pairs run the subject first, odd-numbered ones the reference first.

    Each command runs once untimed first (file cache, ``.pyc`` files). Without a server, calls count as 0.
    ``expected_output``: per contender key, a text its output must contain (its verdicts), or the run is an error.
    """

    def timed(contender: Contender, label: str) -> tuple[ChildRun, int, int, float]:
        if server is None:
            return checked(run_child(contender.command, work, env), label), 0, 0, 0.0
        run, calls = timed_call_counted(server, contender.command, work, env, label)
        throttled = server.throttled() if isinstance(server, QuotaFakeServer) else 0
        span = server.request_span() if isinstance(server, QuotaFakeServer) else 0.0
        wanted = (expected_output or {}).get(contender.key)
        if wanted is not None and wanted not in run.output:
            raise BenchmarkError(f"{label}: its output does not say {wanted!r}:\n{run.output[-2000:]}")
        return run, calls, throttled, span

    for contender in (subject, reference):
        progress(f"{what}: warm-up {contender.label}")
        timed(contender, f"{what} warm-up {contender.label}")
    pairs: list[Pair] = []
    for index in range(count):
        subject_first = index % 2 == 0
        order = (subject, reference) if subject_first else (reference, subject)
        results: dict[str, tuple[ChildRun, int, int, float]] = {}
        for contender in order:
            progress(f"{what}: pair {index + 1}/{count}, {contender.label}")
            results[contender.key] = timed(contender, f"{what} {contender.label}")
        subject_run, subject_calls, subject_throttled, subject_span = results[subject.key]
        reference_run, reference_calls, reference_throttled, reference_span = results[reference.key]
        pairs.append(Pair(subject_first, subject_run, subject_calls, reference_run, reference_calls,
                          subject_throttled, reference_throttled, subject_span, reference_span))
    return PairedResult(subject.label, reference.label, pairs)


def speed_pairs(root: Path, python: str, count: int) -> PairedResult:
    """The plugin and the 32-thread loop, N=SPEED_SIZE at LATENCY_MS, ``count`` paired runs."""
    entries = make_entries(SPEED_SIZE)
    work = root / f"speed-{SPEED_SIZE}"
    prepare_workdir(work, entries)
    by_key = {c.key: c for c in contenders(python)}
    expected = {"plugin": f"{SPEED_SIZE} passed", "loop": f"{SPEED_SIZE} in sync, 0 not"}
    with FakeServer(in_sync_state(entries, LATENCY_MS)) as server:
        env = child_environment(server.endpoint_url)
        return run_pairs(by_key["plugin"], by_key["loop"], count, server, work, env, f"speed N={SPEED_SIZE}",
                         expected)


def idle_pairs(root: Path, python: str, count: int) -> PairedResult:
    """IDLE_RATIO_TESTS no-op tests, no manifest: plugin installed vs ``-p no:proton_sync``, ``count`` pairs."""
    work = root / "idle-ratio"
    work.mkdir(parents=True, exist_ok=True)
    (work / "test_noop.py").write_text(FLOOR_TEST.format(count=IDLE_RATIO_TESTS), encoding="utf-8")
    base = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_noop.py"]
    with_plugin = Contender("with", "plugin installed", base)
    without_plugin = Contender("without", "-p no:proton_sync", [*base, "-p", WITHOUT_PLUGIN])
    env = child_environment(None)
    return run_pairs(with_plugin, without_plugin, count, None, work, env, f"idle {IDLE_RATIO_TESTS} tests")


def scale_pairs(root: Path, python: str, count: int) -> PairedResult:
    """The plugin and the 32-thread loop, N=SCALE_PAIRS_SIZE at 0 ms (CPU-bound): wall time, CPU, peak memory."""
    entries = make_entries(SCALE_PAIRS_SIZE)
    work = root / f"scale-pairs-{SCALE_PAIRS_SIZE}"
    prepare_workdir(work, entries)
    by_key = {c.key: c for c in contenders(python)}
    expected = {"plugin": f"{SCALE_PAIRS_SIZE} passed", "loop": f"{SCALE_PAIRS_SIZE} in sync, 0 not"}
    with FakeServer(in_sync_state(entries, 0)) as server:
        env = child_environment(server.endpoint_url)
        return run_pairs(by_key["plugin"], by_key["loop"], count, server, work, env,
                         f"scale N={SCALE_PAIRS_SIZE}", expected)


def quota_pairs(root: Path, python: str, count: int) -> PairedResult:
    """The plugin (default settings) and the 32-thread loop in botocore's adaptive retry mode (10 attempts),
    QUOTA_SIZE targets behind QUOTA_RATE requests/s (burst QUOTA_BURST) at QUOTA_LATENCY_MS per answer."""
    entries = make_entries(QUOTA_SIZE)
    work = root / f"quota-{QUOTA_SIZE}"
    prepare_workdir(work, entries)
    by_key = {c.key: c for c in contenders(python)}
    expected = {"plugin": f"{QUOTA_SIZE} passed", "adaptive": f"{QUOTA_SIZE} in sync, 0 not"}
    with QuotaFakeServer(in_sync_state(entries, QUOTA_LATENCY_MS), QUOTA_RATE, QUOTA_BURST) as server:
        env = child_environment(server.endpoint_url)
        return run_pairs(by_key["plugin"], by_key["adaptive"], count, server, work, env,
                         f"quota N={QUOTA_SIZE}", expected)
