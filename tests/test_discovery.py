"""Discovery of what syncs from Git: boto3 against the bundled fake over real HTTP, every page followed, errors
pointed; the `discover` command and the stacks `init` adds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.config import Config

from pytest_proton_sync import cli
from pytest_proton_sync.aws.hermetic import fake_client
from pytest_proton_sync.discovery.listing import DiscoveryError, Lister, RepositoryLink, discover, open_lister
from pytest_proton_sync.fake import FakeServer, FakeState
from pytest_proton_sync.manifest.loader import load_manifest

from .conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN
from .gitrepos import History, git

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fake-discovery.yaml"


def many(links: int = 10, per_link: int = 100, page_size: int = 7, **extra: Any) -> FakeState:
    return FakeState.from_mapping({
        "sync_configurations": [
            {"name": f"stack-{link}-{number}", "repository": {"provider": "GitHub", "name": f"acme/repo-{link}"},
             "config_file": f"deploy/{number}.yaml"}
            for link in range(links) for number in range(per_link)
        ],
        "listing": {"page_size": page_size},
        **extra,
    })


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(many()) as running:
        yield running


def lister(server: FakeServer, attempts: int = 5) -> Lister:
    """One botocore attempt per call, so that the Lister's own retries (without sleeping) are what is tested."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return Lister(fake_client("codeconnections", "us-east-1", server.endpoint_url, config),
                  fake_client("proton", "us-east-1", server.endpoint_url, config),
                  region="us-east-1", attempts=attempts, sleep=lambda seconds: None)


def test_a_thousand_sync_configurations_over_ten_links_exactly(server: FakeServer) -> None:
    """Pages of 7 although MaxResults asks for 100: a client that stopped at the first page would miss 930."""
    found = discover(lister(server), proton=False)
    assert len(found.links) == 10
    names = [stack.stack for stack in found.stacks]
    assert len(names) == 1000 and set(names) == {f"stack-{link}-{number}" for link in range(10)
                                                 for number in range(100)}
    assert {stack.repository for stack in found.stacks} == {f"acme/repo-{link}" for link in range(10)}
    pages_per_link = -(-100 // 7)
    assert server.total_calls("ListSyncConfigurations") == 10 * pages_per_link
    assert server.total_calls("ListRepositoryLinks") == 2
    assert found.calls == 2 + 10 * pages_per_link


def test_exact_under_throttling_and_server_errors(server: FakeServer) -> None:
    server.set_state(many(faults={"seed": 3, "throttle_rate": 0.2, "error_5xx_rate": 0.1}))
    found = discover(lister(server, attempts=12), proton=False)
    assert len(found.stacks) == 1000 and len({stack.stack for stack in found.stacks}) == 1000
    assert found.calls == server.total_calls() > 2 + 10 * 15  # some calls were retried


def test_only_the_named_repository_and_its_list_calls(server: FakeServer) -> None:
    found = discover(lister(server), "ACME/Repo-3", proton=False)
    assert {stack.repository for stack in found.stacks} == {"acme/repo-3"} and len(found.stacks) == 100
    assert server.total_calls("ListSyncConfigurations") == 15  # one link walked, not ten


def test_access_denied_names_the_iam_action(server: FakeServer) -> None:
    server.set_state(many(links=1, per_link=1, listing={"deny": ["ListSyncConfigurations"]}))
    with pytest.raises(DiscoveryError) as excinfo:
        discover(lister(server), proton=False)
    assert excinfo.value.code == "AccessDeniedException"
    assert "access denied: codeconnections:ListSyncConfigurations in us-east-1" in excinfo.value.message
    assert "fix: allow codeconnections:ListSyncConfigurations" in excinfo.value.message


def test_no_credentials_is_one_pointed_error(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    with pytest.raises(DiscoveryError) as excinfo:
        discover(open_lister("us-east-1", None), proton=False)
    assert excinfo.value.code == "NoCredentials"
    assert "fix: give --profile" in excinfo.value.message
    with pytest.raises(DiscoveryError) as excinfo:
        open_lister(None, None)
    assert excinfo.value.code == "NoRegion"
    with pytest.raises(DiscoveryError) as excinfo:
        open_lister("us-east-1", "nobody")
    assert excinfo.value.code == "ProfileNotFound"


def test_the_endpoint_comes_from_boto3s_chain(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    found = discover(open_lister(None, None), "acme/repo-0", proton=False)
    assert len(found.stacks) == 100
    assert ACCESS_KEY_ID in server.calls_by_access_key


class _Answers:
    """A client whose answers are given: the hostile ones the fake never sends."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.pages = list(pages)

    def list_repository_links(self, **params: Any) -> dict[str, Any]:
        return self.pages.pop(0)

    list_sync_configurations = list_repository_links


LINK = {"RepositoryLinkId": "0f4e7a5c-1d2b-4c3d-8e9f-0a1b2c3d4e5f", "ProviderType": "GitHub", "OwnerId": "acme",
        "RepositoryName": "infra"}
CONFIGURATION = {"ResourceName": "network", "Branch": "main", "RepositoryLinkId": LINK["RepositoryLinkId"],
                 "RoleArn": "arn:aws:iam::111122223333:role/x"}


@pytest.mark.parametrize(("pages", "expected"), [
    ([{"RepositoryLinks": [LINK], "NextToken": "a"}, {"RepositoryLinks": [], "NextToken": "a"}],
     "a NextToken it had answered before"),
    ([{"RepositoryLinks": [{**LINK, "OwnerId": None}]}], "an item without OwnerId"),
    ([{"NextToken": "a"}], "a page without its RepositoryLinks list"),
    ([{"RepositoryLinks": [LINK]}, {"SyncConfigurations": [{**CONFIGURATION, "RepositoryLinkId": "other"}]}],
     "a sync configuration of link other"),
    ([{"RepositoryLinks": [LINK]},
      {"SyncConfigurations": [CONFIGURATION, {**CONFIGURATION, "Branch": "dev"}]}],
     "stack network twice, with different sync configurations"),
])
def test_an_answer_that_cannot_be_trusted_is_an_error_never_a_shorter_list(pages: list[Any], expected: str) -> None:
    with pytest.raises(DiscoveryError) as excinfo:
        Lister(_Answers(*pages)).stacks()
    assert excinfo.value.code == "MalformedAnswer"
    assert expected in excinfo.value.message


def test_an_empty_page_with_a_token_is_followed() -> None:
    links = Lister(_Answers({"RepositoryLinks": [], "NextToken": "a"}, {"RepositoryLinks": [LINK]})).repository_links()
    assert links == (RepositoryLink(LINK["RepositoryLinkId"], "GitHub", "acme", "infra"),)


def test_repository_sync_of_a_link() -> None:
    state = FakeState.from_file(EXAMPLE)
    with FakeServer(state) as running:
        made = lister(running)
        link = next(link for link in made.repository_links() if link.name == "app-db")
        health = made.repository_sync(link.id, "release")
        assert health is not None and health.status == "FAILED"
        assert health.events == (("REPOSITORY_SYNC_FAILED",
                                  "Could not access the repository: the connection is not available"),)
        assert made.repository_sync(link.id, "main") is None


# -- the command ---------------------------------------------------------------------------------------------


def test_discover_prints_one_line_per_resource(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["discover", "--fake", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [
        "STACK app-db  GitLab acme/data/app-db  branch release  file cfn/db.yaml",
        "STACK billing  GitHub acme/billing  branch main  file deploy.yaml",
        "STACK edge  GitHub acme/infra  branch main  file deploy/edge.yaml",
        "STACK network  GitHub acme/infra  branch main  file deploy/network.yaml",
    ]
    assert out[4].startswith("4 stacks from 3 repository links, 0 Proton sync definitions;")


def test_discover_lists_proton_where_it_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["discover", "--fake", str(ROOT / "examples" / "fake-stacks.yaml")]) == 0
    out = capsys.readouterr().out
    assert "TEMPLATE vpc-env  GITHUB acme/platform-templates  branch main  directory templates" in out
    assert "SERVICE_INSTANCE web-svc/prod  GITHUB acme/web-svc  branch main  directory proton" in out


def test_discover_manifest_is_one_validate_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["discover", "--fake", str(EXAMPLE), "--repository", "acme/infra", "--manifest"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "proton-sync.yaml"
    path.write_text(text)
    assert cli.main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"OK {path}: 2 targets\n"
    assert yaml.safe_load(text) == {
        "version": 1,
        "defaults": {"rev": "HEAD", "region": "us-east-1"},
        "stacks": [
            {"name": "edge", "config_file": "deploy/edge.yaml",
             "repository": {"provider": "GitHub", "name": "acme/infra", "branch": "main"}},
            {"name": "network", "config_file": "deploy/network.yaml",
             "repository": {"provider": "GitHub", "name": "acme/infra", "branch": "main"}},
        ],
    }


def test_discover_manifest_of_a_thousand_stacks_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(yaml.safe_dump({"sync_configurations": [
        {"name": f"stack-{link}-{number}", "repository": f"acme/repo-{link}"} for link in range(10)
        for number in range(100)] + [{"name": "under_score", "repository": "acme/repo-0"}],
        "listing": {"page_size": 9}}))
    assert cli.main(["discover", "--fake", str(state), "--manifest"]) == 0
    text = capsys.readouterr().out
    assert "#   stack under_score: the manifest's stack names are letters" in text
    path = tmp_path / "m.yaml"
    path.write_text(text)
    loaded = load_manifest(str(path))
    assert len(loaded.targets) == 1000
    assert {target.expectation.match for target in loaded.targets} == {"exact"}  # no deployment file to compare


def test_discover_errors_exit_1_with_the_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("sync_configurations: []\nlisting: {deny: [ListRepositoryLinks]}\n")
    assert cli.main(["discover", "--fake", str(state)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pytest-proton-sync discover: access denied: codeconnections:ListRepositoryLinks")
    assert cli.main(["discover", "--repository", "infra"]) == 2
    assert "is not owner/name" in capsys.readouterr().err


def test_discover_without_credentials_says_how(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    assert cli.main(["discover", "--region", "us-east-1"]) == 1
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err and "Traceback" not in err


def test_credentials_never_in_the_output(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_state(many(links=1, per_link=3, listing={"deny": ["ListSyncConfigurations"]}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    assert cli.main(["discover", "--region", "us-east-1"]) == 1
    captured = capsys.readouterr()
    for secret in (SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in captured.out + captured.err


# -- init ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def infra_repo(tmp_path: Path) -> Path:
    path = tmp_path / "infra"
    History().commit("one", {"deploy/network.yaml": "template-file-path: network.yaml\n"}).build(path)
    git(path, "remote", "add", "origin", "git@github.com:acme/infra.git")
    return path


def test_init_writes_the_stacks_when_credentials_are_there(
    infra_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeServer(FakeState.from_file(EXAMPLE)) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        monkeypatch.chdir(infra_repo)
        assert cli.main(["init", "--region", "us-east-1"]) == 0
    loaded = load_manifest(str(infra_repo / "proton-sync.yaml"))
    assert sorted(target.id for target in loaded.targets) == ["STACK/edge", "STACK/network"]
    assert "wrote proton-sync.yaml" in capsys.readouterr().out


def test_init_without_credentials_says_how_to_add_the_stacks(
    infra_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(infra_repo)
    # No template bundle: the manifest holds the stacks whose deployment files the checkout has, and says how to
    # have AWS's own list instead.
    assert cli.main(["init", "--region", "us-east-1"]) == cli.EXIT_OK
    assert load_manifest(str(infra_repo / "proton-sync.yaml")).targets
    err = capsys.readouterr().err
    assert "note: stacks synced from acme/infra not added: no AWS credentials found" in err
    assert "pytest-proton-sync discover --repository acme/infra --manifest" in err
