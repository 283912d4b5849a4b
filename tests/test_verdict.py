"""The truth table of the gate, as pure functions: an out-of-sync target cannot pass, an in-sync one cannot fail."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from string import ascii_letters as ASCII_LETTERS

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_proton_sync.kinds import TEMPLATE, make_target
from pytest_proton_sync.model import (
    CheckError,
    Expectation,
    Observation,
    RepositorySpec,
    Revision,
    SyncAttempt,
    SyncEvent,
    SyncStatus,
    Target,
)
from pytest_proton_sync.verdict.judge import (
    describe_error,
    describe_failure,
    is_settled,
    judge,
    sync_failed_on_expected,
    wait_note,
)

SHA = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
OLD = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
WHEN = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)


def target(sha: str = SHA, name: str = "acme/platform-templates", provider: str | None = "GITHUB",
           branch: str | None = "main", directory: str | None = "templates") -> Target:
    fields = {"name": "vpc-env", "type": "ENVIRONMENT", "version": "1"}
    return make_target(TEMPLATE, fields, Expectation(sha, RepositorySpec(name, provider, branch, directory)))


def revision(sha: str = SHA, name: str = "acme/platform-templates", provider: str = "GITHUB",
             branch: str = "main", directory: str = "templates") -> Revision:
    return Revision(sha, name, provider, branch, directory)


def attempt(status: str = "SUCCEEDED", sha: str = SHA, **kwargs: object) -> SyncAttempt:
    events = (SyncEvent("CloudFormation stack failed: parameter VpcCidr is invalid", "ERROR", WHEN),) \
        if status == "FAILED" else ()
    return SyncAttempt(status, revision(sha, **kwargs), WHEN, revision(OLD), events)  # type: ignore[arg-type]


def synced(sha: str = SHA, latest: SyncAttempt | None = None, desired: str | None = None,
           **kwargs: object) -> SyncStatus:
    successful = attempt("SUCCEEDED", sha, **kwargs)
    return SyncStatus(True, revision(desired or (latest.target_revision.sha if latest else sha)), successful,
                      latest or successful)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        (SHA, SHA),
        (SHA[:7], SHA),  # shortest prefix
        (SHA[:12].upper(), SHA),  # any case
        (SHA, SHA.upper()),
    ],
)
def test_matching_sha_passes(expected: str, actual: str) -> None:
    assert judge(target(expected.lower()), synced(actual)).passed


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (synced(OLD), f"sha {OLD[:12]} is not the expected {SHA[:12]}"),
        (synced(SHA, name="acme/forked-templates"), "repository acme/forked-templates is not the expected"),
        (synced(SHA, provider="BITBUCKET"), "provider BITBUCKET is not the expected GITHUB"),
        (synced(SHA, branch="release"), "branch release is not the expected main"),
        (synced(SHA, branch="Main"), "branch Main is not the expected main"),  # git branches are case-sensitive
        (synced(SHA, directory="other"), "directory other is not the expected templates"),
    ],
)
def test_any_mismatch_fails(status: SyncStatus, reason: str) -> None:
    verdict = judge(target(), status)
    assert not verdict.passed
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


def test_prefix_of_another_commit_fails() -> None:
    assert not judge(target(SHA[:7]), synced("3f2a9c2" + SHA[7:])).passed


def test_fields_the_manifest_omits_are_not_checked() -> None:
    loose = target(provider=None, branch=None, directory=None)
    assert judge(loose, synced(SHA, provider="BITBUCKET", branch="anything", directory="x")).passed


def test_repository_name_and_provider_ignore_case_and_directory_ignores_slashes() -> None:
    assert judge(target(directory="./templates/"), synced(SHA, name="ACME/Platform-Templates",
                                                          provider="github", directory="/templates")).passed


def test_judged_on_latest_successful_not_latest_attempt() -> None:
    # The latest attempt is of the expected commit but still running: the deployed state is the old one.
    status = synced(OLD, latest=attempt("IN_PROGRESS", SHA))
    verdict = judge(target(), status)
    assert not verdict.passed
    assert "syncing now" in verdict.hints[0]


def test_never_synced_fails() -> None:
    status = SyncStatus(True, revision(SHA), None, attempt("FAILED", SHA))
    verdict = judge(target(), status)
    assert not verdict.passed
    assert verdict.reasons == ("the template has never synced successfully",)


def test_not_found_fails_and_asks_about_template_sync() -> None:
    verdict = judge(target(), SyncStatus(found=False))
    assert not verdict.passed
    assert "no sync status exists for ENVIRONMENT/vpc-env@1" in verdict.reasons[0]
    assert "template sync configured" in verdict.hints[0]


def test_failed_sync_of_expected_commit_settles_at_once() -> None:
    status = synced(OLD, latest=attempt("FAILED", SHA))
    assert sync_failed_on_expected(target().expectation, status)
    assert settled(status)
    assert not settled(synced(OLD, latest=attempt("IN_PROGRESS", SHA)))
    # A failure of some other commit says nothing about ours: keep waiting.
    assert not settled(synced(OLD, latest=attempt("FAILED", OLD)))


def settled(status: SyncStatus) -> bool:
    return is_settled(target(), status, judge(target(), status))


def test_failure_text_names_expected_actual_latest_events_and_desired() -> None:
    status = synced(OLD, latest=attempt("FAILED", SHA))
    text = describe_failure(Observation(target(), status), judge(target(), status))
    assert text.splitlines()[0] == "ENVIRONMENT/vpc-env@1 is not synced from the expected commit"
    assert f"expected:        sha {SHA} from GITHUB acme/platform-templates branch main" in text
    assert f"last successful: sha {OLD[:12]} from GITHUB acme/platform-templates branch main" in text
    assert "2026-11-20 10:00:00 UTC" in text
    assert f"latest attempt:  FAILED on sha {SHA[:12]}" in text
    assert "ERROR: CloudFormation stack failed: parameter VpcCidr is invalid" in text
    assert f"desired state:   sha {SHA[:12]} (differs from last successful)" in text
    assert "next: The sync of the expected commit FAILED" in text


def test_failure_text_for_a_commit_proton_has_not_seen() -> None:
    text = describe_failure(Observation(target(), synced(OLD)), judge(target(), synced(OLD)))
    assert "desired state" not in text  # same as last successful: no noise
    assert "Proton has not seen 3f2a9c1d8e7b: check that it is pushed to branch main of " \
           "acme/platform-templates and touches templates/" in text


def test_wait_notes_say_what_was_last_seen() -> None:
    assert wait_note(target(), synced(OLD, latest=attempt("IN_PROGRESS", SHA)), 600) == \
        f"still IN_PROGRESS on {SHA[:12]} after 600 s"
    assert wait_note(target(), synced(OLD), 30) == \
        f"no sync of {SHA[:12]} started after 30 s; last successful is {OLD[:12]}"


def test_error_text_counts_attempts() -> None:
    observation = Observation(target(), error=CheckError("ThrottlingException", "throttled", attempts=5))
    assert describe_error(observation) == \
        "ENVIRONMENT/vpc-env@1 could not be checked: ThrottlingException (after 5 attempts)\n  throttled"


# --- fail closed: nothing but an exact, well-formed, SUCCEEDED answer passes ---------------------------------

@pytest.mark.parametrize(
    "actual",
    [
        SHA + "deadbeef",  # the expected 40 digits and more: a prefix test on the answer would pass it
        SHA + "\n::error::x",
        " " + SHA,
        SHA + "\u3000",
        SHA[:39],  # a short answer is not a commit id, even if the manifest gave a prefix of it
        SHA[:20] + "g" * 20,
        "",
    ],
)
def test_malformed_answer_sha_never_passes(actual: str) -> None:
    for expected in (SHA, SHA[:7]):
        status = synced(SHA)
        bad = SyncStatus(True, status.desired, attempt("SUCCEEDED", actual), status.latest)
        assert not judge(target(expected), bad).passed


@pytest.mark.parametrize("status_text", ["FAILED", "IN_PROGRESS", "INITIATED", "", "succeeded", "SUCCEEDED "])
def test_latest_successful_sync_must_say_succeeded(status_text: str) -> None:
    status = synced(SHA)
    contradictory = SyncStatus(True, status.desired, attempt(status_text, SHA), status.latest)
    verdict = judge(target(), contradictory)
    assert not verdict.passed
    assert any("not SUCCEEDED" in reason for reason in verdict.reasons)


@pytest.mark.parametrize(
    "fields",
    [
        {"provider": "G\u0131THUB"},  # dotless i: Unicode-uppercases to "I"
        {"directory": "\u3000templates\u3000"},
        {"directory": "templates\u2028"},
        {"directory": " templates"},
        {"branch": "main\n"},
    ],
)
def test_unicode_look_alikes_never_pass(fields: dict[str, str]) -> None:
    assert not judge(target(), synced(SHA, **fields)).passed  # type: ignore[arg-type]


def test_kelvin_sign_is_not_k() -> None:
    # "\u212a".lower() == "k": a Unicode case mapping would take this look-alike repository for the real one.
    assert not judge(target(name="acme/k8s-templates"), synced(SHA, name="acme/\u212a8s-templates")).passed
    assert judge(target(name="acme/k8s-templates"), synced(SHA, name="ACME/K8s-templates")).passed


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "ACME/Platform-Templates"},
        {"provider": "github"},
        {"directory": "./templates/"},
        {"directory": "/templates"},
    ],
)
def test_documented_normalisations_still_pass(fields: dict[str, str]) -> None:
    assert judge(target(), synced(SHA, **fields)).passed  # type: ignore[arg-type]


def _allowed_equal(field: str, original: str, mutated: str) -> bool:
    """The documented normalisations (docs/manifest.md, "How answers are compared"), written independently of
    verdict's helpers: ASCII A-Z case only for sha, repository name and provider; for a directory, any number of
    leading "./", then leading and trailing "/"; everything else exactly."""
    if field in ("sha", "name", "provider"):
        return len(mutated) == len(original) and all(
            a == b or (a in ASCII_LETTERS and b in ASCII_LETTERS and a.lower() == b.lower())
            for a, b in zip(original, mutated, strict=True)
        )
    if field == "directory":
        return re.fullmatch(r"(?:\./)*/*" + re.escape(original) + "/*", mutated) is not None
    return original == mutated


@given(
    field=st.sampled_from(["sha", "name", "provider", "branch", "directory"]),
    position=st.integers(min_value=0, max_value=60),
    insert=st.text(min_size=1, max_size=3),
    delete=st.integers(min_value=0, max_value=2),
)
@settings(max_examples=300, deadline=None)
def test_any_mutation_of_a_matching_answer_that_is_not_a_normalisation_never_passes(
    field: str, position: int, insert: str, delete: int
) -> None:
    original = {"sha": SHA, "name": "acme/platform-templates", "provider": "GITHUB", "branch": "main",
                "directory": "templates"}[field]
    at = min(position, len(original))
    mutated = original[:at] + insert + original[at + delete:]
    passed = judge(target(), synced(**{field: mutated})).passed  # type: ignore[arg-type]
    assert passed == _allowed_equal(field, original, mutated)


# -- what a person reads next (issue: hints that mislead) ----------------------------------------------------------

def content_target(directory: str = "templates", kind_fields: dict[str, str] | None = None) -> Target:
    fields = kind_fields or {"name": "vpc-env", "type": "ENVIRONMENT", "version": "1"}
    expectation = Expectation(SHA, RepositorySpec("acme/platform-templates", "GITHUB", "main", directory),
                              rev="HEAD", match="content", bundle=("templates/vpc-env/v1/",))
    return make_target(TEMPLATE, fields, expectation)


def test_identical_files_synced_from_another_directory_get_the_directory_hint() -> None:
    """rev: HEAD, a later commit with the same files synced, but from another directory: the sha is not the
    problem (content matches), so the hint is about the directory, not 'Proton has not seen ...'."""
    from pytest_proton_sync.model import ContentComparison

    status = synced(OLD, directory="old-templates")
    verdict = judge(content_target(), status, lambda target, sha: ContentComparison(sha, SHA, equal=True))
    assert not verdict.passed
    assert verdict.reasons == ("directory old-templates is not the expected templates",)
    assert verdict.hints[0].startswith("The expected commit synced, but from another repository, branch or directory")


def test_files_that_differ_follow_the_content_mismatch_not_the_last_one() -> None:
    from pytest_proton_sync.model import ContentComparison

    comparison = ContentComparison(OLD, SHA, equal=False, changes=(("modified", "templates/vpc-env/v1/x.yaml"),))
    status = synced(OLD, directory="old-templates")
    verdict = judge(content_target(), status, lambda target, sha: comparison)
    text = describe_failure(Observation(content_target(), status), verdict).splitlines()
    content = next(i for i, line in enumerate(text) if "differ from the expected" in line)
    assert text[content + 1].strip().startswith("files that differ")
    assert text[content + 2].strip() == "modified templates/vpc-env/v1/x.yaml"
    assert text[content + 3].startswith("  mismatch: directory old-templates")


def test_blocker_details_are_under_the_blocker() -> None:
    from pytest_proton_sync.kinds import STACK
    from pytest_proton_sync.model import SyncBlocker

    stack = make_target(STACK, {"name": "app-db"}, Expectation(SHA, RepositorySpec("acme/infra")))
    blocker = SyncBlocker("b-1", "AUTOMATED", "ACTIVE", "failed twice", WHEN,
                          contexts=(("StackName", "app-db"), ("FailedCommit", SHA)))
    status = SyncStatus(True, revision(SHA), attempt("SUCCEEDED", OLD), attempt("FAILED", SHA), (blocker,))
    verdict = judge(stack, status)
    lines = describe_failure(Observation(stack, status), verdict).splitlines()
    blocked = next(i for i, line in enumerate(lines) if line.startswith("  blocked: "))
    assert lines[blocked + 1:blocked + 3] == ["    StackName: app-db", f"    FailedCommit: {SHA}"]
    assert lines[blocked + 3].startswith("  mismatch: sha ")
    assert not lines[blocked + 4].startswith("    ")


def test_the_unseen_commit_hint_says_each_thing_once() -> None:
    from pytest_proton_sync.kinds import STACK

    stack = make_target(STACK, {"name": "app-db"}, Expectation(SHA, RepositorySpec("acme/infra", branch="main")))
    status = SyncStatus(True, revision(OLD), attempt("SUCCEEDED", OLD), attempt("SUCCEEDED", OLD))
    (hint,) = judge(stack, status).hints
    assert hint.count("deployment file") == 1, hint
    assert hint.startswith("CloudFormation Git sync has not seen 3f2a9c1d8e7b: check that it is pushed to branch "
                           "main of acme/infra and changes the stack's deployment file or the files it names")
