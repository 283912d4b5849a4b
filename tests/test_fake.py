"""The bundled fake Proton endpoint, exercised through real boto3 clients over real HTTP.

Every successful answer is checked against botocore's own output shape, so the fake cannot drift from the API.
No test reaches AWS: every client gets fake credentials and the fake's endpoint explicitly.
"""

from __future__ import annotations

import functools
import http.client
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.model
import botocore.retries.standard
import botocore.session
import pytest
import yaml
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from botocore.validate import ParamValidator

from pytest_proton_sync.fake import FakeServer, FakeState, FakeStateError, Faults
from pytest_proton_sync.fake.state import Fault

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SHA_A = "0123456789abcdef0123456789abcdef01234567"
SHA_B = "89abcdef0123456789abcdef0123456789abcdef"
SHA_C = "fedcba9876543210fedcba9876543210fedcba98"
FAKE_SIGNATURE = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/proton/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000"
)

BASE_STATE = f"""
defaults:
  repository: {{provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}}
templates:
  - name: vpc-env
    type: ENVIRONMENT
    version: 1
    synced: "{SHA_A}"
    synced_at: 2026-09-20T10:00:00Z
  - name: never-env
    type: ENVIRONMENT
    version: "2"
    latest: {{status: IN_PROGRESS, sha: "{SHA_B}"}}
  - name: blank-env
    type: ENVIRONMENT
    version: "1"
  - name: web-svc
    type: SERVICE
    version: "1"
    synced: "{SHA_A}"
    latest:
      status: FAILED
      sha: "{SHA_B}"
      started_at: 2026-09-21T09:00:00Z
      events:
        - type: STACK_UPDATE_FAILED
          event: "CloudFormation stack failed: Resource handler returned message: Invalid subnet"
          time: 2026-09-21T09:03:00Z
          external_id: "arn:aws:cloudformation:us-east-1:111122223333:stack/web-svc/1"
        - {{type: SYNC_FAILED, event: Sync failed}}
  - name: drift-svc
    type: SERVICE
    version: "3"
    synced: "{SHA_A}"
    desired: "{SHA_C}"
    repository: {{name: acme/service-templates, directory: services}}
  - name: secret-env
    type: ENVIRONMENT
    version: "1"
    synced: "{SHA_A}"
    deny: true
  - name: rolling-env
    type: ENVIRONMENT
    version: "1"
    synced: "{SHA_A}"
    sequence:
      - {{latest: {{status: INITIATED, sha: "{SHA_B}"}}}}
      - {{latest: {{status: IN_PROGRESS, sha: "{SHA_B}"}}}}
      - {{synced: "{SHA_B}", latest: {{status: SUCCEEDED, sha: "{SHA_B}"}}}}
"""


def make_state(text: str = BASE_STATE, **faults: Any) -> FakeState:
    data = yaml.safe_load(text)
    if faults:
        data["faults"] = faults
    return FakeState.from_mapping(data, source="<test>")


@pytest.fixture(scope="module")
def boto_session() -> Iterator[boto3.session.Session]:
    # Isolated from the developer's AWS config: a profile or retry settings there must not change counts.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_CONFIG_FILE", "/dev/null")
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
            patch.delenv(name, raising=False)
        yield boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's real retry decisions, without its real (up to seconds long) sleeps between attempts."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.0)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(make_state()) as running:
        yield running


def client_for(session: boto3.session.Session, server: FakeServer, **config: Any) -> Any:
    config.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    return session.client(
        "proton",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


@functools.lru_cache(maxsize=1)
def proton_model() -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model("proton")


def assert_fits_output_shape(operation: str, response: dict[str, Any]) -> None:
    """The answer, as botocore parsed it, has every member the API's output shape requires, typed right."""
    body = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    report = ParamValidator().validate(body, proton_model().operation_model(operation).output_shape)
    assert not report.has_errors(), report.generate_report()


def status(client: Any, name: str, template_type: str = "ENVIRONMENT", version: str = "1") -> dict[str, Any]:
    response: dict[str, Any] = client.get_template_sync_status(
        templateName=name, templateType=template_type, templateVersion=version
    )
    assert_fits_output_shape("GetTemplateSyncStatus", response)
    return response


def raw_post(
    server: FakeServer,
    body: bytes | str,
    target: str | None = "AwsProton20200720.GetTemplateSyncStatus",
    authorization: str | None = FAKE_SIGNATURE,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[http.client.HTTPResponse, dict[str, Any]]:
    """One request exactly as written here: for what botocore would refuse to send."""
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        headers["X-Amz-Target"] = target
    if authorization is not None:
        headers["Authorization"] = authorization
    conn = connection or http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    if connection is None:
        conn.close()
    return response, payload


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# -- answers -----------------------------------------------------------------------------------------------
def test_synced_template_answers_its_revision_everywhere(boto_session: Any, server: FakeServer) -> None:
    response = status(client_for(boto_session, server), "vpc-env")
    revision = {
        "branch": "main",
        "directory": "templates",
        "repositoryName": "acme/platform-templates",
        "repositoryProvider": "GITHUB",
        "sha": SHA_A,
    }
    assert response["desiredState"] == revision
    successful = response["latestSuccessfulSync"]
    assert successful["status"] == "SUCCEEDED"
    assert successful["targetRevision"] == revision
    assert successful["target"] == "vpc-env"
    assert successful["startedAt"].isoformat() == "2026-09-20T10:00:00+00:00"
    assert response["latestSync"] == successful


def test_never_synced_template_has_no_latest_successful_sync(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server)
    response = status(client, "never-env", version="2")
    assert "latestSuccessfulSync" not in response
    assert response["latestSync"]["status"] == "IN_PROGRESS"
    assert response["latestSync"]["targetRevision"]["sha"] == SHA_B
    assert response["desiredState"]["sha"] == SHA_B

    blank = status(client, "blank-env")
    assert set(blank) == {"ResponseMetadata"}


def test_failed_latest_attempt_carries_its_events(boto_session: Any, server: FakeServer) -> None:
    response = status(client_for(boto_session, server), "web-svc", "SERVICE")
    latest = response["latestSync"]
    assert latest["status"] == "FAILED"
    assert latest["targetRevision"]["sha"] == SHA_B
    assert latest["initialRevision"]["sha"] == SHA_A  # the attempt started from the last synced revision
    assert latest["startedAt"].isoformat() == "2026-09-21T09:00:00+00:00"
    first, second = latest["events"]
    assert first["event"].startswith("CloudFormation stack failed")
    assert first["externalId"].startswith("arn:aws:cloudformation:")
    assert first["time"].isoformat() == "2026-09-21T09:03:00+00:00"
    assert "externalId" not in second
    assert second["time"] == latest["startedAt"]  # an event without a time happened when the attempt began
    assert response["latestSuccessfulSync"]["targetRevision"]["sha"] == SHA_A
    assert response["desiredState"]["sha"] == SHA_B


def test_desired_state_and_repository_override(boto_session: Any, server: FakeServer) -> None:
    response = status(client_for(boto_session, server), "drift-svc", "SERVICE", "3")
    assert response["desiredState"]["sha"] == SHA_C
    assert response["latestSuccessfulSync"]["targetRevision"] == {
        "branch": "main",
        "directory": "services",
        "repositoryName": "acme/service-templates",
        "repositoryProvider": "GITHUB",
        "sha": SHA_A,
    }


def test_timestamps_travel_as_epoch_seconds(server: FakeServer) -> None:
    response, payload = raw_post(
        server, json.dumps({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "1"})
    )
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/x-amz-json-1.0"
    started_at = datetime(2026, 9, 20, 10, 0, tzinfo=timezone.utc).timestamp()
    assert payload["latestSuccessfulSync"]["startedAt"] == started_at
    assert isinstance(payload["latestSuccessfulSync"]["startedAt"], int)


def test_template_sync_config(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server)
    response = client.get_template_sync_config(templateName="drift-svc", templateType="SERVICE")
    assert_fits_output_shape("GetTemplateSyncConfig", response)
    assert response["templateSyncConfig"] == {
        "branch": "main",
        "repositoryName": "acme/service-templates",
        "repositoryProvider": "GITHUB",
        "subdirectory": "services",
        "templateName": "drift-svc",
        "templateType": "SERVICE",
    }
    with pytest.raises(ClientError) as excinfo:
        client.get_template_sync_config(templateName="vpc-env", templateType="SERVICE")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert server.calls["GetTemplateSyncConfig SERVICE/drift-svc"] == 1


# -- errors ------------------------------------------------------------------------------------------------
def test_unknown_template_is_resource_not_found(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="9")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "vpc-env" in excinfo.value.response["Error"]["Message"]


def test_denied_template_is_access_denied(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server)
    with pytest.raises(client.exceptions.AccessDeniedException) as excinfo:
        client.get_template_sync_status(templateName="secret-env", templateType="ENVIRONMENT", templateVersion="1")
    assert error_code(excinfo) == "AccessDeniedException"
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.get_template_sync_config(templateName="secret-env", templateType="ENVIRONMENT")


def test_error_answers_use_the_json_protocol_shape(server: FakeServer) -> None:
    response, payload = raw_post(
        server, json.dumps({"templateName": "nope", "templateType": "ENVIRONMENT", "templateVersion": "1"})
    )
    assert response.status == 400
    assert response.getheader("x-amzn-ErrorType") == "ResourceNotFoundException"
    assert response.getheader("x-amzn-RequestId")
    assert set(payload) == {"__type", "message"}
    assert payload["__type"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"templateName": "vpc-env", "templateType": "ENVIRONMENT"}, "templateVersion"),
        ({"templateName": "vpc-env", "templateType": "NETWORK", "templateVersion": "1"}, "enum value set"),
        ({"templateName": "vpc env!", "templateType": "ENVIRONMENT", "templateVersion": "1"}, "pattern"),
        ({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "01"}, "pattern"),
        ({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": 1}, "templateVersion"),
        ({"templateName": "", "templateType": "ENVIRONMENT", "templateVersion": "1"}, "templateName"),
        ({"templateName": "x" * 101, "templateType": "ENVIRONMENT", "templateVersion": "1"}, "length"),
        (
            {"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "1", "extra": 1},
            "extra",
        ),
    ],
    ids=["missing", "enum", "name-pattern", "version-pattern", "type", "empty", "too-long", "unknown-field"],
)
def test_invalid_input_is_validation_exception(server: FakeServer, body: dict[str, Any], mentions: str) -> None:
    response, payload = raw_post(server, json.dumps(body))
    assert response.status == 400
    assert payload["__type"] == "ValidationException"
    assert response.getheader("x-amzn-ErrorType") == "ValidationException"
    assert mentions in payload["message"]


def test_validation_exception_reaches_botocore(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server, parameter_validation=False)
    with pytest.raises(client.exceptions.ValidationException):
        client.get_template_sync_status(templateName="vpc-env", templateType="NETWORK", templateVersion="1")


def test_body_that_is_not_json_is_a_serialization_error(server: FakeServer) -> None:
    response, payload = raw_post(server, b"{not json")
    assert response.status == 400
    assert payload["__type"] == "SerializationException"


@pytest.mark.parametrize("target", [None, "AwsProton20200720.ListEnvironments", "Other_20200101.GetThing"])
def test_unknown_operation(server: FakeServer, target: str | None) -> None:
    response, payload = raw_post(server, b"{}", target=target)
    assert response.status == 400
    assert payload["__type"] == "UnknownOperationException"


def test_unsigned_request_is_refused(boto_session: Any, server: FakeServer) -> None:
    response, payload = raw_post(server, b"{}", authorization=None)
    assert response.status == 400
    assert payload["__type"] == "MissingAuthenticationTokenException"

    unsigned = client_for(boto_session, server, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as excinfo:
        unsigned.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
    assert error_code(excinfo) == "MissingAuthenticationTokenException"


def test_credentials_are_never_logged_or_echoed(boto_session: Any) -> None:
    log = io.StringIO()
    with FakeServer(make_state(), log_requests=True, log_stream=log) as server:
        secret = "Signature=SECRETSIGNATURE0123"
        _response, payload = raw_post(server, b"{}", authorization=f"AWS4-HMAC-SHA256 {secret}")
        client = client_for(boto_session, server)
        status(client, "vpc-env")
    assert "SECRET" not in log.getvalue() and "SECRET" not in json.dumps(payload)
    assert "testing" not in log.getvalue()
    assert "POST GetTemplateSyncStatus ENVIRONMENT/vpc-env@1 -> 200" in log.getvalue()


# -- sequences and counting --------------------------------------------------------------------------------
def test_sequence_advances_per_answered_call_and_repeats_its_last_step(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server)
    seen = [status(client, "rolling-env")["latestSync"]["status"] for _ in range(4)]
    assert seen == ["INITIATED", "IN_PROGRESS", "SUCCEEDED", "SUCCEEDED"]
    assert status(client, "rolling-env")["latestSuccessfulSync"]["targetRevision"]["sha"] == SHA_B

    server.set_state(make_state())  # a new state starts its sequences again
    assert status(client, "rolling-env")["latestSync"]["status"] == "INITIATED"
    server.reset_calls()
    assert status(client, "rolling-env")["latestSync"]["status"] == "INITIATED"


def test_calls_are_counted_per_operation_and_template(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server)
    for _ in range(3):
        status(client, "vpc-env")
    status(client, "web-svc", "SERVICE")
    client.get_template_sync_config(templateName="vpc-env", templateType="ENVIRONMENT")
    with pytest.raises(ClientError):
        client.get_template_sync_status(templateName="nope", templateType="ENVIRONMENT", templateVersion="1")
    raw_post(server, b"{}")  # too broken to name a template: counted under the operation alone
    assert server.calls == {
        "GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 3,
        "GetTemplateSyncStatus SERVICE/web-svc@1": 1,
        "GetTemplateSyncConfig ENVIRONMENT/vpc-env": 1,
        "GetTemplateSyncStatus ENVIRONMENT/nope@1": 1,
        "GetTemplateSyncStatus": 1,
    }
    assert server.total_calls(operation="GetTemplateSyncStatus") == 6
    assert server.total_calls(operation="GetTemplateSyncConfig") == 1
    assert server.total_calls() == 7

    conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    conn.request("GET", "/_fake/calls")
    assert json.loads(conn.getresponse().read())["calls"] == server.calls
    conn.close()

    server.reset_calls()
    assert server.calls == {} and server.total_calls() == 0


def test_counting_is_exact_under_concurrent_clients(boto_session: Any, server: FakeServer) -> None:
    client = client_for(boto_session, server, max_pool_connections=8)  # clients are thread-safe
    names = ["vpc-env", "blank-env"]

    def hammer(name: str) -> None:
        for _ in range(25):
            client.get_template_sync_status(templateName=name, templateType="ENVIRONMENT", templateVersion="1")

    threads = [threading.Thread(target=hammer, args=(names[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.calls == {
        "GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 100,
        "GetTemplateSyncStatus ENVIRONMENT/blank-env@1": 100,
    }


def test_connections_are_kept_alive(server: FakeServer) -> None:
    conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    body = json.dumps({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "1"})
    for _ in range(3):
        response, _payload = raw_post(server, body, connection=conn)
        assert response.status == 200
        assert int(response.getheader("Content-Length") or -1) > 0
    error_response, _ = raw_post(server, b"{}", authorization=None, connection=conn)
    assert error_response.getheader("Content-Length")
    assert raw_post(server, body, connection=conn)[0].status == 200  # still the same connection
    conn.close()
    assert server.calls["GetTemplateSyncStatus ENVIRONMENT/vpc-env@1"] == 4


# -- faults ------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_backoff")
def test_throttling_every_call_exhausts_botocore_retries(boto_session: Any) -> None:
    with FakeServer(make_state(seed=1, throttle_rate=1.0)) as server:
        client = client_for(boto_session, server, retries={"mode": "standard", "total_max_attempts": 3})
        with pytest.raises(client.exceptions.ThrottlingException) as excinfo:
            client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
        assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 2
        assert server.calls == {"GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 3}


@pytest.mark.usefixtures("no_backoff")
def test_server_errors_are_http_500_and_retried(boto_session: Any) -> None:
    with FakeServer(make_state(seed=1, error_5xx_rate=1.0)) as server:
        client = client_for(boto_session, server, retries={"mode": "standard", "total_max_attempts": 2})
        with pytest.raises(client.exceptions.InternalServerException) as excinfo:
            client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert server.total_calls() == 2


@pytest.mark.usefixtures("no_backoff")
def test_dropped_connections_are_connection_errors(boto_session: Any) -> None:
    with FakeServer(make_state(seed=1, drop_rate=1.0)) as server:
        client = client_for(boto_session, server, retries={"mode": "standard", "total_max_attempts": 2})
        with pytest.raises(ConnectionClosedError):
            client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
        assert server.total_calls() == 2


def test_slow_answers_exceed_a_short_read_timeout(boto_session: Any) -> None:
    server = FakeServer(make_state(seed=1, slow_rate=1.0, slow_seconds=30)).start()
    try:
        client = client_for(boto_session, server, read_timeout=0.2)
        with pytest.raises(ReadTimeoutError):
            client.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
        assert server.total_calls() == 1
    finally:
        started = time.monotonic()
        server.stop()
    # stop() wakes the handler that is still sleeping through its 30 s instead of waiting for it.
    assert time.monotonic() - started < 10


def test_latency_is_added_to_every_answer(boto_session: Any) -> None:
    with FakeServer(make_state(latency_ms=30)) as server:
        client = client_for(boto_session, server)
        started = time.monotonic()
        status(client, "vpc-env")
        assert time.monotonic() - started >= 0.03


def test_fault_decisions_depend_only_on_seed_key_and_call_number() -> None:
    faults = Faults(seed=7, throttle_rate=0.25, error_5xx_rate=0.05, drop_rate=0.05, slow_rate=0.05)
    keys = [f"GetTemplateSyncStatus ENVIRONMENT/env-{i}@1" for i in range(4)]
    first = {key: [faults.decide(key, n) for n in range(100)] for key in keys}
    # Asked in another order (as interleaved threads would), the answers are the same.
    again = {key: [faults.decide(key, n) for n in reversed(range(100))][::-1] for key in reversed(keys)}
    assert first == again
    other_seed = Faults(seed=8, throttle_rate=0.25, error_5xx_rate=0.05, drop_rate=0.05, slow_rate=0.05)
    assert first != {key: [other_seed.decide(key, n) for n in range(100)] for key in keys}
    decisions = [decision for column in first.values() for decision in column]
    assert 0.15 < decisions.count(Fault.THROTTLE) / len(decisions) < 0.35
    assert Faults(seed=7).decide(keys[0], 0) is Fault.NONE


def test_fault_outcomes_through_the_server_are_reproducible(boto_session: Any) -> None:
    def run() -> dict[str, list[str]]:
        outcomes: dict[str, list[str]] = {}
        with FakeServer(make_state(seed=3, throttle_rate=0.3, error_5xx_rate=0.2)) as server:
            client = client_for(boto_session, server, max_pool_connections=4)

            def ask(name: str, template_type: str) -> None:
                seen = outcomes.setdefault(name, [])
                for _ in range(15):
                    try:
                        client.get_template_sync_status(
                            templateName=name, templateType=template_type, templateVersion="1"
                        )
                        seen.append("ok")
                    except ClientError as error:
                        seen.append(error.response["Error"]["Code"])

            threads = [
                threading.Thread(target=ask, args=args)
                for args in [("vpc-env", "ENVIRONMENT"), ("web-svc", "SERVICE"), ("blank-env", "ENVIRONMENT")]
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return outcomes

    first = run()
    assert first == run()
    assert {"ok", "ThrottlingException", "InternalServerException"} <= {o for seen in first.values() for o in seen}


# -- lifecycle ---------------------------------------------------------------------------------------------
def test_stop_returns_with_keep_alive_connections_open() -> None:
    server = FakeServer(make_state()).start()
    conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    raw_post(
        server,
        json.dumps({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "1"}),
        connection=conn,
    )
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5  # the idle connection was shut down, not waited for
    conn.close()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url


def test_many_servers_start_and_stop_in_one_process(boto_session: Any) -> None:
    state = make_state()
    server = FakeServer(state)
    for _ in range(10):
        with server:
            assert status(client_for(boto_session, server), "vpc-env")["desiredState"]["sha"] == SHA_A
    with pytest.raises(RuntimeError, match="already running"):
        server.start().start()
    server.stop()


# -- the state file ----------------------------------------------------------------------------------------
# More in tests/test_fake_statefile.py: several problems at once, deep nesting, sizes, non-finite numbers.
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defaults: {}\n", ":1:1: nothing to answer from: add 'templates:', 'service_instances:' or 'stacks:'"),
        ("templates: {}\n", ":1:12: templates: expected a list, got a mapping"),
        ("templates: []\nfautls: {}\n", ":2:1: fautls: unknown key 'fautls'; did you mean 'faults'?"),
        ("templates: [{name: a, type: ENVIRONMENT}]\n", ":1:13: templates[0].version: missing required key 'version'"),
        (
            "templates: [{name: a, type: NETWORK, version: 1}]\n",
            ":1:29: templates[0].type: 'NETWORK' is not allowed; allowed: ENVIRONMENT, SERVICE",
        ),
        ("templates: [{name: a, type: SERVICE, version: 1.5}]\n", "templates[0].version: expected text or a whole"),
        ("templates: [{name: a, type: SERVICE, version: '01'}]\n", "templates[0].version: '01' is not allowed"),
        ("templates: [{name: 'a b', type: SERVICE, version: 1}]\n", "templates[0].name: 'a b' is not allowed; 1 to"),
        ("templates: [{name: a, type: SERVICE, version: 1}]\n", ":1:13: templates[0]: no repository name"),
        (
            "defaults: {repository: {name: acme/t}}\n"
            "templates: [{name: a, type: SERVICE, version: 1, latest: {status: DONE, sha: abc1234}}]\n",
            ":2:67: templates[0].latest.status: 'DONE' is not allowed; allowed: INITIATED",
        ),
        (
            "defaults: {repository: {name: acme/t}}\n"
            "templates: [{name: a, type: SERVICE, version: 1, latest: {status: FAILED}}]\n",
            "templates[0].latest.sha: missing required key 'sha'",
        ),
        (
            "defaults: {repository: {name: acme/t}}\n"
            "templates: [{name: a, type: SERVICE, version: 1, synced_at: yesterday, synced: abc1234}]\n",
            "templates[0].synced_at: 'yesterday' is not allowed; an ISO 8601 timestamp",
        ),
        (
            "defaults: {repository: {name: acme/t}}\n"
            "templates: [{name: a, type: SERVICE, version: 1, synced_at: 2026-02-30T10:00:00Z, synced: abc1234}]\n",
            "templates[0].synced_at: '2026-02-30T10:00:00Z' is not a real date and time",
        ),
        (
            "defaults: {repository: {name: acme/t, provider: GITLABS}}\n"
            "templates: [{name: a, type: SERVICE, version: 1}]\n",
            "defaults.repository.provider: 'GITLABS' is not allowed; did you mean 'GITLAB'?",
        ),
        (
            "defaults: {repository: {name: acme/t, provider: GitLab}}\n"
            "templates: [{name: a, type: SERVICE, version: 1}]\n",
            "templates[0]: provider GitLab exists in CodeConnections only",
        ),
        (
            "defaults: {repository: {name: acme/t}}\n"
            "templates: [{name: a, type: SERVICE, version: 1}, {name: a, type: SERVICE, version: '1'}]\n",
            ":2:51: templates[1]: SERVICE/a@1 is already defined at line 2",
        ),
        (
            "defaults: {repository: {name: acme/t}}\n"
            "templates: [{name: a, type: SERVICE, version: 1, sequence: [{synced: abc1234, latset: {}}]}]\n",
            "templates[0].sequence[0].latset: unknown key 'latset'; did you mean 'latest'?",
        ),
        ("templates: []\nfaults: {throttle_rate: 1.5}\n", "faults.throttle_rate: 1.5 is too large"),
        ("templates: []\nfaults: {seed: abc}\n", "faults.seed: expected a whole number, got 'abc'"),
        ("templates: [\n  {name: a\n", ":3:1: invalid YAML"),
        ("", "the state file is empty"),
        ("- just\n- a list\n", ":1:1: the top level must be a mapping"),
    ],
)
def test_bad_state_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(text)
    with pytest.raises(FakeStateError) as excinfo:
        FakeState.from_file(path)
    assert str(excinfo.value).startswith(f"{path}:")
    assert f"{path}{message}" in str(excinfo.value) if message.startswith(":") else message in str(excinfo.value)
    assert len(excinfo.value.problems) == 1, str(excinfo.value)


def test_a_number_is_read_as_the_text_written_where_text_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("defaults: {repository: {name: acme/t}}\n"
                    "templates: [{name: 123, type: SERVICE, version: 2, synced: 0123456}]\n")
    state = FakeState.from_file(path)
    (template,) = state.templates
    assert (template.name, template.version) == ("123", "2")
    snapshot = template.snapshot(0)
    assert snapshot.latest_successful is not None and snapshot.latest_successful.sha == "0123456"  # not octal


def test_missing_state_file(tmp_path: Path) -> None:
    with pytest.raises(FakeStateError, match="cannot read the state file"):
        FakeState.from_file(tmp_path / "absent.yaml")


def test_state_defaults_are_resolved() -> None:
    state = make_state(
        f"""
defaults: {{repository: {{name: acme/t}}}}
templates:
  - {{name: a, type: SERVICE, version: 1, synced: "{SHA_A}", latest: {{status: FAILED, sha: "{SHA_B}"}}}}
"""
    )
    (template,) = state.templates
    snapshot = template.snapshot(0)
    assert template.id == "SERVICE/a@1"
    assert snapshot.repository.provider == "GITHUB" and snapshot.repository.branch == "main"
    assert snapshot.desired == SHA_B  # the latest attempt's sha
    assert snapshot.latest is not None and snapshot.latest_successful is not None
    assert snapshot.latest.started_at > snapshot.latest_successful.started_at
    assert state.faults == Faults()


# -- the demo states ---------------------------------------------------------------------------------------
EXPECTED_DEMO = {
    ("ENVIRONMENT", "vpc-env", "1"): "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    ("ENVIRONMENT", "eks-env", "2"): "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    ("SERVICE", "web-svc", "1"): "7c1e4b2a9d8f7e6c5b4a3928170f6e5d4c3b2a19",
    ("SERVICE", "worker-svc", "3"): "7c1e4b2a9d8f7e6c5b4a3928170f6e5d4c3b2a19",
    ("SERVICE", "batch-svc", "1"): "5d4c3b2a19f8e7d6c5b4a3928170f6e5d4c3b2a1",
}


def _demo_answers(boto_session: Any, name: str) -> dict[str, dict[str, Any]]:
    with FakeServer(FakeState.from_file(EXAMPLES / name)) as server:
        client = client_for(boto_session, server)
        return {name: status(client, name, kind, version) for kind, name, version in EXPECTED_DEMO}


def test_demo_account_is_in_sync(boto_session: Any) -> None:
    answers = _demo_answers(boto_session, "fake-account.yaml")
    for (_, name, _), sha in EXPECTED_DEMO.items():
        revision = answers[name]["latestSuccessfulSync"]["targetRevision"]
        assert revision["sha"] == sha, name
        expected_repository = "acme/service-templates" if name == "batch-svc" else "acme/platform-templates"
        assert revision["repositoryName"] == expected_repository
        assert answers[name]["latestSync"]["status"] == "SUCCEEDED"


def test_demo_drifted_account_shows_each_kind_of_drift(boto_session: Any) -> None:
    answers = _demo_answers(boto_session, "fake-account-drifted.yaml")
    sha = {name: expected for (_, name, _), expected in EXPECTED_DEMO.items()}
    assert answers["vpc-env"]["latestSuccessfulSync"]["targetRevision"]["sha"] == sha["vpc-env"]

    eks = answers["eks-env"]
    assert eks["latestSuccessfulSync"]["targetRevision"]["sha"] == "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
    assert (eks["latestSync"]["status"], eks["latestSync"]["targetRevision"]["sha"]) == ("IN_PROGRESS", sha["eks-env"])

    web = answers["web-svc"]
    assert web["latestSuccessfulSync"]["targetRevision"]["sha"] != sha["web-svc"]
    assert (web["latestSync"]["status"], web["latestSync"]["targetRevision"]["sha"]) == ("FAILED", sha["web-svc"])
    assert any("CloudFormation" in event["event"] for event in web["latestSync"]["events"])

    assert "latestSuccessfulSync" not in answers["worker-svc"]

    batch = answers["batch-svc"]["latestSuccessfulSync"]["targetRevision"]
    assert (batch["sha"], batch["repositoryName"]) == (sha["batch-svc"], "acme/old-service-templates")
