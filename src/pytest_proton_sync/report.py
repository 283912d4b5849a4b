"""The end-of-run table and JUnit properties: plain text from plain data, no pytest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Observation
from .verdict import last_synced_sha, latest_status

# Property names in JUnit XML (<properties> of each <testcase>, in the xunit1 family only: see junit.py); CI
# dashboards key on them, keep them stable.
PROP_TARGET = "proton.target"
PROP_REGION = "proton.region"
PROP_EXPECTED_SHA = "proton.expected_sha"
PROP_ACTUAL_SHA = "proton.actual_sha"
PROP_LATEST_STATUS = "proton.latest_sync_status"


def junit_properties(observation: Observation) -> list[tuple[str, str]]:
    target = observation.target
    return [
        (PROP_TARGET, target.id),
        (PROP_REGION, observation.region),
        (PROP_EXPECTED_SHA, target.expectation.sha),
        (PROP_ACTUAL_SHA, last_synced_sha(observation)),
        (PROP_LATEST_STATUS, latest_status(observation)),
    ]


@dataclass(frozen=True)
class Row:
    target: str
    expected: str
    last_synced: str
    latest_status: str
    outcome: str


HEADINGS = Row("target", "expected", "last synced", "latest status", "outcome")


def format_table(rows: Sequence[Row], show_passed: bool) -> list[str]:
    """Aligned lines; passed rows are left out unless ``show_passed`` (a fleet of 2,000 needs no 2,000 lines)."""
    shown = [row for row in rows if show_passed or row.outcome != "passed"]
    hidden = len(rows) - len(shown)
    lines: list[str] = []
    if shown:
        columns = list(zip(*[(r.target, r.expected, r.last_synced, r.latest_status, r.outcome)
                             for r in [HEADINGS, *shown]], strict=True))
        widths = [max(len(cell) for cell in column) for column in columns]
        for row in [HEADINGS, *shown]:
            cells = (row.target, row.expected, row.last_synced, row.latest_status, row.outcome)
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    more = f" ({hidden} passed not listed; -v lists them)" if hidden else ""
    noun = "target" if len(rows) == 1 else "targets"
    lines.append(f"{len(rows)} {noun}: {tally}{more}")
    return lines
