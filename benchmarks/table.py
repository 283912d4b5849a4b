"""The report: markdown tables of the measurements, the machine they ran on, and each goal as PASS or MISS.

Pure formatting of what ``measure`` returns (plus the machine facts read here); it never asserts. ``Report``
prints each line as it is added and keeps the whole text for ``benchmarks/results.md``.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from contenders import HEAVY_MODULES
from measure import (
    IDLE_RATIO_TESTS,
    IDLE_REPEATS,
    LATENCY_MS,
    QUOTA_BURST,
    QUOTA_FLOOR_SECONDS,
    QUOTA_LATENCY_MS,
    QUOTA_RATE,
    QUOTA_SIZE,
    SCALE_PAIRS_SIZE,
    SPEED_SIZE,
    WAIT_BUDGET,
    WAIT_MAX_POLLS,
    WAIT_POLL_INTERVAL,
    ComparisonRow,
    IdleResult,
    PairedResult,
    ScaleResult,
    WaitResult,
)

# Goals (reported as PASS/MISS, never asserted).
GOAL_PLUGIN_VS_LOOP = 1.3  # plugin whole run <= 1.3 x the 32-thread loop's, at N=500
GOAL_SEQUENTIAL_VS_PLUGIN = 15.0  # plugin >= 15 x faster than the sequential pytest, at N=500
GOAL_IDLE_OVERHEAD = 0.05  # <= 5 % slower with the plugin installed and no manifest
GOAL_IDLE_RATIO = 1.01  # idle mode: median paired ratio over 2,000 no-op tests within 1 %
GOAL_WAIT_SLACK_INTERVALS = 1.0  # wait mode finishes within about one poll interval of the ideal
GOAL_SPEED_VS_LOOP = 1.25  # issue 18: N=500 at 50 ms, plugin <= 1.25x the loop (median paired ratio)
GOAL_SCALE_VS_LOOP = 1.5  # N=5,000 at 0 ms: plugin <= 1.5x the loop's wall time
GOAL_SCALE_MEMORY_VS_LOOP = 2.0  # and its peak memory <= 2x the loop's
GOAL_QUOTA_VS_FLOOR = 1.15  # quota: plugin wall time <= 1.15x the floor the quota sets
GOAL_QUOTA_THROTTLED_SHARE = 0.05  # and at most 5 % of its requests throttled


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


# --- focused modes -------------------------------------------------------------------------------------------


def pair_lines(result: PairedResult, calls: bool, memory: bool = False, throttled: bool = False) -> list[str]:
    """One row per pair, in run order, then the median of the per-pair ratios (and, for reference, their range)."""
    subject, reference = result.subject, result.reference
    header = f"| pair | first | {subject} | {reference} | {subject} / {reference} | CPU s (both) |"
    rule = "| ---: | --- | ---: | ---: | ---: | --- |"
    if calls:
        header += " API calls (both) |"
        rule += " --- |"
    if throttled:
        header += " throttled (both) |"
        rule += " --- |"
    if memory:
        header += " peak MiB (both) |"
        rule += " --- |"
    lines = [header, rule]
    for index, pair in enumerate(result.pairs, start=1):
        first = subject if pair.subject_first else reference
        row = (
            f"| {index} | {first} | {seconds(pair.subject.wall_seconds)} | {seconds(pair.reference.wall_seconds)} "
            f"| {pair.ratio:.3f}x | {pair.subject.cpu_seconds:.2f} / {pair.reference.cpu_seconds:.2f} |"
        )
        if calls:
            row += f" {pair.subject_calls} / {pair.reference_calls} |"
        if throttled:
            row += f" {pair.subject_throttled} / {pair.reference_throttled} |"
        if memory:
            row += f" {pair.subject.max_rss_mib:.0f} / {pair.reference.max_rss_mib:.0f} |"
        lines.append(row)
    subject_median = statistics.median(p.subject.wall_seconds for p in result.pairs)
    reference_median = statistics.median(p.reference.wall_seconds for p in result.pairs)
    lines += [
        "",
        f"Median of the {len(result.pairs)} per-pair ratios: **{result.median_ratio:.3f}x** (range "
        f"{min(result.ratios):.3f}x to {max(result.ratios):.3f}x). Medians of the runs themselves: "
        f"{seconds(subject_median)} vs {seconds(reference_median)}; CPU "
        f"{statistics.median(p.subject.cpu_seconds for p in result.pairs):.2f} s vs "
        f"{statistics.median(p.reference.cpu_seconds for p in result.pairs):.2f} s.",
    ]
    return lines


def spread(values: Sequence[float], fmt: str = ".2f") -> str:
    """median (min to max)"""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}} to {max(values):{fmt}})"


def speed_lines(result: PairedResult) -> list[str]:
    return [
        f"N={SPEED_SIZE} targets, all in sync, fake latency {LATENCY_MS} ms per call. Whole runs as child processes "
        f"(Python start-up included), {len(result.pairs)} pairs run back to back, the order alternating within "
        "pairs (plugin first in pair 1); one untimed warm-up run of each first.",
        "",
        *pair_lines(result, calls=True),
    ]


def idle_ratio_lines(result: PairedResult) -> list[str]:
    return [
        f"{IDLE_RATIO_TESTS} parametrized no-op tests in one file, no manifest, `python -m pytest -q -p "
        "no:cacheprovider test_noop.py` with the plugin installed and with `-p no:proton_sync`. "
        f"{len(result.pairs)} pairs run back to back, the order alternating within pairs (plugin installed first "
        "in pair 1); one untimed warm-up run of each first.",
        "",
        *pair_lines(result, calls=False),
    ]


def speed_goal_lines(result: PairedResult) -> list[str]:
    ratio = result.median_ratio
    wrong = [f"pair {i}: {p.subject_calls}" for i, p in enumerate(result.pairs, 1) if p.subject_calls != SPEED_SIZE]
    return [
        "| goal | measured | result |",
        "| --- | --- | --- |",
        f"| N={SPEED_SIZE}, {LATENCY_MS} ms: plugin <= {GOAL_PLUGIN_VS_LOOP}x the 32-thread loop (median paired "
        f"ratio) | {ratio:.3f}x | {verdict(ratio <= GOAL_PLUGIN_VS_LOOP)} |",
        f"| issue 18: plugin <= {GOAL_SPEED_VS_LOOP}x the loop (median paired ratio; range) | "
        f"{spread(result.ratios, '.3f')}x | {verdict(ratio <= GOAL_SPEED_VS_LOOP)} |",
        f"| plugin API calls == targets (every plugin run: {len(result.pairs)}) | {'; '.join(wrong) or 'all equal'} "
        f"| {verdict(not wrong)} |",
        cpu_ratio_line(result),
    ]


def cpu_ratio_line(result: PairedResult) -> str:
    """CPU seconds of the two runs of a pair, divided: steadier than wall time on a machine shared with other
    work, though it says nothing of waiting (a reference, not a goal)."""
    ratios = [p.subject.cpu_seconds / p.reference.cpu_seconds for p in result.pairs if p.reference.cpu_seconds > 0]
    measured = f"{spread(ratios, '.3f')}x" if ratios else "-"
    return f"| reference: CPU seconds, plugin / loop (paired ratio) | {measured} | - |"


def scale_pair_lines(result: PairedResult) -> list[str]:
    return [
        f"N={SCALE_PAIRS_SIZE} targets, all in sync, no latency (CPU-bound). Whole runs as child processes, "
        f"{len(result.pairs)} pairs back to back, the order alternating (plugin first in pair 1), one untimed "
        "warm-up of each first. Peak memory: each child's own `ru_maxrss`.",
        "",
        *pair_lines(result, calls=True, memory=True),
    ]


def scale_goal_lines(result: PairedResult) -> list[str]:
    ratio = result.median_ratio
    memory = [p.subject.max_rss_mib / p.reference.max_rss_mib for p in result.pairs]
    return [
        "| goal | measured: median (range) | result |",
        "| --- | --- | --- |",
        f"| N={SCALE_PAIRS_SIZE}, 0 ms: plugin <= {GOAL_SCALE_VS_LOOP}x the loop (paired ratio) | "
        f"{spread(result.ratios, '.3f')}x | {verdict(ratio <= GOAL_SCALE_VS_LOOP)} |",
        f"| peak memory <= {GOAL_SCALE_MEMORY_VS_LOOP}x the loop's (paired ratio) | {spread(memory)}x | "
        f"{verdict(statistics.median(memory) <= GOAL_SCALE_MEMORY_VS_LOOP)} |",
        cpu_ratio_line(result),
    ]


def quota_lines(result: PairedResult) -> list[str]:
    return [
        f"N={QUOTA_SIZE} targets, all in sync, behind a token bucket of {QUOTA_RATE:g} requests/s (burst "
        f"{QUOTA_BURST:g}) for the operation, {QUOTA_LATENCY_MS} ms per answer: the floor is "
        f"({QUOTA_SIZE} - {QUOTA_BURST:g}) / {QUOTA_RATE:g} = {QUOTA_FLOOR_SECONDS:.1f} s. The plugin with default "
        "settings; the loop with botocore's adaptive retry mode and 10 attempts. API calls count every request "
        f"the endpoint received, throttled ones included. {len(result.pairs)} pairs, the order alternating.",
        "",
        *pair_lines(result, calls=True, throttled=True),
        "",
        "Wall / floor is the whole child process (start-up, imports, collection and report included); request "
        "span / floor is from its first request to its last, as the endpoint saw them: what pacing decides.",
        "",
        "| contender | wall / floor: median (range) | request span / floor | throttled requests: median (range) "
        "| share of its requests |",
        "| --- | --- | --- | --- | --- |",
        f"| {result.subject} | {spread([p.subject.wall_seconds / QUOTA_FLOOR_SECONDS for p in result.pairs])}x | "
        f"{spread([p.subject_span / QUOTA_FLOOR_SECONDS for p in result.pairs], '.3f')}x | "
        f"{spread([p.subject_throttled for p in result.pairs], '.0f')} | "
        f"{spread([p.subject_throttled / max(1, p.subject_calls) * 100 for p in result.pairs], '.1f')} % |",
        f"| {result.reference} | {spread([p.reference.wall_seconds / QUOTA_FLOOR_SECONDS for p in result.pairs])}x | "
        f"{spread([p.reference_span / QUOTA_FLOOR_SECONDS for p in result.pairs], '.3f')}x | "
        f"{spread([p.reference_throttled for p in result.pairs], '.0f')} | "
        f"{spread([p.reference_throttled / max(1, p.reference_calls) * 100 for p in result.pairs], '.1f')} % |",
    ]


def quota_goal_lines(result: PairedResult) -> list[str]:
    floor_ratio = statistics.median(p.subject.wall_seconds / QUOTA_FLOOR_SECONDS for p in result.pairs)
    share = statistics.median(p.subject_throttled / max(1, p.subject_calls) for p in result.pairs)
    span_ratio = statistics.median(p.subject_span / QUOTA_FLOOR_SECONDS for p in result.pairs)
    return [
        "| goal | measured (median) | result |",
        "| --- | --- | --- |",
        f"| quota: plugin <= {GOAL_QUOTA_VS_FLOOR}x the floor ({QUOTA_FLOOR_SECONDS:.1f} s), whole run | "
        f"{floor_ratio:.3f}x | {verdict(floor_ratio <= GOAL_QUOTA_VS_FLOOR)} |",
        f"| quota: plugin's first to last request <= {GOAL_QUOTA_VS_FLOOR}x the floor | {span_ratio:.3f}x | "
        f"{verdict(span_ratio <= GOAL_QUOTA_VS_FLOOR)} |",
        f"| quota: <= {GOAL_QUOTA_THROTTLED_SHARE:.0%} of the plugin's requests throttled | {share:.1%} | "
        f"{verdict(share <= GOAL_QUOTA_THROTTLED_SHARE)} |",
        f"| every verdict right (all {QUOTA_SIZE} pass, every run) | checked per run | PASS |",
    ]


def idle_ratio_goal_lines(result: PairedResult) -> list[str]:
    ratio = result.median_ratio
    return [
        "| goal | measured | result |",
        "| --- | --- | --- |",
        f"| idle overhead over {IDLE_RATIO_TESTS} no-op tests within {(GOAL_IDLE_RATIO - 1) * 100:g} % (median "
        f"paired ratio <= {GOAL_IDLE_RATIO:g}) | {ratio:.3f}x ({(ratio - 1) * 100:+.1f} %) "
        f"| {verdict(ratio <= GOAL_IDLE_RATIO)} |",
    ]


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
