"""Bad manifests through a real pytest session: a collection error quoting file and line, no test, no API call.

The loader's own corpus and fuzzing (test_manifest*.py) check the messages; this checks what reaches a user
of the plugin: nothing runs, the fake counts zero calls, and no Python traceback is printed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_proton_sync.fake import FakeServer

from .conftest import SHA_A, fake_state, template, write_manifest
from .test_manifest_fuzz import mutated_documents

pytestmark = pytest.mark.usefixtures("aws_env")

CORPUS = Path(__file__).parent / "manifests" / "bad"


def assert_no_traceback(result: pytest.RunResult) -> None:
    for text in (result.stdout.str(), result.stderr.str()):
        assert "Traceback" not in text
        assert "pytest_proton_sync/" not in text  # no frame of ours
        assert "_pytest/" not in text  # nor of pytest's internals


def test_every_bad_manifest_in_the_corpus_stops_the_run_before_any_call(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    good = write_manifest(pytester.path, template("vpc-env", SHA_A), name="good.yaml")
    bad = sorted(CORPUS.glob("*.yaml"))
    assert len(bad) >= 25
    arguments = ["--proton-manifest", str(good)]
    for path in bad:
        shutil.copyfile(path, pytester.path / path.name)
        arguments += ["--proton-manifest", path.name]
    result = pytester.runpytest(*arguments)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=len(bad))  # one collection error per bad file, no test run
    out = result.stdout.str()
    for path in bad:
        assert f"invalid proton-sync manifest {path.name}:" in out
    assert_no_traceback(result)
    assert aws_env.total_calls() == 0


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@pytest.mark.plugin_logic
@given(source=mutated_documents())
def test_mutated_manifests_never_show_a_traceback_or_call_for_an_invalid_file(
    pytester: pytest.Pytester, aws_env: FakeServer, source: str
) -> None:
    aws_env.reset_calls()
    (pytester.path / "fuzz.yaml").write_text(source)
    result = pytester.runpytest("--proton-manifest", "fuzz.yaml")
    assert_no_traceback(result)
    if result.ret == pytest.ExitCode.INTERRUPTED:  # invalid: collection error
        assert aws_env.total_calls() == 0
        result.stdout.fnmatch_lines(["invalid proton-sync manifest fuzz.yaml:", "fuzz.yaml*: *"])
    else:  # valid: every target asked once, passed/failed/errored by the fake's (empty) state
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        assert aws_env.total_calls() >= 1
