"""Coverage of the manifest (pure comparison and its outputs), and the gate's --proton-coverage end to end against
the bundled fake over real HTTP."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from pytest_proton_sync.discovery.listing import StackSync
from pytest_proton_sync.manifest.loader import load_manifest
from pytest_proton_sync.reports import coverage
from pytest_proton_sync.reports.coverage import Coverage, Scope, compare
from pytest_proton_sync.reports.jsonreport import report_schema

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "examples" / "fake-discovery.yaml"
GATE = ROOT / "examples" / "discovery-gate.yaml"
SCOPE = Scope(None, "us-east-1")


def sync(stack: str, repository: str = "acme/infra", provider: str = "GitHub", branch: str = "main",
         config_file: str | None = None) -> StackSync:
    return StackSync(stack, provider, repository, branch, config_file, "0f4e7a5c-1d2b-4c3d-8e9f-0a1b2c3d4e5f",
                     "arn:aws:iam::111122223333:role/x")


def targets(tmp_path: Path, text: str) -> list:  # type: ignore[type-arg]
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return list(load_manifest(str(path)).targets)


MANIFEST = """\
version: 1
defaults: {sha: 5d4c3b2a19f8e7d6c5b4a3928170f6e5d4c3b2a1}
stacks:
  - {name: network, config_file: ./deploy/network.yaml/, repository: {provider: GITHUB, name: ACME/Infra}}
  - {name: app-db, config_file: cfn/db.yaml, repository: {provider: GitLab, name: acme/data/app-db, branch: main}}
"""


def test_ungated_drift_and_what_is_not_the_manifests_business(tmp_path: Path) -> None:
    found = compare(SCOPE, targets(tmp_path, MANIFEST), [
        sync("network", config_file="deploy/network.yaml"),  # same, in other spellings: no finding
        sync("edge", config_file="deploy/edge.yaml"),  # ungated
        sync("app-db", "acme/data/app-db", "GitLab", branch="release", config_file="cfn/other.yaml"),  # drift
        sync("billing", "acme/billing"),  # a repository the manifest does not name
        sync("lab", "acme/infra", provider="GitLab"),  # same name, another provider
    ], default_region="us-east-1")
    assert [(finding.kind, finding.stack) for finding in found] == [("drift", "app-db"), ("ungated", "edge")]
    drift, ungated = found
    assert drift.problem == ("branch: the entry says main, the sync configuration release; config_file: the entry "
                             "says cfn/db.yaml, the sync configuration cfn/other.yaml")
    assert drift.fix.startswith(f"in the entry at {tmp_path / 'm.yaml'}:5, set branch: release and config_file: "
                                "cfn/other.yaml")
    assert drift.line == 5
    assert ungated.fix == ("add under stacks: - {name: edge, config_file: deploy/edge.yaml, repository: "
                           "{provider: GitHub, name: acme/infra, branch: main}}")
    assert (ungated.manifest, ungated.line) == (str(tmp_path / "m.yaml"), 4)


def test_an_entry_without_branch_or_file_is_not_drift(tmp_path: Path) -> None:
    text = "version: 1\nstacks:\n  - {name: network, sha: 5d4c3b2, repository: acme/infra}\n"
    assert compare(SCOPE, targets(tmp_path, text), [sync("network", branch="dev", config_file="x.yaml")]) == []


def test_outputs_of_a_coverage() -> None:
    finding = coverage.Finding("ungated", "edge", SCOPE, "GitHub acme/infra", "synced from ...", "add ...",
                               "m.yaml", 4)
    result = Coverage(mode="fail", findings=(finding,), errors=("eu-west-1: access denied",), scopes=2,
                      sync_configurations=3, calls=4)
    assert result.failed
    assert coverage.summary_lines(result) == [
        "coverage (fail): 1 ungated, 0 drifted stacks; 3 sync configurations of the manifest's repositories in 2 "
        "account/regions, 4 list calls; 1 could not be listed",
        "UNGATED STACK/edge in us-east-1: synced from ...\n  fix: add ...",
        "ERROR coverage unknown: eu-west-1: access denied",
        "--proton-coverage fail: the run fails (exit 1) until every stack above is gated as its sync configuration "
        "says and coverage can be listed",
    ]
    assert coverage.github_annotations(result, None)[0] == (
        "::error file=m.yaml,line=4,title=proton-sync coverage%3A STACK/edge ungated::UNGATED STACK/edge in "
        "us-east-1: synced from ...%0A  fix: add ...")
    assert not Coverage(mode="warn", findings=(finding,)).failed


# -- the gate ------------------------------------------------------------------------------------------------


def run_gate(pytester: pytest.Pytester, *extra: str, state: str | None = None) -> pytest.RunResult:
    (pytester.path / "gate.yaml").write_text(GATE.read_text())
    (pytester.path / "state.yaml").write_text(state or STATE.read_text())
    # Beside the manifest, so a gate run loads it: the calls the fake received, for the test to count.
    pytester.makeconftest("""
import json
from pytest_proton_sync.session.items import SESSION_KEY

def pytest_sessionfinish(session):
    session = session.config.stash.get(SESSION_KEY, None)
    if session is not None and session.fake is not None:
        with open("calls.json", "w") as stream:
            json.dump(session.fake.calls, stream)
""")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--proton-manifest", "gate.yaml",
                                         "--proton-fake", "state.yaml", *extra)


def list_calls(pytester: pytest.Pytester) -> dict[str, int]:
    calls: dict[str, int] = json.loads((pytester.path / "calls.json").read_text())
    return {key: count for key, count in calls.items() if key.startswith("List")}


def test_fail_names_ungated_and_drifted_stacks_everywhere(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report.json"
    junit = pytester.path / "junit.xml"
    result = run_gate(pytester, "--proton-coverage", "fail", f"--proton-report={report}", f"--junitxml={junit}")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*proton coverage*",
        "coverage (fail): 1 ungated, 1 drifted stack; 3 sync configurations*in 1 account/region, 4 list calls",
        "DRIFT STACK/app-db in us-east-1: config_file: the entry says cfn/app-db.yaml, the sync configuration "
        "cfn/db.yaml",
        "  fix: in the entry at gate.yaml:14, set config_file: cfn/db.yaml*",
        "UNGATED STACK/edge in us-east-1: synced from GitHub acme/infra branch main (deploy/edge.yaml)*",
        "  fix: add under stacks: - {name: edge, config_file: deploy/edge.yaml, repository: {provider: GitHub, "
        "name: acme/infra, branch: main}, region: us-east-1}",
    ])
    assert "billing" not in result.stdout.str()
    document = json.loads(report.read_text())
    jsonschema.validate(document, report_schema())
    assert document["exit_status"] == 1
    assert [(item["kind"], item["stack"]) for item in document["coverage"]["findings"]] == [
        ("drift", "app-db"), ("ungated", "edge")]
    properties = {prop.get("name"): prop.get("value") for prop in ET.parse(junit).iter("property")}
    assert properties["proton.coverage"].startswith("coverage (fail): 1 ungated, 1 drifted stack")
    assert properties["proton.coverage.2"].startswith("UNGATED STACK/edge in us-east-1")


@pytest.mark.plugin_logic
def test_warn_reports_without_changing_the_exit_status(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run_gate(pytester, "--proton-coverage", "warn")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "coverage (warn): 1 ungated, 1 drifted stack*",
        "::warning file=gate.yaml,line=*,title=proton-sync coverage%3A STACK/edge ungated::UNGATED*",
    ])


@pytest.mark.plugin_logic
def test_off_is_the_default_and_makes_no_list_call(pytester: pytest.Pytester) -> None:
    result = run_gate(pytester)
    assert result.ret == 0
    assert "coverage" not in result.stdout.str()
    assert list_calls(pytester) == {}
    pytester.makeini("[pytest]\nproton_coverage = fail\n")
    assert run_gate(pytester).ret == 1  # the ini value
    # Only the calls it needs: one walk of the links (2 pages of 2), one walk per link of a named repository.
    calls = list_calls(pytester)
    assert calls.pop("ListRepositoryLinks") == 2
    assert sorted(calls.values()) == [1, 1] and len(calls) == 2


@pytest.mark.plugin_logic
def test_coverage_that_cannot_be_listed_fails_closed(pytester: pytest.Pytester) -> None:
    state = STATE.read_text().replace("listing:\n  page_size: 2",
                                      "listing:\n  page_size: 2\n  deny: [ListRepositoryLinks]")
    result = run_gate(pytester, "--proton-coverage", "fail", state=state)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "ERROR coverage unknown: us-east-1: access denied: codeconnections:ListRepositoryLinks in us-east-1*"])


def test_a_bad_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_gate(pytester, "--proton-coverage", "strict")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--proton-coverage*invalid choice*'strict'*"])


# -- repository link health -------------------------------------------------------------------------------------


def test_a_failed_repository_sync_is_the_cause_in_the_failure_text(pytester: pytest.Pytester) -> None:
    (pytester.path / "gate.yaml").write_text("""\
version: 1
defaults: {region: us-east-1, sha: 0123456789abcdef0123456789abcdef01234567}
stacks:
  - {name: app-db, repository: {provider: GitLab, name: acme/data/app-db}}
  - {name: network, repository: {provider: GitHub, name: acme/infra}}
""")
    (pytester.path / "state.yaml").write_text(STATE.read_text())
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--proton-manifest", "gate.yaml",
                                           "--proton-fake", "state.yaml", f"--junitxml={junit}")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "STACK/app-db is not synced from the expected commit",
        "  cause:           the repository link of GitLab acme/data/app-db (branch release): its latest repository "
        "sync FAILED, started 2026-09-30 16:20:00 UTC",
        "                   REPOSITORY_SYNC_FAILED: Could not access the repository: the connection is not available",
        "  next: fix the repository link*",
    ])
    text = result.stdout.str()
    network = text.split("STACK/network is not synced from the expected commit", 1)[1].split("____", 1)[0]
    assert "cause:" not in network  # acme/infra's link has no failed repository sync
    assert "REPOSITORY_SYNC_FAILED" in junit.read_text()


def test_nothing_newer_seen() -> None:
    from pytest_proton_sync.fetch.link_health import nothing_newer_seen
    from pytest_proton_sync.model import Revision, SyncAttempt, SyncStatus

    def attempt(sha: str, status: str = "SUCCEEDED") -> SyncAttempt:
        return SyncAttempt(status, Revision(sha, "acme/infra", "GitHub", "main", ""))

    assert nothing_newer_seen(SyncStatus(latest_successful=attempt("a"), latest=attempt("a")))
    assert nothing_newer_seen(SyncStatus())  # never any attempt
    assert not nothing_newer_seen(SyncStatus(latest_successful=attempt("a"), latest=attempt("b", "FAILED")))
    assert not nothing_newer_seen(SyncStatus(latest=attempt("b", "FAILED")))  # its own events say why
    assert not nothing_newer_seen(SyncStatus(found=False))
