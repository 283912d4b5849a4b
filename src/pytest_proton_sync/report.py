"""The end-of-run table and JUnit properties: plain text from plain data, no pytest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Observation
from .verdict import SHORT_SHA, last_synced_sha, latest_status, short

# Property names in JUnit XML (<properties> of each <testcase>); CI dashboards key on them, keep them stable.
PROP_TARGET = "proton.target"
PROP_REGION = "proton.region"
PROP_EXPECTED_SHA = "proton.expected_sha"
PROP_ACTUAL_SHA = "proton.actual_sha"
PROP_LATEST_STATUS = "proton.latest_sync_status"
PROP_ACCOUNT = "proton.account"  # only for targets with an account alias


def junit_properties(observation: Observation) -> list[tuple[str, str]]:
    target = observation.target
    properties = [
        (PROP_TARGET, target.id),
        (PROP_REGION, observation.region),
        (PROP_EXPECTED_SHA, target.expectation.sha),
        (PROP_ACTUAL_SHA, last_synced_sha(observation)),
        (PROP_LATEST_STATUS, latest_status(observation)),
    ]
    if target.account:
        properties.append((PROP_ACCOUNT, target.account))
    return properties


@dataclass(frozen=True)
class Row:
    target: str
    expected: str
    last_synced: str
    latest_status: str
    outcome: str
    account: str = ""

    @classmethod
    def from_properties(cls, properties: Sequence[tuple[str, object]], outcome: str) -> Row | None:
        values = {name: str(value) for name, value in properties}
        if PROP_TARGET not in values:
            return None
        return cls(
            target=values[PROP_TARGET],
            expected=values.get(PROP_EXPECTED_SHA, "")[:SHORT_SHA],
            last_synced=short(values.get(PROP_ACTUAL_SHA, "")) if values.get(PROP_ACTUAL_SHA) else "-",
            latest_status=values.get(PROP_LATEST_STATUS, "") or "-",
            outcome=outcome,
            account=values.get(PROP_ACCOUNT, ""),
        )


class Scoreboard:
    """Each target test's outcome, from its reports (setup, call, teardown), and the row it shows in the summary.

    Fed from ``pytest_runtest_logreport``, which reaches the xdist controller too."""

    def __init__(self) -> None:
        self._outcomes: dict[str, str] = {}
        self._rows: dict[str, Row] = {}

    def record(self, nodeid: str, when: str, outcome: str, properties: Sequence[tuple[str, object]]) -> None:
        known = self._outcomes.get(nodeid)
        if when == "setup" and outcome == "failed":
            known = "error"
        elif when == "call":
            known = outcome
        elif outcome == "skipped" and known is None:
            known = "skipped"
        if known is not None:
            self._outcomes[nodeid] = known
        if when == "teardown":
            row = Row.from_properties(properties, self._outcomes.get(nodeid, "error"))
            if row is not None:
                self._rows[nodeid] = row

    def summary_lines(self, show_passed: bool) -> list[str]:
        if not self._rows:
            return []
        rows = list(self._rows.values())
        return format_table(rows, show_passed=show_passed or len(rows) <= 50)


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
    tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    more = f" ({hidden} passed not listed; -v lists them)" if hidden else ""
    noun = "target" if len(rows) == 1 else "targets"
    lines.append(f"{len(rows)} {noun}: {tally}{more}")
    return lines
