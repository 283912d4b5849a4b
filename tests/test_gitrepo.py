"""The git layer against real repositories built by the tests (git fast-import, clones over file://)."""

from __future__ import annotations

import gc
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_proton_sync.git.checkout import ABSENT, CHANGED, UNKNOWN, Checkout, GitError, LastChange
from pytest_proton_sync.text.safetext import clean

from .gitrepos import History, environment_bundle, git, service_bundle

A, B, C = "templates/a/v1/", "templates/b/v1/", "templates/c/v1/"


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """main: base (a, b) -> touch_a -> touch_c (another template only) -> touch_b -> merge of feature (a again)
    -> revert_b (b back to its base content). feature branches from touch_b and changes a."""
    history = (
        History()
        .commit("base", {**environment_bundle("a"), **service_bundle("b"), "README.md": "hi\n"})
        .commit("touch_a", {"templates/a/v1/infrastructure/cloudformation.yaml": "Resources: a2\n"})
        .commit("touch_c", environment_bundle("c"))
        .commit("touch_b", {"templates/b/v1/instance_infrastructure/cloudformation.yaml": "Resources: b2\n"})
        .commit("feature_a", {"templates/a/v1/infrastructure/cloudformation.yaml": "Resources: a3\n"},
                branch="feature", parent="touch_b")
        .commit("main_readme", {"README.md": "hello\n"})
        .commit("merge", {"templates/a/v1/infrastructure/cloudformation.yaml": "Resources: a3\n"},
                merge="feature_a", message="Merge feature")
        .commit("revert_b", {"templates/b/v1/instance_infrastructure/cloudformation.yaml": "Resources: x\n"},
                message="Revert \"touch b\"")
        .tag("v1.0", "touch_a")
        .tag("v2.0", "merge", annotated=True)
    )  # fmt: skip
    path = tmp_path / "repo"
    return path, history.build(path)


@pytest.fixture
def checkout(repo: tuple[Path, dict[str, str]]) -> Iterator[Checkout]:
    with Checkout.open(repo[0]) as opened:
        yield opened


def test_open_finds_the_work_tree_from_a_subdirectory_and_a_file(repo: tuple[Path, dict[str, str]]) -> None:
    path, _ = repo
    (path / "sub" / "dir").mkdir(parents=True)
    (path / "sub" / "file.txt").write_text("x")
    for start in (path / "sub" / "dir", path / "sub" / "file.txt", str(path)):
        with Checkout.open(start) as opened:
            assert opened.root == path.resolve()
            assert not opened.is_shallow


def test_resolve_revisions(checkout: Checkout, repo: tuple[Path, dict[str, str]]) -> None:
    _, shas = repo
    revs = ["HEAD", "HEAD~2", "main", "feature", "v1.0", "v2.0", shas["touch_c"][:10], "HEAD^2", "main~1^2"]
    resolved = checkout.resolve(revs)
    assert (
        resolved
        == {
            "HEAD": shas["revert_b"],
            "HEAD~2": shas["main_readme"],
            "main": shas["revert_b"],
            "feature": shas["feature_a"],
            "v1.0": shas["touch_a"],
            "v2.0": shas["merge"],  # an annotated tag peels to its commit
            shas["touch_c"][:10]: shas["touch_c"],
            "HEAD^2": None,  # not a merge: no second parent
            "main~1^2": shas["feature_a"],
        }
    )


@pytest.mark.parametrize(
    "rev",
    ["nope", "", " HEAD", "HEAD~100", "HEAD:README.md", "0" * 40, "--all", "HEAD\nmain", "v1.0..v2.0", "HEAD^{tree}"],
)
def test_unresolvable_revisions_are_none(checkout: Checkout, rev: str) -> None:
    assert checkout.resolve([rev, "HEAD"])[rev] is None
    assert checkout.resolve(["HEAD"])["HEAD"] is not None  # the batch process survived the bad request


BUNDLE_FILES = [
    f"{bundle}{name}"
    for bundle, names in (
        (A, ["schema/schema.yaml", "infrastructure/cloudformation.yaml"]),
        (B, ["schema/schema.yaml", "instance_infrastructure/cloudformation.yaml"]),
        (C, ["schema/schema.yaml", "infrastructure/cloudformation.yaml"]),
    )
    for name in names
]


def last_changes(checkout: Checkout, rev_sha: str, paths: list[str]) -> dict[str, LastChange]:
    """Each path as a bundle of its own: the last commit at or before rev_sha that changed it."""
    return checkout.bundle_changes(rev_sha, {path: [path] for path in paths})


@pytest.mark.parametrize("many", [False, True], ids=["few-paths-limit-the-walk", "many-paths-unlimited-walk"])
def test_last_changes_follow_the_first_parent_chain(
    checkout: Checkout, repo: tuple[Path, dict[str, str]], many: bool
) -> None:
    _, shas = repo
    extra = BUNDLE_FILES if many else []
    changes = last_changes(checkout,
        shas["revert_b"], [A, B, C, "templates/d/v1/", "README.md", "templates/a/v1", *extra]
    )
    if many:  # 13 paths: the walk has no pathspec and the output is filtered in Python
        assert [changes[path].commit for path in BUNDLE_FILES] == [
            shas["base"],
            shas["merge"],
            shas["base"],
            shas["revert_b"],
            shas["touch_c"],
            shas["touch_c"],
        ]
    assert changes[A].contents == ((A, checkout.object_ids(shas["revert_b"], [A])[A]),)
    assert changes[A].contents[0][1] is not None
    assert changes["templates/d/v1/"].contents == (("templates/d/v1/", None),)
    changes = {path: change for path, change in changes.items() if path not in extra}
    assert {path: (change.state, change.commit) for path, change in changes.items()} == {
        # the merge brings feature_a's change into main: the merge is the commit main moved to
        A: (CHANGED, shas["merge"]),
        # a revert is a change (content equals base, sha differs)
        B: (CHANGED, shas["revert_b"]),
        C: (CHANGED, shas["touch_c"]),
        "templates/d/v1/": (ABSENT, None),
        "README.md": (CHANGED, shas["main_readme"]),
        "templates/a/v1": (ABSENT, None),  # no trailing slash: a file path, and there is no such file
    }
    # At earlier revisions: a commit touching only another template (touch_c) does not move a or b.
    earlier = last_changes(checkout, shas["touch_c"], [A, B, C])
    assert [(earlier[p].state, earlier[p].commit) for p in (A, B, C)] == [
        (CHANGED, shas["touch_a"]),
        (CHANGED, shas["base"]),
        (CHANGED, shas["touch_c"]),
    ]
    assert last_changes(checkout, shas["touch_a"], [C])[C].state == ABSENT
    # On the feature branch the change is feature_a itself.
    assert last_changes(checkout, shas["feature_a"], [A])[A].commit == shas["feature_a"]


def test_merge_that_takes_the_first_parents_version_is_not_a_change(tmp_path: Path) -> None:
    shas = (
        History()
        .commit("base", environment_bundle("a"))
        .commit("main_a", {"templates/a/v1/x": "main\n"})
        .commit("side", {"other.txt": "side\n"}, branch="side", parent="base")
        .commit("merge", {"other.txt": "side\n"}, merge="side")
        .build(tmp_path / "r")
    )
    with Checkout.open(tmp_path / "r") as opened:
        assert last_changes(opened, shas["merge"], [A])[A].commit == shas["main_a"]
        assert last_changes(opened, shas["merge"], ["other.txt"])["other.txt"].commit == shas["merge"]


def test_revert_restores_content_ids_but_not_the_sha(checkout: Checkout, repo: tuple[Path, dict[str, str]]) -> None:
    _, shas = repo
    at_base = checkout.object_ids(shas["base"], [B, f"{B}schema/schema.yaml"])
    at_revert = checkout.object_ids(shas["revert_b"], [B, f"{B}schema/schema.yaml"])
    at_touch = checkout.object_ids(shas["touch_b"], [B])
    assert at_base == at_revert
    assert at_touch[B] != at_base[B]
    assert at_base[B] is not None and len(at_base[B] or "") == 40


def test_object_ids_kinds_and_absence(checkout: Checkout, repo: tuple[Path, dict[str, str]]) -> None:
    _, shas = repo
    head = shas["revert_b"]
    ids = checkout.object_ids(head, [A, "templates/a/v1", "README.md", "README.md/", "templates/", "nope/x", "a/b/c/"])
    assert ids["templates/a/v1"] is None  # a directory is not a file
    assert ids["README.md/"] is None  # a file is not a directory
    assert ids["nope/x"] is None and ids["a/b/c/"] is None
    assert ids[A] == git(checkout.root, "rev-parse", f"{head}:templates/a/v1")
    assert ids["README.md"] == git(checkout.root, "rev-parse", f"{head}:README.md")
    assert ids["templates/"] == git(checkout.root, "rev-parse", f"{head}:templates")
    assert list(ids) == [A, "templates/a/v1", "README.md", "README.md/", "templates/", "nope/x", "a/b/c/"]


@pytest.mark.parametrize("path", ["/etc/passwd", "a/../b", "a//b", "./a", "a\nb", ""])
def test_bad_paths_are_git_errors(checkout: Checkout, repo: tuple[Path, dict[str, str]], path: str) -> None:
    with pytest.raises(GitError, match="fix:"):
        checkout.object_ids(repo[1]["base"], [path])


def test_has_commit(checkout: Checkout, repo: tuple[Path, dict[str, str]]) -> None:
    _, shas = repo
    assert checkout.has_commit(shas["base"])
    assert checkout.has_commit(shas["base"].upper())
    assert not checkout.has_commit("0" * 40)
    assert not checkout.has_commit("HEAD")  # a name is not a commit id
    blob = git(checkout.root, "rev-parse", f"{shas['base']}:README.md")
    assert not checkout.has_commit(blob)


def test_missing_commit_is_a_git_error(checkout: Checkout) -> None:
    with pytest.raises(GitError, match="not in this checkout") as caught:
        checkout.object_ids("1" * 40, [A])
    assert "fix: fetch more history" in str(caught.value)
    with pytest.raises(GitError, match="not a commit id"):
        last_changes(checkout, "HEAD", [A])


def test_changed_files_and_commits_between(checkout: Checkout, repo: tuple[Path, dict[str, str]]) -> None:
    _, shas = repo
    files, total = checkout.changed_files(shas["base"], shas["merge"], "templates/")
    assert total == 4
    assert files == [
        ("modified", "templates/a/v1/infrastructure/cloudformation.yaml"),
        ("modified", "templates/b/v1/instance_infrastructure/cloudformation.yaml"),
        ("added", "templates/c/v1/infrastructure/cloudformation.yaml"),
        ("added", "templates/c/v1/schema/schema.yaml"),
    ]
    assert checkout.changed_files(shas["merge"], shas["base"], C, limit=1) == (
        [("removed", "templates/c/v1/infrastructure/cloudformation.yaml")],
        2,
    )
    assert checkout.changed_files(shas["base"], shas["revert_b"], B) == ([], 0)
    assert checkout.changed_files(shas["base"], shas["main_readme"], "README.md") == ([("modified", "README.md")], 1)

    commits, total = checkout.commits_between(shas["base"], shas["revert_b"], [A, B])
    assert total == 4
    assert commits == [
        (shas["revert_b"][:7], 'Revert "touch b"'),
        (shas["feature_a"][:7], "feature_a"),
        (shas["touch_b"][:7], "touch_b"),
        (shas["touch_a"][:7], "touch_a"),
    ]
    assert checkout.commits_between(shas["base"], shas["revert_b"], [C], limit=0) == ([], 1)


def test_commit_subjects_are_stripped_of_control_characters(tmp_path: Path) -> None:
    evil = "deploy \x1b[31mred\x1b[0m \u202eevil\u202c\r::error::x \x07bell"
    shas = History().commit("one", {"f": "1"}).commit("two", {"f": "2"}, message=evil).build(tmp_path / "r")
    with Checkout.open(tmp_path / "r") as opened:
        (commit,), total = opened.commits_between(shas["one"], shas["two"], ["f"])
    assert total == 1
    # Escaped where they were dropped before: what the subject holds stays visible, and inert.
    assert commit[1] == "deploy \\x1b[31mred\\x1b[0m \\u202eevil\\u202c\\r::error::x \\x07bell"
    assert clean("a\tb\nc\x00d\x9be", fold_spaces=True) == "a b c\\x00d\\x9be"


@pytest.fixture
def shallow_clone(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[tuple[Checkout, dict[str, str]]]:
    path, shas = repo
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "2", "--no-local", f"file://{path}", str(clone))
    with Checkout.open(clone) as opened:
        yield opened, shas


def test_shallow_clone_never_names_the_boundary_as_the_change(shallow_clone: tuple[Checkout, dict[str, str]]) -> None:
    opened, shas = shallow_clone
    assert opened.is_shallow
    head = opened.resolve(["HEAD"])["HEAD"]
    assert head == shas["revert_b"]
    changes = last_changes(opened, head, [A, B, C, "templates/zzz/v1/"])
    # depth 2: revert_b and merge are here; merge is the boundary (its parents are cut off)
    assert (changes[B].state, changes[B].commit) == (CHANGED, shas["revert_b"])  # proven inside the history
    assert changes[A].state == UNKNOWN  # changed *at* the boundary commit: it looks like an addition, no proof
    assert changes[C].state == UNKNOWN and changes[C].commit is None
    assert "shallow" in changes[C].reason and "unknown" in changes[C].describe()
    assert changes["templates/zzz/v1/"].state == ABSENT  # absence is proven by the trees, whatever the depth
    assert not opened.has_commit(shas["touch_c"])
    assert opened.has_commit(shas["merge"])
    assert opened.resolve(["HEAD~2", "origin/main", "origin/HEAD"]) == {
        "HEAD~2": None,
        "origin/main": shas["revert_b"],
        "origin/HEAD": shas["revert_b"],
    }
    with pytest.raises(GitError, match="fetch-depth: 0"):
        opened.object_ids(shas["base"], [A])


def test_depth_one_clone_answers_unknown_for_everything_present(
    repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, shas = repo
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{path}", str(tmp_path / "d1"))
    with Checkout.open(tmp_path / "d1") as opened:
        changes = last_changes(opened, shas["revert_b"], [A, B, "README.md", "gone/"])
    assert [changes[p].state for p in (A, B, "README.md", "gone/")] == [UNKNOWN, UNKNOWN, UNKNOWN, ABSENT]


def test_full_clone_remote_branches_and_credentials_in_urls(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    clone = tmp_path / "full"
    git(tmp_path, "clone", "-q", f"file://{path}", str(clone))
    git(clone, "remote", "add", "upstream", "https://user:s3cret-token@example.com/acme/templates.git")
    with Checkout.open(clone) as opened:
        assert opened.resolve(["origin/main", "origin/feature"]) == {
            "origin/main": shas["revert_b"],
            "origin/feature": shas["feature_a"],
        }
        assert opened.remote_urls() == {
            "origin": f"file://{path}",
            "upstream": "https://example.com/acme/templates.git",
        }
        assert last_changes(opened, shas["revert_b"], [A])[A].commit == shas["merge"]


def test_odd_path_names_round_trip(tmp_path: Path) -> None:
    odd = 'templates/na\u00efve "quoted" name/v1/'
    weird_file = "spec files/caf\u00e9 *.yaml"
    shas = (
        History()
        .commit("one", {f"{odd}x": "1", weird_file: "s", "spec files/other.yaml": "o"})
        .commit("two", {f"{odd}x": "2"})
        .build(tmp_path / "r")
    )
    with Checkout.open(tmp_path / "r") as opened:
        changes = last_changes(opened, shas["two"], [odd, weird_file])
        assert changes[odd].commit == shas["two"]
        assert changes[weird_file].commit == shas["one"]  # '*' is literal, not a glob matching other.yaml
        assert opened.changed_files(shas["one"], shas["two"], odd) == ([("modified", f"{odd}x")], 1)


def test_similar_prefixes_are_not_confused(tmp_path: Path) -> None:
    shas = (
        History()
        .commit("one", {"t/a/v1/x": "1", "t/a/v10/x": "1", "t/a/v1.yaml": "1"})
        .commit("two", {"t/a/v10/x": "2", "t/a/v1.yaml": "2"})
        .build(tmp_path / "r")
    )
    with Checkout.open(tmp_path / "r") as opened:
        changes = last_changes(opened, shas["two"], ["t/a/v1/", "t/a/v10/", "t/a/v1.yaml"])
    assert [changes[p].commit for p in ("t/a/v1/", "t/a/v10/", "t/a/v1.yaml")] == [
        shas["one"],
        shas["two"],
        shas["two"],
    ]


def test_deleted_bundle_is_absent_and_readded_bundle_changes(tmp_path: Path) -> None:
    shas = (
        History()
        .commit("add", environment_bundle("a"))
        .commit("delete", {path: None for path in environment_bundle("a")})
        .commit("readd", environment_bundle("a"))
        .build(tmp_path / "r")
    )
    with Checkout.open(tmp_path / "r") as opened:
        assert last_changes(opened, shas["delete"], [A])[A].state == ABSENT
        assert last_changes(opened, shas["readd"], [A])[A].commit == shas["readd"]
        assert opened.object_ids(shas["add"], [A]) == opened.object_ids(shas["readd"], [A])


def test_environment_pointing_elsewhere_is_ignored(
    repo: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    History().commit("x", {"f": "1"}).build(other)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    path, shas = repo
    with Checkout.open(path) as opened:
        assert opened.resolve(["HEAD"])["HEAD"] == shas["revert_b"]


def test_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="not inside a git repository") as caught:
        Checkout.open(tmp_path / "plain")
    assert str(caught.value).splitlines()[-1].startswith("fix: ")
    with pytest.raises(GitError, match="does not exist"):
        Checkout.open(tmp_path / "missing")


def test_git_not_installed(repo: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GitError, match="git is not installed") as caught:
        Checkout.open(repo[0])
    assert "fix: install git" in str(caught.value)


def test_bare_repository(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    git(tmp_path, "clone", "-q", "--bare", str(path), str(tmp_path / "bare.git"))
    with Checkout.open(tmp_path / "bare.git") as opened:
        assert last_changes(opened, shas["revert_b"], [A])[A].commit == shas["merge"]
    with pytest.raises(GitError, match=r"inside a \.git directory"):
        Checkout.open(path / ".git")


def test_a_fixed_number_of_git_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper `git` first on PATH logs every process: the count must not grow with the number of bundles."""
    bundles = [f"templates/n{index}/v1/" for index in range(150)]
    history = History().commit("base", {f"{path}f": "0" for path in bundles})
    for index in range(0, 150, 7):
        history.commit(f"c{index}", {f"{bundles[index]}f": "1", f"templates/n{index + 1}/v1/g": "1"})
    shas = history.build(tmp_path / "r")
    log = tmp_path / "git-calls.log"
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    real_git = shutil.which("git")
    assert real_git is not None
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real_git}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    with Checkout.open(tmp_path / "r") as opened:
        resolved = opened.resolve(["HEAD", "main", "HEAD~3"])
        head = resolved["HEAD"]
        assert head is not None and resolved["HEAD~3"] is not None
        changes = last_changes(opened, head, [*bundles, "missing/"])
        expected_commits = {change.commit for change in changes.values() if change.commit is not None}
        for commit in expected_commits:
            opened.object_ids(commit, bundles)
        opened.object_ids(shas["base"], bundles)
        opened.has_commit(shas["c7"])
        opened.changed_files(shas["base"], head, "templates/")
    assert changes[bundles[7]].commit == shas["c7"]
    assert changes[bundles[8]].commit == shas["c7"]
    assert changes[bundles[2]].commit == shas["base"]
    assert changes["missing/"].state == ABSENT
    calls = log.read_text().splitlines()
    assert len(calls) == 3, calls
    assert calls[0].split()[-1] == "--show-cdup"  # rev-parse
    assert sum("cat-file --batch" in call for call in calls) == 1
    assert sum(" log --stdin " in f" {call} " for call in calls) == 1


def test_close_stops_the_batch_process_and_refuses_more(repo: tuple[Path, dict[str, str]]) -> None:
    opened = Checkout.open(repo[0])
    assert opened.resolve(["HEAD"])["HEAD"] == repo[1]["revert_b"]
    (process,) = [batch.process for batch in opened._batches]
    opened.close()
    assert process.poll() is not None
    opened.close()  # idempotent
    with pytest.raises(GitError, match="closed"):
        opened.resolve(["HEAD"])


def test_a_forgotten_checkout_stops_its_process_when_collected(repo: tuple[Path, dict[str, str]]) -> None:
    opened = Checkout.open(repo[0])
    opened.resolve(["HEAD"])
    (process,) = [batch.process for batch in opened._batches]
    del opened
    gc.collect()
    assert process.poll() is not None


def test_concurrent_callers_get_consistent_answers(checkout: Checkout, repo: tuple[Path, dict[str, str]]) -> None:
    _, shas = repo
    expected = {label: checkout.object_ids(sha, [A, B, C]) for label, sha in shas.items()}
    fresh = Checkout.open(checkout.root)
    results: dict[str, dict[str, str | None]] = {}
    errors: list[BaseException] = []

    def work(label: str) -> None:
        try:
            results[label] = fresh.object_ids(shas[label], [A, B, C])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(label,)) for label in shas for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh.close()
    assert not errors
    assert results == expected


def test_blobless_partial_clone_answers_without_blobs(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    git(path, "config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "partial"
    git(tmp_path, "clone", "-q", "--filter=blob:none", "--no-checkout", f"file://{path}", str(clone))
    paths = [A, B, C, "README.md", f"{A}schema/schema.yaml", "nope.yaml", "templates/nope/"]
    with Checkout.open(path) as full:
        expected = full.object_ids(shas["revert_b"], paths)
        expected_changes = last_changes(full, shas["revert_b"], paths)
    with Checkout.open(clone) as partial:
        assert partial.object_ids(shas["revert_b"], paths) == expected  # blob ids from parent trees, no blob read
        assert last_changes(partial, shas["revert_b"], paths) == expected_changes
        assert not partial.has_commit("1" * 40)
        blob = expected["README.md"]
        assert blob is not None
        with pytest.raises(GitError, match="partial clone") as caught:
            partial.blobs([blob])
        assert "fix: fetch them" in str(caught.value)
        assert partial.resolve(["HEAD"])["HEAD"] == shas["revert_b"]  # a new batch process after the failure


def test_git_error_survives_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(GitError("problem text", "do this")))
    assert (error.problem, error.fix, str(error)) == ("problem text", "do this", "problem text\nfix: do this")


def test_bundle_changes_take_the_newest_change_of_any_path(tmp_path: Path) -> None:
    """A stack's bundle: its deployment file and the files it names. A deletion is a change of the bundle."""
    shas = (
        History()
        .commit("base", {"stacks/web.yaml": "d1", "cfn/web.yaml": "t1", "cfn/web-params.json": "p1", "x": "1"})
        .commit("template", {"cfn/web.yaml": "t2"})
        .commit("deployment", {"stacks/web.yaml": "d2"})
        .commit("unrelated", {"x": "2"})
        .commit("drop_params", {"cfn/web-params.json": None})
        .build(tmp_path / "r")
    )
    web = ["stacks/web.yaml", "cfn/web.yaml", "cfn/web-params.json"]
    with Checkout.open(tmp_path / "r") as opened:
        at = {label: opened.bundle_changes(shas[label], {"web": web, "gone": ["nope.yaml", "nope/"]}) for label in shas}
        ids_at_deployment = opened.object_ids(shas["deployment"], web)
    assert at["template"]["web"].commit == shas["template"]
    assert at["deployment"]["web"].commit == shas["deployment"]
    assert at["unrelated"]["web"].commit == shas["deployment"]
    assert at["drop_params"]["web"].commit == shas["drop_params"]  # an absent path of a present bundle counts
    assert at["unrelated"]["web"].contents == tuple(ids_at_deployment.items())
    assert dict(at["drop_params"]["web"].contents)["cfn/web-params.json"] is None
    assert at["base"]["gone"].state == ABSENT
    assert at["base"]["gone"].describe() == "gone: none of its files exists at the revision"


def test_bundle_changes_in_a_shallow_clone(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, shas = repo
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{path}", str(tmp_path / "s"))
    with Checkout.open(tmp_path / "s") as opened:
        changes = opened.bundle_changes(shas["revert_b"], {"a+b": [A, B], "a": [A], "a+missing": [A, "nope/"]})
    # b changed inside the visible history, so it is newer than anything beyond the boundary: proven
    assert (changes["a+b"].state, changes["a+b"].commit) == (CHANGED, shas["revert_b"])
    assert changes["a"].state == UNKNOWN
    assert changes["a+missing"].state == UNKNOWN
