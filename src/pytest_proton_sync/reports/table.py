"""The end-of-run table and JUnit properties: plain text from plain data, no pytest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_proton_sync.reports.facts import TargetFacts
from pytest_proton_sync.yamlcheck.messages import tally

# Property names in JUnit XML (<properties> of each <testcase>, in the xunit1 family only: see junit.py); CI
# dashboards key on them, keep them stable.
PROP_TARGET = "proton.target"
PROP_REGION = "proton.region"
PROP_EXPECTED_SHA = "proton.expected_sha"
PROP_ACTUAL_SHA = "proton.actual_sha"
PROP_LATEST_STATUS = "proton.latest_sync_status"
PROP_ACCOUNT = "proton.account"  # only for targets with an account alias


def junit_properties(facts: TargetFacts) -> list[tuple[str, str]]:
    """A target's properties, from its facts record (redacted already)."""
    properties = [
        (PROP_TARGET, facts.id),
        (PROP_REGION, facts.asked_region),
        (PROP_EXPECTED_SHA, facts.expected_sha),
        (PROP_ACTUAL_SHA, facts.last_synced_sha),
        (PROP_LATEST_STATUS, facts.latest_status),
    ]
    if facts.account:
        properties.append((PROP_ACCOUNT, facts.account))
    return properties


@dataclass(frozen=True)
class Row:
    target: str
    expected: str
    last_synced: str
    latest_status: str
    outcome: str
    account: str = ""


HEADINGS = Row("target", "expected", "last synced", "latest status", "outcome", account="account")


def _cells(row: Row, with_account: bool) -> tuple[str, ...]:
    cells = (row.target, row.expected, row.last_synced, row.latest_status, row.outcome)
    return (cells[0], row.account or "-", *cells[1:]) if with_account else cells


def format_table(rows: Sequence[Row], show_passed: bool) -> list[str]:
    """Aligned lines; passed rows are left out unless ``show_passed`` (a fleet of 2,000 needs no 2,000 lines)."""
    shown = [row for row in rows if show_passed or row.outcome != "passed"]
    hidden = len(rows) - len(shown)
    lines: list[str] = []
    if shown:
        # An account column only when some target has an account: single-account tables stay as they were.
        with_account = any(row.account for row in rows)
        columns = list(zip(*[_cells(r, with_account) for r in [HEADINGS, *shown]], strict=True))
        widths = [max(len(cell) for cell in column) for column in columns]
        for row in [HEADINGS, *shown]:
            cells = _cells(row, with_account)
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    tallied = tally(counts)
    more = f" ({hidden} passed not listed; -v lists them)" if hidden else ""
    noun = "target" if len(rows) == 1 else "targets"
    lines.append(f"{len(rows)} {noun}: {tallied}{more}")
    return lines
