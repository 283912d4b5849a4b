"""Benchmark pytest-proton-sync against hand-written alternatives, on the bundled fake, with public tools only.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench.py                 # everything (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick         # skips the ~2 minute sequential pytest at N=2000
    .venv/bin/python benchmarks/bench.py --mode speed    # plugin / 32-thread loop, N=500, 7 paired runs
    .venv/bin/python benchmarks/bench.py --mode idle     # plugin installed / -p no:proton_sync, 2,000 no-op tests

Every timed run is a whole child process (Python start-up included) against the bundled fake AWS Proton
endpoint, started in this process on 127.0.0.1. The report (markdown) goes to stdout and, for the full run, to
``benchmarks/results.md``; progress lines go to stderr. See ``benchmarks/README.md`` for the method.

This file is the command line and the order of the parts only. The parts: ``fakesetup`` (targets, the fake's
state, the manifest), ``runner`` (one timed child process), ``contenders`` (the commands compared),
``measure`` (the experiments) and ``table`` (the markdown report and the goals). They are imported as
top-level modules, which works because Python puts this file's directory first on ``sys.path``.

Needs nothing beyond the project's own dependencies (pytest, boto3, PyYAML) and the standard library.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from measure import (
    IDLE_RATIO_PAIRS,
    IDLE_RATIO_TESTS,
    LATENCY_MS,
    QUICK_SKIPS_SEQUENTIAL_AT,
    QUOTA_PAIRS,
    QUOTA_SIZE,
    SCALE_PAIRS,
    SCALE_PAIRS_SIZE,
    SCALE_SIZE,
    SPEED_PAIRS,
    SPEED_SIZE,
    compare,
    idle,
    idle_pairs,
    quota_pairs,
    scale,
    scale_pairs,
    speed_pairs,
    wait_mode,
)
from runner import BenchmarkError, progress
from table import (
    Report,
    comparison_lines,
    goal_lines,
    idle_lines,
    idle_ratio_goal_lines,
    idle_ratio_lines,
    machine_lines,
    quota_goal_lines,
    quota_lines,
    scale_goal_lines,
    scale_lines,
    scale_pair_lines,
    speed_goal_lines,
    speed_lines,
    wait_lines,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.md"
MODES = ("full", "speed", "idle", "scale", "quota")
DEFAULT_PAIRS = {"speed": SPEED_PAIRS, "idle": IDLE_RATIO_PAIRS, "scale": SCALE_PAIRS, "quota": QUOTA_PAIRS}


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pytest-proton-sync-bench-") as directory:
        yield Path(directory)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="full",
        help=f"full: every part (default); speed: plugin / 32-thread loop at N={SPEED_SIZE}, {LATENCY_MS} ms, "
        f"median of per-pair ratios over {SPEED_PAIRS} paired runs; idle: plugin installed (no manifest) / "
        f"-p no:proton_sync over {IDLE_RATIO_TESTS} no-op tests, median of per-pair ratios over "
        f"{IDLE_RATIO_PAIRS} paired runs; scale: plugin / loop at N={SCALE_PAIRS_SIZE}, 0 ms, with CPU and peak "
        f"memory, {SCALE_PAIRS} pairs; quota: N={QUOTA_SIZE} behind a 25 requests/s token bucket, plugin and the "
        f"adaptive-mode loop against the floor, with throttled requests, {QUOTA_PAIRS} pairs",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"skip the sequential pytest at N={QUICK_SKIPS_SEQUENTIAL_AT} (~2 min)"
    )
    parser.add_argument(
        "--pairs",
        type=positive_int,
        metavar="N",
        help="--mode speed, idle, scale or quota only: number of paired runs (default "
        + ", ".join(f"{n} for {mode}" for mode, n in DEFAULT_PAIRS.items()) + ")",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the markdown report (default: benchmarks/results.md for the full run; "
        "the speed and idle modes write a file only when this is given)",
    )
    options = parser.parse_args(argv)
    if options.quick and options.mode != "full":
        parser.error(f"--quick applies to the full run only, not to --mode {options.mode}")
    if options.pairs is not None and options.mode == "full":
        parser.error("--pairs applies to the paired modes only, not to --mode full")
    if options.output is None and options.mode == "full":
        options.output = DEFAULT_OUTPUT
    return options


def command_line(options: argparse.Namespace) -> str:
    """The command as the report shows it: the options that change what is measured, not --output."""
    words = ["python", "benchmarks/bench.py"]
    if options.mode != "full":
        words += ["--mode", options.mode]
    if options.quick:
        words.append("--quick")
    if options.pairs is not None:
        words += ["--pairs", str(options.pairs)]
    return shlex.join(words)


def run_full(report: Report, root: Path, python: str, quick: bool) -> None:
    rows = compare(root, python, quick)
    report.section(f"1. Plugin vs hand-written gates ({LATENCY_MS} ms per call)", comparison_lines(rows))
    scale_result = scale(root, python)
    report.section(f"2. Scale: {SCALE_SIZE} targets at 0 ms", scale_lines(scale_result))
    idle_result = idle(root, python)
    report.section("3. Idle overhead (plugin installed, no manifest)", idle_lines(idle_result))
    wait_result = wait_mode(root, python)
    report.section("4. Wait mode", wait_lines(wait_result))
    report.section("Goals", goal_lines(rows, scale_result, idle_result, wait_result))


def run_speed(report: Report, root: Path, python: str, pairs: int) -> None:
    result = speed_pairs(root, python, pairs)
    report.section(f"Speed: plugin / 32-thread loop, N={SPEED_SIZE} at {LATENCY_MS} ms", speed_lines(result))
    report.section("Goals", speed_goal_lines(result))


def run_idle(report: Report, root: Path, python: str, pairs: int) -> None:
    result = idle_pairs(root, python, pairs)
    report.section(
        f"Idle overhead: {IDLE_RATIO_TESTS} no-op tests, plugin installed (no manifest) / `-p no:proton_sync`",
        idle_ratio_lines(result),
    )
    report.section("Goals", idle_ratio_goal_lines(result))


def run_scale(report: Report, root: Path, python: str, pairs: int) -> None:
    result = scale_pairs(root, python, pairs)
    report.section(f"Scale: plugin / 32-thread loop, N={SCALE_PAIRS_SIZE} at 0 ms", scale_pair_lines(result))
    report.section("Goals", scale_goal_lines(result))


def run_quota(report: Report, root: Path, python: str, pairs: int) -> None:
    result = quota_pairs(root, python, pairs)
    report.section(f"Quota: N={QUOTA_SIZE} behind a token bucket", quota_lines(result))
    report.section("Goals", quota_goal_lines(result))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    python = sys.executable

    report = Report()
    report.add(
        "# pytest-proton-sync benchmark",
        "",
        f"Command: `{command_line(options)}` (with {python}), started {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
    )
    report.section("Machine", machine_lines())
    started = time.perf_counter()
    try:
        with workspace() as root:
            pairs = options.pairs or DEFAULT_PAIRS.get(options.mode, 1)
            if options.mode == "speed":
                run_speed(report, root, python, pairs)
            elif options.mode == "idle":
                run_idle(report, root, python, pairs)
            elif options.mode == "scale":
                run_scale(report, root, python, pairs)
            elif options.mode == "quota":
                run_quota(report, root, python, pairs)
            else:
                run_full(report, root, python, options.quick)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    report.add(f"Total benchmark time: {time.perf_counter() - started:.0f} s.")
    if options.output is not None:
        options.output.write_text(report.text(), encoding="utf-8")
        progress(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
