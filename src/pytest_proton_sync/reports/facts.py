"""One facts record per target: everything the run's reports say about it, computed once.

:meth:`TargetFacts.of` builds it from the target, its observation and the verdict that observation carries (the
judge's helpers say what a status means; nothing here decides it again), in the process that ran the target's
test, once per run of that test. It reaches the xdist controller as a plain dict (:meth:`TargetFacts.wire`: pytest
reports carry only plain data), and the table, JUnit, the GitHub annotations and summary, and the JSON report read
its fields: none of them parses an id, a failure text or a nested dict back. Every string in it is redacted.
Pure: imports neither pytest nor boto3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pytest_proton_sync.kinds import type_of
from pytest_proton_sync.model import Observation, Target
from pytest_proton_sync.reports.jsonreport import expectation_document, observation_document
from pytest_proton_sync.text.redact import redact_strings
from pytest_proton_sync.verdict.judge import (
    blocker_reasons,
    last_synced_sha,
    latest_status,
    mismatch_reasons,
    only_the_source_differs,
    sha_matches,
    sync_failed_on_expected,
)

NOT_OBSERVED = "NOT_OBSERVED"  # the latest status of a target whose test ended before its answer
FIX_SETUP = "fix the setup (see the error), then re-run"
FETCH_HISTORY = "fetch the full history (fetch-depth: 0)"
SYNCING = ("INITIATED", "IN_PROGRESS", "QUEUED")


@dataclass(frozen=True)
class TargetFacts:
    """What every report says about one target. ``reason``, ``step``, ``why`` and ``next_step`` describe a target
    that did not pass ("" for one that passed, or was never observed)."""

    id: str  # "ENVIRONMENT/vpc-env@1"
    kind: str  # "template", "service_instance", "stack"
    type: str  # the id's TYPE: ENVIRONMENT, SERVICE, SERVICE_INSTANCE, STACK
    name: str
    manifest: str  # as the user named it
    manifest_path: str  # absolute
    line: int  # 1-based; 0 when unknown
    region: str | None  # the entry's; None: boto3's chain decides
    account: str | None
    expected_sha: str
    history_problem: bool  # the checkout could not say what is expected: an error without asking the API
    observed: bool  # whether the test got as far as an observation
    asked_region: str  # the region actually asked ("" when none)
    last_synced_sha: str  # the latest successful sync's sha, or ""
    latest_status: str  # the latest attempt's status, an error code, NOT_FOUND, NONE or NOT_OBSERVED
    blocked: bool  # an active sync blocker is in the verdict
    reason: str  # the verdict's first reason, or the error's first line
    step: str  # the verdict's first hint, or the error's fix
    why: str  # the first mismatch (blockers aside), or "code: the error's first line"
    next_step: str  # in a few words, for a target that did not pass because of this observation
    # The JSON report's ``expectation`` and ``observation``: made only for a run that writes that report.
    document: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, target: Target, observation: Observation | None, manifest_path: str,
           with_document: bool = False) -> TargetFacts:
        """The record of ``target`` (``observation`` None: its test ended before an answer came)."""
        said = _said(observation)
        fields_: dict[str, Any] = {
            "id": target.id,
            "kind": target.kind,
            "type": type_of(target),
            "name": target.name,
            "manifest": str(target.manifest),
            "manifest_path": manifest_path,
            "line": target.line,
            "region": target.region,
            "account": target.account,
            "expected_sha": target.expectation.sha,
            "history_problem": target.expectation.history_problem is not None,
            "observed": observation is not None,
            "asked_region": observation.region if observation is not None else "",
            "last_synced_sha": last_synced_sha(observation) if observation is not None else "",
            "latest_status": latest_status(observation) if observation is not None else NOT_OBSERVED,
            "blocked": bool(observation and observation.verdict and blocker_reasons(observation.verdict)),
            "reason": said[0],
            "step": said[1],
            "why": said[2],
            "next_step": _next_step(target, observation),
            "document": {
                "expectation": expectation_document(target),
                "observation": observation_document(observation),
            } if with_document else None,
        }
        # Values only: the names are this module's own. Redaction reads the environment once per call, so once here.
        values: tuple[Any, ...] = redact_strings(tuple(fields_.values()))
        return cls(**dict(zip(fields_, values, strict=True)))

    def wire(self) -> dict[str, Any]:
        """The record as plain data, for a test report's attribute (what pytest-xdist carries to the controller)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> TargetFacts:
        return cls(**{field.name: data[field.name] for field in fields(cls)})

    @property
    def latest_sync(self) -> str:
        """The latest sync as the summary says it: "blocked" when a blocker stops it, else :attr:`latest_status`."""
        return "blocked" if self.blocked else self.latest_status

    def json_fields(self) -> dict[str, Any]:
        """The target's part of a JSON report entry (report.schema.json); the run's adds outcome and text."""
        if self.document is None:
            raise ValueError(f"the facts of {self.id} were made without the JSON report's document")
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "manifest": self.manifest,
            "manifest_path": self.manifest_path, "line": self.line, "region": self.region, "account": self.account,
            **self.document,
        }


def _said(observation: Observation | None) -> tuple[str, str, str]:
    """(reason, step, why) of a target that did not pass: from its error, else its failing verdict."""
    if observation is None:
        return "", "", ""
    error = observation.error
    if error is not None:
        lines = [line.strip() for line in error.message.splitlines() if line.strip()]
        reason = next((line for line in lines if not line.startswith("fix:")), "")
        step = next((line[len("fix:"):].strip() for line in lines if line.startswith("fix:")), "")
        attempts = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
        return reason, step, f"{error.code}{attempts}: {lines[0] if lines else ''}"
    verdict = observation.verdict
    if verdict is None or verdict.passed:
        return "", "", ""
    mismatches = mismatch_reasons(verdict)
    return (verdict.reasons[0] if verdict.reasons else "", verdict.hints[0] if verdict.hints else "",
            mismatches[0] if mismatches else "")


def _next_step(target: Target, observation: Observation | None) -> str:
    """What to do about the target if it did not pass, in a few words: wait, fix and push, resolve the blocker,
    fix the manifest (or the sync configuration), or fix the run's setup."""
    if target.expectation.history_problem is not None:
        return FETCH_HISTORY
    if observation is None or observation.error is not None or observation.verdict is None:
        return FIX_SETUP
    status, verdict, expected = observation.status, observation.verdict, target.expectation.sha
    if status is None:
        return FIX_SETUP
    if blocker_reasons(verdict):
        return "resolve the blocker"
    if not status.found:
        return "fix the manifest, or set up the sync"
    if status.latest is not None and status.latest.status in SYNCING:
        return "wait (--proton-wait)"
    if sync_failed_on_expected(target.expectation, status):
        return "fix and push"
    if only_the_source_differs(verdict):
        return "fix the manifest or the sync configuration"
    if status.desired is not None and sha_matches(expected, status.desired.sha):
        return "wait (--proton-wait)"
    return "push the expected commit, or fix the manifest"
