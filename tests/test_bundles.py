"""Bundle discovery, the manifest/checkout comparison, and `pytest-proton-sync init`, on real repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from pytest_proton_sync import cli
from pytest_proton_sync.git.bundles import (
    Bundle,
    compare_manifest_with_checkout,
    discover_bundles,
    normal_directory,
    repository_from_url,
    starter_manifest,
)
from pytest_proton_sync.git.checkout import Checkout, GitError

from .gitrepos import ENVIRONMENT_SCHEMA, History, environment_bundle, git, service_bundle

NEITHER = "schema:\n  format:\n    openapi: 3.0.0\n  types: {}\n"
BOTH = "schema:\n  environment_input_type: A\n  service_input_type: B\n"


@pytest.fixture
def templates_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "repo"
    shas = (
        History()
        .commit(
            "one",
            {
                **environment_bundle("vpc"),
                **environment_bundle("vpc", major=2),
                **service_bundle("api"),
                "templates/odd/v1/schema/schema.yaml": NEITHER,
                "templates/both/v1/schema/schema.yaml": BOTH,
                "templates/broken/v1/schema/schema.yaml": "schema: [unclosed\n",
                "templates/noschema/v1/infrastructure/cloudformation.yaml": "x\n",
                "templates/beta/v1beta/schema/schema.yaml": ENVIRONMENT_SCHEMA,
                "templates/bad.name/v1/schema/schema.yaml": ENVIRONMENT_SCHEMA,
                "templates/README.md": "not a bundle\n",
                "templates/docs/guide.md": "not a bundle either\n",
                **environment_bundle("elsewhere", directory="infra/proton"),
            },
        )
        .commit("two", {**service_bundle("worker"), "templates/vpc/v2/schema/schema.yaml": NEITHER})
        .build(path)
    )
    return path, shas


def test_discovery_types_bundles_by_schema_and_reports_the_rest(templates_repo: tuple[Path, dict[str, str]]) -> None:
    path, shas = templates_repo
    with Checkout.open(path) as checkout:
        found = discover_bundles(checkout, shas["one"], "templates")
        later = discover_bundles(checkout, shas["two"], "./templates/")
    assert found.bundles == (
        Bundle("SERVICE", "api", "1", "templates/api/v1/"),
        Bundle("ENVIRONMENT", "vpc", "1", "templates/vpc/v1/"),
        Bundle("ENVIRONMENT", "vpc", "2", "templates/vpc/v2/"),
    )
    assert found.problems == (
        "templates/bad.name/v1/: 'bad.name' is not a Proton template name "
        "(letters, digits, '-' and '_', starting with a letter or digit, at most 100)",
        "templates/beta/v1beta/: 'v1beta' is not a major version folder (v1, v2, ...)",
        "templates/both/v1/schema/schema.yaml: has both environment_input_type and service_input_type, "
        "cannot tell ENVIRONMENT from SERVICE",
        "templates/broken/v1/schema/schema.yaml: not valid YAML (did not find expected ',' or ']', line 2)",
        "templates/noschema/v1/: no schema/schema.yaml, not a template bundle",
        "templates/odd/v1/schema/schema.yaml: has neither environment_input_type nor service_input_type, "
        "cannot tell ENVIRONMENT from SERVICE",
    )
    # At a later commit: a new bundle appears, and a schema that lost its input type is reported, not guessed.
    assert [bundle.id for bundle in later.bundles] == ["SERVICE/api@1", "ENVIRONMENT/vpc@1", "SERVICE/worker@1"]
    assert any(problem.startswith("templates/vpc/v2/schema/schema.yaml: has neither") for problem in later.problems)


def test_discovery_in_other_directories(templates_repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = templates_repo
    with Checkout.open(path) as checkout:
        nested = discover_bundles(checkout, shas["one"], "infra/proton")
        assert nested.bundles == (Bundle("ENVIRONMENT", "elsewhere", "1", "infra/proton/elsewhere/v1/"),)
        with pytest.raises(GitError, match="no directory nowhere/ at commit") as caught:
            discover_bundles(checkout, shas["one"], "nowhere")
        assert "fix: give the directory" in str(caught.value)
        with pytest.raises(GitError, match="not a directory inside the repository"):
            discover_bundles(checkout, shas["one"], "../outside")
    root_shas = History().commit("one", {**environment_bundle("top", directory="")}).build(tmp_path / "root")
    with Checkout.open(tmp_path / "root") as checkout:
        at_root = discover_bundles(checkout, root_shas["one"], ".")
    assert at_root.directory == ""
    assert at_root.bundles == (Bundle("ENVIRONMENT", "top", "1", "top/v1/"),)


def test_normal_directory() -> None:
    assert normal_directory("./templates/") == "templates"
    assert normal_directory("a//b/") == "a/b"
    assert normal_directory(".") == normal_directory("") == ""
    for bad in ("/abs", "a/../b", ".."):
        with pytest.raises(GitError):
            normal_directory(bad)


def test_compare_manifest_with_checkout() -> None:
    found = [
        Bundle("ENVIRONMENT", "vpc", "1", "templates/vpc/v1/"),
        Bundle("SERVICE", "api", "1", "templates/api/v1/"),
        Bundle("ENVIRONMENT", "new", "3", "templates/new/v3/"),
    ]
    declared = [
        ("ENVIRONMENT", "vpc", "1", "templates/vpc/v1"),  # matches (no trailing slash is fine)
        ("ENVIRONMENT", "api", "1", "./templates/api/v1/"),  # wrong type
        ("SERVICE", "gone", "2", "templates/gone/v2/"),  # no bundle
        ("ENVIRONMENT", "vpc", "1", "templates/vpc/v1/"),  # a duplicate entry says nothing new
    ]
    assert compare_manifest_with_checkout(declared, found) == [
        "ENVIRONMENT/api@1: the manifest says ENVIRONMENT, but templates/api/v1/schema/schema.yaml is a SERVICE schema",
        "SERVICE/gone@2: in the manifest, but there is no bundle at templates/gone/v2/",
        "ENVIRONMENT/new@3: a bundle at templates/new/v3/, but no manifest entry",
    ]
    assert compare_manifest_with_checkout([("ENVIRONMENT", "vpc", "1", "templates/vpc/v1/")], found[:1]) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:acme/templates.git", ("GITHUB", "acme/templates")),
        ("https://github.com/acme/templates", ("GITHUB", "acme/templates")),
        ("https://x-access-token:secret@github.com/acme/templates.git", ("GITHUB", "acme/templates")),
        ("ssh://git@bitbucket.org:22/acme/templates.git", ("BITBUCKET", "acme/templates")),
        ("https://git.corp.example/acme/templates.git", (None, "acme/templates")),
        ("file:///srv/repos/templates", None),
        ("/srv/repos/templates", None),
        ("https://github.com/acme/templates/tree/main", None),
    ],
)
def test_repository_from_url(url: str, expected: tuple[str | None, str] | None) -> None:
    assert repository_from_url(url) == expected


def _init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.chdir(tmp_path)
    return cli.main(["init", *argv])


def test_init_writes_a_starter_manifest(
    templates_repo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, shas = templates_repo
    git(path, "remote", "add", "origin", "git@github.com:acme/platform-templates.git")
    assert _init(path, monkeypatch) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert out == (f"wrote proton-sync.yaml: 3 templates from templates/ at {shas['two'][:12]}\n"
                   "proton-sync.yaml names no region: set `region:` in its defaults (or AWS_REGION) before the "
                   "first run\n")
    assert "warning: templates/odd/v1/schema/schema.yaml: has neither" in err
    text = (path / "proton-sync.yaml").read_text()
    assert text.startswith("# pytest-proton-sync manifest")
    assert f"at commit {shas['two']}" in text
    assert "match: content" not in text  # the default for rev: entries; saying so only confuses
    assert "defaults:\n  # region: us-east-1   # set the AWS region of the syncs here" in text
    assert "#   templates/both/v1/schema/schema.yaml: has both" in text  # problems listed, not entries
    assert yaml.safe_load(text) == {
        "version": 1,
        "defaults": {
            "repository": {"provider": "GITHUB", "name": "acme/platform-templates", "directory": "templates"},
            "rev": "HEAD",
        },
        "templates": [
            {"name": "api", "type": "SERVICE", "version": "1"},
            {"name": "vpc", "type": "ENVIRONMENT", "version": "1"},
            {"name": "worker", "type": "SERVICE", "version": "1"},
        ],
    }
    # vpc@2's schema lost its input type at HEAD: reported above, not listed


def test_init_manifest_loads_as_written(
    templates_repo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What init writes, `rev: HEAD` included, passes the real manifest loader unchanged."""
    from pytest_proton_sync.manifest.loader import load_manifest

    path, _ = templates_repo
    assert _init(path, monkeypatch, "--repository", "acme/templates", "--output", "m.yaml") == cli.EXIT_OK
    loaded = load_manifest(str(path / "m.yaml"))
    assert sorted(target.id for target in loaded.targets) == ["ENVIRONMENT/vpc@1", "SERVICE/api@1", "SERVICE/worker@1"]
    assert {target.expectation.rev for target in loaded.targets} == {"HEAD"}
    assert {target.expectation.repository.name for target in loaded.targets} == {"acme/templates"}
    assert {target.expectation.repository.directory for target in loaded.targets} == {"templates"}


def test_init_refuses_to_overwrite_without_force(
    templates_repo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = templates_repo
    (path / "proton-sync.yaml").write_text("mine\n")
    assert _init(path, monkeypatch, "--repository", "acme/t") == cli.EXIT_USAGE
    assert "proton-sync.yaml exists; not overwriting it\nfix: give --force" in capsys.readouterr().err
    assert (path / "proton-sync.yaml").read_text() == "mine\n"
    assert _init(path, monkeypatch, "--repository", "acme/t", "--force") == cli.EXIT_OK
    assert "name: acme/t" in (path / "proton-sync.yaml").read_text()


def test_init_errors_are_one_clear_message(
    templates_repo: tuple[Path, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = templates_repo
    # no origin and no --repository
    assert _init(path, monkeypatch) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot tell the repository's owner/repo from the remote 'origin' (there is none)\n" in err
    # a directory with no bundles
    assert _init(path, monkeypatch, "--repository", "acme/t", "--directory", "infra") == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "no template bundles (infra/<name>/v<major>/schema/schema.yaml)" in err
    assert not (path / "proton-sync.yaml").exists()
    # a directory that does not exist at HEAD
    assert _init(path, monkeypatch, "--repository", "acme/t", "--directory", "nope") == cli.EXIT_USAGE
    assert "no directory nope/ at commit" in capsys.readouterr().err
    # a bad --repository
    assert _init(path, monkeypatch, "--repository", "not a repo") == cli.EXIT_USAGE
    assert "is not owner/repo" in capsys.readouterr().err
    # not a git checkout
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _init(plain, monkeypatch, "--repository", "acme/t") == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("pytest-proton-sync init: ") and "not inside a git repository\nfix: " in err
    # an empty repository: no commit at HEAD
    git(tmp_path / "plain", "init", "-q")
    assert _init(plain, monkeypatch, "--repository", "acme/t") == cli.EXIT_USAGE
    assert "has no commit at HEAD" in capsys.readouterr().err
    # git missing
    monkeypatch.setenv("PATH", str(plain))
    assert _init(path, monkeypatch, "--repository", "acme/t") == cli.EXIT_USAGE
    assert "git is not installed, or not on PATH\nfix: install git" in capsys.readouterr().err
    assert not os.path.exists(path / "proton-sync.yaml")


def test_starter_manifest_at_the_root_has_no_directory() -> None:
    from pytest_proton_sync.git.bundles import Discovery

    discovery = Discovery("a" * 40, "", (Bundle("ENVIRONMENT", "top", "1", "top/v1/"),), ())
    data = yaml.safe_load(starter_manifest(discovery, "acme/t"))
    assert data["defaults"] == {"repository": {"name": "acme/t"}, "rev": "HEAD"}
    assert data["templates"] == [{"name": "top", "type": "ENVIRONMENT", "version": "1"}]


def test_init_writes_the_region_from_the_option_or_the_environment(
    templates_repo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = templates_repo
    assert _init(path, monkeypatch, "--repository", "acme/t", "--region", "eu-west-1") == cli.EXIT_OK
    assert yaml.safe_load((path / "proton-sync.yaml").read_text())["defaults"]["region"] == "eu-west-1"
    assert "names no region" not in capsys.readouterr().out
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert _init(path, monkeypatch, "--repository", "acme/t", "--force") == cli.EXIT_OK
    assert yaml.safe_load((path / "proton-sync.yaml").read_text())["defaults"]["region"] == "ap-south-1"
    monkeypatch.setenv("AWS_REGION", "us-west-2")  # boto3's order: AWS_REGION first
    assert _init(path, monkeypatch, "--repository", "acme/t", "--force") == cli.EXIT_OK
    assert yaml.safe_load((path / "proton-sync.yaml").read_text())["defaults"]["region"] == "us-west-2"
    assert _init(path, monkeypatch, "--repository", "acme/t", "--force", "--region", "Mars") == cli.EXIT_USAGE
    assert "--region 'Mars' is not an AWS region\nfix: use an AWS region name such as us-east-1" in \
        capsys.readouterr().err


def test_init_adds_the_stacks_of_the_checkout_and_check_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deployment files (YAML with template-file-path) become stack entries; the result loads, and `check`
    finds the manifest and the checkout in agreement, templates and stacks alike."""
    from pytest_proton_sync.manifest.loader import load_manifest

    path = tmp_path / "repo"
    History().commit("one", {
        **environment_bundle("vpc"),
        "deploy/network.yaml": "template-file-path: cfn/network.yaml\nparameters: {Cidr: 10.0.0.0/16}\n",
        "deploy/app-db.yml": "template-file-path: cfn/db.yaml\n",
        "deploy/not_a_stack.yaml": "template-file-path: cfn/x.yaml\n",
        "deploy/values.yaml": "replicas: 3\n",
        "cfn/network.yaml": "Resources: {}\n",
        "cfn/db.yaml": "Resources: {}\n",
        "cfn/x.yaml": "Resources: {}\n",
        ".github/deploy.yaml": "template-file-path: ignored.yaml\n",
    }).build(path)
    assert _init(path, monkeypatch, "--repository", "acme/infra", "--region", "us-east-1") == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert "1 template from templates/ and 2 stacks at" in out
    assert "warning: deploy/not_a_stack.yaml: a deployment file, but 'not_a_stack' is not a stack name" in err
    text = (path / "proton-sync.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["stacks"] == [{"name": "app-db", "config_file": "deploy/app-db.yml"},
                              {"name": "network", "config_file": "deploy/network.yaml"}]
    # The templates' directory is theirs: the stacks do not inherit it.
    assert "directory" not in data["defaults"]["repository"]
    assert data["templates"] == [{"name": "vpc", "type": "ENVIRONMENT", "version": "1",
                                  "repository": {"directory": "templates"}}]
    loaded = load_manifest(str(path / "proton-sync.yaml"))
    assert {target.id: target.expectation.repository.directory for target in loaded.targets} == {
        "ENVIRONMENT/vpc@1": "templates", "STACK/app-db": None, "STACK/network": None}
    assert cli.main(["check", str(path / "proton-sync.yaml")]) == cli.EXIT_OK
    assert "OK: 3 entries match the checkout at HEAD" in capsys.readouterr().out


def test_init_with_stacks_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "repo"
    History().commit("one", {"network.yaml": "template-file-path: network-template.yaml\n",
                             "network-template.yaml": "Resources: {}\n"}).build(path)
    assert _init(path, monkeypatch, "--repository", "acme/infra") == cli.EXIT_OK
    data = yaml.safe_load((path / "proton-sync.yaml").read_text())
    assert "templates" not in data and data["stacks"] == [{"name": "network", "config_file": "network.yaml"}]
    assert "1 stack at" in capsys.readouterr().out
