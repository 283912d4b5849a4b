"""Facts AWS owns come from the installed botocore's models, never from a copy in the package.

The mechanism is tested, not a list: every value the installed model has is accepted and published, and a model
with a value AWS has not added yet (a copy of botocore's own model, extended and put on AWS_DATA_PATH the way
botocore itself finds newer models) is accepted the moment botocore knows it, by the manifest, the published
schema, the fake and the gate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import botocore
import botocore.session
import pytest

from pytest_proton_sync.aws import facts
from pytest_proton_sync.manifest.loader import ManifestError, parse_manifest
from pytest_proton_sync.manifest.schema import editor_schema

pytestmark = pytest.mark.integration  # the command and the plugin in subprocesses

FUTURE_PROVIDER = "GitHubOnTheMoon"  # a provider no botocore has (yet)
SRC = Path(facts.__file__).resolve().parents[2]  # src/, above the package


def stack_manifest(provider: str) -> str:
    return ("version: 1\nstacks:\n  - name: network\n    sha: 0123456789abcdef0123456789abcdef01234567\n"
            f"    repository: {{name: acme/infra, provider: {provider}, branch: main}}\n")


def model(service: str) -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model(service)


@pytest.mark.parametrize("provider", model("codeconnections").shape_for("ProviderType").enum)
def test_every_provider_the_installed_model_lists_is_accepted_and_published(provider: str) -> None:
    manifest = parse_manifest(stack_manifest(provider), "m.yaml")
    assert manifest.targets[0].expectation.repository.provider == provider
    published = editor_schema()["$defs"]["repository"]["properties"]["provider"]["anyOf"][0]["enum"]
    assert provider in published


def test_proton_spellings_follow_its_model_and_alias_the_other_api() -> None:
    proton = model("proton").shape_for("RepositoryProvider").enum
    assert set(facts.proton_spellings().values()) == set(proton)
    # A manifest's defaults serve every section: CodeConnections' spelling of a provider Proton knows works too.
    assert facts.proton_spellings()["GitHub"] == "GITHUB"
    connections = model("codeconnections").shape_for("ProviderType").enum
    assert set(facts.connections_spellings().values()) == set(connections)


def test_statuses_come_from_both_models() -> None:
    for service in ("proton", "codeconnections"):
        assert set(model(service).shape_for("ResourceSyncStatus").enum) <= set(facts.sync_statuses())
        assert set(model(service).shape_for("BlockerStatus").enum) <= set(facts.blocker_statuses())


def test_a_provider_the_installed_botocore_does_not_know_names_its_version_and_the_fix() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(stack_manifest(FUTURE_PROVIDER), "m.yaml")
    (problem,) = caught.value.problems
    assert f"'{FUTURE_PROVIDER}' is not allowed" in problem.message
    assert f"botocore {botocore.__version__}" in problem.message
    assert "pip install -U boto3 botocore" in problem.message


def test_a_missing_model_is_one_message_with_the_fix() -> None:
    facts.enum.cache_clear()
    try:
        with pytest.raises(facts.MissingFact, match=r"has no enum NoSuchShape; upgrade it: pip install -U"):
            facts.enum("proton", "NoSuchShape")
    finally:
        facts.enum.cache_clear()


def test_a_service_the_installed_botocore_has_no_model_of_is_one_message_with_the_fix() -> None:
    with pytest.raises(facts.MissingFact, match=r"has no model of the no-such-api API; upgrade it: pip install -U"):
        facts.enum("no-such-api", "ProviderType")


@pytest.fixture
def newer_botocore_models(tmp_path: Path) -> dict[str, str]:
    """An AWS_DATA_PATH holding botocore's own CodeConnections model with one provider more."""
    loader = botocore.session.get_session().get_component("data_loader")
    version = loader.determine_latest_version("codeconnections", "service-2")
    data, source = loader.load_data_with_path(f"codeconnections/{version}/service-2")
    version_dir = Path(source).parent
    data["shapes"]["ProviderType"]["enum"].append(FUTURE_PROVIDER)
    target = tmp_path / "models" / "codeconnections" / version_dir.name
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(data), encoding="utf-8")
    assert not (target / "service-2.json.gz").exists()
    return {**os.environ, "AWS_DATA_PATH": str(tmp_path / "models"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}


def cli(env: dict[str, str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_proton_sync.cli", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_a_provider_aws_adds_is_accepted_as_soon_as_botocore_knows_it(
    newer_botocore_models: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(stack_manifest(FUTURE_PROVIDER), encoding="utf-8")
    without = cli({k: v for k, v in newer_botocore_models.items() if k != "AWS_DATA_PATH"}, "validate", "m.yaml",
                  cwd=tmp_path)
    assert without.returncode == 1, without.stdout + without.stderr
    assert f"'{FUTURE_PROVIDER}' is not allowed" in without.stdout + without.stderr

    validated = cli(newer_botocore_models, "validate", "m.yaml", cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    printed = cli(newer_botocore_models, "schema", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    provider = json.loads(printed.stdout)["$defs"]["repository"]["properties"]["provider"]
    assert FUTURE_PROVIDER in provider["anyOf"][0]["enum"]


def test_the_gate_passes_a_stack_on_a_provider_aws_added_against_the_fake(
    newer_botocore_models: dict[str, str], tmp_path: Path
) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    (tmp_path / "m.yaml").write_text(stack_manifest(FUTURE_PROVIDER), encoding="utf-8")
    (tmp_path / "state.yaml").write_text(
        "stacks:\n  - name: network\n"
        f"    synced: {sha}\n    repository: {{name: acme/infra, provider: {FUTURE_PROVIDER}, branch: main}}\n",
        encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "--proton-manifest", "m.yaml",
         "--proton-fake", "state.yaml", "--proton-region", "us-east-1", "-rA"],
        env=newer_botocore_models, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_facts_are_not_read_at_plugin_load() -> None:
    code = ("import sys, pytest_proton_sync.plugin, pytest_proton_sync.aws.facts\n"
            "print('botocore' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
