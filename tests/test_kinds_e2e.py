"""Every Git-synced kind in one manifest: Proton templates and service instances, CloudFormation stacks through
CodeConnections, end to end through pytest and the bundled fake over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from pytest_proton_sync.fake import FakeServer, FakeState

from .conftest import REPO, SHA_A, SHA_B, SHA_OLD
from .test_plugin import junit_cases

STACK_REPO = {"provider": "GitHub", "name": "acme/infra", "branch": "main", "directory": "stacks"}


def mixed_state(**overrides: Any) -> FakeState:
    data: dict[str, Any] = {
        "defaults": {"repository": dict(REPO)},
        "templates": [{"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}],
        "service_instances": [
            {"service": "web-svc", "name": "prod", "synced": SHA_B},
            {"service": "web-svc", "name": "staging", "synced": SHA_OLD},
            {"service": "web-svc", "name": "denied", "synced": SHA_B, "deny": True},
        ],
        "stacks": [
            {"name": "network", "repository": dict(STACK_REPO), "synced": SHA_A},
            {"name": "app-db", "repository": {**STACK_REPO, "name": "acme/data"}, "synced": SHA_A},
        ],
        **overrides,
    }
    return FakeState.from_mapping(data, source="<test>")


def write_mixed_manifest(directory: Any) -> Any:
    data = {
        "version": 1,
        "defaults": {"repository": dict(REPO), "region": "us-east-1"},
        "templates": [{"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "sha": SHA_A}],
        "service_instances": [
            {"service": "web-svc", "name": "prod", "sha": SHA_B},
            {"service": "web-svc", "name": "staging", "sha": SHA_B},
            {"service": "web-svc", "name": "denied", "sha": SHA_B},
            {"service": "web-svc", "name": "missing", "sha": SHA_B},
        ],
        "stacks": [
            # Proton's spelling in the manifest, CodeConnections' in the answer: the same provider.
            {"name": "network", "sha": SHA_A, "repository": {**STACK_REPO, "provider": "GITHUB"}},
            {"name": "app-db", "sha": SHA_A, "repository": STACK_REPO},  # synced from acme/data, not acme/infra
        ],
    }
    path = directory / "proton-sync.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_kind_passes_fails_and_errors_in_one_run(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(mixed_state())
    manifest = write_mixed_manifest(pytester.path)
    result = pytester.runpytest("--proton-manifest", str(manifest), "--junitxml=out.xml", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*ENVIRONMENT/vpc-env@1 PASSED*",
        "*SERVICE_INSTANCE/web-svc/prod PASSED*",
        "*STACK/network PASSED*",
    ])
    result.stdout.fnmatch_lines([
        "SERVICE_INSTANCE/web-svc/missing has no sync status",
        "*Is service sync configured for this service*",
    ])
    result.stdout.fnmatch_lines([
        "STACK/app-db is not synced from the expected commit",
        "*mismatch: repository acme/data is not the expected acme/infra",
        "*the stack's Git sync configuration*",
    ])
    result.stdout.fnmatch_lines([
        "SERVICE_INSTANCE/web-svc/denied could not be checked: AccessDeniedException",
        "*fix: allow proton:GetServiceInstanceSyncStatus*",
    ])
    outcomes = {name: outcome for name, (outcome, _) in junit_cases(pytester.path / "out.xml").items()}
    assert outcomes["STACK/app-db"] == "failed" and outcomes["SERVICE_INSTANCE/web-svc/denied"] == "error"
    # Exactly one status call per target, each to its own service.
    calls = aws_env.calls
    assert calls["GetTemplateSyncStatus ENVIRONMENT/vpc-env@1"] == 1
    assert calls["GetServiceInstanceSyncStatus web-svc/prod"] == 1
    assert calls["GetResourceSyncStatus network"] == 1
    status_operations = ("GetTemplateSyncStatus", "GetServiceInstanceSyncStatus", "GetResourceSyncStatus")
    assert sum(aws_env.total_calls(operation=name) for name in status_operations) == 7
    # Blockers only for the targets of kinds that have them and do not pass (found, not denied).
    assert {key for key in calls if "Blocker" in key} == {"GetServiceSyncBlockerSummary web-svc/staging",
                                                         "GetSyncBlockerSummary app-db"}


def test_k_selects_by_kind_and_name(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(mixed_state())
    manifest = write_mixed_manifest(pytester.path)
    pytester.runpytest("--proton-manifest", str(manifest), "-k", "STACK").assert_outcomes(passed=1, failed=1)
    pytester.runpytest("--proton-manifest", str(manifest), "-k", "web-svc and prod").assert_outcomes(passed=1)


@pytest.mark.plugin_logic
def test_xdist_asks_each_target_of_every_kind_exactly_once(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(mixed_state())
    manifest = write_mixed_manifest(pytester.path)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-n", "2")
    result.assert_outcomes(passed=3, failed=3, errors=1)
    assert aws_env.total_calls() == 7 + 2  # a status call per target, a blockers call per failing instance/stack


BLOCKER = {"id": "7e1f2a3b-4c5d", "type": "AUTOMATED", "status": "ACTIVE",
           "created_reason": "Stack app-db failed to update twice in a row", "created_at": "2026-09-30T16:25:00Z",
           "contexts": {"StackName": "app-db"}}


def blocked_state(**stack: Any) -> FakeState:
    return FakeState.from_mapping({
        "defaults": {"repository": dict(STACK_REPO)},
        "stacks": [
            {"name": "network", "synced": SHA_A},
            {"name": "app-db", "synced": SHA_OLD,
             "latest": {"status": "FAILED", "sha": SHA_A, "events": [{"type": "ERROR", "event": "update failed"}]},
             **stack},
        ],
    }, source="<test>")


def stacks_manifest(directory: Any) -> Any:
    data = {"version": 1, "defaults": {"repository": dict(STACK_REPO), "sha": SHA_A, "region": "us-east-1"},
            "stacks": [{"name": "network"}, {"name": "app-db"}]}
    path = directory / "stacks.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_an_active_blocker_fails_its_stack_with_the_command_that_resolves_it(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    aws_env.set_state(blocked_state(blockers=[BLOCKER, {**BLOCKER, "id": "old", "status": "RESOLVED",
                                                        "resolved_reason": "fixed"}]))
    result = pytester.runpytest("--proton-manifest", str(stacks_manifest(pytester.path)), "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "STACK/app-db is not synced from the expected commit",
        "  blocked: sync is blocked: AUTOMATED blocker 7e1f2a3b-4c5d, created 2026-09-30 16:25:00 UTC: Stack app-db "
        "failed to update twice in a row",
        "*StackName: app-db",
        "  next: CloudFormation Git sync will not sync again until the blocker is resolved; once the cause is fixed: "
        "aws codeconnections update-sync-blocker --id 7e1f2a3b-4c5d --resource-name app-db --sync-type "
        "CFN_STACK_SYNC --resolved-reason*",
    ])
    assert "blocker old" not in result.stdout.str()  # a resolved blocker blocks nothing
    # A passing target costs no blockers call; the failing one exactly one.
    assert aws_env.calls.get("GetSyncBlockerSummary network", 0) == 0
    assert aws_env.calls["GetSyncBlockerSummary app-db"] == 1


def test_a_blocker_that_appears_while_waiting_ends_the_wait_at_once(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    # Syncing the expected commit, not done yet; on the second look a blocker is there.
    aws_env.set_state(blocked_state(latest={"status": "IN_PROGRESS", "sha": SHA_A},
                                    sequence=[{}, {"blockers": [BLOCKER]}]))
    started = time.monotonic()
    result = pytester.runpytest("--proton-manifest", str(stacks_manifest(pytester.path)), "--proton-wait", "60",
                                "--proton-poll-interval", "0.2", "-p", "no:randomly")
    seconds = time.monotonic() - started
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*blocked: sync is blocked: AUTOMATED blocker 7e1f2a3b-4c5d*"])
    assert seconds < 20, seconds  # not the 60 s deadline
    assert aws_env.calls["GetSyncBlockerSummary app-db"] == 2
    assert aws_env.calls["GetResourceSyncStatus app-db"] == 2


def test_a_blocked_service_instance_says_how_to_resolve_it_in_proton(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    aws_env.set_state(FakeState.from_mapping({
        "defaults": {"repository": dict(REPO)},
        "service_instances": [{"service": "web-svc", "name": "prod", "synced": SHA_OLD,
                               "blockers": [{**BLOCKER, "id": "blk-9", "contexts": {}}]}],
    }, source="<test>"))
    data = {"version": 1, "defaults": {"repository": dict(REPO), "sha": SHA_A, "region": "us-east-1"},
            "service_instances": [{"service": "web-svc", "name": "prod"}]}
    manifest = pytester.path / "instances.yaml"
    manifest.write_text(yaml.safe_dump(data))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*aws proton update-service-sync-blocker --id blk-9 --resolved-reason*"])


def test_the_judge_is_asked_once_per_answer_though_blockers_join_the_status(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    # The failing stack's answer is judged, its blockers are asked for, and they go into that verdict: its
    # status with the blockers is not judged a second time.
    aws_env.set_state(blocked_state(blockers=[BLOCKER]))
    pytester.makeconftest("""
        import collections, json

        JUDGED = collections.Counter()

        def pytest_proton_sync_judge(target, status, compare_content):
            JUDGED[target.id] += 1  # and None: the plugin's own judge decides

        def pytest_unconfigure(config):
            (config.rootpath / "judged.json").write_text(json.dumps(JUDGED))
    """)
    result = pytester.runpytest("--proton-manifest", str(stacks_manifest(pytester.path)), "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  blocked: sync is blocked: AUTOMATED blocker 7e1f2a3b-4c5d*",
                                 "  mismatch: sha 1b2c3d4e5f60 is not the expected 3f2a9c1d8e7b",
                                 "  next: CloudFormation Git sync will not sync again until the blocker is resolved*"])
    assert aws_env.calls["GetSyncBlockerSummary app-db"] == 1
    assert json.loads((pytester.path / "judged.json").read_text()) == {"STACK/network": 1, "STACK/app-db": 1}
