"""Values from the environment in outputs: a manifest problem in an interpolated field names the variable and
withholds the value unless it is plainly harmless, and the values of credential variables (AWS_SECRET_ACCESS_KEY,
MY_TOKEN, DB_PASSWORD, ...) are masked in every output: terminal, JUnit XML, the JSON report, GitHub annotations
and step summary, ``pytest-proton-sync validate``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_proton_sync import cli
from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.manifest.loader import ManifestError, parse_manifest
from pytest_proton_sync.text.envsecrets import (
    MIN_MASKED_LENGTH,
    credential_values,
    is_credential_name,
    looks_like_credential,
    plainly_harmless,
)
from pytest_proton_sync.text.redact import redact, redact_strings

from .conftest import REPO, SHA_A, SHA_OLD, fake_state, template, write_manifest

# The issue's reproduction: a token variable where the commit variable was meant.
ISSUE_SECRET_KEY = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY"
ISSUE_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
ISSUE_MANIFEST = """\
version: 1
defaults:
  repository: acme/platform-templates
templates:
  - {type: ENVIRONMENT, name: vpc-env, version: "1", sha: "${AWS_SECRET_ACCESS_KEY}"}
  - {type: ENVIRONMENT, name: db-env, version: "1", sha: "${MY_TOKEN}"}
"""

# A value no field accepts (a leading '/', a blank, a '!'), shaped like a credential.
BAD_SECRET = "/Zx9 Qw7!pL3mN8vB2kR4tY6Hs"
ROLE = "arn:aws:iam::111111111111:role/proton-read"


def leaks(text: str, *secrets: str) -> list[str]:
    """The secrets found in ``text``, whole or by a 12-character piece (a truncated quote leaks too)."""
    return [secret for secret in secrets
            if any(secret[i:i + 12] in text for i in range(0, max(1, len(secret) - 11)))]


# -- the rules, one by one -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "MY_TOKEN", "GITHUB_TOKEN", "CI_JOB_TOKEN",
    "PGPASSWORD", "db_password", "SMTP_PASSWD", "API_KEY", "apiKey", "STRIPE_SECRET", "client-secret", "APIKEY",
    "AWS_ACCESS_KEY_ID", "PRIVATE_KEY_PEM",
])
def test_names_that_say_credential(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize("name", [
    "PATH", "HOME", "AWS_REGION", "AWS_PROFILE", "GITHUB_SHA", "TOKENIZERS_PARALLELISM", "KEYBOARD", "SECRETS_DIR",
    "PASSWORDLESS", "WEB_SVC_SHA",
])
def test_names_that_do_not(name: str) -> None:
    assert not is_credential_name(name)


def test_short_values_are_not_masked_so_ordinary_text_stays() -> None:
    environ = {"KEY": "1", "API_KEY": "true", "MY_TOKEN": "x" * (MIN_MASKED_LENGTH - 1), "HOME": "/home/ci-user"}
    text = "1 target: 1 passed, true, xxxxxxx, /home/ci-user"
    assert credential_values(environ) == ()
    assert redact(text, environ) == text


def test_values_of_credential_variables_are_masked_wherever_they_are_named_by_their_variable() -> None:
    environ = {"MY_TOKEN": ISSUE_TOKEN, "DB_PASSWORD": "  s3cr3t-pass \n", "PLAIN": ISSUE_SECRET_KEY,
               "TLS_PRIVATE_KEY": "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n-----END KEY-----"}
    text = (f"branch {ISSUE_TOKEN}, url https://x/{ISSUE_TOKEN}?a=1, pw 's3cr3t-pass', plain {ISSUE_SECRET_KEY}, "
            "line MIIEvQIBADANBgkqhkiG9w0BAQEF")
    masked = redact(text, environ)
    assert masked == ("branch [REDACTED:MY_TOKEN], url https://x/[REDACTED:MY_TOKEN]?a=1, "
                      f"pw '[REDACTED:DB_PASSWORD]', plain {ISSUE_SECRET_KEY}, line [REDACTED:TLS_PRIVATE_KEY]")
    assert redact(masked, environ) == masked  # idempotent
    # The log patterns keep the variable's mask, and mask as before what no variable holds.
    assert redact(f"token={ISSUE_TOKEN} aws_session_token=abc", environ) == \
        "token=[REDACTED:MY_TOKEN] aws_session_token=[REDACTED]"


def test_a_value_inside_the_mask_does_not_loop() -> None:
    environ = {"X_PASSWORD": "REDACTED", "Y_TOKEN": "[REDACTED:Y_TOKEN]"}
    assert redact("[REDACTED] REDACTED", environ) == "[REDACTED] REDACTED"


def test_redact_strings_reaches_keys_values_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", ISSUE_TOKEN)
    data = {"id": f"ENVIRONMENT/{ISSUE_TOKEN}@1", ISSUE_TOKEN: [ISSUE_TOKEN, 1, None, ("a", ISSUE_TOKEN)]}
    assert json.dumps(redact_strings(data)).count("[REDACTED:MY_TOKEN]") == 4
    assert not leaks(json.dumps(redact_strings(data)), ISSUE_TOKEN)
    assert ISSUE_TOKEN in data["id"]  # the given structure is left as it was


@pytest.mark.parametrize(("value", "variables", "by_characters", "shown"), [
    ("abc12", ("WEB_SVC_SHA",), False, True),  # too few hex digits: harmless
    ("gitlab", ("PROVIDER",), False, True),  # not one of the words
    ("hunter2", ("WEB_SVC_SHA",), True, False),  # short, but fails by its characters: could be a password
    ("abc12", ("SHA_TOKEN",), False, False),  # a credential's variable: never
    ("a" * 33, ("NAME",), False, False),  # too long
    ("two words", ("NAME",), False, False),  # not plain characters
    ("AKIAIOSFODNN7EXAMPLE", ("ID",), False, False),  # the shape of a credential
])
def test_plainly_harmless(value: str, variables: tuple[str, ...], by_characters: bool, shown: bool) -> None:
    assert plainly_harmless(value, variables, by_characters=by_characters) is shown


@pytest.mark.parametrize(("value", "looks"), [
    (ISSUE_TOKEN, True), (ISSUE_SECRET_KEY, True), ("AKIAIOSFODNN7EXAMPLE", True), ("glpat-xxxxxxxxxxxxxxxxxxxx", True),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", True), (SHA_A, False), ("platform-templates", False), ("main", False),
])
def test_looks_like_credential(value: str, looks: bool) -> None:
    assert looks_like_credential(value) is looks


# -- manifest messages: the variable named, the value withheld -------------------------------------------------
def problems_of(text: str, monkeypatch: pytest.MonkeyPatch, **environ: str) -> list[str]:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ManifestError) as raised:
        parse_manifest(text, "m.yaml")
    return [str(problem) for problem in raised.value.problems]


def test_the_issues_two_messages_name_the_variables_and_withhold_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(ISSUE_MANIFEST, monkeypatch, AWS_SECRET_ACCESS_KEY=ISSUE_SECRET_KEY, MY_TOKEN=ISSUE_TOKEN)
    assert lines == [
        "m.yaml:5:59: templates[0].sha: the value of ${AWS_SECRET_ACCESS_KEY} (37 characters that look like a "
        "credential, from a credential's variable; not shown) is not a hex commit sha; use 7 to 40 hex digits (a full "
        "commit sha or a prefix of it), or 64 for SHA-256 repositories; fix: check that ${AWS_SECRET_ACCESS_KEY} is "
        "the variable meant here, and what it holds",
        "m.yaml:6:58: templates[1].sha: the value of ${MY_TOKEN} (40 characters that look like a credential, from a "
        "credential's variable; not shown) is not a hex commit sha; use 7 to 40 hex digits (a full commit sha or a "
        "prefix of it), or 64 for SHA-256 repositories; fix: check that ${MY_TOKEN} is the variable meant here, and "
        "what it holds",
    ]


def test_a_harmless_value_is_shown_with_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    text = ISSUE_MANIFEST.replace("${AWS_SECRET_ACCESS_KEY}", "${WEB_SVC_SHA}").replace("${MY_TOKEN}", "x${PW}")
    text = text.replace("repository: acme/platform-templates",
                        "repository: {name: acme/platform-templates, provider: '${PROVIDER}'}")
    lines = problems_of(text, monkeypatch, WEB_SVC_SHA="3f2a9c", PW="hunter2", PROVIDER="gitlab")
    assert any("defaults.repository.provider: 'gitlab' (from ${PROVIDER}) is not allowed; did you mean 'GitLab'?"
               in line for line in lines)
    assert any("templates[0].sha: '3f2a9c' (from ${WEB_SVC_SHA}) has 6 hex digits" in line for line in lines)
    # Short, from a harmless name, but not made of the field's characters: withheld all the same.
    assert any("templates[1].sha: the value of 'x${PW}' (8 characters; not shown) is not a hex commit sha" in line
               and "fix: check that ${PW} is the variable meant here" in line for line in lines)
    assert not leaks("\n".join(lines), "hunter2")


def test_a_value_from_a_default_is_the_files_own_text(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(ISSUE_MANIFEST.replace("${MY_TOKEN}", "${UNSET_SHA:-nothex!}"), monkeypatch,
                        AWS_SECRET_ACCESS_KEY=SHA_A)
    assert lines == ["m.yaml:6:58: templates[1].sha: 'nothex!' is not a hex commit sha; use 7 to 40 hex digits (a full "
                     "commit sha or a prefix of it), or 64 for SHA-256 repositories"]


def base_manifest() -> dict[str, Any]:
    return {
        "version": 1,
        "defaults": {"repository": dict(REPO), "region": "us-east-1"},
        "accounts": {"prod": {"role_arn": ROLE, "session_name": "gate", "duration_seconds": "900"}},
        "templates": [{**template("vpc-env", SHA_A), "account": "prod", "match": "exact"}],
        "service_instances": [{"service": "web", "name": "web-prod", "sha": SHA_A, "spec": "spec.yaml",
                               "ops_file": "ops.yaml"}],
        "stacks": [{"name": "net", "sha": SHA_A, "config_file": "deploy/net.yaml"}],
    }


# Every text field of a manifest (and the defaults' and accounts'), each given the bad secret through a variable.
FIELDS: list[tuple[str | int, ...]] = [
    ("templates", 0, "name"), ("templates", 0, "type"), ("templates", 0, "version"), ("templates", 0, "sha"),
    ("templates", 0, "rev"), ("templates", 0, "match"), ("templates", 0, "region"), ("templates", 0, "account"),
    ("templates", 0, "repository"), ("templates", 0, "repository", "name"), ("templates", 0, "repository", "provider"),
    ("service_instances", 0, "service"), ("service_instances", 0, "name"), ("service_instances", 0, "spec"),
    ("service_instances", 0, "ops_file"), ("stacks", 0, "name"), ("stacks", 0, "config_file"),
    ("defaults", "region"), ("defaults", "sha"), ("defaults", "match"), ("defaults", "account"),
    ("defaults", "repository", "name"), ("accounts", "prod", "role_arn"), ("accounts", "prod", "session_name"),
    ("accounts", "prod", "duration_seconds"),
]


def with_variable(path: tuple[str | int, ...], variable: str) -> dict[str, Any]:
    data = base_manifest()
    parent: Any = data
    for part in path[:-1]:
        if isinstance(parent, dict) and part not in parent:
            parent[part] = {}
        parent = parent[part]
    if path[-1] == "rev":
        del parent["sha"]  # one of sha and rev
    parent[path[-1]] = "${" + variable + "}"
    return data


@pytest.mark.parametrize("path", FIELDS, ids=lambda path: ".".join(map(str, path)))
def test_every_interpolated_field_names_its_variable_in_validate(
    path: tuple[str | int, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", BAD_SECRET)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(with_variable(path, "DEPLOY_TOKEN"), sort_keys=False))
    assert cli.main(["validate", str(manifest)]) == cli.EXIT_INVALID
    out, err = capsys.readouterr()
    assert not leaks(out + err, BAD_SECRET), err
    field = re.escape(path[0] + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path[1:]))
    assert re.search(rf"m\.yaml:\d+:\d+: {field}: .*\$\{{DEPLOY_TOKEN\}}", err), err


# -- every output of a run ---------------------------------------------------------------------------------------
def github_mode(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    summary = pytester.path / "step-summary.md"
    summary.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


OUTPUT_FLAGS = ("-v", "-rA", "--junitxml=out.xml", "-o", "junit_family=xunit1", "--proton-report", "report.json",
                "-p", "no:cacheprovider")


def every_output(pytester: pytest.Pytester, result: pytest.RunResult, summary: Path) -> dict[str, str]:
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "JUnit XML": (pytester.path / "out.xml").read_text(),
        "step summary": summary.read_text(),
    }
    report = pytester.path / "report.json"
    if report.exists():
        outputs["JSON report"] = report.read_text()
    return outputs


def test_the_issues_manifest_in_every_output(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ISSUE_SECRET_KEY)
    monkeypatch.setenv("MY_TOKEN", ISSUE_TOKEN)
    summary = github_mode(pytester, monkeypatch)
    manifest = pytester.path / "m.yaml"
    manifest.write_text(ISSUE_MANIFEST)
    result = pytester.runpytest("--proton-manifest", str(manifest), *OUTPUT_FLAGS)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, no API call
    outputs = every_output(pytester, result, summary)
    for where, text in outputs.items():
        assert not leaks(text, ISSUE_SECRET_KEY, ISSUE_TOKEN), f"{where}:\n{text}"
    for where in ("stdout", "JUnit XML"):
        assert "${AWS_SECRET_ACCESS_KEY}" in outputs[where] and "${MY_TOKEN}" in outputs[where], where
    result.stdout.fnmatch_lines(["m.yaml:6:58: templates?1?.sha: the value of ${MY_TOKEN} (40 characters*"])

    assert cli.main(["validate", str(manifest)]) == cli.EXIT_INVALID
    out, err = capsys.readouterr()
    assert not leaks(out + err, ISSUE_SECRET_KEY, ISSUE_TOKEN)
    assert "${AWS_SECRET_ACCESS_KEY}" in err and "${MY_TOKEN}" in err


# Values that every field accepts, each from a credential variable: they validate, so they reach the API's
# answers, the failure texts, the table, JUnit, the JSON report and GitHub, masked there.
VALID_SECRETS = {
    "TEMPLATE_TOKEN": "tok_9fQ2vX7LmZ3kR8wB1nC4",  # a template name
    "REPO_API_KEY": "Pq7Wr2Te9Yu4Io1PaSd",  # acme/${REPO_API_KEY}
    "BRANCH_SECRET": "release-Zq8Rt3Wv6Yp1Ks4M",
    "DIRECTORY_PASSWORD": "dirs/Hk2Jm9Nb4Vc7Xz1Q",
    "PROFILE_TOKEN": "profile-Lk8Jh3Gf6Ds1Mn",  # a profile the config files lack: boto3's message quotes it
}


def test_validated_values_of_credential_variables_are_masked_in_every_output(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in VALID_SECRETS.items():
        monkeypatch.setenv(name, value)
    summary = github_mode(pytester, monkeypatch)
    aws_env.set_state(fake_state(
        {"name": VALID_SECRETS["TEMPLATE_TOKEN"], "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD},
        {"name": "other", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
    ))
    repository = {"name": "acme/${REPO_API_KEY}", "branch": "${BRANCH_SECRET}", "directory": "${DIRECTORY_PASSWORD}"}
    manifest = write_manifest(pytester.path, template("${TEMPLATE_TOKEN}", SHA_A, repository=repository),
                              {**template("other", SHA_A), "account": "gone"})
    data = yaml.safe_load(manifest.read_text())
    data["accounts"] = {"gone": {"profile": "${PROFILE_TOKEN}"}}
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))

    result = pytester.runpytest("--proton-manifest", str(manifest), *OUTPUT_FLAGS)
    result.assert_outcomes(failed=1, errors=1)
    outputs = every_output(pytester, result, summary)
    for where, text in outputs.items():
        assert not leaks(text, *VALID_SECRETS.values()), f"{where}:\n{text}"
    everything = "\n".join(outputs.values())
    assert "::error " in outputs["stdout"]  # GitHub mode did annotate
    # Each mask says which variable it stands for; the step summary escapes Markdown, which a reader does not see.
    for name in VALID_SECRETS:
        assert f"[REDACTED:{name}]" in everything, name
    for where in ("stdout", "JUnit XML", "JSON report"):
        assert "ENVIRONMENT/[REDACTED:TEMPLATE_TOKEN]@1" in outputs[where], where
    assert "[REDACTED:TEMPLATE_TOKEN]" in outputs["step summary"].replace("\\", "")
    report = json.loads(outputs["JSON report"])
    assert report["targets"][0]["expectation"]["repository"] == {
        "name": "acme/[REDACTED:REPO_API_KEY]", "provider": "GITHUB", "branch": "[REDACTED:BRANCH_SECRET]",
        "directory": "[REDACTED:DIRECTORY_PASSWORD]"}

    assert cli.main(["validate", str(manifest)]) == cli.EXIT_OK
    assert not leaks("".join(capsys.readouterr()), *VALID_SECRETS.values())


@pytest.mark.plugin_logic
def test_masks_under_xdist(pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers collect and run the items; the controller writes the reports: each masks by the same environment."""
    secret = VALID_SECRETS["TEMPLATE_TOKEN"]
    monkeypatch.setenv("TEMPLATE_TOKEN", secret)
    aws_env.set_state(fake_state({"name": secret, "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD}))
    manifest = write_manifest(pytester.path, template("${TEMPLATE_TOKEN}", SHA_A))
    result = pytester.runpytest_subprocess("-n", "2", "--proton-manifest", str(manifest), "-v", "-rA",
                                           "--junitxml=out.xml", "--proton-report", "report.json")
    result.assert_outcomes(failed=1)
    for text in (result.stdout.str(), result.stderr.str(), (pytester.path / "out.xml").read_text(),
                 (pytester.path / "report.json").read_text()):
        assert not leaks(text, secret)
        assert "ENVIRONMENT/[REDACTED:TEMPLATE_TOKEN]@1" in text or text == result.stderr.str()



def test_checks_beyond_the_schema_name_the_variable_too(monkeypatch: pytest.MonkeyPatch) -> None:
    data = base_manifest()
    data["accounts"]["prod"]["duration_seconds"] = "${DURATION}"
    data["templates"][0]["account"] = "${ALIAS}"
    text = yaml.safe_dump(data, sort_keys=False)
    lines = problems_of(text, monkeypatch, DURATION="50", ALIAS="prdo")
    assert any("accounts.prod.duration_seconds: '50' (from ${DURATION}) seconds is outside" in line for line in lines)
    assert any("templates[0].account: unknown account 'prdo' (from ${ALIAS}); did you mean 'prod'?" in line
               for line in lines)
    lines = problems_of(text, monkeypatch, DURATION="50", ALIAS="Prod_Ab3dEf9hIj2kLm5nOp")
    assert any("templates[0].account: unknown account the value of ${ALIAS} (23 characters that look like a "
               "credential; not shown)" in line for line in lines)
    assert not leaks("\n".join(lines), "Prod_Ab3dEf9hIj2kLm5nOp")


def test_check_command_names_the_variables_and_masks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ISSUE_SECRET_KEY)
    monkeypatch.setenv("MY_TOKEN", ISSUE_TOKEN)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(ISSUE_MANIFEST)
    assert cli.main(["check", str(manifest)]) == cli.EXIT_INVALID
    out, err = capsys.readouterr()
    assert not leaks(out + err, ISSUE_SECRET_KEY, ISSUE_TOKEN)
    assert "${AWS_SECRET_ACCESS_KEY}" in err and "${MY_TOKEN}" in err
