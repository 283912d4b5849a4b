"""judge(): compare an expectation with a sync status, and the text a person reads when they differ.

Pure functions, no I/O: the whole truth table of the gate lives here and is unit-tested without pytest or boto3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone

from pytest_proton_sync.kinds import kind_of
from pytest_proton_sync.model import (
    ERROR,
    FAILED,
    PASSED,
    ContentComparison,
    Expectation,
    Observation,
    Revision,
    SyncAttempt,
    SyncStatus,
    Target,
    Verdict,
)

__all__ = ["FAILED", "PASSED", "Verdict", "describe_error", "describe_failure", "is_settled", "judge", "with_blockers"]

SHORT_SHA = 12


# A commit id as the APIs report it: SHA-1 (40 hex digits) or SHA-256 (64). Anything else is not a commit id.
_FULL_SHA = re.compile(r"(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})\Z")
_EXPECTED_SHA = re.compile(r"(?:[0-9a-fA-F]{7,40}|[0-9a-fA-F]{64})\Z")
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_LOWER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only: no Unicode case mapping, so the Kelvin sign is never 'k' and a dotless i never 'I'."""
    return text.translate(_ASCII_UPPER)


def ascii_upper(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def sha_matches(expected: str, actual: str) -> bool:
    """Whether ``actual``, a full commit id from the API, is the expected commit.

    Prefix rules apply to the manifest's side only: ``expected`` is a full sha or a prefix of >= 7 hex digits;
    ``actual`` must be exactly 40 (or 64) hex digits, nothing before, after or around them. Hex case never matters.
    """
    if not _EXPECTED_SHA.match(expected) or not _FULL_SHA.match(actual):
        return False
    # Both are ASCII hex digits now (the patterns name the ranges), so str.lower is ASCII-only here, and cheaper
    # than ascii_lower's translate table on a check made for every target in every report.
    return actual.lower().startswith(expected.lower())


def normal_directory(directory: str) -> str:
    """The one normalisation of a directory: "templates", "templates/", "/templates" and "./templates" name the same
    directory of the repository. Nothing else is folded: no whitespace is stripped, no case is mapped."""
    normal = directory
    while normal.startswith("./"):
        normal = normal[2:]
    return normal.strip("/")


def revision_mismatches(expectation: Expectation, revision: Revision, check_sha: bool = True) -> tuple[str, ...]:
    """Each field the manifest gives that ``revision`` does not match, as a sentence.

    Comparison is strict and ASCII-only (see docs/manifest.md, "How answers are compared"): repository names and
    providers ignore the case of A-Z only; branches are compared exactly; directories by :func:`normal_directory`.
    """
    wanted = expectation.repository
    reasons: list[str] = []
    if not _FULL_SHA.match(revision.sha):
        reasons.append(f"sha {short(revision.sha)} from the API is not a full commit id (40 hex digits)")
    elif check_sha and not sha_matches(expectation.sha, revision.sha):
        reasons.append(f"sha {short(revision.sha)} is not the expected {short(expectation.sha)}")
    if ascii_lower(wanted.name) != ascii_lower(revision.repository_name):
        reasons.append(f"repository {revision.repository_name or '(none)'} is not the expected {wanted.name}")
    if wanted.provider is not None and ascii_upper(wanted.provider) != ascii_upper(revision.provider):
        reasons.append(f"provider {revision.provider or '(none)'} is not the expected {wanted.provider}")
    if wanted.branch is not None and wanted.branch != revision.branch:
        reasons.append(f"branch {revision.branch or '(none)'} is not the expected {wanted.branch}")
    if wanted.directory is not None and normal_directory(wanted.directory) != normal_directory(revision.directory):
        reasons.append(f"directory {revision.directory or '(none)'} is not the expected {wanted.directory}")
    return tuple(reasons)


CompareContent = Callable[[Target, str], ContentComparison]


def judge(target: Target, status: SyncStatus, compare_content: CompareContent | None = None) -> Verdict:
    """Passed only when the latest *successful* sync's target revision matches every field the manifest gives.

    With ``match: content`` a synced commit other than the expected one passes when ``compare_content`` (the git
    checkout) says the target's files are identical at both; a commit the checkout lacks is an ERROR verdict.
    A failing verdict names the status's active sync blockers first (:func:`with_blockers`).
    """
    return with_blockers(target, status, _compare(target, status, compare_content))


def _compare(target: Target, status: SyncStatus, compare_content: CompareContent | None) -> Verdict:
    """The verdict on the sync status alone, blockers aside."""
    expectation = target.expectation
    kind = kind_of(target)
    if not status.found:
        return Verdict(FAILED, reasons=(f"no sync status exists for {target.id}",), hints=(kind.not_found_hint,))
    successful = status.latest_successful
    if successful is None:
        return Verdict(
            FAILED,
            reasons=(f"the {kind.noun} has never synced successfully",),
            hints=_hints(target, status),
        )
    synced = successful.target_revision.sha
    by_content = expectation.match == "content" and _FULL_SHA.match(synced) and not sha_matches(expectation.sha, synced)
    reasons = revision_mismatches(expectation, successful.target_revision, check_sha=not by_content)
    details: tuple[str, ...] = ()
    details_for = ""
    content_equal = False
    if by_content:
        if compare_content is None:
            reasons = ("match: content needs the git checkout, and none was given to the judge", *reasons)
        else:
            comparison = compare_content(target, ascii_lower(synced))
            if comparison.missing_commit is not None:
                return Verdict(ERROR, reasons=(
                    f"commit {short(comparison.missing_commit)} is not in the git checkout, so the content synced "
                    f"from {short(synced)} cannot be compared with the expected {short(expectation.sha)}",),
                    hints=(MISSING_HISTORY_FIX,))
            content_equal = comparison.equal
            if not comparison.equal:
                files = ", ".join(expectation.bundle) or "its files"
                details_for = (f"{files} at the synced {short(synced)} differ from the expected "
                               f"{short(expectation.sha)}")
                reasons = (details_for, *reasons)
                details = describe_comparison(comparison)
    if successful.status != "SUCCEEDED":
        # Contradictory: a "successful" sync that says it did not succeed. Never a pass, whatever its revision.
        reasons = (f"the API's latest successful sync has status {successful.status or '(none)'}, not SUCCEEDED",
                   *reasons)
    if not reasons:
        return Verdict(PASSED)
    # Identical files at the synced commit count as the expected commit when choosing what to say next: what is
    # left is the repository, branch or directory.
    hints = _hints(target, status, sha_matched=content_equal)
    return Verdict(FAILED, reasons=reasons, hints=hints, details=details, details_for=details_for)


# How a blocker's reason begins: the failure text shows such reasons as "blocked:", the others as "mismatch:".
BLOCKED = "sync is blocked"


def with_blockers(target: Target, status: SyncStatus, verdict: Verdict) -> Verdict:
    """A FAILED verdict with the target's ACTIVE sync blockers first: syncing has stopped until someone resolves
    them, so waiting cannot help (is_settled) and the way out is the resolve command. Any other verdict, or a
    status without active blockers, is returned as it is.

    Separate from the comparison because the blockers are asked for only after a verdict fails (one more call):
    the run judges the status once, then puts the blockers that call found into that verdict."""
    active = status.active_blockers
    if not active or verdict.outcome != FAILED:
        return verdict
    kind = kind_of(target)
    reasons: list[str] = []
    details: list[str] = []
    hints: list[str] = []
    for blocker in active:
        reasons.append(f"{BLOCKED}: {blocker.type} blocker {blocker.id}, created {_when(blocker.created_at)}: "
                       f"{blocker.created_reason}")
        details += [f"{key}: {value}" for key, value in blocker.contexts]
        if kind.blockers is not None:
            hints.append(f"{kind.syncer} will not sync again until the blocker is resolved; once the cause is fixed: "
                         f"{kind.blockers.resolve_command(target, blocker)}")
    return Verdict(FAILED, reasons=(*reasons, *verdict.reasons), hints=(*hints, *verdict.hints),
                   details=verdict.details, details_for=verdict.details_for,
                   blocker_details=(*verdict.blocker_details, *details))


MISSING_HISTORY_FIX = (
    "fetch the history: `fetch-depth: 0` with actions/checkout, `GIT_DEPTH: 0` in GitLab CI, `git fetch "
    "--unshallow`, or fetch the branch (a commit force-pushed away cannot be compared)"
)


def describe_comparison(comparison: ContentComparison) -> tuple[str, ...]:
    """The lines a content mismatch shows: the files that differ, then the commits between the two."""
    lines = [f"files that differ (synced {short(comparison.synced)} -> expected {short(comparison.expected)}):"]
    lines += [f"  {status:<8} {path}" for status, path in comparison.changes]
    if comparison.more_changes:
        lines.append(f"  ... and {comparison.more_changes} more")
    if comparison.commits:
        lines.append("commits between them that touch these files:")
        lines += [f"  {sha} {subject}" for sha, subject in comparison.commits]
        if comparison.more_commits:
            lines.append(f"  ... and {comparison.more_commits} more")
    return tuple(lines)


def sync_failed_on_expected(expectation: Expectation, status: SyncStatus) -> bool:
    """The latest attempt is of the expected commit and FAILED: waiting longer cannot make it pass."""
    latest = status.latest
    return (
        latest is not None
        and latest.status == "FAILED"
        and sha_matches(expectation.sha, latest.target_revision.sha)
    )


def is_settled(target: Target, status: SyncStatus, verdict: Verdict) -> bool:
    """Whether polling this target again is pointless: it passes, it cannot be judged, its sync is blocked, it
    cannot exist, or its sync of the expected commit failed."""
    return (
        verdict.passed
        or verdict.outcome == ERROR
        or bool(status.active_blockers)
        or not status.found
        or sync_failed_on_expected(target.expectation, status)
    )


def _hints(target: Target, status: SyncStatus, sha_matched: bool = False) -> tuple[str, ...]:
    """What to do next. ``sha_matched``: the synced commit counts as the expected one (identical files)."""
    expectation, kind = target.expectation, kind_of(target)
    latest = status.latest
    successful = status.latest_successful
    if successful is not None:
        reasons = revision_mismatches(expectation, successful.target_revision, check_sha=not sha_matched)
        if reasons and not any(reason.startswith("sha ") for reason in reasons):
            return ("The expected commit synced, but from another repository, branch or directory: check "
                    f"{kind.config_hint} or the manifest.",)
    latest_is_expected = latest is not None and sha_matches(expectation.sha, latest.target_revision.sha)
    if latest is not None and latest_is_expected and latest.status == "FAILED":
        then = "" if expectation.rev else ", then update the expected sha"
        return (f"The sync of the expected commit FAILED (events above): fix the {kind.noun} and push a new "
                f"commit{then}.",)
    if latest is not None and latest_is_expected and latest.status in ("INITIATED", "IN_PROGRESS"):
        return ("The expected commit is syncing now: re-run later, or wait for it with --proton-wait SECONDS.",)
    if status.desired is not None and sha_matches(expectation.sha, status.desired.sha):
        return (f"{kind.syncer} has seen the expected commit but not synced it yet: wait with --proton-wait "
                "SECONDS.",)
    repo = expectation.repository
    where = f"branch {repo.branch} of {repo.name}" if repo.branch else repo.name
    # Said once: with a directory, where the files are and which files count; without one, only which files.
    touches = (f"touches {repo.directory}/ ({kind.syncer} syncs only commits that change {kind.files})"
               if repo.directory else f"changes {kind.files} ({kind.syncer} syncs only such commits)")
    return (
        f"{kind.syncer} has not seen {short(expectation.sha)}: check that it is pushed to {where} and {touches}, "
        "or that the expected sha is right.",
    )


def short(sha: str) -> str:
    return sha[:SHORT_SHA] if sha else "(none)"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "unknown time"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _describe_source(sha: str, provider: str | None, name: str, branch: str | None, directory: str | None) -> str:
    """"sha 3f2a9c1d8e7b from GITHUB acme/platform-templates branch main directory templates"."""
    parts = [f"sha {sha}", f"from {provider + ' ' if provider else ''}{name}"]
    if branch:
        parts.append(f"branch {branch}")
    if directory:
        parts.append(f"directory {directory}")
    return " ".join(parts)


def _describe_revision(revision: Revision) -> str:
    return _describe_source(short(revision.sha), revision.provider, revision.repository_name, revision.branch,
                            revision.directory)


def _describe_expectation(expectation: Expectation) -> str:
    repo = expectation.repository
    sha = f"{expectation.sha} (rev {expectation.rev})" if expectation.rev else expectation.sha
    return _describe_source(sha, repo.provider, repo.name, repo.branch, repo.directory)


def _describe_attempt(attempt: SyncAttempt) -> str:
    return (
        f"{attempt.status} on sha {short(attempt.target_revision.sha)}, started {_when(attempt.started_at)}"
    )


def blocker_reasons(verdict: Verdict) -> tuple[str, ...]:
    """The reasons :func:`with_blockers` put in: one per active blocker."""
    return tuple(reason for reason in verdict.reasons if reason.startswith(BLOCKED))


def mismatch_reasons(verdict: Verdict) -> tuple[str, ...]:
    """The reasons that are not blockers: what does not match (or could not be compared)."""
    return tuple(reason for reason in verdict.reasons if not reason.startswith(BLOCKED))


def only_the_source_differs(verdict: Verdict) -> bool:
    """Whether every mismatch is the repository, provider, branch or directory (or the checkout the judge lacked):
    none is the sha, the content, the sync's status or a missing sync. The fix is then in the manifest or the sync
    configuration, not a push."""
    mismatches = mismatch_reasons(verdict)
    return bool(mismatches) and not any(
        reason.startswith(("sha ", "the ")) or " differ from the expected " in reason for reason in mismatches)


def describe_failure(observation: Observation, verdict: Verdict) -> str:
    """The failure text for the terminal and JUnit: what was expected, what Proton has, what to do next."""
    target = observation.target
    status = observation.status or SyncStatus(found=False)
    if not status.found:
        headline = "has no sync status"
    elif status.latest_successful is None:
        headline = "has never synced successfully"
    else:
        headline = "is not synced from the expected commit"
    lines = [f"{target.id} {headline}"]
    label = 17
    lines.append(f"  {'expected:':<{label}}{_describe_expectation(target.expectation)}")
    if status.found:
        successful = status.latest_successful
        if successful is not None:
            lines.append(
                f"  {'last successful:':<{label}}{_describe_revision(successful.target_revision)}, "
                f"started {_when(successful.started_at)}"
            )
        else:
            lines.append(f"  {'last successful:':<{label}}none: never synced successfully")
        latest = status.latest
        if latest is not None and latest != successful:
            lines.append(f"  {'latest attempt:':<{label}}{_describe_attempt(latest)}")
            if latest.status == "FAILED":
                for event in latest.events:
                    stamp = f"{_when(event.time)} " if event.time else ""
                    lines.append(f"  {'':<{label}}{stamp}{event.type}: {event.event}")
        desired = status.desired
        if desired is not None and (successful is None or desired.sha != successful.target_revision.sha):
            lines.append(f"  {'desired state:':<{label}}sha {short(desired.sha)} (differs from last successful)")
    mismatches = mismatch_reasons(verdict)
    lines += [f"  blocked: {reason}" for reason in blocker_reasons(verdict)]
    lines += [f"    {detail}" for detail in verdict.blocker_details]  # the blockers' own facts, under them
    placed = False
    for reason in mismatches:
        lines.append(f"  mismatch: {reason}")
        if reason == verdict.details_for and not placed:  # the files that differ, under the content mismatch
            lines += [f"    {detail}" for detail in verdict.details]
            placed = True
    if not placed:
        lines += [f"    {detail}" for detail in verdict.details]
    if observation.wait_note:
        lines.append(f"  waited: {observation.wait_note}")
    for hint in verdict.hints:
        lines.append(f"  next: {hint}")
    return "\n".join(lines)


def describe_error(observation: Observation) -> str:
    error = observation.error
    if error is None:  # a status without a verdict: never a pass (nothing in the run makes one)
        return f"{observation.target.id} could not be checked: NoVerdict\n  its sync status was never judged"
    attempts = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
    return f"{observation.target.id} could not be checked: {error.code}{attempts}\n  {error.message}"


def wait_note(target: Target, status: SyncStatus | None, waited_seconds: float) -> str:
    """What was last seen when the deadline passed: "still IN_PROGRESS on <sha> after 600 s"."""
    after = f"after {waited_seconds:.0f} s"
    if status is None or not status.found:
        return f"no sync status {after}"
    latest = status.latest
    if latest is not None and sha_matches(target.expectation.sha, latest.target_revision.sha):
        return f"still {latest.status} on {short(latest.target_revision.sha)} {after}"
    successful = status.latest_successful
    last = short(successful.target_revision.sha) if successful else "none"
    return f"no sync of {short(target.expectation.sha)} started {after}; last successful is {last}"


def last_synced_sha(observation: Observation) -> str:
    status = observation.status
    if status is None or not status.found:
        return ""
    successful = status.latest_successful
    return successful.target_revision.sha if successful else ""


def latest_status(observation: Observation) -> str:
    status = observation.status
    if observation.error is not None:
        return observation.error.code
    if status is None or not status.found:
        return "NOT_FOUND"
    return status.latest.status if status.latest else "NONE"
