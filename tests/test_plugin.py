"""End to end: real pytest sessions (pytester) against the bundled fake over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Properties

from pytest_proton_sync.fake import FakeServer

from .conftest import SHA_A, SHA_B, SHA_OLD, fake_state, template, write_manifest, write_text

pytestmark = pytest.mark.usefixtures("aws_env")


def junit_cases(path: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (outcome, properties), read back by a real JUnit consumer."""
    cases: dict[str, tuple[str, dict[str, str]]] = {}
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            outcome = "passed"
            for result in case.result:
                outcome = "error" if isinstance(result, Error) else "failed" if isinstance(result, Failure) \
                    else "skipped"
            properties = {p.name: p.value for group in case.iterchildren(Properties) for p in group}
            cases[case.name] = (outcome, properties)
    return cases


def every_rule_state() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(manifest entries, fake templates) covering every verdict rule; names say the expected outcome."""
    entries = [
        template("pass-full", SHA_A),
        template("pass-prefix", SHA_A[:7]),
        template("pass-upper", SHA_A[:10].upper()),
        template("fail-sha", SHA_A),
        template("fail-repo", SHA_A),
        template("fail-branch", SHA_A),
        template("fail-provider", SHA_A),
        template("fail-directory", SHA_A),
        template("fail-never", SHA_A),
        template("fail-syncfailed", SHA_A),
        template("fail-notfound", SHA_A),
        template("error-denied", SHA_A),
    ]
    states = [
        {"name": "pass-full", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "pass-prefix", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "pass-upper", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "fail-sha", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD},
        {"name": "fail-repo", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A,
         "repository": {"name": "acme/forked-templates"}},
        {"name": "fail-branch", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A,
         "repository": {"branch": "release"}},
        {"name": "fail-provider", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A,
         "repository": {"provider": "BITBUCKET"}},
        {"name": "fail-directory", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A,
         "repository": {"directory": "legacy"}},
        {"name": "fail-never", "type": "ENVIRONMENT", "version": 1,
         "latest": {"status": "FAILED", "sha": SHA_A, "events": [{"type": "ERROR", "event": "boom"}]}},
        {"name": "fail-syncfailed", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD,
         "latest": {"status": "FAILED", "sha": SHA_A,
                    "events": [{"type": "ERROR", "event": "Template bundle is missing schema.yaml"}]}},
        {"name": "error-denied", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A, "deny": True},
    ]
    return entries, states


def test_every_verdict_rule_and_its_junit_outcome(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, states = every_rule_state()
    aws_env.set_state(fake_state(*states))
    manifest = write_manifest(pytester.path, *entries)
    result = pytester.runpytest("--proton-manifest", str(manifest), "--junitxml=out.xml")
    result.assert_outcomes(passed=3, failed=8, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = junit_cases(pytester.path / "out.xml")
    assert {name: outcome for name, (outcome, _) in cases.items()} == {
        f"ENVIRONMENT/{e['name']}@1": str(e["name"]).split("-")[0].replace("pass", "passed")
        .replace("fail", "failed") for e in entries
    }
    # pytest's default family (xunit2) allows no <properties> in a <testcase>: the plugin writes none there
    # (test_reports.py checks the file against junit-10.xsd, and the xunit1 family's per-target properties).
    assert all(properties == {} for _, properties in cases.values())
    # Each selected target asked exactly once.
    assert aws_env.total_calls(operation="GetTemplateSyncStatus") == len(entries)


def test_failure_text_is_short_and_actionable(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, states = every_rule_state()
    aws_env.set_state(fake_state(*states))
    manifest = write_manifest(pytester.path, *entries)
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.stdout.fnmatch_lines([
        "*_ proton-sync.yaml:*: ENVIRONMENT/fail-syncfailed@1 _*",
        "ENVIRONMENT/fail-syncfailed@1 is not synced from the expected commit",
        f"  expected:        sha {SHA_A} from GITHUB acme/platform-templates branch main directory templates",
        f"  last successful: sha {SHA_OLD[:12]} from GITHUB acme/platform-templates branch main directory "
        "templates, started *",
        f"  latest attempt:  FAILED on sha {SHA_A[:12]}, started *",
        "*ERROR: Template bundle is missing schema.yaml",
        f"  mismatch: sha {SHA_OLD[:12]} is not the expected {SHA_A[:12]}",
        "  next: The sync of the expected commit FAILED*",
    ])
    result.stdout.fnmatch_lines([
        "*_ proton-sync.yaml:*: ENVIRONMENT/fail-notfound@1 _*",
        "ENVIRONMENT/fail-notfound@1 has no sync status",
        "*no sync status exists for ENVIRONMENT/fail-notfound@1",
        "*template sync configured*",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at setup of proton-sync.yaml:*: ENVIRONMENT/error-denied@1*",
        "ENVIRONMENT/error-denied@1 could not be checked: AccessDeniedException",
        "*fix: allow proton:GetTemplateSyncStatus*",
    ])
    out = result.stdout.str()
    # No Python traceback from the plugin or pytest internals anywhere.
    assert "Traceback" not in out
    assert "pytest_proton_sync" not in out
    assert "raise " not in out


def test_summary_table_and_header(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state(
        {"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "web-svc", "type": "SERVICE", "version": 2, "synced": SHA_OLD,
         "latest": {"status": "IN_PROGRESS", "sha": SHA_B}},
    ))
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A), template("web-svc", SHA_B, "SERVICE", "2"))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.stdout.fnmatch_lines([
        f"proton-sync: manifests {manifest}",
        f"proton-sync: region us-east-1, endpoint {aws_env.endpoint_url}",
    ])
    result.stdout.fnmatch_lines([
        "*= proton sync =*",
        "target *expected *last synced *latest status *outcome",
        f"ENVIRONMENT/vpc-env@1 *{SHA_A[:12]} *{SHA_A[:12]} *SUCCEEDED *passed",
        f"SERVICE/web-svc@2 *{SHA_B[:12]} *{SHA_OLD[:12]} *IN_PROGRESS *failed",
        "2 targets: 1 failed, 1 passed",
        "2 sync-status calls (one per target and poll; retries not counted)",
    ])


def test_collect_only_and_k_make_no_calls_or_only_selected(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state(
        {"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "web-svc", "type": "SERVICE", "version": 1, "synced": SHA_A},
    ))
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A), template("web-svc", SHA_A, "SERVICE"))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--collect-only", "-q")
    result.stdout.fnmatch_lines_random(["*::ENVIRONMENT/vpc-env@1", "*::SERVICE/web-svc@1"])  # pytest-randomly
    assert aws_env.total_calls(operation="GetTemplateSyncStatus") == 0

    result = pytester.runpytest("--proton-manifest", str(manifest), "-k", "web-svc", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    assert aws_env.calls == {"GetTemplateSyncStatus SERVICE/web-svc@1": 1}


def test_region_precedence_entry_then_option_then_environment(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_env.set_state(fake_state(
        {"name": "a", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "b", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
    ))
    manifest = write_manifest(pytester.path, template("a", SHA_A, region="eu-west-1"), template("b", SHA_A))
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    # Per-target JUnit properties are written in the xunit1 family only (junit.py).
    xunit1 = ("-o", "junit_family=xunit1")
    pytester.runpytest("--proton-manifest", str(manifest), "--junitxml=env.xml", *xunit1).assert_outcomes(passed=2)
    regions = {name: props["proton.region"] for name, (_, props) in junit_cases(pytester.path / "env.xml").items()}
    assert regions == {"ENVIRONMENT/a@1": "eu-west-1", "ENVIRONMENT/b@1": "ap-south-1"}

    pytester.runpytest("--proton-manifest", str(manifest), "--proton-region", "ca-central-1",
                       "--junitxml=opt.xml", *xunit1).assert_outcomes(passed=2)
    regions = {name: props["proton.region"] for name, (_, props) in junit_cases(pytester.path / "opt.xml").items()}
    assert regions == {"ENVIRONMENT/a@1": "eu-west-1", "ENVIRONMENT/b@1": "ca-central-1"}


def test_ini_manifests_are_added_to_what_a_bare_pytest_collects(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    # More cases of the ini semantics: test_manifest_selection.py.
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    (pytester.path / "gates").mkdir()
    write_manifest(pytester.path / "gates", template("vpc-env", SHA_A))
    pytester.makeini("[pytest]\nproton_manifests = gates/proton-sync.yaml\n")
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*gates/proton-sync.yaml::ENVIRONMENT/vpc-env@1 PASSED*"])
    result.stdout.fnmatch_lines(["*test_unit.py::test_unit PASSED*"])
    result.assert_outcomes(passed=2)


def test_invalid_manifest_is_a_collection_error_with_no_call(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    good = write_manifest(pytester.path, template("vpc-env", SHA_A), name="good.yaml")
    bad = write_text(pytester.path / "bad.yaml", """
        version: 1
        defaults:
          repository: acme/platform-templates
        templates:
          - name: vpc-env
            type: ENVIRONMENT
            version: 1
            shaa: 3f2a9c1
    """)
    result = pytester.runpytest("--proton-manifest", str(good), "--proton-manifest", str(bad))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad.yaml:8:*shaa*did you mean 'sha'*"])
    assert "Traceback" not in result.stdout.str()
    assert aws_env.total_calls() == 0


def test_no_credentials_is_an_error_not_a_failure(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--junitxml=out.xml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not be checked: NoCredentials*", "*fix: set AWS_PROFILE*"])
    assert junit_cases(pytester.path / "out.xml")["ENVIRONMENT/vpc-env@1"][0] == "error"


def test_unreachable_endpoint_is_an_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", f"http://127.0.0.1:{port}")
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-max-attempts", "2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not be checked: EndpointUnreachable (after 2 attempts)*"])


def test_missing_region_is_an_error_that_says_how_to_set_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not be checked: NoRegion*", "*fix: set AWS_REGION*"])
    assert "no AWS credentials" not in result.stdout.str()  # this test's environment has credentials


def test_missing_region_and_credentials_are_said_in_one_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No call is made without a region, so missing credentials would only show on the next run: both at once."""
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*could not be checked: NoRegion*",
        "*no AWS region, and no AWS credentials either",
        "*fix: set AWS_REGION (or AWS_DEFAULT_REGION)*",
        "*fix: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)*",
    ])


def test_proton_fake_works_without_any_aws_configuration(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL_PROTON", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    state = write_text(pytester.path / "state.yaml", f"""
        defaults:
          repository: {{provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}}
        templates:
          - {{name: vpc-env, type: ENVIRONMENT, version: 1, synced: {SHA_A}}}
    """)
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-fake", str(state))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["proton-sync: endpoint http://127.0.0.1:* (bundled fake, no AWS calls)"])


def test_bad_fake_state_is_a_usage_error(pytester: pytest.Pytester) -> None:
    state = write_text(pytester.path / "state.yaml", "templates: 12\n")
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-fake", str(state))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --proton-fake *state.yaml*"])
    assert "Traceback" not in result.stderr.str()


def test_without_a_manifest_the_plugin_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "proton-sync:" not in out  # no header lines
    assert "proton sync" not in out  # no summary section


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:proton_sync", "--proton-manifest", "x.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --proton-manifest*"])


def test_a_conftest_hook_can_replace_the_judge(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD}))
    pytester.makeconftest("""
        from pytest_proton_sync.verdict.judge import Verdict

        def pytest_proton_sync_judge(target, status):
            return Verdict("passed")  # e.g. a team that only audits, never gates
    """)
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    pytester.runpytest("--proton-manifest", str(manifest)).assert_outcomes(passed=1)


def test_same_target_in_two_manifests_is_an_error_naming_both_before_any_call(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    one = write_manifest(pytester.path, template("vpc-env", SHA_A), name="one.yaml")
    two = write_manifest(pytester.path, template("vpc-env", SHA_B), name="two.yaml")
    result = pytester.runpytest("--proton-manifest", str(one), "--proton-manifest", str(two))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "invalid proton-sync manifest two.yaml:",
        "two.yaml:9: templates?0?: the same target ENVIRONMENT/vpc-env@1 is already declared in one.yaml:9; *",
    ])
    assert aws_env.total_calls() == 0
    # The same file given twice is one set of declarations, not a conflict.
    pytester.runpytest("--proton-manifest", str(one), "--proton-manifest", "one.yaml").assert_outcomes(passed=1)


def test_xdist_asks_each_target_exactly_once(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    names = [f"t{i}" for i in range(12)]
    aws_env.set_state(fake_state(*[{"name": n, "type": "SERVICE", "version": 1, "synced": SHA_A} for n in names]))
    manifest = write_manifest(pytester.path, *[template(n, SHA_A if n != "t3" else SHA_B, "SERVICE") for n in names])
    result = pytester.runpytest_subprocess("-n", "2", "--proton-manifest", str(manifest), "-k", "not t5",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10, failed=1)
    assert aws_env.total_calls(operation="GetTemplateSyncStatus") == 11
    assert "GetTemplateSyncStatus SERVICE/t5@1" not in aws_env.calls
    assert all(count == 1 for count in aws_env.calls.values())
    result.stdout.fnmatch_lines(["*= proton sync =*", "*SERVICE/t3@1 *failed", "11 targets: 1 failed, 10 passed",
                                 "11 sync-status calls *"])


def test_real_aws_endpoint_is_never_reached_in_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without an endpoint override the client would talk to proton.us-east-1.amazonaws.com: the moto guard
    # answers instead (it has no Proton backend), so the outcome is an error and nothing left the machine.
    monkeypatch.delenv("AWS_ENDPOINT_URL_PROTON")
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A), template("eks-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-max-attempts", "1")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["ENVIRONMENT/vpc-env@1 could not be checked: 404*"])  # moto's answer


def test_a_gate_run_does_not_load_the_unit_tests_conftest(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    # A repository whose tests/conftest.py needs test-only packages the pipeline image lacks.
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "conftest.py").write_text("import a_test_only_package_not_installed\n")
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", manifest.name)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("arguments", "ini", "message"),
    [
        (["--proton-wait", "soon"], "", "ERROR: --proton-wait (ini proton_wait) takes a number, not 'soon'"),
        ([], "proton_concurrency = lots", "ERROR: --proton-concurrency (ini proton_concurrency) takes a whole "
                                          "number, not 'lots'"),
        (["--proton-max-attempts", "0"], "", "ERROR: --proton-max-attempts (ini proton_max_attempts) must be at "
                                             "least 1, not '0'"),
        ([], "proton_retry_mode = eager", "ERROR: --proton-retry-mode (ini proton_retry_mode) is one of standard, "
                                          "adaptive, not 'eager'"),
        (["--proton-region", "US EAST 1"], "", "ERROR: --proton-region (ini proton_region) takes an AWS region name "
                                               "such as us-east-1, not 'US EAST 1'"),
        (["--proton-max-rps", "0"], "", "ERROR: --proton-max-rps (ini proton_max_rps) must be more than 0, not '0'"),
        (["--proton-call-timeout", "nan"], "", "ERROR: --proton-call-timeout (ini proton_call_timeout) takes a finite "
                                               "number, not 'nan'"),
    ],
)
def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, aws_env: FakeServer, arguments: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), *arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert aws_env.total_calls() == 0


def test_a_missing_manifest_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "conftest.py").write_text("import a_test_only_package_not_installed\n")
    result = pytester.runpytest("--proton-manifest", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest not found: nope.yaml"])
