"""The fake's list operations (what syncs from Git), through real boto3 clients over real HTTP, in both of
CodeConnections' protocols. Every page, as botocore parsed it, is checked against botocore's output shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.exceptions import ClientError

from pytest_proton_sync.fake import FakeServer, FakeState, FakeStateError
from pytest_proton_sync.fake.statefile import schema

from .test_fake_services import cbor_client, cbor_data_path, client, code, fits  # noqa: F401 (fixture)

STATE = """
defaults:
  repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}
templates:
  - {name: vpc-env, type: ENVIRONMENT, version: 1, synced: aaaaaaa}
  - {name: vpc-env, type: ENVIRONMENT, version: 2, synced: aaaaaaa}
service_instances:
  - {service: web-svc, name: prod, repository: {name: acme/web-svc, directory: proton}, synced: bbbbbbb}
repository_links:
  - repository: {provider: GitLab, name: acme/data/app-db}
    id: 0F4E7A5C-1D2B-4C3D-8E9F-0A1B2C3D4E5F
    latest_sync:
      status: FAILED
      started_at: 2026-09-30T16:20:00Z
      events: [{type: REPOSITORY_SYNC_FAILED, event: "The connection is not available"}]
  - {repository: acme/empty}
  - {repository: acme/secret, deny: true}
sync_configurations:
  - {name: network, repository: {provider: GitHub, name: acme/infra}, config_file: deploy/network.yaml}
  - {name: app-db, repository: {provider: GitLab, name: acme/data/app-db, branch: release}}
  - name: edge
    repository: {provider: GitHub, name: acme/infra, branch: prod}
    config_file: deploy/edge.yaml
    role_arn: arn:aws:iam::111122223333:role/edge-sync
    trigger_resource_update_on: FILE_CHANGE
    publish_deployment_status: ENABLED
    pull_request_comment: ENABLED
"""


def make_state(text: str = STATE) -> FakeState:
    return FakeState.from_mapping(yaml.safe_load(text), source="<test>")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(make_state()) as running:
        yield running


@pytest.fixture(params=["json", "cbor"])
def connections(request: pytest.FixtureRequest, server: FakeServer, cbor_data_path: Path) -> Any:  # noqa: F811
    if request.param == "json":
        return client("codeconnections", server)
    return cbor_client(server, cbor_data_path)


def every_page(call: Any, member: str, token: str = "NextToken", **params: Any) -> tuple[list[Any], int]:
    items: list[Any] = []
    pages = 0
    while True:
        answer = call(**params)
        pages += 1
        items += answer[member]
        if not answer.get(token):
            return items, pages
        params[token] = answer[token]


def test_repository_links_one_per_repository_declared_or_named(connections: Any) -> None:
    answer = fits("codeconnections", "ListRepositoryLinks", connections.list_repository_links())
    links = answer["RepositoryLinks"]
    assert [(link["ProviderType"], link["OwnerId"], link["RepositoryName"]) for link in links] == [
        ("GitLab", "acme/data", "app-db"), ("GitHub", "acme", "empty"), ("GitHub", "acme", "secret"),
        ("GitHub", "acme", "infra")]
    assert links[0]["RepositoryLinkId"] == "0f4e7a5c-1d2b-4c3d-8e9f-0a1b2c3d4e5f"
    assert "NextToken" not in answer
    again = make_state().repository_links
    assert [link.id for link in again] == [link["RepositoryLinkId"] for link in links]  # stable ids


def test_sync_configurations_of_a_link(connections: Any) -> None:
    links = {link["RepositoryName"]: link["RepositoryLinkId"]
             for link in connections.list_repository_links()["RepositoryLinks"]}
    answer = fits("codeconnections", "ListSyncConfigurations", connections.list_sync_configurations(
        RepositoryLinkId=links["infra"], SyncType="CFN_STACK_SYNC"))
    network, edge = answer["SyncConfigurations"]
    assert (network["ResourceName"], network["Branch"], network["ConfigFile"]) == ("network", "main",
                                                                                  "deploy/network.yaml")
    assert network["RoleArn"] == "arn:aws:iam::111122223333:role/cfn-git-sync"
    assert (edge["Branch"], edge["TriggerResourceUpdateOn"], edge["PullRequestComment"]) == ("prod", "FILE_CHANGE",
                                                                                             "ENABLED")
    empty = connections.list_sync_configurations(RepositoryLinkId=links["empty"], SyncType="CFN_STACK_SYNC")
    assert empty["SyncConfigurations"] == []
    app_db = connections.list_sync_configurations(RepositoryLinkId=links["app-db"], SyncType="CFN_STACK_SYNC")
    assert "ConfigFile" not in app_db["SyncConfigurations"][0]  # optional in the API, left out when not set


def test_repository_sync_status(connections: Any) -> None:
    link = "0f4e7a5c-1d2b-4c3d-8e9f-0a1b2c3d4e5f"
    answer = fits("codeconnections", "GetRepositorySyncStatus", connections.get_repository_sync_status(
        RepositoryLinkId=link, Branch="release", SyncType="CFN_STACK_SYNC"))
    assert answer["LatestSync"]["Status"] == "FAILED"
    assert answer["LatestSync"]["Events"][0]["Event"] == "The connection is not available"
    with pytest.raises(ClientError) as excinfo:
        connections.get_repository_sync_status(RepositoryLinkId=link, Branch="main", SyncType="CFN_STACK_SYNC")
    assert code(excinfo) == "ResourceNotFoundException"


def test_denied_and_unknown_links(connections: Any) -> None:
    links = {link["RepositoryName"]: link["RepositoryLinkId"]
             for link in connections.list_repository_links()["RepositoryLinks"]}
    with pytest.raises(ClientError) as excinfo:
        connections.list_sync_configurations(RepositoryLinkId=links["secret"], SyncType="CFN_STACK_SYNC")
    assert code(excinfo) == "AccessDeniedException"
    assert "codeconnections:ListSyncConfigurations" in str(excinfo.value)
    with pytest.raises(ClientError) as excinfo:
        connections.list_sync_configurations(RepositoryLinkId="00000000-0000-0000-0000-000000000000",
                                             SyncType="CFN_STACK_SYNC")
    assert code(excinfo) == "ResourceNotFoundException"


def big_state(links: int = 10, per_link: int = 100, page_size: int = 7) -> FakeState:
    return FakeState.from_mapping({
        "sync_configurations": [
            {"name": f"stack-{link}-{number}", "repository": f"acme/repo-{link}",
             "config_file": f"deploy/{link}/{number}.yaml"}
            for link in range(links) for number in range(per_link)
        ],
        "listing": {"page_size": page_size},
    })


@pytest.mark.parametrize("max_results", [None, 5, 100])
def test_pages_are_at_most_the_page_size_and_cover_everything_once(
    server: FakeServer, cbor_data_path: Path, max_results: int | None  # noqa: F811
) -> None:
    server.set_state(big_state())
    for connections in (client("codeconnections", server), cbor_client(server, cbor_data_path)):
        extra = {} if max_results is None else {"MaxResults": max_results}
        links, pages = every_page(connections.list_repository_links, "RepositoryLinks", **extra)
        assert len(links) == 10 and pages == 2
        names: list[str] = []
        for link in links:
            items, pages = every_page(connections.list_sync_configurations, "SyncConfigurations",
                                      RepositoryLinkId=link["RepositoryLinkId"], SyncType="CFN_STACK_SYNC", **extra)
            size = min(7, max_results or 7)
            assert pages == -(-100 // size)
            names += [item["ResourceName"] for item in items]
        assert len(names) == 1000 and len(set(names)) == 1000


def test_a_page_fits_the_output_shape(connections: Any, server: FakeServer) -> None:
    server.set_state(big_state(links=2, per_link=10, page_size=3))
    first = fits("codeconnections", "ListRepositoryLinks", connections.list_repository_links(MaxResults=1))
    assert len(first["RepositoryLinks"]) == 1 and first["NextToken"]
    link = first["RepositoryLinks"][0]["RepositoryLinkId"]
    page = fits("codeconnections", "ListSyncConfigurations", connections.list_sync_configurations(
        RepositoryLinkId=link, SyncType="CFN_STACK_SYNC"))
    assert len(page["SyncConfigurations"]) == 3


def test_a_token_is_good_for_its_own_list_only(connections: Any, server: FakeServer) -> None:
    server.set_state(big_state(links=2, per_link=10, page_size=3))
    first = connections.list_repository_links(MaxResults=1)
    links = [link["RepositoryLinkId"] for link in every_page(connections.list_repository_links, "RepositoryLinks")[0]]
    of_first = connections.list_sync_configurations(RepositoryLinkId=links[0], SyncType="CFN_STACK_SYNC")
    for token in (first["NextToken"], "forged", of_first["NextToken"]):
        with pytest.raises(ClientError) as excinfo:
            connections.list_sync_configurations(RepositoryLinkId=links[1], SyncType="CFN_STACK_SYNC",
                                                 NextToken=token)
        assert code(excinfo) == "InvalidInputException"


def test_listing_deny_and_faults_apply_to_list_calls(server: FakeServer) -> None:
    state = yaml.safe_load(STATE)
    server.set_state(FakeState.from_mapping({**state, "listing": {"deny": ["ListRepositoryLinks"]}}))
    connections = client("codeconnections", server)
    with pytest.raises(ClientError) as excinfo:
        connections.list_repository_links()
    assert code(excinfo) == "AccessDeniedException"
    assert "codeconnections:ListRepositoryLinks" in str(excinfo.value)
    server.set_state(FakeState.from_mapping({**state, "faults": {"throttle_rate": 1}}))
    with pytest.raises(ClientError) as excinfo:
        connections.list_repository_links()
    assert code(excinfo) == "ThrottlingException"
    assert server.calls["ListRepositoryLinks"] == 2


def test_proton_repositories_and_sync_definitions(server: FakeServer) -> None:
    proton = client("proton", server)
    answer = fits("proton", "ListRepositories", proton.list_repositories())
    assert [(item["provider"], item["name"]) for item in answer["repositories"]] == [
        ("GITHUB", "acme/platform-templates"), ("GITHUB", "acme/web-svc")]
    paged = fits("proton", "ListRepositories", proton.list_repositories(maxResults=1))
    rest = proton.list_repositories(nextToken=paged["nextToken"])
    assert [item["name"] for item in paged["repositories"] + rest["repositories"]] == [
        "acme/platform-templates", "acme/web-svc"]
    templates = fits("proton", "ListRepositorySyncDefinitions", proton.list_repository_sync_definitions(
        repositoryName="acme/platform-templates", repositoryProvider="GITHUB", syncType="TEMPLATE_SYNC"))
    assert templates["syncDefinitions"] == [
        {"branch": "main", "directory": "templates", "parent": "vpc-env", "target": "vpc-env"}]
    services = proton.list_repository_sync_definitions(
        repositoryName="acme/web-svc", repositoryProvider="GITHUB", syncType="SERVICE_SYNC")
    assert services["syncDefinitions"] == [
        {"branch": "main", "directory": "proton", "parent": "web-svc", "target": "prod"}]


def test_schema_enums_of_the_new_sections_are_the_apis_own() -> None:
    definitions: dict[str, Any] = schema()["$defs"]
    connections = botocore.session.get_session().get_service_model("codeconnections")
    properties = definitions["syncConfiguration"]["properties"]
    assert set(properties["trigger_resource_update_on"]["enum"]) == set(
        connections.shape_for("TriggerResourceUpdateOn").enum)
    assert set(properties["publish_deployment_status"]["enum"]) == set(
        connections.shape_for("PublishDeploymentStatus").enum)
    assert set(properties["pull_request_comment"]["enum"]) == set(connections.shape_for("PullRequestComment").enum)
    status = connections.operation_model("GetRepositorySyncStatus").output_shape.members["LatestSync"]
    assert set(definitions["repositorySync"]["properties"]["status"]["enum"]) == set(status.members["Status"].enum)


@pytest.mark.parametrize(("text", "expected"), [
    ("sync_configurations: [{name: a}]", "sync_configurations[0]: no repository name"),
    ("sync_configurations: [{name: a, repository: x/y}, {name: a, repository: x/z}]",
     "sync_configurations[1]: the sync configuration of stack a is already defined"),
    ("repository_links: [{repository: x/y}, {repository: {name: X/Y}}]",
     "repository_links[1]: the repository link of GitHub x/y is already defined"),
    ("repository_links: [{repository: x/y, id: nope}]", "repository_links[0].id: 'nope' is not allowed"),
    ("sync_configurations: []\nlisting: {page_size: 0}", "listing.page_size: 0 is too small"),
    ("sync_configurations: []\nlisting: {deny: [ListStacks]}", "listing.deny[0]: 'ListStacks' is not allowed"),
    ("sync_configurations: [{name: a, repository: x/y, trigger_resource_update_on: ALWAYS}]",
     "'ALWAYS' is not allowed; allowed: ANY_CHANGE, FILE_CHANGE"),
])
def test_state_file_mistakes_in_the_new_sections(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(text + "\n")
    with pytest.raises(FakeStateError) as excinfo:
        FakeState.from_file(path)
    assert expected in str(excinfo.value)
