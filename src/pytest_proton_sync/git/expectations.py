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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_proton_sync.git.bundles import repository_from_url
from pytest_proton_sync.git.checkout import CHANGED, Checkout, GitError
from pytest_proton_sync.kinds import kind_of
from pytest_proton_sync.manifest.loader import Manifest, ManifestError, entry_fields
from pytest_proton_sync.model import ContentComparison, Entry, Expectation, Target
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
        # Every rev: target resolved here, by its revision (rev_sha) and key: a failure's "commits between" is then
        # one walk per (synced commit, revision) for all of them, not one git process per target.
        self._resolved_at: dict[str, dict[str, Target]] = {}
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
        """``manifest``'s entries as targets, every ``rev:`` (and ``match: content``) expectation made literal.

        Raises ManifestError (file:line, field) for a revision that does not resolve or a bundle that does not exist
        at it, and for a checkout that cannot be opened at all (git missing, no work tree).
        """
        entries = manifest.targets
        wanted = [index for index, entry in enumerate(entries) if entry.expectation.needs_checkout]
        if not wanted:
            return tuple(entry.literal() for entry in entries)
        fields = entry_fields(entries)
        checkout = self._checkout_for_entries(manifest, display, wanted, fields)
        problems: list[Problem] = []
        resolved: dict[int, Target] = {}
        revisions = checkout.resolve(_revision(entries[index]) for index in wanted)
        by_revision: dict[str, list[int]] = {}
        for index in wanted:
            entry = entries[index]
            sha = revisions.get(_revision(entry))
            if sha is None:
                problems.append(_unresolved(display, entry, fields[index], _revision(entry), checkout))
            elif entry.expectation.rev is None:  # a literal sha compared by content: it is its own expected commit
                literal = self._literal_by_content(checkout, display, entry, fields[index], sha)
                if isinstance(literal, Problem):
                    problems.append(literal)
                else:
                    resolved[index] = literal
            else:
                by_revision.setdefault(sha, []).append(index)
        for sha, indexes in by_revision.items():
            found = self._resolve_at(checkout, display, sha, {index: entries[index] for index in indexes}, fields)
            problems += [answer for answer in found.values() if isinstance(answer, Problem)]
            resolved.update((index, answer) for index, answer in found.items() if isinstance(answer, Target))
        if problems:
            raise ManifestError(problems)
        self._note_foreign_remotes(checkout, [entries[index] for index in wanted])
        return tuple(resolved.get(index) or entry.literal() for index, entry in enumerate(entries))

    def _checkout_for_entries(self, manifest: Manifest, display: str, wanted: Sequence[int],
                              fields: Sequence[str]) -> Checkout:
        """The checkout the ``wanted`` entries need; a checkout that cannot be opened is a problem of the first."""
        try:
            return self.checkout_for(manifest.path)
        except GitError as error:
            first = manifest.targets[wanted[0]]
            raise ManifestError([Problem(display, first.line or None, None, fields[wanted[0]],
                                         f"{len(wanted)} entries need the git checkout (rev: or match: content), "
                                         f"but {error.problem}; fix: {error.fix}")]) from None

    def _literal_by_content(self, checkout: Checkout, display: str, entry: Entry, field: str,
                            sha: str) -> Target | Problem:
        """A ``sha:`` entry compared by content: its files at that commit. No files, or files absent there, is a
        problem of the entry, as for ``rev:``: comparing nothing with nothing would pass whatever was synced."""
        bundle = self.bundle(checkout, entry, sha)
        try:
            absent = [path for path, oid in checkout.object_ids(sha, bundle).items() if oid is None]
        except GitError as error:
            return Problem(display, entry.line or None, None, field + ".sha",
                           f"cannot read the entry's files at {sha[:7]}: {error.problem}; fix: {error.fix}")
        if not bundle:
            return Problem(display, entry.line or None, None, field,
                           f"nothing to compare: give {kind_of(entry).bundle_keys} so the checkout can say which "
                           "files this entry's sync deploys")
        if absent:
            return Problem(display, entry.line or None, None, field + ".sha",
                           f"{', '.join(absent)} does not exist at {sha[:7]}: check the entry's name and the "
                           "repository's directory")
        return entry.resolved(replace(entry.literal().expectation, sha=sha, bundle=bundle))

    def _resolve_at(self, checkout: Checkout, display: str, rev_sha: str, entries: Mapping[int, Entry],
                    fields: Sequence[str]) -> dict[int, Target | Problem]:
        """The ``rev:`` entries whose revision is ``rev_sha``: each one's target, or the problem of its entry. One
        walk of the history answers all of them; the targets are kept, so a failure's "commits between" is one
        walk per (synced commit, revision) for all of them too."""
        bundles = {index: self.bundle(checkout, entry, rev_sha) for index, entry in entries.items()}
        changes = checkout.bundle_changes(rev_sha, {str(index): paths for index, paths in bundles.items() if paths})
        answers: dict[int, Target | Problem] = {}
        for index, entry in entries.items():
            declared, bundle = entry.expectation, bundles[index]
            change = changes.get(str(index))
            absent = [path for path, oid in (change.contents if change else ()) if oid is None]
            if not bundle:
                answers[index] = Problem(display, entry.line or None, None, fields[index],
                                         f"nothing to compare: give {kind_of(entry).bundle_keys} so the checkout "
                                         "can say which files this entry's sync deploys")
            elif change is None or absent:
                answers[index] = Problem(display, entry.line or None, None, fields[index] + ".rev",
                                         f"{', '.join(absent or bundle)} does not exist at {declared.rev} "
                                         f"({rev_sha[:7]}): check the entry's name and the repository's directory")
            else:
                expected, problem = (str(change.commit), None) if change.state == CHANGED else ("", (
                    f"cannot tell which commit last changed {', '.join(bundle)} at or before "
                    f"{declared.rev} ({rev_sha[:7]}): {change.reason}\n  fix: {SHALLOW_FIX}"))
                answers[index] = entry.resolved(Expectation(
                    expected, declared.repository, rev=declared.rev, match=declared.match, bundle=bundle,
                    rev_sha=rev_sha, history_problem=problem))
        with self._walk_lock:
            shared = self._resolved_at.setdefault(rev_sha, {})
            shared.update((_bundle_key(answer), answer) for answer in answers.values() if isinstance(answer, Target))
        return answers

    def _note_foreign_remotes(self, checkout: Checkout, targets: Sequence[Entry]) -> None:
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

    def bundle(self, checkout: Checkout, entry: Entry, commit: str) -> tuple[str, ...]:
        """The entry's files at ``commit``: its own paths, plus the files its index file names there (a stack's
        deployment file names its template; a proton-ops file names an instance's spec)."""
        declared = entry.expectation
        if not declared.index_file:
            return declared.paths
        kind = kind_of(entry)
        document = _yaml_at(checkout, commit, declared.index_file)
        named = kind.files_named(document, entry.name) if document is not None else ()
        own = (declared.index_file,) if kind.index_is_content else ()
        return tuple(dict.fromkeys((*declared.paths, *own, *named)))

    def _commits_since(
        self, checkout: Checkout, target: Target, synced: str, expected: str
    ) -> tuple[list[tuple[str, str]], int]:
        """Commits between the synced and the expected commit that touch the target's files. For a ``rev:`` target
        these are the commits after the synced one up to the revision (the expected commit is the last of them to
        touch the files), found in one walk shared by every target resolved at that revision."""
        rev_sha = target.expectation.rev_sha
        with self._walk_lock:
            shared = self._resolved_at.get(rev_sha or "", {})
            if rev_sha and _bundle_key(target) in shared:
                walk = self._walks.get((synced, rev_sha))
                if walk is None and checkout.has_commit(synced):
                    bundles = {key: resolved.expectation.bundle for key, resolved in shared.items()}
                    walk = self._walks[(synced, rev_sha)] = checkout.commits_touching(synced, rev_sha, bundles)
                if walk is not None and walk.get(_bundle_key(target), ([], 0))[1]:
                    return walk[_bundle_key(target)]
        return _commits_either_way(checkout, synced, expected, target.expectation.bundle)

    # -- after the fetch ---------------------------------------------------------------------------------------
    def compare(self, target: Target, synced: str) -> ContentComparison:
        """The target's bundle (as resolved) at the ``synced`` commit against the expected commit."""
        expected, bundle = target.expectation.sha, target.expectation.bundle
        checkout = self.checkout_for(target.manifest)
        for commit in (synced, expected):
            if not checkout.has_commit(commit):
                return ContentComparison(synced, expected, equal=False, missing_commit=commit)
        at_synced, at_expected = checkout.object_ids(synced, bundle), checkout.object_ids(expected, bundle)
        if at_synced == at_expected:
            return ContentComparison(synced, expected, equal=True)
        changes: list[tuple[str, str]] = []
        total = 0
        for path in bundle:
            listed, count = checkout.changed_files(synced, expected, path, limit=10)
            changes += listed
            total += count
        commits, commit_count = self._commits_since(checkout, target, synced, expected)
        return ContentComparison(
            synced, expected, equal=False, changes=tuple(changes[:10]), more_changes=max(0, total - 10),
            commits=tuple(commits[:5]), more_commits=max(0, commit_count - 5),
        )


def _bundle_key(target: Target) -> str:
    return "\0".join(target.key)


def _revision(entry: Entry) -> str:
    """What the checkout resolves for ``entry``: its rev:, else its literal sha."""
    return entry.expectation.rev if entry.expectation.rev is not None else entry.literal().expectation.sha


def _unresolved(display: str, target: Entry, field: str, revision: str, checkout: Checkout) -> Problem:
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
