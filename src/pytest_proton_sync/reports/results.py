"""Each target's result in a run, from its test reports, in manifest order: what every report of the run reads.

The session feeds :class:`RunResults` from ``pytest_runtest_logreport`` (which reaches the xdist controller too)
with plain values: the phase, its outcome, its text and duration, and the target's facts record
(:class:`.facts.TargetFacts`). The terminal table, the GitHub annotations and summary, and the JSON report
all read the same :class:`TargetResult` list, ordered by manifest and line whatever order the tests ran in
(pytest-randomly, xdist). Pure: imports neither pytest nor boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_proton_sync.reports.facts import FIX_SETUP, TargetFacts
from pytest_proton_sync.reports.table import Row
from pytest_proton_sync.verdict.judge import SHORT_SHA, short

NOT_PASSED = ("failed", "error")


@dataclass(frozen=True)
class TargetResult:
    nodeid: str
    facts: TargetFacts = field(compare=False)
    outcome: str | None = None  # None until a phase decides it
    text: str | None = None  # the failure or error text, as the terminal shows it
    duration_seconds: float = 0.0  # setup + call + teardown of the last run
    reruns: int = 0  # runs before the last one (pytest-rerunfailures)

    @property
    def final_outcome(self) -> str:
        return self.outcome or "error"  # a target with reports but no deciding phase never counts as passed

    @property
    def id(self) -> str:
        return self.facts.id

    @property
    def line(self) -> int:
        return self.facts.line

    def row(self) -> Row:
        sha = self.facts.last_synced_sha
        return Row(
            target=self.id,
            expected=self.facts.expected_sha[:SHORT_SHA],
            last_synced=short(sha) if sha else "-",
            latest_status=self.facts.latest_status,
            outcome=self.final_outcome,
            account=self.facts.account or "",
        )

    @property
    def next_step(self) -> str:
        """What to do about a target that did not pass, in a few words ("" when it passed): the observation's
        (facts.py), unless the test ended in an error the observation does not explain."""
        if self.final_outcome == "passed":
            return ""
        if self.final_outcome == "error" and not self.facts.history_problem:
            return FIX_SETUP
        return self.facts.next_step

    def as_dict(self) -> dict[str, Any]:
        """One entry of the JSON report's ``targets``."""
        return {
            **self.facts.json_fields(),
            "nodeid": self.nodeid,
            "outcome": self.final_outcome,
            "text": self.text,
            "duration_seconds": round(self.duration_seconds, 3),
            "reruns": self.reruns,
        }


class RunResults:
    def __init__(self) -> None:
        self._results: dict[str, TargetResult] = {}

    def record(self, nodeid: str, when: str, outcome: str, facts: TargetFacts, text: str | None,
               duration: float) -> None:
        """One phase's report. ``outcome`` is pytest's: passed, failed, skipped, or rerun (pytest-rerunfailures)."""
        result = self._results.get(nodeid) or TargetResult(nodeid, facts)
        if when == "setup":  # a new run of the test (first, or a rerun): nothing from an earlier run carries over
            reruns = result.reruns + (1 if result.outcome == "rerun" else 0)
            result = TargetResult(nodeid, facts, reruns=reruns)
        decided = result.outcome
        if outcome == "rerun":
            decided = "rerun"
        elif outcome == "failed":
            if when == "call":
                decided = "failed"
            elif decided in (None, "passed"):  # setup, or a teardown after a pass
                decided = "error"
        elif outcome == "skipped":
            decided = decided or "skipped"
        elif when == "call":
            decided = "passed"
        self._results[nodeid] = replace(
            result,
            facts=facts,
            outcome=decided,
            text=text if text and outcome in ("failed", "rerun") else result.text,
            duration_seconds=result.duration_seconds + max(0.0, duration),
        )

    def ordered(self, rank: Callable[[str], int]) -> list[TargetResult]:
        """Every target with a final outcome, by manifest (``rank`` of its manifest path), then line.

        A target whose last report was a rerun has not finished (interrupted run) and is left out."""
        done = [result for result in self._results.values() if result.outcome != "rerun"]
        return sorted(done, key=lambda r: (rank(r.facts.manifest_path), r.line, r.nodeid))


def counts(results: list[TargetResult]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for result in results:
        tally[result.final_outcome] = tally.get(result.final_outcome, 0) + 1
    return tally


def manifest_rank(manifests: Mapping[str, int]) -> Callable[[str], int]:
    """A ``rank`` for :meth:`RunResults.ordered`: the position of a manifest path; unknown ones come last."""
    return lambda path: manifests.get(path, len(manifests))
