"""The ``pytest-proton-sync`` command: ``fake-server`` (in a real subprocess) and ``validate``."""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

import pytest_proton_sync.manifest
from pytest_proton_sync import cli

pytestmark = pytest.mark.integration  # the command and the plugin in subprocesses

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SRC = Path(pytest_proton_sync.__file__).resolve().parent.parent

MANIFEST_AVAILABLE = importlib.util.find_spec("pytest_proton_sync.manifest.loader") is not None
needs_manifest = pytest.mark.skipif(
    not MANIFEST_AVAILABLE, reason="pytest_proton_sync.manifest.loader is not written yet (another engineer's part)"
)


def run_cli(*argv: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    # Works whether or not the project is installed: the subprocess imports this very source tree.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_proton_sync.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_line(stream: Any, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return str(stream.readline())


@pytest.fixture
def fake_server_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = run_cli("fake-server", str(EXAMPLES / "fake-account.yaml"), "--log-requests")
    try:
        line = read_line(process.stdout, timeout=30)
        yield process, line
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_fake_server_subprocess_serves_boto3_and_stops_on_sigterm(
    fake_server_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, line = fake_server_process
    prefix = "serving fake AWS Proton on "
    assert line.startswith(prefix), line
    url, _, rest = line[len(prefix) :].partition(" ")
    assert url.startswith("http://127.0.0.1:")
    assert rest.strip() == f"(state: {EXAMPLES / 'fake-account.yaml'})"

    client = boto3.client(
        "proton",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    response = client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
    assert response["latestSuccessfulSync"]["targetRevision"]["sha"] == "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "GetTemplateSyncStatus ENVIRONMENT/vpc-env@1 -> 200" in stderr  # --log-requests
    assert "testing" not in stderr and "Traceback" not in stderr


def test_fake_server_rejects_a_bad_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("templates:\n  - {name: vpc-env, type: NETWORK, version: 1}\n")
    assert cli.main(["fake-server", str(state)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{state}:2:27: templates[0].type: 'NETWORK' is not allowed; allowed: ENVIRONMENT, SERVICE" in captured.err
    assert "Traceback" not in captured.err


def test_fake_server_subprocess_with_missing_state_exits_2_without_traceback(tmp_path: Path) -> None:
    process = run_cli("fake-server", str(tmp_path / "absent.yaml"))
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stdout == ""
    assert "cannot read the state file" in stderr
    assert "Traceback" not in stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == f"pytest-proton-sync {pytest_proton_sync.__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        cli.main([])
    assert excinfo.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# -- validate, against a stand-in manifest module: the CLI's own behaviour -----------------------------------
@dataclass(frozen=True)
class StubProblem:
    text: str

    def __str__(self) -> str:
        return self.text


class StubManifestError(Exception):
    def __init__(self, problems: tuple[StubProblem, ...]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


@pytest.fixture
def stub_manifest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``validate`` against the manifest module's documented interface, independent of its implementation."""
    monkeypatch.chdir(tmp_path)  # the files exist (validate says so first when one does not); the stub reads them
    for name in ("three.yaml", "one.yaml", "bad.yaml"):
        (tmp_path / name).write_text("")

    def load_manifest(path: str) -> Any:
        if "bad" in Path(path).name:
            raise StubManifestError(
                (
                    StubProblem(f"{path}:3:5: templates[0].sha: 'xyz' is not a hex sha"),
                    StubProblem(f"{path}:7:5: templates[1].type: 'NETWORK' is not one of ENVIRONMENT, SERVICE"),
                )
            )
        return types.SimpleNamespace(targets=(object(),) * (3 if "three" in path else 1))

    module = types.ModuleType("pytest_proton_sync.manifest.loader")
    module.load_manifest = load_manifest  # type: ignore[attr-defined]
    module.load_manifests = lambda paths: tuple(map(load_manifest, paths))  # type: ignore[attr-defined]

    def read_manifests(paths: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for path in paths:
            try:
                found[path] = load_manifest(path)
            except StubManifestError as error:
                found[path] = error
        return found

    module.read_manifests = read_manifests  # type: ignore[attr-defined]
    module.ManifestError = StubManifestError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pytest_proton_sync.manifest.loader", module)
    monkeypatch.setattr(pytest_proton_sync.manifest, "loader", module, raising=False)


@pytest.mark.usefixtures("stub_manifest")
def test_validate_prints_ok_per_valid_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "three.yaml", "one.yaml"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["OK three.yaml: 3 targets", "OK one.yaml: 1 target"]
    assert captured.err == ""


@pytest.mark.usefixtures("stub_manifest")
def test_validate_prints_each_problem_on_stderr_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "bad.yaml", "three.yaml"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["OK three.yaml: 3 targets"]
    assert captured.err.splitlines() == [
        "bad.yaml:3:5: templates[0].sha: 'xyz' is not a hex sha",
        "bad.yaml:7:5: templates[1].type: 'NETWORK' is not one of ENVIRONMENT, SERVICE",
    ]


# -- validate, against the real manifest module ----------------------------------------------------------------
@needs_manifest
def test_validate_real_manifest_reports_problems_with_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("version: 1\ntemplates:\n  - name: vpc-env\n    type: NETWORK\n")
    assert cli.main(["validate", str(manifest)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines, "a failed validation must say why"
    assert all(line.startswith(f"{manifest}:") for line in lines), lines
    assert "Traceback" not in captured.err


@needs_manifest
def test_validate_real_example_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    example = EXAMPLES / "proton-sync.yaml"
    if not example.exists():
        pytest.skip("examples/proton-sync.yaml is not written yet (another engineer's part)")
    assert cli.main(["validate", str(example)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == f"OK {example}: 5 targets"
