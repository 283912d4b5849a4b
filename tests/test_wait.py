"""Waiting for syncs: polls until settled, fails fast, says what it saw at the deadline. Short intervals only."""

from __future__ import annotations

import pytest

from pytest_proton_sync.fake import FakeServer

from .conftest import SHA_A, SHA_OLD, fake_state, template, write_manifest

pytestmark = pytest.mark.usefixtures("aws_env")

FAST = ("--proton-poll-interval", "0.05")


def converging(name: str, polls_before_synced: int) -> dict[str, object]:
    """A template whose sync of SHA_A is in progress for ``polls_before_synced`` looks, then done."""
    in_progress = {"synced": SHA_OLD, "latest": {"status": "IN_PROGRESS", "sha": SHA_A}}
    done = {"synced": SHA_A, "latest": {"status": "SUCCEEDED", "sha": SHA_A}}
    return {"name": name, "type": "SERVICE", "version": 1, "synced": SHA_OLD,
            "sequence": [in_progress] * polls_before_synced + [done]}


def test_forty_targets_converge_and_each_is_asked_only_until_it_matches(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    polls = {f"svc{i}": i % 4 for i in range(40)}  # converging after 0-3 in-progress looks
    aws_env.set_state(fake_state(*[converging(name, n) for name, n in polls.items()]))
    manifest = write_manifest(pytester.path, *[template(name, SHA_A, "SERVICE") for name in polls])
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-wait", "60", *FAST)
    result.assert_outcomes(passed=40)
    result.stdout.fnmatch_lines(["40 targets: 40 passed*", "100 sync-status calls *"])
    # A target that matches at the first look is never asked again; the others exactly until they match.
    assert aws_env.calls == {f"GetTemplateSyncStatus SERVICE/{name}@1": n + 1 for name, n in polls.items()}


def test_a_failed_sync_of_the_expected_commit_fails_at_once(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    failing = {"synced": SHA_OLD, "latest": {"status": "FAILED", "sha": SHA_A,
                                             "events": [{"type": "ERROR", "event": "stack rollback complete"}]}}
    aws_env.set_state(fake_state(
        {"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD,
         "sequence": [{"latest": {"status": "IN_PROGRESS", "sha": SHA_A}}, failing]},
        converging("web-svc", 1),
    ))
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A), template("web-svc", SHA_A, "SERVICE"))
    # A 10-minute budget: if fail-fast were broken the fake would count hundreds of polls, not two.
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-wait", "600", *FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "ENVIRONMENT/vpc-env@1 is not synced from the expected commit",
        f"  latest attempt:  FAILED on sha {SHA_A[:12]}*",
        "*ERROR: stack rollback complete",
    ])
    assert aws_env.calls["GetTemplateSyncStatus ENVIRONMENT/vpc-env@1"] == 2
    assert aws_env.calls["GetTemplateSyncStatus SERVICE/web-svc@1"] == 2


def test_deadline_says_what_was_last_seen(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state(
        {"name": "stuck", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD,
         "latest": {"status": "IN_PROGRESS", "sha": SHA_A}},
        {"name": "unseen", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD},
    ))
    manifest = write_manifest(pytester.path, template("stuck", SHA_A), template("unseen", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-wait", "2", *FAST)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"  waited: still IN_PROGRESS on {SHA_A[:12]} after * s"])
    result.stdout.fnmatch_lines([
        f"  waited: no sync of {SHA_A[:12]} started after * s; last successful is {SHA_OLD[:12]}"
    ])
    # It kept polling the unsettled targets until the deadline: more than one look each (a 2 s wait, so that a
    # loaded machine whose first look takes most of a second still looks again).
    assert aws_env.calls["GetTemplateSyncStatus ENVIRONMENT/stuck@1"] > 1
    assert aws_env.calls["GetTemplateSyncStatus ENVIRONMENT/unseen@1"] > 1


def test_progress_is_a_plain_line_in_ci_logs(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state(converging("web-svc", 2)))
    manifest = write_manifest(pytester.path, template("web-svc", SHA_A, "SERVICE"))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-wait", "60", *FAST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["proton-sync: 0 settled, 1 pending, 0 failed, 0 errors; * s left",
                                 "proton-sync: 1 settled, 0 pending, 0 failed, 0 errors; * s left"])


def test_without_wait_a_target_is_looked_at_once(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state(converging("web-svc", 2)))
    manifest = write_manifest(pytester.path, template("web-svc", SHA_A, "SERVICE"))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*next: The expected commit is syncing now*--proton-wait SECONDS*"])
    assert aws_env.total_calls() == 1


def test_ctrl_c_while_waiting_stops_at_once_and_reports_what_is_known(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    import signal
    import subprocess
    import sys

    aws_env.set_state(fake_state(converging("web-svc", 1000)))
    manifest = write_manifest(pytester.path, template("web-svc", SHA_A, "SERVICE"))
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--proton-manifest", str(manifest),
         "--proton-wait", "600", "--proton-poll-interval", "300"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # A child started from a non-interactive shell may inherit an ignored SIGINT; restore the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    for line in process.stdout:  # wait until the first look is done and the wait has begun
        if "1 pending" in line:
            break
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=60)  # a guard against a hang, not a speed assertion
    finally:
        process.kill()
    assert process.returncode == 2, out  # pytest's code for an interrupted run
    assert ("could not be checked: Cancelled\n  cancelled by SIGINT while waiting; last seen: still IN_PROGRESS on "
            "3f2a9c1d8e7b after ") in out
    assert "1 target: 1 error" in out
    assert aws_env.total_calls() == 1


def test_sigterm_while_waiting_stops_at_once_with_its_own_exit_code_and_junit(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    import signal
    import subprocess
    import sys
    import time

    aws_env.set_state(fake_state(converging("web-svc", 1000), converging("api-svc", 0)))
    manifest = write_manifest(pytester.path, template("web-svc", SHA_A, "SERVICE"),
                              template("api-svc", SHA_A, "SERVICE"))
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--proton-manifest", str(manifest),
         "--proton-wait", "600", "--proton-poll-interval", "0.2", "--junitxml=out.xml"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 60
    while aws_env.calls.get("GetTemplateSyncStatus SERVICE/web-svc@1", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling: the wait is under way
    process.send_signal(signal.SIGTERM)
    try:
        # The hang guard, without a clock in the verdict (a 10 s bound failed under load): the wait budget is
        # 600 s, so a run that ends here, "cancelled by SIGTERM while waiting", was ended by the signal.
        out, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, out
    assert "cancelled by SIGTERM while waiting; last seen: still IN_PROGRESS on 3f2a9c1d8e7b" in out
    assert "2 targets: 1 error, 1 passed" in out
    xml = (pytester.path / "out.xml").read_text()
    assert 'errors="1"' in xml and "cancelled by SIGTERM" in xml
