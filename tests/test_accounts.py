"""Several AWS accounts in one manifest: assumed roles (STS from moto's server over HTTP), profiles, the standard chain.

Every request the Proton fake receives is attributed to the access key that signed it, so a test can see that each
account's entries were signed by that account's own credentials. STS is moto's ``ThreadedMotoServer`` behind a
small gate (:class:`StsGate`) that counts AssumeRole requests and refuses the role ARNs it is told to, the way STS
answers a role whose trust policy does not trust the caller.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from pytest_proton_sync.aws.accounts import Account, AccountUnavailable
from pytest_proton_sync.aws.clients import FetchSettings, botocore_config, default_client
from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.fake.api import TARGET_PREFIX, call_key
from pytest_proton_sync.model import AccountSpec
from pytest_proton_sync.options import defaults

from .conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, SHA_A, fake_state, write_text
from .test_plugin import junit_cases

PROD_ROLE = "arn:aws:iam::111111111111:role/proton-read"
AUDIT_ROLE = "arn:aws:iam::333333333333:role/proton-read"
STAGING_ROLE = "arn:aws:iam::444444444444:role/proton-read"
DEV_KEY_ID = "AKIADEVPROFILE000001"
DEV_SECRET = "SENTINEL-dev-profile-secret-9d2e"
CI_KEY_ID = "AKIACISOURCEPROFILE1"
CI_SECRET = "SENTINEL-ci-source-secret-5b81"
EXTERNAL_ID = "SENTINEL-external-id-7f3e,x=1"

_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


class RecordingFake(FakeServer):
    """The bundled fake, also recording which access key signed each request (``by_key``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_key: dict[str, Counter[str]] = {}
        self.arrived: dict[str, threading.Event] = {}  # call key -> set when a request for it arrives
        self._record_lock = threading.Lock()

    def _handle_post(self, handler: Any) -> None:
        match = _CREDENTIAL.search(handler.headers.get("Authorization", ""))
        read_body = handler.read_body

        def recording_read_body() -> bytes | None:
            body = read_body()
            target = handler.headers.get("X-Amz-Target", "")
            operation = target[len(TARGET_PREFIX):]
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = None
            key = call_key(operation, params)
            with self._record_lock:
                self.by_key.setdefault(match.group(1) if match else "-", Counter())[key] += 1
                self.arrived.setdefault(key, threading.Event()).set()
            return body

        handler.read_body = recording_read_body
        super()._handle_post(handler)

    def keys_for(self, name: str) -> set[str]:
        """The access keys that signed a request about template ``name``."""
        with self._record_lock:
            return {key for key, calls in self.by_key.items()
                    if any(call.endswith(f"ENVIRONMENT/{name}@1") for call in calls)}


class StsGate:
    """A tiny STS in front of moto's: refuses AssumeRole for ``deny`` (403 AccessDenied, as STS answers a role whose
    trust policy does not trust the caller) and forwards everything else; records who asked for which role and
    which keys moto issued."""

    def __init__(self, upstream: str, deny: set[str] | None = None) -> None:
        self.upstream = upstream
        self.deny = set(deny or ())
        self.expired: set[str] = set()  # access keys answered with ExpiredToken, as STS answers stale credentials
        self.hold: dict[str, tuple[threading.Event, float]] = {}  # role -> answer only once set (or after seconds)
        self.held_until_set: list[bool] = []
        self.assume_calls: list[tuple[str, str]] = []  # (role ARN, access key that signed the request)
        self.issued: dict[str, str] = {}  # access key id moto issued -> role ARN
        self.secrets: list[str] = []  # the secret keys and session tokens moto issued
        self.external_ids: list[str] = []
        self.lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                role = params.get("RoleArn", "")
                match = _CREDENTIAL.search(self.headers.get("Authorization", ""))
                with gate.lock:
                    gate.assume_calls.append((role, match.group(1) if match else "-"))
                    if "ExternalId" in params:
                        gate.external_ids.append(params["ExternalId"])
                if role in gate.hold:
                    event, seconds = gate.hold[role]
                    gate.held_until_set.append(event.wait(seconds))
                if match and match.group(1) in gate.expired:
                    self._send(403, (
                        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                        b"<Code>ExpiredToken</Code><Message>The security token included in the request is expired"
                        b"</Message></Error><RequestId>4f1c3d2e-0000-4000-8000-000000000002</RequestId>"
                        b"</ErrorResponse>"))
                    return
                if role in gate.deny:
                    self._send(403, (
                        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                        "<Code>AccessDenied</Code><Message>User: arn:aws:iam::222222222222:user/ci is not "
                        f"authorized to perform: sts:AssumeRole on resource: {role}</Message></Error>"
                        "<RequestId>4f1c3d2e-0000-4000-8000-000000000001</RequestId></ErrorResponse>").encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(gate.upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, answer = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, answer = error.code, error.read()
                text = answer.decode()
                key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
                with gate.lock:
                    if key:
                        gate.issued[key.group(1)] = role
                    gate.secrets += re.findall(r"<(?:SecretAccessKey|SessionToken)>([^<]+)<", text)
                self._send(status, answer)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def assumptions(self, role: str) -> int:
        with self.lock:
            return sum(1 for asked, _ in self.assume_calls if asked == role)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request to stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sts(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StsGate]:
    gate = StsGate(moto_server, deny={AUDIT_ROLE})
    gate.thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", gate.url)
    yield gate
    gate.server.shutdown()
    gate.server.server_close()


@pytest.fixture
def proton(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingFake]:
    """The recording fake as the standard chain's Proton endpoint, with the sentinel credentials of conftest."""
    server = RecordingFake(fake_state())
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield server
    server.stop()


@pytest.fixture
def profiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temporary AWS config file: profile dev (an account of its own) and ci (a source profile)."""
    config = write_text(tmp_path / "aws-config", f"""
        [profile dev]
        aws_access_key_id = {DEV_KEY_ID}
        aws_secret_access_key = {DEV_SECRET}

        [profile ci]
        aws_access_key_id = {CI_KEY_ID}
        aws_secret_access_key = {CI_SECRET}
        """)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


def synced(*names: str) -> Any:
    return fake_state(*({"name": name, "type": "ENVIRONMENT", "version": 1, "synced": SHA_A} for name in names))


THREE_ACCOUNTS = f"""
    version: 1
    accounts:
      prod: {{role_arn: "{PROD_ROLE}", external_id: "{EXTERNAL_ID}", session_name: gate}}
      audit: {{role_arn: "{AUDIT_ROLE}"}}
      dev: {{profile: dev}}
    defaults:
      repository: {{provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}}
      sha: {SHA_A}
    templates:
      - {{name: prod-vpc, type: ENVIRONMENT, version: "1", account: prod}}
      - {{name: prod-db, type: ENVIRONMENT, version: "1", account: prod}}
      - {{name: audit-vpc, type: ENVIRONMENT, version: "1", account: audit}}
      - {{name: audit-db, type: ENVIRONMENT, version: "1", account: audit}}
      - {{name: dev-vpc, type: ENVIRONMENT, version: "1", account: dev}}
      - {{name: main-vpc, type: ENVIRONMENT, version: "1"}}
    """
THREE_ACCOUNT_NAMES = ("prod-vpc", "prod-db", "audit-vpc", "audit-db", "dev-vpc", "main-vpc")


def test_each_account_signs_its_own_requests_and_a_refused_role_errors_only_its_account(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    proton.set_state(synced(*THREE_ACCOUNT_NAMES))
    manifest = write_text(pytester.path / "accounts.yaml", THREE_ACCOUNTS)
    # Per-target properties are in xunit1 (pytest's default xunit2 allows none in a <testcase>).
    result = pytester.runpytest("--proton-manifest", str(manifest), "--junitxml=out.xml", "-o", "junit_family=xunit1",
                                "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=2)

    # The role was assumed once, by the standard chain's identity, with the manifest's external id ...
    assert sts.assumptions(PROD_ROLE) == 1
    assert [who for role, who in sts.assume_calls if role == PROD_ROLE] == [ACCESS_KEY_ID]
    assert sts.external_ids == [EXTERNAL_ID]
    # ... and both prod entries were signed by the key STS issued for it, and by nothing else.
    (prod_key,) = proton.keys_for("prod-vpc")
    assert sts.issued[prod_key] == PROD_ROLE
    assert proton.keys_for("prod-db") == {prod_key}
    assert proton.keys_for("dev-vpc") == {DEV_KEY_ID}
    assert proton.keys_for("main-vpc") == {ACCESS_KEY_ID}
    # The refused role was asked once for both its entries, and nothing of that account reached the API.
    assert sts.assumptions(AUDIT_ROLE) == 1
    assert proton.keys_for("audit-vpc") == proton.keys_for("audit-db") == set()

    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*ENVIRONMENT/audit-vpc@1 could not be checked: AssumeRoleFailed",
        f"*account 'audit': cannot assume {AUDIT_ROLE}: STS said AccessDenied: User: *not authorized to perform: "
        "sts:AssumeRole*",
        "*fix: the role's trust policy must trust this pipeline's identity (the standard credential chain), and "
        "that identity needs sts:AssumeRole on the role*",
    ])
    # The summary table has an account column, because some target has an account.
    result.stdout.fnmatch_lines([
        "target*account*expected*last synced*latest status*outcome",
        "ENVIRONMENT/prod-vpc@1*prod*3f2a9c1*passed",
        "ENVIRONMENT/audit-vpc@1*audit*error",
        "ENVIRONMENT/main-vpc@1*-*passed",
    ])
    cases = junit_cases(pytester.path / "out.xml")
    assert {name: (outcome, props.get("proton.account")) for name, (outcome, props) in cases.items()} == {
        "ENVIRONMENT/prod-vpc@1": ("passed", "prod"),
        "ENVIRONMENT/prod-db@1": ("passed", "prod"),
        "ENVIRONMENT/audit-vpc@1": ("error", "audit"),
        "ENVIRONMENT/audit-db@1": ("error", "audit"),
        "ENVIRONMENT/dev-vpc@1": ("passed", "dev"),
        "ENVIRONMENT/main-vpc@1": ("passed", None),
    }
    assert "Traceback" not in out
    for secret in (EXTERNAL_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, DEV_SECRET, *sts.secrets):
        assert secret not in out + result.stderr.str()


def test_only_accounts_with_selected_targets_assume_their_roles(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    proton.set_state(synced(*THREE_ACCOUNT_NAMES))
    manifest = write_text(pytester.path / "accounts.yaml", THREE_ACCOUNTS)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-k", "prod", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert sts.assume_calls and {role for role, _ in sts.assume_calls} == {PROD_ROLE}
    assert sts.assumptions(PROD_ROLE) == 1
    assert set(proton.by_key) == {next(iter(proton.keys_for("prod-vpc")))}


def test_a_slow_assumption_holds_up_only_its_own_account(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    """STS answers prod only once the other accounts' requests have reached the API: were assumptions made up
    front, or serialised with everything else, those requests could not come first and the gate would time out."""
    proton.set_state(synced(*THREE_ACCOUNT_NAMES))
    others = [proton.arrived.setdefault(f"GetTemplateSyncStatus ENVIRONMENT/{name}@1", threading.Event())
              for name in ("dev-vpc", "main-vpc")]
    everyone_else = threading.Event()

    def watch() -> None:
        if all(event.wait(10) for event in others):
            everyone_else.set()

    threading.Thread(target=watch, daemon=True).start()
    sts.hold[PROD_ROLE] = (everyone_else, 10.0)
    manifest = write_text(pytester.path / "accounts.yaml", THREE_ACCOUNTS)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:randomly", "-k", "not audit")
    result.assert_outcomes(passed=4)
    assert sts.held_until_set == [True]


def test_a_source_profile_assumes_the_role(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    proton.set_state(synced("staging-vpc"))
    manifest = write_text(pytester.path / "m.yaml", f"""
        version: 1
        accounts: {{staging: {{role_arn: "{STAGING_ROLE}", source_profile: ci, duration_seconds: 900}}}}
        defaults: {{repository: acme/platform-templates, sha: {SHA_A}, account: staging}}
        templates: [{{name: staging-vpc, type: ENVIRONMENT, version: "1"}}]
        """)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert sts.assume_calls == [(STAGING_ROLE, CI_KEY_ID)]
    (key,) = proton.keys_for("staging-vpc")
    assert sts.issued[key] == STAGING_ROLE


def test_a_missing_profile_errors_its_account_only(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    proton.set_state(synced("gone-vpc", "main-vpc"))
    manifest = write_text(pytester.path / "m.yaml", f"""
        version: 1
        accounts: {{gone: {{profile: no-such-profile}}}}
        defaults: {{repository: acme/platform-templates, sha: {SHA_A}}}
        templates:
          - {{name: gone-vpc, type: ENVIRONMENT, version: "1", account: gone}}
          - {{name: main-vpc, type: ENVIRONMENT, version: "1"}}
        """)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ENVIRONMENT/gone-vpc@1 could not be checked: ProfileNotFound",
        "*account 'gone': the AWS config files have no profile 'no-such-profile'",
        "*fix: add the profile*",
    ])
    assert proton.keys_for("gone-vpc") == set()


@pytest.mark.plugin_logic
def test_xdist_asks_each_target_once_and_assumes_each_role_once(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    names = [f"{account}-{n}" for account in ("prod", "dev", "main", "audit") for n in range(4)]
    proton.set_state(synced(*names))
    manifest = pytester.path / "m.yaml"
    manifest.write_text(yaml.safe_dump({
        "version": 1,
        "accounts": {"prod": {"role_arn": PROD_ROLE}, "audit": {"role_arn": AUDIT_ROLE}, "dev": {"profile": "dev"}},
        "defaults": {"repository": "acme/platform-templates", "sha": SHA_A},
        "templates": [{"name": name, "type": "ENVIRONMENT", "version": "1",
                       **({} if name.startswith("main") else {"account": name.split("-")[0]})} for name in names],
    }))
    result = pytester.runpytest_subprocess("-n", "2", "--proton-manifest", str(manifest), "-p", "no:randomly")
    result.assert_outcomes(passed=12, errors=4)
    assert proton.calls == {f"GetTemplateSyncStatus ENVIRONMENT/{name}@1": 1
                            for name in names if not name.startswith("audit")}
    assert sts.assumptions(PROD_ROLE) == 1
    assert sts.assumptions(AUDIT_ROLE) == 1
    (prod_key,) = {key for name in names if name.startswith("prod") for key in proton.keys_for(name)}
    assert sts.issued[prod_key] == PROD_ROLE
    assert {key for name in names if name.startswith("dev") for key in proton.keys_for(name)} == {DEV_KEY_ID}


def test_a_conftest_hook_builds_one_accounts_client_and_the_default_serves_the_others(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    proton.set_state(synced(*THREE_ACCOUNT_NAMES))
    pytester.makeconftest("""
        import boto3
        from pytest_proton_sync.aws.clients import botocore_config

        def pytest_proton_sync_make_client(service, region, settings, account):
            if account is None or account.alias != "prod":
                return None
            session = boto3.Session(profile_name="ci")  # this pipeline reads prod with a key of its own
            return session.client(service, region_name=region, config=botocore_config(settings))
        """)
    manifest = write_text(pytester.path / "accounts.yaml", THREE_ACCOUNTS)
    result = pytester.runpytest("--proton-manifest", str(manifest), "-p", "no:randomly", "-k", "not audit")
    result.assert_outcomes(passed=4)
    assert proton.keys_for("prod-vpc") == proton.keys_for("prod-db") == {CI_KEY_ID}
    assert proton.keys_for("dev-vpc") == {DEV_KEY_ID}
    assert proton.keys_for("main-vpc") == {ACCESS_KEY_ID}
    assert sts.assume_calls == []  # the hook replaced the role for prod


def test_proton_fake_ignores_accounts_credentials_but_keeps_their_aliases(
    pytester: pytest.Pytester, sts: StsGate
) -> None:
    state = write_text(pytester.path / "state.yaml", "templates:\n" + "".join(
        f"  - {{name: {name}, type: ENVIRONMENT, version: 1, synced: {SHA_A}, "
        "repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}}\n"
        for name in THREE_ACCOUNT_NAMES))
    manifest = write_text(pytester.path / "accounts.yaml", THREE_ACCOUNTS)  # profile dev exists nowhere
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-fake", str(state),
                                "--junitxml=out.xml", "-o", "junit_family=xunit1", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    assert sts.assume_calls == []
    result.stdout.fnmatch_lines(["ENVIRONMENT/audit-vpc@1*audit*passed"])
    cases = junit_cases(pytester.path / "out.xml")
    assert cases["ENVIRONMENT/dev-vpc@1"][1]["proton.account"] == "dev"


LOUD_FLAGS = (
    "-vv", "--tb=long", "--showlocals", "-rA", "--log-level=DEBUG", "--log-cli-level=DEBUG",
    "--log-file=proton.log", "--log-file-level=DEBUG", "-o", "junit_logging=all", "--junitxml=out.xml",
    "-p", "no:cacheprovider", "-p", "no:randomly",
)


def test_no_secret_of_any_account_in_any_output(
    pytester: pytest.Pytester, proton: RecordingFake, sts: StsGate, profiles: Path
) -> None:
    proton.set_state(synced(*THREE_ACCOUNT_NAMES))
    manifest = write_text(pytester.path / "accounts.yaml", THREE_ACCOUNTS)
    result = pytester.runpytest("--proton-manifest", str(manifest), *LOUD_FLAGS)
    result.assert_outcomes(passed=4, errors=2)
    assert len(sts.secrets) == 2  # moto's secret key and session token for prod: they must not show either
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "log file": (pytester.path / "proton.log").read_text(),
        "junit": (pytester.path / "out.xml").read_text(),
    }
    assert "AssumeRole" in outputs["log file"]  # botocore's DEBUG records of the assumption were captured
    for where, text in outputs.items():
        for secret in (EXTERNAL_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, DEV_SECRET, CI_SECRET, *sts.secrets):
            assert secret not in text, f"{secret!r} in {where}"


# -- the Account object itself: renewal, settings -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def test_assumed_role_credentials_renew_themselves_when_they_near_expiry(
    proton: RecordingFake, sts: StsGate
) -> None:
    proton.set_state(synced("long-wait"))
    clock = Clock()
    settings = FetchSettings(replace(defaults(), max_attempts=2))
    account = Account(AccountSpec("prod", role_arn=PROD_ROLE, duration_seconds=900), botocore_config(settings),
                      time_fetcher=clock)
    client = default_client("proton", "us-east-1", settings, account)
    request = {"templateName": "long-wait", "templateType": "ENVIRONMENT", "templateVersion": "1"}
    client.get_template_sync_status(**request)
    client.get_template_sync_status(**request)
    assert sts.assumptions(PROD_ROLE) == 1  # fresh 15-minute credentials are not renewed on every request
    clock.offset = timedelta(seconds=800)  # 100 s left: inside the blocking renewal window of a 900 s session
    client.get_template_sync_status(**request)
    assert sts.assumptions(PROD_ROLE) == 2
    keys = proton.keys_for("long-wait")
    assert len(keys) == 2 and {sts.issued[key] for key in keys} == {PROD_ROLE}
    assert account.assume_role_calls == 2


def test_a_refused_role_is_asked_once_and_its_error_names_alias_and_role(sts: StsGate, proton: RecordingFake) -> None:
    settings = FetchSettings(replace(defaults(), max_attempts=1))
    account = Account(AccountSpec("audit", role_arn=AUDIT_ROLE, external_id=EXTERNAL_ID), botocore_config(settings))
    client = default_client("proton", "us-east-1", settings, account)
    for _ in range(3):
        with pytest.raises(AccountUnavailable) as raised:
            client.get_template_sync_status(templateName="x", templateType="ENVIRONMENT", templateVersion="1")
        assert raised.value.code == "AssumeRoleFailed" and not raised.value.transient
        assert f"account 'audit': cannot assume {AUDIT_ROLE}: STS said AccessDenied" in str(raised.value)
        assert "external id the manifest gives" in str(raised.value)
        assert EXTERNAL_ID not in str(raised.value)
    assert sts.assumptions(AUDIT_ROLE) == 1
    assert proton.by_key == {}


def test_expired_source_credentials_name_the_source_and_the_fix(
    sts: StsGate, proton: RecordingFake, profiles: Path
) -> None:
    sts.expired.add(CI_KEY_ID)
    settings = FetchSettings(replace(defaults(), max_attempts=1))
    account = Account(AccountSpec("staging", role_arn=STAGING_ROLE, source_profile="ci"), botocore_config(settings))
    client = default_client("proton", "us-east-1", settings, account)
    with pytest.raises(AccountUnavailable) as raised:
        client.get_template_sync_status(templateName="x", templateType="ENVIRONMENT", templateVersion="1")
    assert str(raised.value) == (
        f"account 'staging': cannot assume {STAGING_ROLE}: STS said ExpiredToken: The security token included in the "
        "request is expired\n  fix: the credentials that assume the role (profile 'ci') are expired or invalid: "
        "refresh them."
    )
    assert not raised.value.transient


def test_an_unreachable_sts_is_transient_and_not_remembered(
    proton: RecordingFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # discard port: nothing listens
    settings = FetchSettings(replace(defaults(), max_attempts=1, connect_timeout=1))
    request = {"templateName": "x", "templateType": "ENVIRONMENT", "templateVersion": "1"}
    for memory, calls in ((60.0, 1), (0.0, 3)):
        account = Account(AccountSpec("prod", role_arn=PROD_ROLE), botocore_config(settings),
                          transient_memory=memory)
        client = default_client("proton", "us-east-1", settings, account)
        for _ in range(3):
            with pytest.raises(AccountUnavailable) as raised:
                client.get_template_sync_status(**request)
            assert raised.value.code == "EndpointUnreachable" and raised.value.transient
            assert "fix: check the network and the STS endpoint" in str(raised.value)
        # Within the memory the account's other requests fail at once; after it, STS is asked again.
        assert account.assume_role_calls == calls


def test_account_repr_and_session_keep_the_external_id_out() -> None:
    spec = AccountSpec("prod", role_arn=PROD_ROLE, external_id=EXTERNAL_ID)
    assert EXTERNAL_ID not in repr(spec) + repr(Account(spec))


def test_boto3_session_of_a_profile_account_is_that_profile(profiles: Path) -> None:
    session = Account(AccountSpec("dev", profile="dev")).session()
    assert isinstance(session, boto3.session.Session)
    assert session.get_credentials().get_frozen_credentials().access_key == DEV_KEY_ID


def test_sts_gate_is_needed_for_denial_only_because_moto_trusts_everyone(moto_server: str) -> None:
    """The tests' refused role comes from the gate; everything else is moto's own STS (this guards that moto
    still assumes any role, so the gate's forwarding is what the other tests exercise)."""
    sts_client = boto3.client("sts", endpoint_url=moto_server, region_name="us-east-1",
                              aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x")
    answer = sts_client.assume_role(RoleArn=PROD_ROLE, RoleSessionName="check")
    assert answer["AssumedRoleUser"]["Arn"].startswith("arn:aws:sts::111111111111:assumed-role/proton-read/")

