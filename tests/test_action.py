"""The composite GitHub Action (action.yml), run the way a runner runs it.

Each step's ``run:`` is executed by ``bash -e`` with its ``env:``, where ``${{ inputs.X }}`` is replaced by the
input's value (given, else the action's default) and any other expression fails the test; GITHUB_ACTION_PATH is
the repository root, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY are files. The gate runs against the bundled fake.
The install step is run for its failure paths only: a real install needs PyPI, which tests never reach; the
gate uses the venv these tests run in (PROTON_SYNC_VENV), which holds this very checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def render(value: str, inputs: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression.startswith("inputs."), f"a step uses {expression!r}, which this test cannot give"
        name = expression[len("inputs."):]
        assert name in ACTION["inputs"], f"a step uses the undeclared input {name!r}"
        return inputs.get(name, str(ACTION["inputs"][name].get("default", "")))

    return EXPRESSION.sub(one, value)


def run_step(step_id: str, inputs: dict[str, str], workspace: Path,
             **environment: str) -> tuple[int, str, dict[str, str], str]:
    """Run one step of the action; (exit code, stdout + stderr, GITHUB_OUTPUT as a dict, the step summary)."""
    steps = {step.get("id", step["name"]): step for step in ACTION["runs"]["steps"]}
    step = steps[step_id]
    assert step["shell"] == "bash"
    output, summary = workspace / "github-output", workspace / "step-summary.md"
    output.touch()
    summary.touch()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workspace),
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(workspace / "runner-temp"),
        "AWS_CONFIG_FILE": os.environ["AWS_CONFIG_FILE"],
        "AWS_SHARED_CREDENTIALS_FILE": os.environ["AWS_SHARED_CREDENTIALS_FILE"],
        "AWS_EC2_METADATA_DISABLED": "true",
        **{name: render(str(value), inputs) for name, value in (step.get("env") or {}).items()},
        **environment,
    }
    (workspace / "runner-temp").mkdir(exist_ok=True)
    # As the runner does for shell: bash (--noprofile --norc -eo pipefail {0}).
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", render(step["run"], inputs)],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done.returncode, done.stdout + done.stderr, outputs, summary.read_text()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


THIS_VENV = {"PROTON_SYNC_VENV": sys.prefix}


def test_action_is_composite_and_every_input_reaches_a_step() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) == {"mode", "manifest", "wait", "pytest-args", "junit-path", "python",
                                     "plugin-version"}
    used = {name for step in ACTION["runs"]["steps"] for value in (step.get("env") or {}).values()
            for name in re.findall(r"inputs\.([\w-]+)", str(value))}
    assert used == set(ACTION["inputs"])
    # Inputs reach the scripts as environment variables only, never pasted into a script's text.
    assert all("inputs." not in step["run"] for step in ACTION["runs"]["steps"])
    assert ACTION["outputs"]["junit-path"]["value"] == "${{ steps.gate.outputs.junit-path }}"


def test_the_drifted_example_fails_with_outputs_summary_and_junit(workspace: Path) -> None:
    inputs = {"manifest": "examples/proton-sync.yaml\n",
              "pytest-args": "--proton-fake examples/fake-account-drifted.yaml -p 'no:randomly'",
              "junit-path": "reports/proton sync.xml"}
    (workspace / "reports").mkdir()
    code, log, outputs, summary = run_step("gate", inputs, workspace, **THIS_VENV)
    assert code == 1, log
    assert outputs == {"junit-path": "reports/proton sync.xml", "exit-code": "1"}
    suite = ET.parse(workspace / "reports" / "proton sync.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "5" and suite.get("failures") == "4"
    assert "5 targets: 4 failed, 1 passed" in summary
    assert "SERVICE/web-svc" in summary
    assert re.search(r"^::error file=examples/proton-sync.yaml,line=\d+.*SERVICE/web-svc@1", log, re.M), log


def test_the_example_in_sync_passes(workspace: Path) -> None:
    inputs = {"manifest": "examples/proton-sync.yaml",
              "pytest-args": "--proton-fake examples/fake-account.yaml", "wait": "5"}
    code, log, outputs, summary = run_step("gate", inputs, workspace, **THIS_VENV)
    assert code == 0, log
    assert outputs["exit-code"] == "0" and outputs["junit-path"] == "proton-sync.xml"
    assert (workspace / "proton-sync.xml").is_file()
    assert "all passed" in summary


def test_two_manifests_one_per_line(workspace: Path) -> None:
    (workspace / "more sync.yaml").write_text(
        "version: 1\ndefaults: {region: us-east-1, repository: acme/platform-templates}\n"
        "templates:\n  - {name: ghost-env, type: ENVIRONMENT, version: 1, sha: 3f2a9c1}\n", encoding="utf-8")
    inputs = {"manifest": "examples/proton-sync.yaml\n\n  more sync.yaml  \n",
              "pytest-args": "--proton-fake examples/fake-account.yaml --collect-only -q"}
    code, log, _, _ = run_step("gate", inputs, workspace, **THIS_VENV)
    assert code == 0, log
    assert "examples/proton-sync.yaml::ENVIRONMENT/vpc-env@1" in log
    assert "more sync.yaml::ENVIRONMENT/ghost-env@1" in log


def test_a_usage_error_exits_as_the_gate_does_and_says_so_in_the_summary(workspace: Path) -> None:
    inputs = {"manifest": "examples/proton-sync.yaml", "wait": "soon",
              "pytest-args": "--proton-fake examples/fake-account.yaml"}
    code, log, outputs, summary = run_step("gate", inputs, workspace, **THIS_VENV)
    assert code == 4, log
    assert "--proton-wait" in log
    assert outputs["exit-code"] == "4"
    assert "the gate did not run (exit 4)" in summary


def test_pytest_args_are_split_but_never_evaluated(workspace: Path) -> None:
    marker = workspace / "pwned"
    code, log, _, _ = run_step("gate", {"pytest-args": f"-k 'x' $(touch {marker}) `touch {marker}`"},
                               workspace, **THIS_VENV)
    assert not marker.exists()
    code, log, _, _ = run_step("gate", {"pytest-args": "-k 'unclosed"}, workspace, **THIS_VENV)
    assert code == 2
    assert "::error title=proton-sync: bad input::input pytest-args cannot be split into words" in log


def test_install_names_a_python_that_is_not_there(workspace: Path) -> None:
    code, log, _, _ = run_step("Install pytest-proton-sync into its own venv", {"python": "python-that-is-not-here"},
                               workspace)
    assert code == 2
    assert "::error title=proton-sync: no Python::input python is 'python-that-is-not-here'" in log


def test_install_that_pip_cannot_do_fails_the_step(workspace: Path) -> None:
    inputs: dict[str, Any] = {"python": sys.executable, "plugin-version": "pytest-proton-sync==0.0.0.dev0"}
    code, log, _, _ = run_step("Install pytest-proton-sync into its own venv", inputs, workspace,
                               PIP_NO_INDEX="1", PIP_FIND_LINKS=str(workspace / "no-wheels"))
    assert code == 2, log
    assert "::error title=proton-sync: install failed::pip could not install 'pytest-proton-sync==0.0.0.dev0'" in log
    assert (workspace / "runner-temp" / "pytest-proton-sync-venv" / "bin" / "python").exists()


def test_gate_before_install_says_what_to_do(workspace: Path) -> None:
    code, log, _, _ = run_step("gate", {}, workspace)
    assert code == 2
    assert "run.sh install' first" in log


def test_check_mode_compares_with_the_checkout_without_aws(workspace: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=workspace, check=True)
    bundle = workspace / "templates" / "vpc-env" / "v1" / "schema"
    bundle.mkdir(parents=True)
    (bundle / "schema.yaml").write_text("schema:\n  format:\n    openapi: 3.0.0\n  environment_input_type: Input\n")
    (workspace / "proton-sync.yaml").write_text(
        "version: 1\ndefaults: {rev: HEAD, repository: {name: acme/platform-templates, directory: templates}}\n"
        "templates:\n  - {name: vpc-env, type: ENVIRONMENT, version: 1}\n", encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "templates", "proton-sync.yaml"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "one template"], cwd=workspace, check=True)
    code, log, outputs, _ = run_step("gate", {"mode": "check"}, workspace, **THIS_VENV)
    assert code == 0, log
    assert "OK proton-sync.yaml: 1 target" in log
    assert outputs == {"junit-path": "", "exit-code": "0"}
    (workspace / "templates" / "eks-env" / "v2" / "schema").mkdir(parents=True)
    (workspace / "templates" / "eks-env" / "v2" / "schema" / "schema.yaml").write_text(
        "schema:\n  format:\n    openapi: 3.0.0\n  environment_input_type: Input\n")
    subprocess.run([*git, "add", "templates"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "another"], cwd=workspace, check=True)
    code, log, outputs, _ = run_step("gate", {"mode": "check"}, workspace, **THIS_VENV)
    assert code == 1, log
    assert "eks-env" in log and outputs["exit-code"] == "1"
    code, log, _, _ = run_step("gate", {"mode": "deploy"}, workspace, **THIS_VENV)
    assert code == 2 and "input mode is 'deploy'; allowed: gate, check" in log


def action_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]
            if "pytest-proton-sync@" in str(step.get("uses", ""))]


def test_the_recipes_use_only_the_actions_inputs() -> None:
    """The example workflow and the README's short one name only inputs the action declares, with valid modes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(  on: .*?)```", readme, re.S)
    assert block is not None, "the README's workflow using the action"
    short = yaml.safe_load(textwrap.dedent(block.group(1)))
    assert len(block.group(1).strip().splitlines()) <= 12
    example = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text(encoding="utf-8"))
    steps = action_steps(short) + action_steps(example)
    assert len(steps) == 3
    for step in steps:
        assert set(step.get("with") or {}) <= set(ACTION["inputs"]), step
        assert step.get("with", {}).get("mode", "gate") in ("gate", "check")
    assert "vars." not in (ROOT / "examples" / "github-actions.yml").read_text(encoding="utf-8")


def test_the_other_recipes_work_as_written(workspace: Path) -> None:
    """The Jenkinsfile builds the change under test in a venv and names its plugins; GitLab's merge request
    pipeline is not promised a JUnit report; the manifest example's own "Try it" line runs and passes."""
    jenkinsfile = (ROOT / "examples" / "Jenkinsfile").read_text(encoding="utf-8")
    assert "branches: scm.branches" in jenkinsfile and "[name: 'main']" not in jenkinsfile
    commands = re.findall(r"sh '([^']*)'", jenkinsfile)
    programs = [part.split()[0] for command in commands for part in command.split("&&")]
    assert programs and all(program == "python3" or program.startswith(".venv/bin/") for program in programs)
    assert "Pipeline: AWS Steps" in jenkinsfile and "withAWS" in jenkinsfile
    gitlab = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text(encoding="utf-8"))
    merge_request_jobs = [job for job in gitlab.values() if isinstance(job, dict)
                          and "merge_request_event" in str(job.get("rules"))]
    assert merge_request_jobs and all("junit" not in str(job) for job in merge_request_jobs)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "merge request widget" not in readme
    header = (ROOT / "examples" / "proton-sync.yaml").read_text(encoding="utf-8")
    try_it = re.search(r"# Try it: +(pytest .*)", header)
    assert try_it is not None
    done = subprocess.run([sys.executable, "-m", *try_it.group(1).split(), "-p", "no:randomly", "-q"],
                          cwd=workspace, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
