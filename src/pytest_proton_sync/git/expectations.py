"""Expectations from the repository: ``rev:`` entries resolved in the pipeline's checkout, and content matching.

Before any API call, :meth:`Repository.resolve` turns each entry that needs the checkout (a ``rev:``, or
``match: content``) into a literal expectation: the *expected commit* is the last commit at or before the revision
that changed the target's bundle (its files, per kinds.py). A revision that does not resolve, or a bundle that does
not exist at it, is a manifest problem at the entry's line; history the checkout does not have (a shallow clone)
is the target's ``history_problem``, an *error*, never a guess.

After the fetch, :meth:`Repository.compare` says whether the bundle at the synced commit is identical (git tree and
blob ids) to the bundle at the expected commit, and if not which files differ and which commits changed them.

The git layer is checkout.py (a fixed number of git processes per run). Imports neither pytest nor boto3.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_proton_sync.git.bundles import repository_from_url
from pytest_proton_sync.git.checkout import CHANGED, Checkout, GitError
from pytest_proton_sync.kinds import kind_of
from pytest_proton_sync.manifest.loader import Manifest, ManifestError, entry_fields
from pytest_proton_sync.model import ContentComparison, Target
from pytest_proton_sync.yamlcheck.problems import Problem

SHALLOW_FIX = (
    "fetch the whole history: `fetch-depth: 0` with actions/checkout, `GIT_DEPTH: 0` in GitLab CI, "
    "or `git fetch --unshallow`"
)


class Repository:
    """The checkouts a run reads, opened lazily (one per work tree) and closed by :meth:`close`. Thread-safe."""

    def __init__(self, git_dir: str | None = None) -> None:
        self._git_dir = git_dir
        self._lock = threading.Lock()
        self._checkouts: dict[Path, Checkout] = {}
        self._by_directory: dict[Path, Checkout] = {}
        # Every resolved target's files, by the revision they were resolved at: a failure's "commits between" is
        # then one walk per (synced commit, revision) for all targets, not one git process per target.
        self._bundles_at: dict[str, dict[str, tuple[str, ...]]] = {}
        self._walks: dict[tuple[str, str], dict[str, tuple[list[tuple[str, str]], int]]] = {}
        self._walk_lock = threading.Lock()
        self.notes: list[str] = []  # things a person should know, said once (a checkout of another repository)

    def checkout_for(self, manifest: Path) -> Checkout:
        """--proton-git-dir if given, else the work tree holding the manifest. Raises GitError."""
        start = Path(self._git_dir) if self._git_dir else manifest.absolute().parent
        with self._lock:
            known = self._by_directory.get(start)
            if known is not None:
                return known
            checkout = Checkout.open(start)
            checkout = self._checkouts.setdefault(checkout.root, checkout)
            self._by_directory[start] = checkout
            return checkout

    def close(self) -> None:
        with self._lock:
            for checkout in self._checkouts.values():
                checkout.close()
            self._checkouts.clear()
            self._by_directory.clear()

    # -- before the fetch -------------------------------------------------------------------------------------
    def resolve(self, manifest: Manifest, display: str) -> tuple[Target, ...]:
        """``manifest``'s targets with every ``rev:`` (and ``match: content``) expectation made literal.

        Raises ManifestError (file:line, field) for a revision that does not resolve or a bundle that does not exist
        at it, and for a checkout that cannot be opened at all (git missing, no work tree).
        """
        targets = manifest.targets
        wanted = [index for index, target in enumerate(targets) if target.expectation.needs_checkout]
        if not wanted:
            return targets
        fields = entry_fields(targets)
        try:
            checkout = self.checkout_for(manifest.path)
        except GitError as error:
            first = targets[wanted[0]]
            raise ManifestError([Problem(display, first.line or None, None, fields[wanted[0]],
                                         f"{len(wanted)} entries need the git checkout (rev: or match: content), "
                                         f"but {error.problem}; fix: {error.fix}")]) from None
        problems: list[Problem] = []
        resolved = list(targets)
        revisions = checkout.resolve(_revision(targets[index]) for index in wanted)
        by_revision: dict[str, list[int]] = {}
        for index in wanted:
            target = targets[index]
            revision = _revision(target)
            sha = revisions.get(revision)
            if sha is None:
                problems.append(_unresolved(display, target, fields[index], revision, checkout))
            elif target.expectation.rev is None:  # a literal sha compared by content: it is its own expected commit
                resolved[index] = replace(target, expectation=replace(target.expectation, sha=sha))
            else:
                by_revision.setdefault(sha, []).append(index)
        for sha, indexes in by_revision.items():
            bundles = {str(index): self.bundle(checkout, targets[index], sha) for index in indexes}
            changes = checkout.bundle_changes(sha, {key: paths for key, paths in bundles.items() if paths})
            for index in indexes:
                target = targets[index]
                bundle = bundles[str(index)]
                expectation = replace(target.expectation, rev_sha=sha, bundle=bundle)
                change = changes.get(str(index))
                absent = [path for path, oid in (change.contents if change else ()) if oid is None]
                if not bundle:
                    problems.append(Problem(display, target.line or None, None, fields[index],
                                            f"nothing to compare: give {kind_of(target).bundle_keys} so the checkout "
                                            "can say which files this entry's sync deploys"))
                elif change is None or absent:
                    problems.append(Problem(display, target.line or None, None, fields[index] + ".rev",
                                            f"{', '.join(absent or bundle)} does not exist at {target.expectation.rev} "
                                            f"({sha[:7]}): check the entry's name and the repository's directory"))
                elif change.state == CHANGED:
                    expectation = replace(expectation, sha=str(change.commit))
                else:
                    expectation = replace(expectation, history_problem=(
                        f"cannot tell which commit last changed {', '.join(bundle)} at or before "
                        f"{target.expectation.rev} ({sha[:7]}): {change.reason}\n  fix: {SHALLOW_FIX}"))
                resolved[index] = replace(target, expectation=expectation)
                with self._walk_lock:
                    self._bundles_at.setdefault(sha, {})[_bundle_key(target)] = bundle
        if problems:
            raise ManifestError(problems)
        self._note_foreign_remotes(checkout, [targets[index] for index in wanted])
        return tuple(resolved)

    def _note_foreign_remotes(self, checkout: Checkout, targets: Sequence[Target]) -> None:
        """Say so when no remote of the checkout looks like the repository the entries name: the expected commits
        then come from another repository's history (a manifest kept apart from the templates needs sha:, or
        --proton-git-dir pointing at the templates' checkout)."""
        remotes = checkout.remote_urls()
        known = {found[1].lower() for url in remotes.values() if (found := repository_from_url(url))}
        if not known:
            return  # no remote that names an owner/repo (a local clone, a file:// remote): nothing to compare
        for name in sorted({target.expectation.repository.name for target in targets}):
            note = (f"the checkout {checkout.root} has remotes {', '.join(sorted(remotes.values()))}, none of them "
                    f"{name}, which the manifest's rev:/match: content entries name; expected commits come from "
                    "this checkout's history (point --proton-git-dir at a checkout of that repository)")
            if name.lower() not in known and note not in self.notes:
                self.notes.append(note)

    def bundle(self, checkout: Checkout, target: Target, commit: str) -> tuple[str, ...]:
        """The target's files at ``commit``: its kind's bundle, plus the files its index file names there (a
        stack's deployment file names its template; a proton-ops file names an instance's spec)."""
        expectation = target.expectation
        if not expectation.index_file:
            return expectation.bundle
        kind = kind_of(target)
        document = _yaml_at(checkout, commit, expectation.index_file)
        named = kind.files_named(document, target.name) if document is not None else ()
        own = (expectation.index_file,) if kind.index_is_content else ()
        return tuple(dict.fromkeys((*expectation.bundle, *own, *named)))

    def _commits_since(
        self, checkout: Checkout, target: Target, synced: str, expected: str, bundle: Sequence[str]
    ) -> tuple[list[tuple[str, str]], int]:
        """Commits between the synced and the expected commit that touch the target's files. For a ``rev:`` target
        these are the commits after the synced one up to the revision (the expected commit is the last of them to
        touch the files), found in one walk shared by every target resolved at that revision."""
        rev_sha = target.expectation.rev_sha
        with self._walk_lock:
            bundles = self._bundles_at.get(rev_sha or "", {})
            if rev_sha and _bundle_key(target) in bundles:
                walk = self._walks.get((synced, rev_sha))
                if walk is None and checkout.has_commit(synced):
                    walk = self._walks[(synced, rev_sha)] = checkout.commits_touching(synced, rev_sha, bundles)
                if walk is not None and walk.get(_bundle_key(target), ([], 0))[1]:
                    return walk[_bundle_key(target)]
        return _commits_either_way(checkout, synced, expected, bundle)

    # -- after the fetch ---------------------------------------------------------------------------------------
    def compare(self, target: Target, synced: str) -> ContentComparison:
        """The target's bundle at the ``synced`` commit against the expected commit."""
        expected = target.expectation.sha
        checkout = self.checkout_for(target.manifest)
        for commit in (synced, expected):
            if not checkout.has_commit(commit):
                return ContentComparison(synced, expected, equal=False, missing_commit=commit)
        bundle = self.bundle(checkout, target, expected)
        at_synced, at_expected = checkout.object_ids(synced, bundle), checkout.object_ids(expected, bundle)
        if at_synced == at_expected:
            return ContentComparison(synced, expected, equal=True)
        changes: list[tuple[str, str]] = []
        total = 0
        for path in bundle:
            listed, count = checkout.changed_files(synced, expected, path, limit=10)
            changes += listed
            total += count
        commits, commit_count = self._commits_since(checkout, target, synced, expected, bundle)
        return ContentComparison(
            synced, expected, equal=False, changes=tuple(changes[:10]), more_changes=max(0, total - 10),
            commits=tuple(commits[:5]), more_commits=max(0, commit_count - 5),
        )


def _bundle_key(target: Target) -> str:
    return "\0".join(target.key)


def _revision(target: Target) -> str:
    return target.expectation.rev if target.expectation.rev is not None else target.expectation.sha


def _unresolved(display: str, target: Target, field: str, revision: str, checkout: Checkout) -> Problem:
    what = "revision" if target.expectation.rev is not None else "commit"
    where = "rev" if target.expectation.rev is not None else "sha"
    shallow = " (the checkout is shallow)" if checkout.is_shallow else ""
    return Problem(display, target.line or None, None, f"{field}.{where}",
                   f"{what} {revision!r} does not resolve to a commit in {checkout.root}{shallow}; fix: fetch it "
                   "(e.g. `git fetch origin <branch>`, or `fetch-depth: 0` with actions/checkout) or correct the "
                   f"{what}")


def _commits_either_way(
    checkout: Checkout, a: str, b: str, paths: Sequence[str]
) -> tuple[list[tuple[str, str]], int]:
    """Commits touching ``paths`` between ``a`` and ``b``, whichever is the newer (the synced commit may be behind
    the expected one, or ahead of it)."""
    commits, count = checkout.commits_between(a, b, paths, limit=5)
    if count:
        return commits, count
    return checkout.commits_between(b, a, paths, limit=5)


def _yaml_at(checkout: Checkout, commit: str, file: str) -> dict[str, Any] | None:
    """A YAML mapping file of the repository at ``commit`` (None when absent, too large or not a mapping)."""
    import yaml

    try:
        data = checkout.read_blob(commit, file, limit=256 * 1024)
        document = yaml.safe_load(data.decode("utf-8", "replace")) if data is not None else None
    except (GitError, yaml.YAMLError):
        return None
    return document if isinstance(document, dict) else None
