"""Shared fixtures: an AWS-free environment, the bundled fake over real HTTP, and manifest/state writers."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Imported once here: hypothesis' pytest plugin would otherwise import it again in every in-process pytester run,
# which roughly doubles the cost of those runs.
import hypothesis.internal.observability  # noqa: F401
import pytest
import yaml
from moto import mock_aws

from pytest_proton_sync.fake import FakeServer, FakeState

SHA_A = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
SHA_B = "7c1e4b2a9d8f7e6c5b4a3928170f6e5d4c3b2a19"
SHA_OLD = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
REPO = {"provider": "GITHUB", "name": "acme/platform-templates", "branch": "main", "directory": "templates"}

# Sentinel credentials: tests that look for leaks search every output for these exact strings.
SECRET_ACCESS_KEY = "SENTINEL-secret-key-do-not-print-8f3a"
SESSION_TOKEN = "SENTINEL-session-token-do-not-print-41c7"
ACCESS_KEY_ID = "AKIASENTINELKEYID0001"


@pytest.fixture(autouse=True)
def aws_free_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may see the machine's AWS settings or reach AWS: wipe AWS_*, point config files at nothing,
    and turn off the instance-metadata probe (it would leave loopback). No GitHub Actions variables either."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    # Nor the CI's: a pytester run inside GitHub Actions would annotate the project's own job and append to its
    # step summary. Tests of that output set these themselves.
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("aws-home")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def no_real_aws(aws_free_environment: None) -> Iterator[None]:
    """moto's mock_aws as a guard: any request that would reach a real *.amazonaws.com endpoint is answered by
    moto (404 for Proton, which it does not implement) instead of leaving the machine. Requests to the fake on
    127.0.0.1 pass through. moto's own fake credentials are off so credential tests see the real chain."""
    with mock_aws(config={"core": {"mock_credentials": False}}):
        yield


def fake_state(*templates: dict[str, Any], faults: dict[str, Any] | None = None) -> FakeState:
    data: dict[str, Any] = {"defaults": {"repository": dict(REPO)}, "templates": list(templates)}
    if faults:
        data["faults"] = faults
    return FakeState.from_mapping(data, source="<test>")


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    """The bundled fake, empty; tests give it a state with set_state()."""
    server = FakeServer(fake_state())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """Point boto3's standard chain at the fake, as a user would point it at any endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", fake.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODECONNECTIONS", fake.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return fake


def template(name: str, sha: str, type_: str = "ENVIRONMENT", version: str = "1", **fields: Any) -> dict[str, Any]:
    """A manifest entry."""
    return {"name": name, "type": type_, "version": version, "sha": sha, **fields}


def write_manifest(directory: Path, *entries: dict[str, Any], name: str = "proton-sync.yaml",
                   defaults: dict[str, Any] | None = None) -> Path:
    data = {
        "version": 1,
        "defaults": defaults if defaults is not None else {"repository": dict(REPO)},
        "templates": list(entries),
    }
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The compatibility matrix (.ci/matrix.py) runs what depends on pytest's, pluggy's and xdist's versions: every
    # test that runs a real pytest session; modules that run the plugin in subprocesses mark themselves.
    for item in items:
        if "pytester" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
