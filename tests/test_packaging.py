"""A package ready to publish: metadata, one version, a license, README that reads right on an index, the schema
command for editors, and the pre-commit hook (run as pre-commit runs it: its entry plus file names)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import pytest_proton_sync
from pytest_proton_sync import cli
from pytest_proton_sync.jsonreport import report_schema
from pytest_proton_sync.manifest import editor_schema

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def test_version_is_written_in_one_place() -> None:
    data = pyproject()
    project = data["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert data["tool"]["hatch"]["version"]["path"] == "src/pytest_proton_sync/__init__.py"
    assert importlib.metadata.version("pytest-proton-sync") == pytest_proton_sync.__version__


def test_license_and_metadata() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 pytest-proton-sync developers\n")
    project = pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert project["authors"] == [{"name": "pytest-proton-sync developers"}]
    classifiers = set(project["classifiers"])
    assert {"Framework :: Pytest", "Typing :: Typed", "Programming Language :: Python :: 3 :: Only"} <= classifiers
    minimum = project["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {minimum}" in classifiers
    metadata = importlib.metadata.metadata("pytest-proton-sync")
    assert "Framework :: Pytest" in (metadata.get_all("Classifier") or [])


def test_readme_reads_right_on_a_package_index() -> None:
    readme = (ROOT / "README.md").read_text()
    # A relative link breaks on an index page (there is no repository beside it); paths are written as text.
    relative = [m.group(0) for m in re.finditer(r"\]\((?!https?://|#)[^)]*\)", readme)]
    assert relative == []
    # No install line for a package that is not published.
    assert not re.search(r"pip install pytest-proton-sync\b(?! @)", readme)
    assert "## Reading the results" in readme
    for path in re.findall(r"`((?:docs|examples|benchmarks)/[\w./-]+)`", readme):
        assert (ROOT / path).is_file(), path


def test_schema_command_prints_the_manifest_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == cli.EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed == editor_schema()
    jsonschema.Draft202012Validator.check_schema(printed)


# Every manifest a user may copy: the examples and the good test manifests.
EXAMPLE_MANIFESTS = sorted(
    path for path in [*(ROOT / "examples").glob("*.yaml"), *(ROOT / "tests" / "manifests" / "good").glob("*.yaml")]
    if not path.name.startswith("fake-")
)


@pytest.mark.parametrize("path", EXAMPLE_MANIFESTS, ids=lambda path: path.name)
def test_every_example_manifest_is_valid_as_an_editor_sees_it(path: Path) -> None:
    """The raw YAML, ${VAR} and all, against the published schema, as the YAML language server checks a file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
              for error in jsonschema.Draft202012Validator(editor_schema()).iter_errors(document)]
    assert errors == []


def test_the_published_schema_still_checks_what_interpolation_does_not_touch() -> None:
    validator = jsonschema.Draft202012Validator(editor_schema())
    entry = {"name": "vpc", "type": "ENVIRONMENT", "version": "1", "repository": "acme/templates"}
    assert validator.is_valid({"version": 1, "templates": [{**entry, "sha": "${DEPLOY_SHA:-0123456}"}]})
    assert not validator.is_valid({"version": 1, "templates": [{**entry, "sha": "not-a-sha"}]})
    assert not validator.is_valid({"version": 1, "templates": [{**entry, "sha": "0123456", "type": "NETWORK"}]})
    assert not validator.is_valid({"version": 1, "templates": [{**entry, "sha": "0123456", "shaa": "x"}]})


def test_schema_command_prints_the_report_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", "--report"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out) == report_schema()


def test_pre_commit_hook_validates_manifests(tmp_path: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "proton-sync-validate"]
    assert hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("proton-sync.yaml") and files.search("deploy/proton-sync-prod.yml")
    assert not files.search("docker-compose.yaml") and not files.search("proton-sync.yaml.bak")
    good = tmp_path / "proton-sync.yaml"
    good.write_text((ROOT / "examples" / "proton-sync.yaml").read_text())
    bad = tmp_path / "proton-sync-bad.yaml"
    bad.write_text("version: 1\ntemplates:\n  - name: vpc\n    shaa: 0123456\n")
    program, *arguments = shlex.split(hook["entry"])
    assert program == "pytest-proton-sync"  # the console script of [project.scripts]
    assert pyproject()["project"]["scripts"][program] == "pytest_proton_sync.cli:main"
    env = {**os.environ, "WEB_SVC_SHA": "0" * 40, "WORKER_SVC_SHA": "0" * 40}

    def run(*paths: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_proton_sync.cli", *arguments, *map(str, paths)],
                              capture_output=True, text=True, env=env, timeout=60)

    ok = run(good)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"OK {good}: ")
    failed = run(good, bad)
    assert failed.returncode == 1
    assert f"{bad}:4:5: templates[0].shaa: unknown key 'shaa'" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_the_readme_options_table_lists_every_option_with_its_default() -> None:
    """options.py is the one place defaults live; the README's table must say the same."""
    from pytest_proton_sync.options import OPTIONS

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().split()[0].strip("`"): line for line in readme.splitlines()
            if line.startswith("| `--proton-")}
    for spec in OPTIONS:
        assert spec.flag in rows, f"{spec.flag} is missing from the README's options table"
        if spec.default is not None and spec.kind != "choice":
            default = f"{spec.default:g}" if isinstance(spec.default, float) else str(spec.default)
            assert f"| {default} " in rows[spec.flag] or f"| {default} (" in rows[spec.flag], rows[spec.flag]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**(b) Run the test suite**", 1)[1]
    command = section.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci, "README (b) and .ci/run differ"


def test_the_supported_versions_table_is_what_the_matrix_pins() -> None:
    from packaging.version import Version

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line
            for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    for name, python in (("oldest", "3.10"), ("middle", "3.12"), ("newest", "3.13")):
        pins = dict(line.split("==", 1) for line in
                    (ROOT / ".ci" / "constraints" / f"{name}-py{python}.txt").read_text().splitlines()
                    if "==" in line and not line.startswith("#"))
        cells = [cell.strip() for cell in rows[name].split("|")[2:-1]]
        assert cells == [python, pins["pytest"], pins["pluggy"], f"{pins['boto3']} / {pins['botocore']}",
                         pins["pyyaml"], pins["jsonschema"], pins["cbor2"], pins["pytest-xdist"]]
    floors = {requirement.split(">=")[0]: requirement.split(">=")[1] for requirement in pyproject()["project"]
              ["dependencies"]}
    oldest = dict(line.split("==", 1) for line in (ROOT / ".ci" / "constraints" / "oldest-py3.10.txt").read_text()
                  .splitlines() if "==" in line and not line.startswith("#"))
    for package, floor in floors.items():  # the oldest row installs exactly the declared floors
        assert Version(oldest[package.lower()]) == Version(floor), package
