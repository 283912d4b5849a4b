"""The fake's service-instance and stack operations, through real boto3 clients over real HTTP.

Proton's GetServiceInstanceSyncStatus / GetServiceSyncBlockerSummary and CodeConnections'
GetResourceSyncStatus / GetSyncBlockerSummary, in both of CodeConnections' protocols: AWS JSON 1.0 (what
botocore sends by default) and Smithy RPC v2 CBOR (what botocore sends for a model that lists only that
protocol; the test builds such a model from botocore's own). Every successful answer, as botocore parsed it, is
checked against botocore's output shape.
"""

from __future__ import annotations

import copy
import functools
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import cbor2
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from pytest_proton_sync.fake import FakeServer, FakeState

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SHA_A = "0123456789abcdef0123456789abcdef01234567"
SHA_B = "89abcdef0123456789abcdef0123456789abcdef"
SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDRAW/20260101/us-east-1/codeconnections/aws4_request, Signature=00"

STATE = f"""
defaults:
  repository: {{provider: GITHUB, name: acme/platform, branch: main, directory: services}}
service_instances:
  - service: web-svc
    name: prod
    synced: "{SHA_A}"
    synced_at: 2026-09-20T10:00:00Z
    blockers:
      - id: blk-1
        created_reason: "Instance sync failed twice in a row"
        created_at: 2026-09-21T10:00:00Z
        contexts: {{failedAttempts: 2, lastSha: "{SHA_B}"}}
  - service: web-svc
    name: staging
    synced: "{SHA_A}"
    sequence:
      - {{latest: {{status: IN_PROGRESS, sha: "{SHA_B}"}}}}
      - {{synced: "{SHA_B}", blockers: [{{id: blk-2, created_reason: "Second poll shows a blocker"}}]}}
  - {{service: secret-svc, name: prod, synced: "{SHA_A}", deny: true}}
stacks:
  - name: network
    repository: {{provider: GitHub, name: acme/infra, branch: release, directory: stacks/network}}
    synced: "{SHA_A}"
    latest:
      status: FAILED
      sha: "{SHA_B}"
      events: [{{type: STACK_UPDATE_FAILED, event: "Stack update failed", external_id: "arn:aws:cloudformation:x"}}]
    blockers:
      - {{id: blk-9, created_reason: "Stack failed", status: ACTIVE, contexts: {{StackName: network}}}}
      - id: blk-8
        created_reason: "Earlier failure"
        status: RESOLVED
        resolved_reason: "Fixed by hand"
        resolved_at: 2026-09-22T00:00:00Z
  - name: gitlab-stack
    repository: {{provider: GITLAB_SELF_MANAGED, name: platform/infra/stacks}}
    synced: "{SHA_A}"
  - name: rolling
    repository: acme/infra
    synced: "{SHA_A}"
    sequence:
      - {{}}
      - {{blockers: [{{id: late, created_reason: "appears on the 2nd poll"}}]}}
  - {{name: never, repository: acme/infra}}
  - {{name: locked, repository: acme/infra, synced: "{SHA_A}", deny: true}}
"""


def make_state(text: str = STATE) -> FakeState:
    return FakeState.from_mapping(yaml.safe_load(text), source="<test>")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(make_state()) as running:
        yield running


@functools.cache
def model(service: str) -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def fits(service: str, operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """The answer, as botocore parsed it, has every member the API's output shape requires, typed right."""
    body = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    report = ParamValidator().validate(body, model(service).operation_model(operation).output_shape)
    assert not report.has_errors(), report.generate_report()
    return response


@functools.cache
def session(access_key: str) -> boto3.session.Session:
    # One session per access key for the module: a client from a warm session is much cheaper than a new session.
    return boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key="secret-not-kept", region_name="us-east-1"
    )


def client(service: str, server: FakeServer, access_key: str = "AKIATESTONE", **config: Any) -> Any:
    config.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    return session(access_key).client(service, endpoint_url=server.endpoint_url, config=Config(**config))


@pytest.fixture(scope="module")
def cbor_data_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """botocore's own codeconnections model, listing only smithy-rpc-v2-cbor, in a data path of its own."""
    loader = botocore.session.get_session().get_component("data_loader")
    source = copy.deepcopy(loader.load_service_model("codeconnections", "service-2"))
    source["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    source["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    root = tmp_path_factory.mktemp("botocore-data")
    folder = root / "codeconnections" / source["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(source))
    return root


@functools.cache
def cbor_session(data_path: Path, access_key: str) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.get_component("data_loader").search_paths.insert(0, str(data_path))
    return boto3.session.Session(
        botocore_session=core, aws_access_key_id=access_key, aws_secret_access_key="x", region_name="us-east-1"
    )


def cbor_client(server: FakeServer, data_path: Path, access_key: str = "AKIATESTCBOR") -> Any:
    return cbor_session(data_path, access_key).client(
        "codeconnections",
        endpoint_url=server.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# -- which protocol botocore speaks ----------------------------------------------------------------------
def sent_requests(made: Any) -> list[tuple[str, dict[str, str]]]:
    """Every request the client sends from now on: its URL and headers, as they go on the wire."""
    seen: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, **_: Any) -> None:
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        seen.append((request.url, headers))

    made.meta.events.register("before-send", record)
    return seen


def test_which_protocol_botocore_speaks_to_codeconnections(server: FakeServer, cbor_data_path: Path) -> None:
    """botocore 1.44 lists ['smithy-rpc-v2-cbor', 'json'] for CodeConnections but picks by its own priority
    (json first): by default it sends AWS JSON 1.0, with the namespace in X-Amz-Target."""
    by_default = client("codeconnections", server)
    assert by_default.meta.service_model.metadata["protocols"] == ["smithy-rpc-v2-cbor", "json"]
    seen = sent_requests(by_default)
    by_default.get_resource_sync_status(ResourceName="network", SyncType="CFN_STACK_SYNC")
    ((url, headers),) = seen
    assert url == f"{server.endpoint_url}/"
    assert headers["X-Amz-Target"] == "com.amazonaws.codeconnections.CodeConnections_20231201.GetResourceSyncStatus"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"

    cbor_only = cbor_client(server, cbor_data_path)
    seen = sent_requests(cbor_only)
    cbor_only.get_resource_sync_status(ResourceName="network", SyncType="CFN_STACK_SYNC")
    ((url, headers),) = seen
    assert url == (
        f"{server.endpoint_url}/service/com.amazonaws.codeconnections.CodeConnections_20231201"
        "/operation/GetResourceSyncStatus"
    )
    assert (headers["smithy-protocol"], headers["Content-Type"]) == ("rpc-v2-cbor", "application/cbor")


# -- Proton service instances ----------------------------------------------------------------------------
def test_service_instance_sync_status(server: FakeServer) -> None:
    proton = client("proton", server)
    response = fits(
        "proton",
        "GetServiceInstanceSyncStatus",
        proton.get_service_instance_sync_status(serviceName="web-svc", serviceInstanceName="prod"),
    )
    revision = {
        "branch": "main",
        "directory": "services",
        "repositoryName": "acme/platform",
        "repositoryProvider": "GITHUB",
        "sha": SHA_A,
    }
    assert response["latestSuccessfulSync"]["targetRevision"] == revision
    assert response["latestSuccessfulSync"]["target"] == "prod"
    assert response["latestSuccessfulSync"]["startedAt"].isoformat() == "2026-09-20T10:00:00+00:00"
    assert response["desiredState"] == revision
    assert server.calls == {"GetServiceInstanceSyncStatus web-svc/prod": 1}


def test_service_instance_not_found_and_denied(server: FakeServer) -> None:
    proton = client("proton", server)
    with pytest.raises(proton.exceptions.ResourceNotFoundException):
        proton.get_service_instance_sync_status(serviceName="web-svc", serviceInstanceName="dev")
    with pytest.raises(proton.exceptions.ResourceNotFoundException):
        proton.get_service_sync_blocker_summary(serviceName="nobody")
    with pytest.raises(proton.exceptions.AccessDeniedException):
        proton.get_service_instance_sync_status(serviceName="secret-svc", serviceInstanceName="prod")
    with pytest.raises(proton.exceptions.AccessDeniedException):
        proton.get_service_sync_blocker_summary(serviceName="secret-svc", serviceInstanceName="prod")


def test_service_sync_blocker_summary(server: FakeServer) -> None:
    proton = client("proton", server)
    response = fits(
        "proton",
        "GetServiceSyncBlockerSummary",
        proton.get_service_sync_blocker_summary(serviceName="web-svc", serviceInstanceName="prod"),
    )
    summary = response["serviceSyncBlockerSummary"]
    assert (summary["serviceName"], summary["serviceInstanceName"]) == ("web-svc", "prod")
    (blocker,) = summary["latestBlockers"]
    assert blocker["id"] == "blk-1" and blocker["type"] == "AUTOMATED" and blocker["status"] == "ACTIVE"
    assert blocker["createdReason"] == "Instance sync failed twice in a row"
    assert blocker["createdAt"].isoformat() == "2026-09-21T10:00:00+00:00"
    assert blocker["contexts"] == [{"key": "failedAttempts", "value": "2"}, {"key": "lastSha", "value": SHA_B}]
    # Without an instance: the blockers of every instance of the service.
    whole = proton.get_service_sync_blocker_summary(serviceName="web-svc")["serviceSyncBlockerSummary"]
    assert "serviceInstanceName" not in whole
    assert [b["id"] for b in whole["latestBlockers"]] == ["blk-1"]
    assert server.calls == {
        "GetServiceSyncBlockerSummary web-svc/prod": 1,
        "GetServiceSyncBlockerSummary web-svc": 1,
    }


def test_service_instance_sequence_and_a_blocker_on_the_second_poll(server: FakeServer) -> None:
    proton = client("proton", server)

    def poll() -> tuple[str, str, list[str]]:
        status = proton.get_service_instance_sync_status(serviceName="web-svc", serviceInstanceName="staging")
        fits("proton", "GetServiceInstanceSyncStatus", status)
        blockers = proton.get_service_sync_blocker_summary(serviceName="web-svc", serviceInstanceName="staging")
        fits("proton", "GetServiceSyncBlockerSummary", blockers)
        latest = status["latestSync"]
        ids = [b["id"] for b in blockers["serviceSyncBlockerSummary"]["latestBlockers"]]
        return latest["status"], latest["targetRevision"]["sha"], ids

    assert poll() == ("IN_PROGRESS", SHA_B, [])
    assert poll() == ("SUCCEEDED", SHA_B, ["blk-2"])
    assert poll() == ("SUCCEEDED", SHA_B, ["blk-2"])  # the last step repeats


# -- CodeConnections, both protocols ---------------------------------------------------------------------
@pytest.fixture(params=["json", "cbor"])
def connections(request: pytest.FixtureRequest, server: FakeServer, cbor_data_path: Path) -> Any:
    if request.param == "json":
        return client("codeconnections", server)
    return cbor_client(server, cbor_data_path)


def test_resource_sync_status(connections: Any) -> None:
    response = fits(
        "codeconnections",
        "GetResourceSyncStatus",
        connections.get_resource_sync_status(ResourceName="network", SyncType="CFN_STACK_SYNC"),
    )
    revision = {
        "Branch": "release",
        "Directory": "stacks/network",
        "OwnerId": "acme",
        "RepositoryName": "infra",
        "ProviderType": "GitHub",
        "Sha": SHA_A,
    }
    assert response["LatestSuccessfulSync"]["TargetRevision"] == revision
    assert response["LatestSuccessfulSync"]["Status"] == "SUCCEEDED"
    assert response["LatestSuccessfulSync"]["Target"] == "network"
    latest = response["LatestSync"]
    assert (latest["Status"], latest["TargetRevision"]["Sha"], latest["InitialRevision"]["Sha"]) == (
        "FAILED",
        SHA_B,
        SHA_A,
    )
    (event,) = latest["Events"]
    assert event == {
        "Type": "STACK_UPDATE_FAILED",
        "Event": "Stack update failed",
        "ExternalId": "arn:aws:cloudformation:x",
        "Time": latest["StartedAt"],
    }
    assert response["DesiredState"]["Sha"] == SHA_B
    assert latest["StartedAt"].isoformat() == "2026-09-01T13:00:00+00:00"


def test_a_group_path_is_the_owner_id(connections: Any) -> None:
    response = connections.get_resource_sync_status(ResourceName="gitlab-stack", SyncType="CFN_STACK_SYNC")
    revision = fits("codeconnections", "GetResourceSyncStatus", response)["LatestSync"]["TargetRevision"]
    assert (revision["OwnerId"], revision["RepositoryName"], revision["ProviderType"]) == (
        "platform/infra",
        "stacks",
        "GitLabSelfManaged",
    )


def test_sync_blocker_summary(connections: Any) -> None:
    response = fits(
        "codeconnections",
        "GetSyncBlockerSummary",
        connections.get_sync_blocker_summary(ResourceName="network", SyncType="CFN_STACK_SYNC"),
    )
    summary = response["SyncBlockerSummary"]
    assert summary["ResourceName"] == "network"
    active, resolved = summary["LatestBlockers"]
    assert (active["Id"], active["Status"], active["Type"]) == ("blk-9", "ACTIVE", "AUTOMATED")
    assert active["Contexts"] == [{"Key": "StackName", "Value": "network"}]
    assert (resolved["Status"], resolved["ResolvedReason"]) == ("RESOLVED", "Fixed by hand")
    assert resolved["ResolvedAt"].isoformat() == "2026-09-22T00:00:00+00:00"
    assert "ResolvedAt" not in active


def test_connections_errors(connections: Any) -> None:
    with pytest.raises(connections.exceptions.ResourceNotFoundException):
        connections.get_resource_sync_status(ResourceName="absent", SyncType="CFN_STACK_SYNC")
    with pytest.raises(connections.exceptions.ResourceNotFoundException):
        connections.get_sync_blocker_summary(ResourceName="absent", SyncType="CFN_STACK_SYNC")
    # A stack with no sync attempt has no sync status (LatestSync is required in the answer).
    with pytest.raises(connections.exceptions.ResourceNotFoundException):
        connections.get_resource_sync_status(ResourceName="never", SyncType="CFN_STACK_SYNC")
    with pytest.raises(connections.exceptions.AccessDeniedException) as excinfo:
        connections.get_resource_sync_status(ResourceName="locked", SyncType="CFN_STACK_SYNC")
    assert "deny: true" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(connections.exceptions.AccessDeniedException):
        connections.get_sync_blocker_summary(ResourceName="locked", SyncType="CFN_STACK_SYNC")


def test_connections_validation(server: FakeServer, cbor_data_path: Path) -> None:
    # botocore checks no patterns, so this reaches the fake, which checks them as the service does.
    for made in (client("codeconnections", server), cbor_client(server, cbor_data_path)):
        with pytest.raises(ClientError) as excinfo:
            made.get_resource_sync_status(ResourceName="bad name!", SyncType="CFN_STACK_SYNC")
        assert code(excinfo) == "ValidationException"
        assert "pattern" in excinfo.value.response["Error"]["Message"]


def test_blocker_appears_on_the_second_poll(connections: Any) -> None:
    def blockers() -> list[str]:
        response = connections.get_sync_blocker_summary(ResourceName="rolling", SyncType="CFN_STACK_SYNC")
        return [b["Id"] for b in fits("codeconnections", "GetSyncBlockerSummary", response)["SyncBlockerSummary"][
            "LatestBlockers"]]

    assert blockers() == []
    assert blockers() == ["late"]
    assert blockers() == ["late"]


def test_cbor_answers_are_cbor_with_the_protocol_header(server: FakeServer) -> None:
    body = cbor2.dumps({"ResourceName": "network", "SyncType": "CFN_STACK_SYNC"})
    headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Authorization": SIGNED}
    for service in ("CodeConnections_20231201", "com.amazonaws.codeconnections.CodeConnections_20231201"):
        conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
        conn.request("POST", f"/service/{service}/operation/GetResourceSyncStatus", body=body, headers=headers)
        response = conn.getresponse()
        payload = cbor2.loads(response.read())
        conn.close()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/cbor"
        assert response.getheader("smithy-protocol") == "rpc-v2-cbor"
        assert payload["LatestSuccessfulSync"]["TargetRevision"]["Sha"] == SHA_A
        started = payload["LatestSuccessfulSync"]["StartedAt"]
        assert started.isoformat() == "2026-09-01T12:00:00+00:00"  # CBOR tag 1 (epoch), decoded by cbor2


@pytest.mark.parametrize(
    ("path", "headers", "body", "expected"),
    [
        ("/service/CodeConnections_20231201/operation/GetResourceSyncStatus", {}, cbor2.dumps({}),
         "SerializationException"),  # no smithy-protocol header
        ("/service/CodeConnections_20231201/operation/ListConnections", {"smithy-protocol": "rpc-v2-cbor"},
         cbor2.dumps({}), "UnknownOperationException"),
        ("/service/AwsProton20200720/operation/GetTemplateSyncStatus", {"smithy-protocol": "rpc-v2-cbor"},
         cbor2.dumps({}), "UnknownOperationException"),  # Proton speaks JSON 1.0 only
        ("/service/CodeConnections_20231201/operation/GetResourceSyncStatus", {"smithy-protocol": "rpc-v2-cbor"},
         b"\xff\x00garbage", "SerializationException"),
        ("/service/CodeConnections_20231201/operation/GetResourceSyncStatus", {"smithy-protocol": "rpc-v2-cbor"},
         cbor2.dumps(["a", "list"]), "SerializationException"),
        ("/service/CodeConnections_20231201/operation/GetResourceSyncStatus", {"smithy-protocol": "rpc-v2-cbor"},
         b"\x81" * 100_000 + b"\x00", "SerializationException"),
        ("/service/CodeConnections_20231201/operation/GetResourceSyncStatus", {"smithy-protocol": "rpc-v2-cbor"},
         cbor2.dumps({"ResourceName": b"bytes", "SyncType": "CFN_STACK_SYNC"}), "ValidationException"),
        ("/service/CodeConnections_20231201/operation/GetResourceSyncStatus", {"smithy-protocol": "rpc-v2-cbor"},
         cbor2.dumps({"ResourceName": "network"}), "ValidationException"),
    ],
    ids=["no-protocol-header", "unknown-operation", "proton-cbor", "garbage", "not-a-map", "deep", "wrong-type",
         "missing"],
)
def test_cbor_errors_have_the_protocol_shape(
    server: FakeServer, path: str, headers: dict[str, str], body: bytes, expected: str
) -> None:
    conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    conn.request("POST", path, body=body, headers={"Authorization": SIGNED, **headers})
    response = conn.getresponse()
    payload = cbor2.loads(response.read())
    conn.close()
    assert response.status == 400
    assert response.getheader("smithy-protocol") == "rpc-v2-cbor"
    assert payload["__type"] == f"com.amazonaws.codeconnections#{expected}"
    assert isinstance(payload["message"], str) and payload["message"]


# -- who signed --------------------------------------------------------------------------------------------
def test_calls_are_recorded_per_access_key(server: FakeServer, cbor_data_path: Path) -> None:
    client("proton", server, access_key="AKIAACCOUNTA0001").get_service_instance_sync_status(
        serviceName="web-svc", serviceInstanceName="prod"
    )
    for _ in range(2):
        client("codeconnections", server, access_key="AKIAACCOUNTB0002").get_resource_sync_status(
            ResourceName="network", SyncType="CFN_STACK_SYNC"
        )
    cbor_client(server, cbor_data_path, access_key="AKIAACCOUNTB0002").get_sync_blocker_summary(
        ResourceName="network", SyncType="CFN_STACK_SYNC"
    )
    by_key = server.calls_by_access_key
    assert by_key == {
        "AKIAACCOUNTA0001": {"GetServiceInstanceSyncStatus web-svc/prod": 1},
        "AKIAACCOUNTB0002": {"GetResourceSyncStatus network": 2, "GetSyncBlockerSummary network": 1},
    }
    conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    conn.request("GET", "/_fake/calls")
    payload = json.loads(conn.getresponse().read())
    conn.close()
    assert payload["calls_by_access_key"] == {key: dict(counts) for key, counts in by_key.items()}
    assert payload["calls"] == server.calls
    assert "secret-not-kept" not in json.dumps(payload)

    server.reset_calls()
    assert server.calls_by_access_key == {}


@pytest.mark.parametrize(
    ("authorization", "recorded"),
    [
        (None, None),
        ("AWS4-HMAC-SHA256 Signature=abc", None),
        ("AWS4-HMAC-SHA256 Credential=\x1b[31mEVIL/20260101/x, Signature=abc", "(malformed)"),
        ("AWS4-HMAC-SHA256 Credential=ASIATEMPORARY/20260101/us-east-1/proton/aws4_request", "ASIATEMPORARY"),
    ],
    ids=["unsigned", "no-credential", "not-an-access-key", "session-key"],
)
def test_only_a_well_formed_access_key_id_is_recorded(
    server: FakeServer, authorization: str | None, recorded: str | None
) -> None:
    conn = http.client.HTTPConnection(server.endpoint_url.removeprefix("http://"), timeout=5)
    headers = {"X-Amz-Target": "AwsProton20200720.GetTemplateSyncStatus"}
    if authorization is not None:
        headers["Authorization"] = authorization
    conn.request("POST", "/", body=b"{}", headers=headers)
    conn.getresponse().read()
    conn.close()
    expected = {} if recorded is None else {recorded: {"GetTemplateSyncStatus": 1}}
    assert server.calls_by_access_key == expected
    assert server.calls == {"GetTemplateSyncStatus": 1}  # every request still counts


# -- the example -------------------------------------------------------------------------------------------
def test_example_with_stacks_answers_every_kind(cbor_data_path: Path) -> None:
    with FakeServer(FakeState.from_file(EXAMPLES / "fake-stacks.yaml")) as server:
        proton = client("proton", server)
        template = proton.get_template_sync_status(
            templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1"
        )
        fits("proton", "GetTemplateSyncStatus", template)
        instance = proton.get_service_instance_sync_status(serviceName="web-svc", serviceInstanceName="prod")
        fits("proton", "GetServiceInstanceSyncStatus", instance)
        for made in (client("codeconnections", server), cbor_client(server, cbor_data_path)):
            status = made.get_resource_sync_status(ResourceName="network", SyncType="CFN_STACK_SYNC")
            fits("codeconnections", "GetResourceSyncStatus", status)
            blocked = made.get_sync_blocker_summary(ResourceName="app-db", SyncType="CFN_STACK_SYNC")
            fits("codeconnections", "GetSyncBlockerSummary", blocked)
            statuses = [b["Status"] for b in blocked["SyncBlockerSummary"]["LatestBlockers"]]
            assert "ACTIVE" in statuses
