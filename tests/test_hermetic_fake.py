"""--proton-fake needs no AWS configuration, and no AWS configuration of the machine can break or redirect it.

Each case sets up an ordinary shell's environment the way a user's machine might have it, runs pytest with
``--proton-fake`` as the README says, and expects every target to pass. The environment itself must stay as the
user set it: the unit tests of the same run see it unchanged.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_proton_sync.aws.clients import FetchSettings, default_client, default_region
from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.options import defaults

from .conftest import SHA_A, fake_state, template, write_manifest, write_text

MALFORMED_INI = "[default\naws_access_key_id = x\n  this line is not ini at all ]]]\n"


def dead_port() -> int:
    """A loopback port nobody listens on: anything sent there fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def state_and_manifest(directory: Path) -> tuple[Path, Path]:
    state = write_text(directory / "state.yaml", f"""
        defaults:
          repository: {{provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}}
        templates:
          - {{name: vpc-env, type: ENVIRONMENT, version: 1, synced: {SHA_A}}}
          - {{name: web-svc, type: SERVICE, version: 1, synced: {SHA_A}}}
    """)
    manifest = write_manifest(directory, template("vpc-env", SHA_A), template("web-svc", SHA_A, "SERVICE"))
    return state, manifest


def environment_of(case: str, directory: Path) -> dict[str, str]:
    proxy = f"http://127.0.0.1:{dead_port()}"
    malformed = write_text(directory / "malformed.ini", MALFORMED_INI)
    cases = {
        "profile missing": {"AWS_PROFILE": "team-prod-admin"},
        "default profile missing": {"AWS_DEFAULT_PROFILE": "team-prod-admin"},
        "config file malformed": {"AWS_CONFIG_FILE": str(malformed)},
        "credentials file malformed": {"AWS_SHARED_CREDENTIALS_FILE": str(malformed)},
        "partial credentials": {"AWS_ACCESS_KEY_ID": "AKIAONLYHALF"},
        "proxy": {"HTTP_PROXY": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy, "https_proxy": proxy},
        "all proxy": {"ALL_PROXY": proxy, "all_proxy": proxy},
        "fips and dualstack": {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
        "region malformed": {"AWS_REGION": "US EAST 1", "AWS_DEFAULT_REGION": "us_east_1"},
        "endpoint elsewhere": {"AWS_ENDPOINT_URL": proxy, "AWS_ENDPOINT_URL_PROTON": proxy},
        "retry settings malformed": {"AWS_MAX_ATTEMPTS": "lots", "AWS_RETRY_MODE": "eager",
                                     "AWS_DEFAULTS_MODE": "turbo"},
        "data path elsewhere": {"AWS_DATA_PATH": str(directory / "no-such-models")},
    }
    return cases[case]


# What broke the fake on ordinary shells (issue 12). (AWS_DATA_PATH is left out here: botocore stops looking for
# the model's location at that variable, before the profile, which would hide a session reading the profile.)
AS_IN_THE_ISSUE = ["profile missing", "config file malformed", "credentials file malformed", "proxy", "all proxy",
                   "region malformed"]


@pytest.fixture
def fake_model_loaded() -> None:
    """The bundled fake loads botocore's Proton model once per process (to check requests against it). These
    in-process runs are about the plugin's clients, so the model is loaded here, before the user's environment
    is set up; the subprocess test below runs the whole thing, fake included, as a user would."""
    from pytest_proton_sync.fake.api import SERVICES, service_model

    for service in SERVICES:
        service_model(service.model_name)  # the argument as the fake passes it: the cache is keyed on it


CASES = [
    "profile missing", "default profile missing", "config file malformed", "credentials file malformed",
    "partial credentials", "proxy", "all proxy", "fips and dualstack", "region malformed", "endpoint elsewhere",
    "retry settings malformed", "data path elsewhere",
]


@pytest.mark.parametrize("case", CASES)
def test_a_fake_client_ignores_each_setting_of_the_users_aws_environment(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_model_loaded: None, case: str
) -> None:
    """The client --proton-fake uses, made by the plugin's own factory, one real call over HTTP."""
    fake.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    for name, value in environment_of(case, tmp_path).items():
        monkeypatch.setenv(name, value)
    settings = FetchSettings(replace(defaults(), max_attempts=1), endpoint_url=fake.endpoint_url,
                             use_fake_credentials=True)
    region = default_region(settings)
    assert region == "us-east-1"
    client = default_client("proton", region, settings)
    answer = client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT",
                                             templateVersion="1")
    assert answer["latestSuccessfulSync"]["initialRevision"]["sha"] == SHA_A
    assert fake.total_calls() == 1


def test_the_fake_run_ignores_the_users_aws_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_model_loaded: None
) -> None:
    state, manifest = state_and_manifest(pytester.path)
    for case in CASES:
        for name, value in environment_of(case, pytester.path).items():
            monkeypatch.setenv(name, value)
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-fake", str(state))
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)


def test_a_malformed_home_aws_directory_does_not_matter(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_model_loaded: None
) -> None:
    # No AWS_CONFIG_FILE at all: botocore would read ~/.aws/config and ~/.aws/credentials.
    home = pytester.path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(MALFORMED_INI)
    (home / ".aws" / "credentials").write_text(MALFORMED_INI)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("AWS_CONFIG_FILE")
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE")
    state, manifest = state_and_manifest(pytester.path)
    pytester.runpytest("--proton-manifest", str(manifest), "--proton-fake", str(state)).assert_outcomes(passed=2)


def test_everything_at_once_and_the_environment_stays_as_the_user_set_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for case in AS_IN_THE_ISSUE:
        for name, value in environment_of(case, pytester.path).items():
            monkeypatch.setenv(name, value)
    state, manifest = state_and_manifest(pytester.path)
    # A unit test of the same run, collected next to the gate, sees the environment the user set: the plugin
    # works around it and changes none of it (not even for the duration of the run).
    pytester.makeconftest("""
        import os

        BEFORE = dict(os.environ)

        def pytest_sessionfinish(session):
            names = (set(BEFORE) | set(os.environ)) - {"PYTEST_CURRENT_TEST"}  # pytest's own
            changed = sorted(k for k in names if BEFORE.get(k) != os.environ.get(k))
            with open("environ-changes.txt", "w") as handle:
                handle.write(repr(changed))
    """)
    pytester.makepyfile(test_unit="""
        import os

        def test_sees_the_users_environment():
            assert os.environ["AWS_PROFILE"] == "team-prod-admin"
            assert os.environ["HTTP_PROXY"].startswith("http://127.0.0.1:")
            assert os.environ["AWS_REGION"] == "US EAST 1"
    """)
    # A fresh process, as a user runs it: nothing of botocore is loaded before the environment is in place.
    result = pytester.runpytest_subprocess("test_unit.py", "--proton-manifest", str(manifest),
                                           "--proton-fake", str(state), "-p", "no:cacheprovider")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=3)
    assert (pytester.path / "environ-changes.txt").read_text() == "[]"


def test_accounts_of_the_manifest_are_not_assumed_under_the_fake(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_model_loaded: None
) -> None:
    # A manifest written for several accounts runs against the fake as it is: no profile is looked up, no role
    # assumed (the fake's answers do not depend on the account).
    state, _ = state_and_manifest(pytester.path)
    manifest = write_text(pytester.path / "accounts.yaml", f"""
        version: 1
        accounts:
          prod: {{role_arn: "arn:aws:iam::111122223333:role/proton-gate"}}
          dev: {{profile: no-such-profile}}
        defaults:
          repository: {{provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}}
          sha: {SHA_A}
        templates:
          - {{name: vpc-env, type: ENVIRONMENT, version: "1", account: prod}}
          - {{name: web-svc, type: SERVICE, version: "1", account: dev}}
    """)
    monkeypatch.setenv("AWS_PROFILE", "team-prod-admin")
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-fake", str(state))
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
