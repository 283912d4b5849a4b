"""The JSON report of a run (``--proton-report PATH``): plain data from plain data, for dashboards and bots.

Two steps, both pure (no pytest, no boto3, no I/O but reading the shipped schema):

- :func:`expectation_document` and :func:`observation_document`: one target's expectation and observation as JSON,
  which its facts record (facts.py) carries when the run writes this report.
- :func:`build_report` assembles the run's document from the results of every target.

The document's shape is ``report.schema.json`` (shipped in the package, :func:`report_schema`). Its
``report_version`` changes only when a field is removed or changes meaning; new optional fields keep it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

from pytest_proton_sync.model import Observation, Revision, SyncAttempt, SyncStatus, Target

REPORT_VERSION = 1
SCHEMA_FILE = "report.schema.json"


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the report, as shipped in the package."""
    text = resources.files("pytest_proton_sync").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _revision(revision: Revision | None) -> dict[str, Any] | None:
    if revision is None:
        return None
    return {
        "sha": revision.sha,
        "repository": revision.repository_name,
        "provider": revision.provider,
        "branch": revision.branch,
        "directory": revision.directory,
    }


def _attempt(attempt: SyncAttempt | None) -> dict[str, Any] | None:
    if attempt is None:
        return None
    return {
        "status": attempt.status,
        "target_revision": _revision(attempt.target_revision),
        "initial_revision": _revision(attempt.initial_revision),
        "started_at": _when(attempt.started_at),
        "events": [
            {"type": event.type, "event": event.event, "time": _when(event.time), "external_id": event.external_id}
            for event in attempt.events
        ],
    }


def _status(status: SyncStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "found": status.found,
        "desired": _revision(status.desired),
        "latest_successful": _attempt(status.latest_successful),
        "latest": _attempt(status.latest),
    }


def expectation_document(target: Target) -> dict[str, Any]:
    """The report's ``expectation`` of one target (not yet redacted: the facts record redacts it with the rest)."""
    expectation = target.expectation
    repository = expectation.repository
    return {
        "sha": expectation.sha,
        "rev": expectation.rev,
        "rev_sha": expectation.rev_sha,
        "bundle": list(expectation.bundle),
        "history_problem": expectation.history_problem,
        "match": expectation.match,
        "repository": {
            "name": repository.name,
            "provider": repository.provider,
            "branch": repository.branch,
            "directory": repository.directory,
        },
    }


def observation_document(observation: Observation | None) -> dict[str, Any] | None:
    """The report's ``observation`` of one target: None when none was made (the test was interrupted before its
    answer arrived). Not yet redacted, like :func:`expectation_document`."""
    if observation is None:
        return None
    error = observation.error
    verdict = observation.verdict
    return {
        "region": observation.region or None,
        "status": _status(observation.status),
        "error": None if error is None else {
            "code": error.code, "message": error.message, "attempts": error.attempts,
        },
        "verdict": None if verdict is None else {
            "outcome": verdict.outcome, "reasons": list(verdict.reasons), "hints": list(verdict.hints),
        },
        "polls": observation.polls,
        "waited_seconds": round(observation.waited_seconds, 3),
        "wait_note": observation.wait_note,
    }


def build_report(
    *,
    tool_version: str,
    started_at: datetime,
    finished_at: datetime,
    manifests: Sequence[str],
    api_calls: int | None,
    exit_status: int,
    results: Sequence[Mapping[str, Any]],
    coverage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report document. ``results`` are :meth:`.results.TargetResult.as_dict` values, in manifest order."""
    counts: dict[str, int] = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for result in results:
        counts[str(result["outcome"])] = counts.get(str(result["outcome"]), 0) + 1
    document = {
        "report_version": REPORT_VERSION,
        "tool": {"name": "pytest-proton-sync", "version": tool_version},
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_seconds": round((finished_at - started_at).total_seconds(), 3),
        "manifests": list(manifests),
        "api_calls": api_calls,
        "exit_status": exit_status,
        "counts": counts,
        "targets": [dict(result) for result in results],
    }
    if coverage is not None:  # --proton-coverage warn|fail (coverage.report_section)
        document["coverage"] = dict(coverage)
    return document
