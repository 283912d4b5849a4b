"""Which runs check which manifests (the README's table), through real pytest sessions against the fake.

- ini ``proton_manifests`` are added to what a bare ``pytest`` collects (testpaths and manifests);
- explicit paths that do not include a manifest run no gate and make no API call (an unset ``${VAR}`` in the
  manifest then breaks nothing);
- explicit paths that name a manifest, or a directory holding one, check it;
- ``--proton-manifest`` keeps the gate-only run; a manifest given positionally works as one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_proton_sync.fake import FakeServer

from .conftest import SHA_A, fake_state, template, write_manifest

pytestmark = pytest.mark.usefixtures("aws_env")

UNIT_TEST = "def test_add():\n    assert 1 + 1 == 2\n\ndef test_sub():\n    assert 2 - 1 == 1\n"


@pytest.fixture
def repository(pytester: pytest.Pytester, aws_env: FakeServer) -> Path:
    """A repository with unit tests in tests/ (testpaths) and a gate manifest in the ini file; the manifest's
    sha comes from a variable the unit-test runs never set."""
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_app.py").write_text(UNIT_TEST)
    (pytester.path / "gates").mkdir()
    write_manifest(pytester.path / "gates", template("vpc-env", "${VPC_ENV_SHA}"))
    pytester.makeini("[pytest]\ntestpaths = tests\nproton_manifests = gates/proton-sync.yaml\n")
    return pytester.path


def test_a_bare_pytest_runs_testpaths_and_the_ini_manifests(
    pytester: pytest.Pytester, repository: Path, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPC_ENV_SHA", SHA_A)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random([
        "tests/test_app.py::test_add PASSED*",
        "tests/test_app.py::test_sub PASSED*",
        "gates/proton-sync.yaml::ENVIRONMENT/vpc-env@1 PASSED*",
    ])
    assert aws_env.total_calls() == 1


def test_a_bare_pytest_fails_when_the_ini_gate_fails(
    pytester: pytest.Pytester, repository: Path, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPC_ENV_SHA", "7c1e4b2")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("paths", [["tests/test_app.py::test_add"], ["tests/test_app.py"], ["tests"],
                                   ["tests/test_app.py", "-k", "add"]])
def test_explicit_paths_without_a_manifest_run_no_gate_and_make_no_call(
    pytester: pytest.Pytester, repository: Path, aws_env: FakeServer, paths: list[str]
) -> None:
    # VPC_ENV_SHA is unset: reading the manifest would be an error. It is not read.
    result = pytester.runpytest(*paths)
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    assert "proton-sync:" not in out and "proton sync" not in out and "VPC_ENV_SHA" not in out
    assert aws_env.total_calls() == 0


@pytest.mark.parametrize("path", ["gates/proton-sync.yaml", "gates", "gates/proton-sync.yaml::ENVIRONMENT/vpc-env@1"])
def test_explicit_paths_that_name_or_hold_an_ini_manifest_check_it(
    pytester: pytest.Pytester, repository: Path, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setenv("VPC_ENV_SHA", SHA_A)
    result = pytester.runpytest("-v", path)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gates/proton-sync.yaml::ENVIRONMENT/vpc-env@1 PASSED*"])
    assert aws_env.total_calls() == 1


def test_a_directory_holding_a_manifest_in_a_dot_directory_checks_it(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    # pytest's own walk skips dot-directories (norecursedirs); a manifest the ini file names is still checked.
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    (pytester.path / ".ci").mkdir()
    write_manifest(pytester.path / ".ci", template("vpc-env", SHA_A))
    pytester.makeini("[pytest]\nproton_manifests = .ci/proton-sync.yaml\n")
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    pytester.runpytest(".").assert_outcomes(passed=2)
    pytester.runpytest().assert_outcomes(passed=2)
    assert aws_env.total_calls() == 2


SEVEN_UNIT_TESTS = "".join(f"def test_unit_{n}():\n    pass\n\n" for n in range(7))


@pytest.mark.parametrize(("ini", "manifest_dir", "args"), [
    ("proton_manifests = proton-sync.yaml", ".", []),  # bare pytest: "." holds the manifest
    ("testpaths = tests\nproton_manifests = tests/proton-sync.yaml", "tests", []),  # testpaths hold it
    ("proton_manifests = .github/proton-sync.yaml", ".github", []),  # in a dot-directory the walk skips
    ("proton_manifests = deploy/proton-sync.yaml", "deploy", ["."]),  # an explicit directory holds it
    ("proton_manifests = deploy/proton-sync.yaml", "deploy", ["tests", "deploy"]),
], ids=["root", "in-testpaths", "dot-directory", "explicit-dot", "explicit-two-dirs"])
def test_the_users_own_tests_are_collected_exactly_once_beside_an_ini_manifest(
    pytester: pytest.Pytester, aws_env: FakeServer, ini: str, manifest_dir: str, args: list[str]
) -> None:
    """pytest 8.0-8.4 collect only DIR/file when given DIR and DIR/file (the user's tests silently dropped), and
    pytest 7 collects the file twice: the plugin never names a manifest that an argument already holds."""
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_units.py").write_text(SEVEN_UNIT_TESTS)
    (pytester.path / manifest_dir).mkdir(exist_ok=True)
    write_manifest(pytester.path / manifest_dir, template("vpc-env", SHA_A))
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("-v", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=8)
    assert result.stdout.str().count("::ENVIRONMENT/vpc-env@1 PASSED") == 1
    assert aws_env.total_calls() == 1


@pytest.mark.parametrize("second", ["./proton-sync.yaml", "{path}/proton-sync.yaml", "sub/../proton-sync.yaml"])
def test_one_manifest_named_twice_is_checked_once(
    pytester: pytest.Pytester, aws_env: FakeServer, second: str
) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    write_manifest(pytester.path, template("vpc-env", SHA_A))
    (pytester.path / "sub").mkdir()
    result = pytester.runpytest("-v", "--proton-manifest", "proton-sync.yaml",
                                "--proton-manifest", second.format(path=pytester.path))
    result.assert_outcomes(passed=1)
    assert aws_env.total_calls() == 1


def test_the_command_line_option_keeps_the_gate_only_run(
    pytester: pytest.Pytester, repository: Path, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPC_ENV_SHA", SHA_A)
    other = write_manifest(pytester.path, template("vpc-env", SHA_A), name="other.yaml")
    result = pytester.runpytest("-v", "--proton-manifest", other.name)
    result.assert_outcomes(passed=1)  # neither testpaths nor the ini manifest
    result.stdout.fnmatch_lines(["other.yaml::ENVIRONMENT/vpc-env@1 PASSED*"])
    result = pytester.runpytest("--proton-manifest", other.name, "tests")
    result.assert_outcomes(passed=3)  # paths and the option's manifest, still not the ini's


def test_a_missing_ini_manifest_is_a_usage_error_for_a_bare_run_only(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    pytester.makeini("[pytest]\nproton_manifests = gates/proton-sync.yaml\n")
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest not found: */gates/proton-sync.yaml",
                                 "  fix: give the path of the manifest file *"])
    pytester.runpytest("test_unit.py").assert_outcomes(passed=1)


@pytest.mark.parametrize("name", ["proton-sync.yaml", "proton-sync.yaml::ENVIRONMENT/vpc-env@1", "./proton-sync.yml"])
def test_a_manifest_given_positionally_works_as_one(
    pytester: pytest.Pytester, aws_env: FakeServer, name: str
) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
                                 {"name": "eks-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    file_name = Path(name.split("::")[0]).name
    write_manifest(pytester.path, template("vpc-env", SHA_A), template("eks-env", SHA_A), name=file_name)
    result = pytester.runpytest("-v", name)
    passed = 1 if "::" in name else 2
    result.assert_outcomes(passed=passed)
    result.stdout.fnmatch_lines([f"proton-sync: manifests {Path(name.split('::')[0])}"])
    assert aws_env.total_calls() == passed


def test_a_yaml_file_that_is_no_manifest_is_left_to_pytest(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    (pytester.path / "compose.yaml").write_text("services:\n  web: {image: nginx}\n")
    result = pytester.runpytest("compose.yaml")
    assert "proton-sync:" not in result.stdout.str() + result.stderr.str()
    assert aws_env.total_calls() == 0


def test_a_positional_proton_sync_yaml_with_a_mistake_gets_the_loaders_message(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    # Named like a manifest but with a misspelt section: the loader says what is wrong, not pytest's "not found".
    (pytester.path / "proton-sync.yaml").write_text(
        "version: 1\ndefaults:\n  repository: acme/platform-templates\ntemplate:\n  - {name: vpc-env}\n")
    result = pytester.runpytest("proton-sync.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["invalid proton-sync manifest proton-sync.yaml:", "*'template'*'templates'*"])
    assert aws_env.total_calls() == 0
