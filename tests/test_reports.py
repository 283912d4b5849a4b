"""What a pipeline reads, end to end through real pytest sessions against the bundled fake over HTTP: JUnit XML
checked against Jenkins' junit-10.xsd, GitHub annotations and step summary, the JSON report and its schema, and
the plugins a pipeline runs beside this one (pytest-timeout, pytest-rerunfailures, pytest-randomly, xdist)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from junitparser import JUnitXml

from pytest_proton_sync import __version__
from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.kinds import KINDS, make_target, type_of
from pytest_proton_sync.model import Expectation, RepositorySpec
from pytest_proton_sync.reports import github
from pytest_proton_sync.reports.facts import TargetFacts
from pytest_proton_sync.reports.jsonreport import report_schema

from .conftest import SHA_A, SHA_OLD, fake_state, template, write_manifest
from .test_plugin import every_rule_state, junit_cases

pytestmark = pytest.mark.usefixtures("aws_env")

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
MANIFEST_ORDER = [f"ENVIRONMENT/{e['name']}@1" for e in every_rule_state()[0]]


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def run_every_rule(pytester: pytest.Pytester, fake: FakeServer, *args: str) -> pytest.RunResult:
    entries, states = every_rule_state()
    fake.set_state(fake_state(*states))
    manifest = write_manifest(pytester.path, *entries)
    return pytester.runpytest("--proton-manifest", str(manifest), *args)


def summary_targets(result: pytest.RunResult) -> list[str]:
    """The target column of the "proton sync" table, top to bottom."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "proton sync" in line and line.startswith("="))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("ENVIRONMENT/"):
            break
        rows.append(line.split()[0])
    return rows


# -- JUnit ------------------------------------------------------------------------------------------------------
def test_junit_in_the_default_family_is_valid_against_junit_10_xsd(
    pytester: pytest.Pytester, aws_env: FakeServer, junit_schema: xmlschema.XMLSchema
) -> None:
    result = run_every_rule(pytester, aws_env, "--junitxml=out.xml")
    result.assert_outcomes(passed=3, failed=8, errors=1)
    out = pytester.path / "out.xml"
    junit_schema.validate(str(out))  # raises, saying where, on any violation
    suite = next(iter(JUnitXml.fromfile(str(out))))
    # Jenkins and GitLab split a classname at its dots: package proton_sync.proton-sync, class ENVIRONMENT.
    assert {case.classname for case in suite} == {"proton_sync.proton-sync.ENVIRONMENT"}
    assert {p.name: p.value for p in suite.properties()} == {
        "proton.manifests": str(pytester.path / "proton-sync.yaml"),
        "proton.region": "us-east-1",
        "proton.targets": "12",
        "proton.plugin_version": __version__,
        "proton.sync_status_calls": "12",
    }
    outcomes = {name: outcome for name, (outcome, _) in junit_cases(out).items()}
    assert outcomes["ENVIRONMENT/error-denied@1"] == "error"
    assert outcomes["ENVIRONMENT/fail-sha@1"] == "failed"


def test_junit_classname_groups_by_manifest_and_type(
    pytester: pytest.Pytester, aws_env: FakeServer, junit_schema: xmlschema.XMLSchema
) -> None:
    aws_env.set_state(fake_state(
        {"name": "vpc", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "api", "type": "SERVICE", "version": 2, "synced": SHA_A},
    ))
    first = write_manifest(pytester.path, template("vpc", SHA_A), name="proton-sync.yaml")
    second = write_manifest(pytester.path, template("api", SHA_A, type_="SERVICE", version="2"), name="prod.v2.yaml")
    result = pytester.runpytest("--proton-manifest", str(first), "--proton-manifest", str(second),
                                "--junitxml=out.xml", "-o", "junit_suite_name=gate")
    result.assert_outcomes(passed=2)
    junit_schema.validate(str(pytester.path / "out.xml"))
    suite = next(iter(JUnitXml.fromfile(str(pytester.path / "out.xml"))))
    assert {case.name: case.classname for case in suite} == {
        "ENVIRONMENT/vpc@1": "proton_sync.proton-sync.ENVIRONMENT",
        "SERVICE/api@2": "proton_sync.prod_v2.SERVICE",  # a dot in the stem would split it once more
    }


def test_junit_xunit1_keeps_per_target_properties_and_the_plugins_part_is_valid(
    pytester: pytest.Pytester, aws_env: FakeServer, junit_schema: xmlschema.XMLSchema
) -> None:
    result = run_every_rule(pytester, aws_env, "--junitxml=out.xml", "-o", "junit_family=xunit1")
    result.assert_outcomes(passed=3, failed=8, errors=1)
    out = pytester.path / "out.xml"
    cases = junit_cases(out)
    assert cases["ENVIRONMENT/fail-sha@1"][1] == {
        "proton.target": "ENVIRONMENT/fail-sha@1",
        "proton.region": "us-east-1",
        "proton.expected_sha": SHA_A,
        "proton.actual_sha": SHA_OLD,
        "proton.latest_sync_status": "SUCCEEDED",
    }
    assert cases["ENVIRONMENT/error-denied@1"][1]["proton.latest_sync_status"] == "AccessDeniedException"
    assert cases["ENVIRONMENT/fail-notfound@1"][1]["proton.latest_sync_status"] == "NOT_FOUND"
    # junit-10.xsd knows neither xunit1's own testcase attributes (file, line: pytest's) nor <properties> in a
    # testcase (the reason xunit2 has none); without those two, the rest -- classname, suite properties, the
    # failure and error elements, our part -- is valid. (Whether pytest's xunit1 is valid is not ours to test.)
    tree = ET.parse(out)
    for case in tree.iter("testcase"):
        for attribute in ("file", "line"):
            case.attrib.pop(attribute, None)
    for case in tree.iter("testcase"):
        for properties in case.findall("properties"):
            case.remove(properties)
    junit_schema.validate(tree)
    assert {case.get("classname") for case in tree.iter("testcase")} == {"proton_sync.proton-sync.ENVIRONMENT"}


# -- GitHub Actions ---------------------------------------------------------------------------------------------
EVIL = "boom\n::add-mask::hidden\r%0A::warning::injected, with: colons"


def github_state(fake: FakeServer, pytester: pytest.Pytester, failing: int) -> Path:
    """One target whose failed sync carries a hostile event message, ``failing`` plain failures, one error."""
    states: list[dict[str, Any]] = [
        {"name": "evil", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD,
         "latest": {"status": "FAILED", "sha": SHA_A, "events": [{"type": "ERROR", "event": EVIL}]}},
        *({"name": f"stale-{i:02d}", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD} for i in range(failing)),
        {"name": "denied", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A, "deny": True},
        {"name": "fine", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
    ]
    fake.set_state(fake_state(*states))
    entries = [template(str(s["name"]), SHA_A) for s in states]
    (pytester.path / "ci").mkdir()
    return write_manifest(pytester.path / "ci", *entries)


def github_env(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> Path:
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def test_github_annotations_for_failures_and_errors_escaped_and_capped(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = github_state(aws_env, pytester, failing=12)
    summary = github_env(monkeypatch, pytester)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:pytest_github_actions_annotate_failures",
                                "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=13, errors=1)
    commands = [line for line in result.outlines if line.startswith("::")]
    errors = [line for line in commands if line.startswith("::error ")]
    assert len(errors) == github.MAX_ANNOTATIONS
    # Errors first (a cap must not hide a run-wide problem), then failures in manifest order. file= is relative to
    # GITHUB_WORKSPACE, line= is the entry's.
    lines = manifest.read_text().splitlines()
    line_of = {name: 1 + next(i for i, text in enumerate(lines) if f"name: {name}" in text) for name in ("evil",
                                                                                                      "denied")}
    assert errors[0].startswith(
        f"::error file=ci/proton-sync.yaml,line={line_of['denied']},title=proton-sync%3A ENVIRONMENT/denied@1 "
        "could not be checked::ENVIRONMENT/denied@1 could not be checked: AccessDeniedException%0A")
    assert errors[1].startswith(
        f"::error file=ci/proton-sync.yaml,line={line_of['evil']},title=proton-sync%3A ENVIRONMENT/evil@1 not "
        "synced::ENVIRONMENT/evil@1 is not synced from the expected commit%0A")
    # The hostile event text stays inside its annotation's one line.
    # (answers.py already made it one line: control characters are visible escapes, \\n and \\r.)
    assert "ERROR: boom\\n::add-mask::hidden\\r%250A::warning::injected, with: colons%0A" in errors[1]
    assert [line for line in commands if not line.startswith("::error ")] == [
        "::warning title=proton-sync%3A more targets did not pass::4 more targets did not pass (GitHub shows 10 "
        "error annotations per step): see the job summary or the test log"]

    text = summary.read_text()
    assert text.startswith(
        "# earlier step\n### proton-sync: did not pass\n\n**15 targets: 1 error, 13 failed, 1 passed**\n")
    rows = text.split("| --- | --- | --- | --- | --- | --- |\n", 1)[1].splitlines()
    assert rows[0].startswith(f"| ENVIRONMENT/denied\\@1 | error | AccessDeniedException | fix the setup \\(see the "
                              f"error\\), then re-run | ci/proton-sync\\.yaml\\:{line_of['denied']} | "
                              "AccessDeniedException\\: ")
    assert rows[1] == (f"| ENVIRONMENT/evil\\@1 | failed | FAILED | fix and push | "
                       f"ci/proton-sync\\.yaml\\:{line_of['evil']} | "
                       "sha 1b2c3d4e5f60 is not the expected 3f2a9c1d8e7b |")
    assert len([row for row in rows if " | failed | " in row or " | error | " in row]) == 14
    # The passed target is folded away.
    assert "<details>\n<summary>1 passed</summary>\n\n| target | outcome | latest sync | manifest |" in text
    evil_row = next(line for line in text.splitlines() if "evil" in line)
    assert "\n" not in evil_row and "::add-mask" not in evil_row


def test_step_summary_says_wait_or_fix_and_links_the_manifest_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drifted example: IN_PROGRESS reads 'wait', FAILED 'fix and push', a sync from another repository 'fix the
    manifest ...'; each manifest cell links to the line at the commit under test."""
    import shutil

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "examples", pytester.path / "examples")
    summary = github_env(monkeypatch, pytester)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/platform-templates")
    monkeypatch.setenv("GITHUB_SHA", SHA_A)
    result = pytester.runpytest("--proton-manifest", "examples/proton-sync.yaml",
                                "--proton-fake", "examples/fake-account-drifted.yaml")
    result.assert_outcomes(passed=1, failed=4)
    text = summary.read_text()
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in text.splitlines() if line.startswith("| ")}
    assert rows["ENVIRONMENT/eks-env\\@2"][2:4] == ["IN\\_PROGRESS", "wait \\(--proton-wait\\)"]
    assert rows["SERVICE/web-svc\\@1"][2:4] == ["FAILED", "fix and push"]
    assert rows["SERVICE/batch-svc\\@1"][2:4] == ["SUCCEEDED", "fix the manifest or the sync configuration"]
    line = 1 + next(i for i, text in enumerate((root / "examples" / "proton-sync.yaml").read_text().splitlines())
                    if "name: eks-env" in text)
    assert rows["ENVIRONMENT/eks-env\\@2"][4] == (
        f"[examples/proton-sync\\.yaml\\:{line}](https://github.example.com/acme/platform-templates/blob/{SHA_A}/"
        f"examples/proton-sync.yaml#L{line})")
    assert "<summary>1 passed</summary>" in text
    # Without the runner's variables, no link.
    monkeypatch.delenv("GITHUB_SHA")
    summary.write_text("")
    pytester.runpytest("--proton-manifest", "examples/proton-sync.yaml",
                       "--proton-fake", "examples/fake-account-drifted.yaml")
    assert "](" not in summary.read_text()


def test_github_beside_annotate_failures_each_target_is_annotated_once(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-github-actions-annotate-failures annotates failed calls (on stderr) but not setup errors: the plugin
    then annotates the errors only, so each target that did not pass is annotated exactly once."""
    manifest = github_state(aws_env, pytester, failing=2)
    github_env(monkeypatch, pytester)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=3, errors=1)
    # Which stream each plugin writes to changed across annotate-failures releases (0.2 wrote to stdout).
    annotations = [line for line in result.outlines + result.errlines if line.startswith("::error ")]
    ours = [line for line in annotations if ",title=proton-sync" in line]
    theirs = [line for line in annotations if ",title=proton-sync" not in line]
    assert len(ours) == 1 and "ENVIRONMENT/denied@1 could not be checked" in ours[0]
    assert len(theirs) == 3 and all("denied" not in line for line in theirs)


def test_no_github_output_outside_github_actions(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    manifest = github_state(aws_env, pytester, failing=1)
    result = pytester.runpytest("--proton-manifest", str(manifest))
    assert not [line for line in result.outlines + result.errlines if line.startswith("::")]


def test_github_formatting_rules() -> None:
    assert github.defuse("a\n  ::error::x\r\nok::") == "a\n  \\::error::x\\r\nok::"
    assert github.escape_data("50%\r\n::x") == "50%25%0D%0A::x"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.workspace_relative("/w/ci/m.yaml", "/w") == "ci/m.yaml"
    assert github.workspace_relative("/elsewhere/m.yaml", "/w") == "/elsewhere/m.yaml"
    assert github.markdown_text("<img src=x> | [a](https://e.x) @team") == (
        "&lt;img src=x\\> \\| \\[a\\]\\(https\\://e\\.x\\) \\@team")
    problems = [github.Problem(f"T/{i}", "failed", "m.yaml", "/w/m.yaml", i + 1, "why") for i in range(3)]
    assert len(github.annotation_lines(problems, "/w", limit=3)) == 3
    capped = github.annotation_lines(problems, "/w", limit=2)
    assert len(capped) == 3 and capped[-1].startswith("::warning ") and "1 more target did not pass" in capped[-1]


# -- JSON report ------------------------------------------------------------------------------------------------
def validate_report(path: Path) -> dict[str, Any]:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    document: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


def test_json_report_is_valid_complete_and_in_manifest_order(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    # pytest-randomly shuffles the run; the report and the table still follow the manifest.
    result = run_every_rule(pytester, aws_env, "--proton-report", "report.json", "-p", "randomly",
                            "--randomly-seed=7", "-v")
    result.assert_outcomes(passed=3, failed=8, errors=1)
    ran = [line.split("::", 1)[1].split()[0] for line in result.outlines if line.startswith("proton-sync.yaml::")]
    assert sorted(ran) == sorted(MANIFEST_ORDER) and ran != MANIFEST_ORDER  # the shuffle happened
    assert summary_targets(result) == MANIFEST_ORDER
    report = validate_report(pytester.path / "report.json")
    assert [t["id"] for t in report["targets"]] == MANIFEST_ORDER
    assert report["counts"] == {"passed": 3, "failed": 8, "error": 1, "skipped": 0}
    assert report["api_calls"] == 12 and report["report_version"] == 1 and report["exit_status"] == 1
    by_id = {t["id"]: t for t in report["targets"]}
    stale = by_id["ENVIRONMENT/fail-sha@1"]
    assert stale["outcome"] == "failed" and stale["line"] > 0
    assert stale["expectation"]["sha"] == SHA_A
    assert stale["observation"]["status"]["latest_successful"]["target_revision"]["sha"] == SHA_OLD
    assert stale["observation"]["verdict"]["reasons"] == [f"sha {SHA_OLD[:12]} is not the expected {SHA_A[:12]}"]
    assert stale["text"].startswith("ENVIRONMENT/fail-sha@1 is not synced from the expected commit\n")
    denied = by_id["ENVIRONMENT/error-denied@1"]
    assert denied["outcome"] == "error" and denied["observation"]["error"]["code"] == "AccessDeniedException"
    assert by_id["ENVIRONMENT/pass-full@1"]["text"] is None


def test_json_report_from_the_ini_file_is_relative_to_it(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state({"name": "vpc", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    write_manifest(pytester.path, template("vpc", SHA_A))
    (pytester.path / "reports").mkdir()
    pytester.makeini("[pytest]\nproton_manifests = proton-sync.yaml\nproton_report = reports/gate.json\n")
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(sub)
        result = pytester.runpytest("-c", str(pytester.path / "tox.ini"), "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=1)
    assert validate_report(pytester.path / "reports" / "gate.json")["counts"]["passed"] == 1


def test_json_report_into_a_missing_directory_is_a_usage_error(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    result = run_every_rule(pytester, aws_env, "--proton-report", "nowhere/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --proton-report nowhere/report.json: directory * does not exist"])
    assert aws_env.total_calls() == 0


# -- other plugins ----------------------------------------------------------------------------------------------
def test_pytest_timeout_in_setup_is_counted_and_short(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    names = ["a", "b", "c"]
    aws_env.set_state(fake_state(
        *({"name": n, "type": "ENVIRONMENT", "version": 1, "synced": SHA_A} for n in names),
        # Each answer comes long after the 0.3 s limit, also for the last item, whose setup starts after the first
        # two timed out (each dumps every thread's stack: slow on a loaded machine; 3 s was once not enough).
        faults={"slow_rate": 1.0, "slow_seconds": 6},
    ))
    manifest = write_manifest(pytester.path, *(template(n, SHA_A) for n in names))
    # In a subprocess, as in CI: pytest-timeout's dump of every thread's stack goes through pytest's fd capture
    # there (in-process runs write it straight to the outer terminal).
    result = pytester.runpytest_subprocess("--proton-manifest", str(manifest), "--timeout=0.3", "-p", "timeout",
                                           "--proton-report", "report.json")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of proton-sync.yaml:*: ENVIRONMENT/*@1*",
        "ENVIRONMENT/*@1 could not be checked: Timeout*>0.3s*",  # pytest-timeout 2.2 and 2.3+ word it apart
        "  no answer before pytest-timeout's limit (see --proton-read-timeout)",
    ])
    result.stdout.fnmatch_lines(["3 targets: 3 errors"])
    output = "\n".join(result.outlines)
    assert "Stack of" not in output and "_multicall" not in output and "Traceback" not in output
    assert len(result.outlines) < 45, output
    report = validate_report(pytester.path / "report.json")
    assert [(t["id"], t["outcome"], t["observation"]) for t in report["targets"]] == [
        (f"ENVIRONMENT/{n}@1", "error", None) for n in names]


def test_pytest_rerunfailures_asks_again_and_replaces_properties(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    aws_env.set_state(fake_state(
        {"name": "late", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD, "sequence": [{}, {"synced": SHA_A}]},
        {"name": "stale", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD},
    ))
    manifest = write_manifest(pytester.path, template("late", SHA_A), template("stale", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--reruns=1", "-p", "rerunfailures",
                                "--junitxml=out.xml", "-o", "junit_family=xunit1", "--proton-report", "report.json")
    result.assert_outcomes(passed=1, failed=1)
    assert result.parseoutcomes()["rerun"] == 2
    # Each rerun asked again: the late sync is seen on the second look.
    assert aws_env.total_calls(operation="GetTemplateSyncStatus") == 4
    cases = junit_cases(pytester.path / "out.xml")
    assert cases["ENVIRONMENT/late@1"][0] == "passed"
    testcases = ET.parse(pytester.path / "out.xml").iter("testcase")
    late_properties = next(case for case in testcases if case.get("name") == "ENVIRONMENT/late@1").findall(
        "properties/property")
    assert len(late_properties) == 5  # replaced on the rerun, not 10
    assert cases["ENVIRONMENT/late@1"][1]["proton.actual_sha"] == SHA_A
    report = validate_report(pytester.path / "report.json")
    assert [(t["id"], t["outcome"], t["reruns"]) for t in report["targets"]] == [
        ("ENVIRONMENT/late@1", "passed", 1), ("ENVIRONMENT/stale@1", "failed", 1)]
    assert report["api_calls"] == 4
    result.stdout.fnmatch_lines(["2 targets: 1 failed, 1 passed"])


def test_xdist_and_randomly_summary_in_manifest_order(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    result = run_every_rule(pytester, aws_env, "-n", "2", "-p", "randomly", "--randomly-seed=3",
                            "--proton-report", "report.json", "--junitxml=out.xml")
    result.assert_outcomes(passed=3, failed=8, errors=1)
    assert summary_targets(result) == MANIFEST_ORDER
    report = validate_report(pytester.path / "report.json")
    assert [t["id"] for t in report["targets"]] == MANIFEST_ORDER
    assert report["api_calls"] == 12
    assert aws_env.total_calls(operation="GetTemplateSyncStatus") == 12
    suite = next(iter(JUnitXml.fromfile(str(pytester.path / "out.xml"))))
    assert {case.classname for case in suite} == {"proton_sync.proton-sync.ENVIRONMENT"}
    assert {p.name: p.value for p in suite.properties()}["proton.sync_status_calls"] == "12"
    assert [case.name for case in suite] == MANIFEST_ORDER  # JUnit too, though reports arrived in any order


def test_reports_serialise_to_plain_json_for_report_logs(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    """In this process a report carries the facts record itself; whatever serialises reports (pytest-reportlog,
    pytest-xdist) gets it as plain JSON, which reads back as the same record."""
    pytester.makeconftest("""
        import json

        CONFIG, LINES = [], []

        def pytest_configure(config):
            CONFIG.append(config)

        def pytest_runtest_logreport(report):  # as pytest-reportlog writes its file
            data = CONFIG[-1].hook.pytest_report_to_serializable(config=CONFIG[-1], report=report)
            LINES.append(json.dumps(data))

        def pytest_sessionfinish(session):
            with open("reports.jsonl", "w") as handle:
                handle.write("\\n".join(LINES))
    """)
    result = run_every_rule(pytester, aws_env)
    result.assert_outcomes(passed=3, failed=8, errors=1)
    lines = [json.loads(line) for line in (pytester.path / "reports.jsonl").read_text().splitlines()]
    carried = [line["proton_sync"] for line in lines if "proton_sync" in line]
    # setup, call and teardown of each target, but the one whose error in setup leaves no call
    assert len(carried) == 3 * len(MANIFEST_ORDER) - 1
    assert all(isinstance(value, dict) for value in carried)
    ids = {TargetFacts.from_wire(value).id for value in carried}
    assert ids == set(MANIFEST_ORDER)
    assert summary_targets(result) == MANIFEST_ORDER  # and the run's own summary still reads the records


# -- the pure parts ---------------------------------------------------------------------------------------------
def facts(target: str, manifest: str, line: int) -> TargetFacts:
    entry = make_target(KINDS["template"], {"name": target, "type": "ENVIRONMENT", "version": "1"},
                        Expectation(SHA_A, RepositorySpec("repo")), manifest=Path(manifest), line=line)
    return replace(TargetFacts.of(entry, None, manifest), id=target)


def test_run_results_outcomes_reruns_and_manifest_order() -> None:
    from pytest_proton_sync.reports.results import RunResults, counts, manifest_rank

    results = RunResults()
    # Finish order: second manifest first, lines out of order (xdist, pytest-randomly).
    results.record("b::x", "setup", "passed", facts("X", "/b.yaml", 3), None, 0.1)
    results.record("b::x", "call", "passed", facts("X", "/b.yaml", 3), None, 0.1)
    results.record("a::late", "setup", "passed", facts("LATE", "/a.yaml", 9), None, 0.1)
    results.record("a::late", "call", "rerun", facts("LATE", "/a.yaml", 9), "not yet", 0.1)
    results.record("a::late", "setup", "passed", facts("LATE", "/a.yaml", 9), None, 0.1)
    results.record("a::late", "call", "passed", facts("LATE", "/a.yaml", 9), None, 0.1)
    results.record("a::timeout", "setup", "failed", facts("T", "/a.yaml", 5), "Timeout", 0.3)
    results.record("a::timeout", "teardown", "passed", facts("T", "/a.yaml", 5), None, 0.0)
    results.record("a::flaky-teardown", "call", "passed", facts("F", "/a.yaml", 7), None, 0.1)
    results.record("a::flaky-teardown", "teardown", "failed", facts("F", "/a.yaml", 7), "boom", 0.1)
    results.record("a::stuck", "setup", "passed", facts("S", "/a.yaml", 8), None, 0.1)  # no call: never "passed"
    ordered = results.ordered(manifest_rank({"/a.yaml": 0, "/b.yaml": 1}))
    assert [(r.id, r.final_outcome, r.reruns, r.text) for r in ordered] == [
        ("T", "error", 0, "Timeout"),
        ("F", "error", 0, "boom"),
        ("S", "error", 0, None),
        ("LATE", "passed", 1, None),
        ("X", "passed", 0, None),
    ]
    assert counts(ordered) == {"error": 3, "passed": 2}


def test_counts_read_as_english() -> None:
    from pytest_proton_sync.yamlcheck.messages import plural, tally

    assert plural(1, "sync-status call") == "1 sync-status call"
    assert plural(3, "sync-status call") == "3 sync-status calls"
    assert tally({"error": 2}) == "2 errors"
    assert tally({"error": 1, "failed": 2, "passed": 1}) == "1 error, 2 failed, 1 passed"


# -- manifest problems on GitHub ----------------------------------------------------------------------------------
TYPO_MANIFEST = """version: 1
defaults: {region: us-east-1, repository: acme/platform-templates}
templates:
  - name: vpc-env
    type: ENVIRONMENT
    version: 1
    revision: HEAD
  - {name: x, type: NETWORK, version: 1, sha: 3f2a9c1}
"""
TYPO_ANNOTATIONS = [
    "::error file=gates/typo.yaml,line=7,col=5,title=proton-sync%3A invalid manifest::templates[0].revision: "
    "unknown key 'revision'; did you mean 'rev'? allowed: name, type, version, sha, rev, match, repository, region, "
    "account",
    "::error file=gates/typo.yaml,line=8,col=21,title=proton-sync%3A invalid manifest::templates[1].type: "
    "'NETWORK' is not allowed; allowed: ENVIRONMENT, SERVICE",
]


@pytest.mark.parametrize("xdist", [False, True])
def test_manifest_problems_are_annotated_at_their_line_and_column_and_summarised(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    summary = github_env(monkeypatch, pytester)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "typo.yaml").write_text(TYPO_MANIFEST)
    result = pytester.runpytest("--proton-manifest", "gates/typo.yaml", *(["-n", "2"] if xdist else []))
    # pytest says 2 for a collection error; pytest-xdist's controller says 1 (its own choice, not the plugin's)
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if xdist else pytest.ExitCode.INTERRUPTED)
    assert [line for line in result.outlines if line.startswith("::")] == TYPO_ANNOTATIONS
    text = summary.read_text()
    assert text.startswith("# earlier step\n### proton-sync: invalid manifest\n\n2 problems in 1 manifest; nothing "
                           "was asked of AWS.\n")
    assert "| gates/typo\\.yaml\\:7\\:5 | templates\\[0\\]\\.revision | unknown key 'revision'; did you mean 'rev'?" \
        in text
    assert "nothing checked" not in text


def test_validate_and_check_annotate_manifest_problems(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_proton_sync import cli

    summary = github_env(monkeypatch, pytester)
    monkeypatch.chdir(pytester.path)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "typo.yaml").write_text(TYPO_MANIFEST)
    for command in ("validate", "check"):
        assert cli.main([command, "gates/typo.yaml"]) == cli.EXIT_INVALID
        out, err = capsys.readouterr()
        assert out.splitlines() == TYPO_ANNOTATIONS, command
        assert "gates/typo.yaml:7:5: templates[0].revision: unknown key" in err
    assert summary.read_text().count("### proton-sync: invalid manifest") == 2
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert cli.main(["validate", "gates/typo.yaml"]) == cli.EXIT_INVALID
    assert "::" not in capsys.readouterr().out


def test_a_blocked_stack_reads_resolve_the_blocker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copytree(Path(__file__).resolve().parent.parent / "examples", pytester.path / "examples")
    summary = github_env(monkeypatch, pytester)
    pytester.runpytest("--proton-manifest", "examples/stacks.yaml", "--proton-fake", "examples/fake-stacks.yaml")
    row = next(line for line in summary.read_text().splitlines() if line.startswith("| STACK/app-db "))
    assert row.split(" | ")[2:4] == ["blocked", "resolve the blocker"]


def test_source_links_only_from_what_the_runner_says() -> None:
    environ = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/infra", "GITHUB_SHA": "abc"}
    assert github.source_link("/w/gates/m.yaml", 7, "/w", environ) == \
        "https://github.com/acme/infra/blob/abc/gates/m.yaml#L7"
    assert github.source_link("/elsewhere/m.yaml", 7, "/w", environ) is None  # outside the workspace
    assert github.source_link("/w/m.yaml", 7, None, environ) is None
    assert github.source_link("/w/m.yaml", 7, "/w", {**environ, "GITHUB_SERVER_URL": "javascript:x"}) is None
    assert github.source_link("/w/m.yaml", 7, "/w", {**environ, "GITHUB_REPOSITORY": "a/b) [x](y"}) is None
    assert github.source_link("/w/a b.yaml", 0, "/w", environ) == "https://github.com/acme/infra/blob/abc/a%20b.yaml"


@pytest.mark.parametrize("xdist", [False, True])
def test_junit_message_is_the_first_reason_and_the_next_step(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    """What Jenkins shows as "Error Message" (the message attribute) says what is wrong and what to do; the
    element text keeps the whole report. Under xdist too, where the JUnit XML is written by the controller."""
    import shutil
    import xml.etree.ElementTree as ET

    shutil.copytree(Path(__file__).resolve().parent.parent / "examples", pytester.path / "examples")
    pytester.runpytest("--proton-manifest", "examples/proton-sync.yaml", "--proton-fake",
                       "examples/fake-account-drifted.yaml", "--junitxml=out.xml", *(["-n", "2"] if xdist else []))
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "out.xml").getroot().iter("testcase")}
    failure = cases["ENVIRONMENT/eks-env@2"].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "ENVIRONMENT/eks-env@2 is not synced from the expected commit\n"
        "sha 1b2c3d4e5f60 is not the expected 3f2a9c1\n"
        "next: The expected commit is syncing now: re-run later, or wait for it with --proton-wait SECONDS.")
    assert failure.text is not None and failure.text.startswith("ENVIRONMENT/eks-env@2 is not synced")
    assert "  latest attempt:  IN_PROGRESS on sha 3f2a9c1d8e7b" in failure.text
    worker = cases["SERVICE/worker-svc@3"].find("failure")
    assert worker is not None and worker.get("message", "").splitlines() == [
        "SERVICE/worker-svc@3 has never synced successfully",  # not said twice
        "next: The sync of the expected commit FAILED (events above): fix the template and push a new commit, then "
        "update the expected sha."]


def test_junit_error_message_names_the_error_and_its_fix(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import xml.etree.ElementTree as ET

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    pytester.runpytest("--proton-manifest", str(manifest), "--proton-region", "us-east-1", "--junitxml=out.xml")
    error = ET.parse(pytester.path / "out.xml").getroot().find(".//error")
    assert error is not None
    assert error.get("message") == (
        'failed on setup with "ENVIRONMENT/vpc-env@1 could not be checked: NoCredentials\n'
        "no AWS credentials found\n"
        "next: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), run in a role, or try the bundled "
        'fake with --proton-fake STATE."')


def test_the_facts_record_is_plain_data_made_once_from_the_observation(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_proton_sync.model import Observation, Revision, SyncAttempt, SyncStatus
    from pytest_proton_sync.reports.table import junit_properties
    from pytest_proton_sync.verdict.judge import judge

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-not-for-reports")
    entry = make_target(KINDS["template"], {"name": "vpc-env", "type": "ENVIRONMENT", "version": "1"},
                        Expectation(SHA_A, RepositorySpec("acme/hunter2-not-for-reports")), region="eu-west-1")
    old = SyncAttempt("SUCCEEDED", Revision(SHA_OLD, "acme/hunter2-not-for-reports", "GITHUB", "main", "t"))
    status = SyncStatus(latest_successful=old, latest=old)
    observation = Observation(entry, status, region="eu-west-1", verdict=judge(entry, status))
    facts = TargetFacts.of(entry, observation, "/w/proton-sync.yaml", with_document=True)
    wire = facts.wire()
    assert TargetFacts.from_wire(json.loads(json.dumps(wire))) == facts  # what pytest-xdist carries, and back
    assert "hunter2-not-for-reports" not in json.dumps(wire)  # redacted once, for every report
    assert (facts.type, facts.last_synced_sha, facts.latest_status) == ("ENVIRONMENT", SHA_OLD, "SUCCEEDED")
    assert facts.why.startswith(f"sha {SHA_OLD[:12]} is not the expected")
    assert facts.next_step == "push the expected commit, or fix the manifest"
    # JUnit's properties are the table's facts, not a second computation from the observation.
    assert dict(junit_properties(facts))["proton.latest_sync_status"] == facts.latest_status
    never = TargetFacts.of(entry, None, "/w/proton-sync.yaml")
    assert (never.observed, never.latest_status, never.document) == (False, "NOT_OBSERVED", None)


def test_every_kind_gives_the_type_its_ids_begin_with() -> None:
    # JUnit's classname groups by the TYPE of the id (kinds.type_of), never by splitting the id.
    fields = {"template": {"name": "vpc-env", "type": "ENVIRONMENT", "version": "1"},
              "service_instance": {"service": "web-svc", "name": "prod"}, "stack": {"name": "app-db"}}
    for name, kind in KINDS.items():
        entry = make_target(kind, fields[name], Expectation(SHA_A, RepositorySpec("repo")))
        assert type_of(entry) == entry.id.split("/", 1)[0]
