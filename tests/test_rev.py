"""Expectations from the repository, end to end: real git histories, `rev:` entries, content and exact matching,
shallow clones and missing commits, through pytest and the bundled fake over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_proton_sync.fake import FakeServer

from .conftest import REPO, fake_state
from .gitrepos import History, environment_bundle, git


def platform_history() -> History:
    """vpc-env changes in c2, eks-env in c3 (twice: a change and its revert in c4/c5), then a README-only commit."""
    return (
        History()
        .commit("c1", {**environment_bundle("vpc-env", body="a"), **environment_bundle("eks-env", body="a")})
        .commit("c2", environment_bundle("vpc-env", body="b"), message="vpc-env: bigger subnets")
        .commit("c3", environment_bundle("eks-env", body="b"), message="eks-env: node group")
        .commit("c4", environment_bundle("eks-env", body="c"), message="eks-env: try c")
        .commit("c5", environment_bundle("eks-env", body="b"), message="Revert eks-env: try c")
        .commit("c6", {"README.md": "docs\n"}, message="docs only")
    )


def manifest(directory: Path, *entries: dict[str, Any], **defaults: Any) -> Path:
    path = directory / "proton-sync.yaml"
    data = {"version": 1, "defaults": {"repository": dict(REPO), "rev": "HEAD", **defaults}, "templates": list(entries)}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def env(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "ENVIRONMENT", "version": 1, **fields}


@pytest.fixture
def repo(pytester: pytest.Pytester) -> tuple[Path, dict[str, str]]:
    path = pytester.path / "platform"
    return path, platform_history().build(path)


def test_content_match_passes_batched_and_head_syncs_and_lists_the_files_that_differ(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, commits = repo
    aws_env.set_state(fake_state(
        env("vpc-env", synced=commits["c6"]),  # Proton recorded the branch head: same bundle as c2
        env("eks-env", synced=commits["c2"]),  # behind: eks-env's bundle changed in c3
    ))
    target = manifest(path, env("vpc-env"), env("eks-env"))
    result = pytester.runpytest("--proton-manifest", str(target), "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "ENVIRONMENT/eks-env@1 is not synced from the expected commit",
        f"  expected:        sha {commits['c5']} (rev HEAD) from GITHUB acme/platform-templates branch main directory"
        " templates",
        "*mismatch: templates/eks-env/v1/ at the synced * differ from the expected *",
        f"*files that differ (synced {commits['c2'][:12]} -> expected {commits['c5'][:12]}):",
        "*modified templates/eks-env/v1/infrastructure/cloudformation.yaml",
        "*commits between them that touch these files:",
        "*Revert eks-env: try c",
        "*eks-env: try c",
        "*eks-env: node group",
    ])
    assert aws_env.total_calls(operation="GetTemplateSyncStatus") == 2


def test_a_revert_restoring_the_content_passes_by_content_and_fails_exact(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, commits = repo
    # eks-env synced from c3; the expected commit (last change at HEAD) is the revert c5: same files, other sha.
    aws_env.set_state(fake_state(env("eks-env", synced=commits["c3"])))
    content = manifest(path, env("eks-env"))
    pytester.runpytest("--proton-manifest", str(content)).assert_outcomes(passed=1)
    exact = manifest(path, env("eks-env", match="exact"))
    result = pytester.runpytest("--proton-manifest", str(exact))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*mismatch: sha {commits['c3'][:12]} is not the expected {commits['c5'][:12]}"])


def test_exact_match_on_rev_expects_the_last_commit_that_changed_the_bundle(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, commits = repo
    aws_env.set_state(fake_state(env("vpc-env", synced=commits["c2"]), env("eks-env", synced=commits["c6"])))
    target = manifest(path, env("vpc-env"), env("eks-env"), match="exact")
    result = pytester.runpytest("--proton-manifest", str(target), "-v")
    result.assert_outcomes(passed=1, failed=1)  # vpc-env: c2 is its last change; eks-env: c6 is not c5
    result.stdout.fnmatch_lines(["*ENVIRONMENT/vpc-env@1 PASSED*"])


def test_synced_commit_missing_from_the_checkout_is_an_error_with_the_fix(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, _ = repo
    unknown = "0123456789abcdef0123456789abcdef01234567"
    aws_env.set_state(fake_state(env("vpc-env", synced=unknown)))
    result = pytester.runpytest("--proton-manifest", str(manifest(path, env("vpc-env"))), "--junitxml=out.xml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        f"*commit {unknown[:12]} is not in the git checkout*",
        "*fetch-depth: 0*",
    ])
    assert "<error" in (pytester.path / "out.xml").read_text()


def test_shallow_clone_is_an_error_that_names_the_fix_and_asks_nothing(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, commits = repo
    shallow = pytester.path / "shallow"
    git(pytester.path, "clone", "-q", "--depth", "1", path.as_uri(), str(shallow))
    aws_env.set_state(fake_state(env("vpc-env", synced=commits["c2"])))
    result = pytester.runpytest("--proton-manifest", str(manifest(shallow, env("vpc-env"))))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*could not be checked: HistoryMissing*",
        "*cannot tell which commit last changed templates/vpc-env/v1/ at or before HEAD*shallow*",
        "*fix: fetch the whole history: `fetch-depth: 0`*",
    ])
    assert aws_env.total_calls() == 0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (env("vpc-env", rev="origin/nope"),
         "*templates[[]0].rev: revision 'origin/nope' does not resolve to a commit in *; fix: fetch it*"),
        (env("gone-env"), "*templates[[]0].rev: templates/gone-env/v1/ does not exist at HEAD (*)*"),
        (env("vpc-env", version=2), "*templates/vpc-env/v2/ does not exist at HEAD*"),
    ],
)
def test_unresolvable_revisions_and_missing_bundles_are_manifest_errors_with_no_call(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]], entry: dict[str, Any],
    message: str
) -> None:
    path, _ = repo
    result = pytester.runpytest("--proton-manifest", str(manifest(path, entry)))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*invalid proton-sync manifest*", message])
    assert aws_env.total_calls() == 0


def test_a_manifest_outside_any_repository_says_so_once(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    outside = pytester.path / "not-a-repo"
    outside.mkdir()
    result = pytester.runpytest("--proton-manifest", str(manifest(outside, env("vpc-env"), env("eks-env"))),
                                "--proton-git-dir", str(outside))
    result.stdout.fnmatch_lines(["*2 entries need the git checkout (rev: or match: content), but *; fix: *"])
    assert aws_env.total_calls() == 0


def test_git_dir_option_points_at_the_checkout(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, commits = repo
    elsewhere = pytester.path / "gate"
    elsewhere.mkdir()
    aws_env.set_state(fake_state(env("vpc-env", synced=commits["c2"])))
    target = manifest(elsewhere, env("vpc-env"))
    pytester.runpytest("--proton-manifest", str(target), "--proton-git-dir", str(path)).assert_outcomes(passed=1)


def test_check_command_compares_the_manifest_with_the_checkout_without_aws(
    pytester: pytest.Pytester, repo: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_proton_sync import cli

    path, _ = repo
    complete = manifest(path, env("vpc-env"), env("eks-env"))
    assert cli.main(["check", str(complete)]) == 0
    assert "OK: 2 entries match the checkout at HEAD" in capsys.readouterr().out

    partial = manifest(path, env("vpc-env"), {"name": "eks-env", "type": "SERVICE", "version": 1},
                       env("web-env"))
    assert cli.main(["check", str(partial), "--rev", "HEAD"]) == 1
    problems = capsys.readouterr().err
    # An entry with no bundle at the revision is the entry's problem, at its line.
    assert "templates[2].rev: templates/web-env/v1/ does not exist at HEAD" in problems

    wrong_type = manifest(path, env("vpc-env"), {"name": "eks-env", "type": "SERVICE", "version": 1})
    assert cli.main(["check", str(wrong_type)]) == 1
    assert "SERVICE/eks-env@1: the manifest says SERVICE, but templates/eks-env/v1/schema/schema.yaml is an " \
           "ENVIRONMENT schema" in capsys.readouterr().err

    missing_entry = manifest(path, env("vpc-env"))
    assert cli.main(["check", str(missing_entry)]) == 1
    assert "ENVIRONMENT/eks-env@1: a bundle at templates/eks-env/v1/, but no manifest entry" in capsys.readouterr().err

    # Every problem at once: an entry with no bundle does not hide a bundle with no entry.
    both = manifest(path, env("vpc-env"), env("web-env"))
    assert cli.main(["check", str(both)]) == 1
    problems = capsys.readouterr().err
    assert "templates[1].rev: templates/web-env/v1/ does not exist at HEAD" in problems
    assert "ENVIRONMENT/eks-env@1: a bundle at templates/eks-env/v1/, but no manifest entry" in problems
    assert "in the manifest, but there is no bundle" not in problems  # said once, at the entry's line

    # Outside a checkout, check names its own option.
    outside = pytester.path / "outside"
    outside.mkdir()
    assert cli.main(["check", str(complete), "--git-dir", str(outside)]) == 1
    problems = capsys.readouterr().err
    assert "is not inside a git repository\nfix: run it in the repository's checkout, or give --git-dir PATH" \
        in problems
    assert "--proton-git-dir" not in problems

    single = manifest(path, env("vpc-env"))
    assert cli.main(["check", str(single), "--rev", "nope"]) == 1
    assert "--rev nope does not name a commit" in capsys.readouterr().err


def test_a_checkout_of_another_repository_is_said_once_as_a_warning(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]]
) -> None:
    path, commits = repo
    aws_env.set_state(fake_state(env("vpc-env", synced=commits["c2"])))
    target = manifest(path, env("vpc-env"))
    git(path, "remote", "add", "origin", "https://github.com/acme/something-else.git")
    # The plugin's own warnings are counted: botocore 1.38 on Python 3.12 adds DeprecationWarnings of its own.
    result = pytester.runpytest("--proton-manifest", str(target), "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*proton-sync: the checkout * has remotes https://github.com/acme/something-else.git,"
                                 " none of them acme/platform-templates*"])
    assert result.stdout.str().count("proton-sync: the checkout") == 1
    git(path, "remote", "set-url", "origin", "git@github.com:acme/platform-templates.git")
    result = pytester.runpytest("--proton-manifest", str(target), "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "proton-sync: the checkout" not in result.stdout.str()


@pytest.mark.parametrize(
    ("section", "entry", "message"),
    [
        # A template directory that is not at the commit: comparing two absent directories would be "equal".
        ("templates", {"name": "gone-env", "type": "ENVIRONMENT", "version": 1},
         "*templates[[]0].sha: templates/gone-env/v1/ does not exist at *: check the entry's name*"),
        # An ops file that is not at the commit names no spec: an empty bundle would compare {} with {} and pass.
        ("service_instances", {"service": "web-svc", "name": "prod", "ops_file": "ops.yaml"},
         "*service_instances[[]0]: nothing to compare: give 'spec' (or 'ops_file')*"),
    ],
)
def test_a_literal_sha_matched_by_content_needs_its_files_at_that_commit(
    pytester: pytest.Pytester, aws_env: FakeServer, repo: tuple[Path, dict[str, str]], section: str,
    entry: dict[str, Any], message: str
) -> None:
    path, commits = repo
    data = {"version": 1, "defaults": {"repository": dict(REPO)},
            section: [{**entry, "sha": commits["c1"], "match": "content"}]}
    manifest_path = path / "proton-sync.yaml"
    manifest_path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = pytester.runpytest("--proton-manifest", str(manifest_path))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*invalid proton-sync manifest*", message])
    assert aws_env.total_calls() == 0
