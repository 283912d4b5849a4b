"""Every Git-synced kind in one manifest: Proton templates and service instances, CloudFormation stacks through
CodeConnections, end to end through pytest and the bundled fake over HTTP."""

from __future__ import annotations

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
    assert aws_env.total_calls() == 7


def test_k_selects_by_kind_and_name(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(mixed_state())
    manifest = write_mixed_manifest(pytester.path)
    pytester.runpytest("--proton-manifest", str(manifest), "-k", "STACK").assert_outcomes(passed=1, failed=1)
    pytester.runpytest("--proton-manifest", str(manifest), "-k", "web-svc and prod").assert_outcomes(passed=1)


def test_xdist_asks_each_target_of_every_kind_exactly_once(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(mixed_state())
    manifest = write_mixed_manifest(pytester.path)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-n", "2")
    result.assert_outcomes(passed=3, failed=3, errors=1)
    assert aws_env.total_calls() == 7
