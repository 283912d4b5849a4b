"""Benchmark pytest-proton-sync against hand-written alternatives, on the bundled fake, with public tools only.

Run from the repository root with the project's virtualenv::

    .venv/bin/python benchmarks/bench.py            # everything (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick    # skips the ~2 minute sequential pytest at N=2000

Every timed run is a whole child process (Python start-up included) against the bundled fake AWS Proton
endpoint, started in this process on 127.0.0.1. The report (markdown) goes to stdout and to
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

from measure import LATENCY_MS, QUICK_SKIPS_SEQUENTIAL_AT, SCALE_SIZE, compare, idle, scale, wait_mode
from runner import BenchmarkError, progress
from table import Report, comparison_lines, goal_lines, idle_lines, machine_lines, scale_lines, wait_lines


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
