"""Expectations from the repository: what a local git checkout says a target must be synced from.

Why the git command line, not dulwich or pygit2: git is on every CI runner already (no compiled wheel, no
new dependency), and only git itself implements shallow clones, partial clones, worktrees, alternates,
``safe.directory`` and the revision syntax (``HEAD~2``, ``origin/main``, ``v1.2^{commit}``) exactly as the
user's own git does. Its cost is process start-up, so the number of processes is FIXED per run, never one
per target:

* one ``git rev-parse`` when a :class:`Checkout` is opened;
* one long-lived ``git cat-file --batch`` process (behind a lock, answers memoised) for everything else that
  reads objects: resolving revisions (``rev^{commit}``), commit existence, and trees. Object ids of bundle
  paths come from *parsing the parent trees*, so a blob is never read (a blob-less partial clone works, and
  "the path is absent" is only ever said after reading the tree that would hold it);
* one ``git log`` walk per distinct revision for :meth:`Checkout.bundle_changes`,
  all paths at once, stopped as soon as every bundle is answered;
* for failure texts only: :meth:`Checkout.changed_files` is a tree diff in Python over the batch process (no
  new process); :meth:`Checkout.commits_between` runs one ``git log``.

Which commit "last changed" a bundle: ``git log --first-parent -m`` from the revision, i.e. along the branch
as the sync service saw it being pushed, each commit compared with its *first* parent. A merge that brings a
bundle change in from a side branch therefore counts as the change (it is the commit the branch moved to, and
the one a sync reports); a revert counts as a change (its sha differs even when the content equals an older
one: that is what ``match: content`` is for). Default history simplification would instead name the side
branch's commit, which the synced branch never pointed at; ``--full-history`` would list both.

Shallow clones: the boundary commit of a shallow clone has no parents, so it looks as if it added every file.
A path whose first change in the walk is at the boundary is reported as :data:`UNKNOWN`, never as changed
there. Paths absent at the revision are :data:`ABSENT` whatever the depth (proven by reading the trees).

Every git process runs without a shell, with ``--no-pager``, ``-c core.quotepath=off``, ``LC_ALL=C``,
``GIT_TERMINAL_PROMPT=0``, ``GIT_NO_LAZY_FETCH=1`` (a partial clone never reaches the network behind the
caller's back), ``--no-replace-objects`` (the sync sees the real objects, not local replacements) and
``--literal-pathspecs``; variables that would point git at another repository (``GIT_DIR``...) are removed.
"""

from __future__ import annotations

import subprocess
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "ABSENT",
    "CHANGED",
    "UNKNOWN",
    "Checkout",
    "FileChange",
    "GitError",
    "LastChange",
    "TreeEntry",
]

from pytest_proton_sync.git.history import HistoryWalks
from pytest_proton_sync.git.plumbing import (  # the checkout's private half
    _BLOB_MODES,
    _HEX,
    ABSENT,
    CHANGED,
    UNKNOWN,
    FileChange,
    GitError,
    LastChange,
    TreeEntry,
    _Batch,
    _check_path,
    _check_sha,
    _close_all,
    _environment,
    _git_executable,
    _parse_tree,
    _run,
    _strip_credentials,
)


class Checkout(HistoryWalks):
    """A git checkout (work tree or bare repository), read-only. Thread-safe; close() it, or use ``with``.

    Answers are memoised for the checkout's lifetime (a revision resolved once keeps its answer even if the
    branch moves): open one per run, so every target of the run is judged against the same snapshot.
    """

    def __init__(self, root: Path, git_dir: Path, shallow_file: Path, is_shallow: bool) -> None:
        self.root = root
        self.git_dir = git_dir
        self.is_shallow = is_shallow
        self._shallow_file = shallow_file
        self._git = _git_executable()
        self._environment = _environment()
        self._lock = threading.Lock()
        # The batch process lives in a list the finalizer shares: it is stopped on close(), when the checkout is
        # garbage-collected, or at interpreter exit (weakref.finalize runs atexit), whichever comes first.
        self._batches: list[_Batch] = []
        self._finalizer = weakref.finalize(self, _close_all, self._batches)
        self._closed = False
        self._objects: dict[str, tuple[str, str, bytes] | None] = {}
        self._trees: dict[str, dict[str, TreeEntry]] = {}
        self._ids: dict[tuple[str, str], str | None] = {}
        self._remotes: dict[str, str] | None = None

    # -- opening and closing -------------------------------------------------------------------------------

    @classmethod
    def open(cls, start: Path | str) -> Checkout:
        """The checkout containing ``start`` (a directory or a file in it). Raises :class:`GitError`."""
        start_path = Path(start).absolute()
        if not start_path.exists():
            raise GitError(f"{start_path} does not exist", "point at a directory inside the repository's checkout")
        directory = start_path if start_path.is_dir() else start_path.parent
        if not directory.is_dir():
            raise GitError(f"{start_path} does not exist", "point at a directory inside the repository's checkout")
        command = [
            "rev-parse",
            "--is-inside-work-tree",
            "--is-bare-repository",
            "--is-shallow-repository",
            "--absolute-git-dir",
            "--git-path",
            "shallow",
            "--show-cdup",
        ]
        output = _run(_git_executable(), command, directory).decode("utf-8", "surrogateescape").split("\n")
        if len(output) < 5 or output[0] not in ("true", "false") or output[2] not in ("true", "false"):
            raise GitError(
                f"`git rev-parse` in {directory} gave an answer this git layer does not understand",
                "use git 2.20 or newer",
            )
        inside_work_tree = output[0] == "true"
        git_dir = Path(output[3])
        shallow_file = directory / output[4]
        if inside_work_tree:
            root = (directory / (output[5] if len(output) > 5 else "")).resolve()
        elif output[1] == "true":
            root = git_dir
        else:
            raise GitError(
                f"{directory} is inside a .git directory, not a work tree",
                "point at the repository's work tree (the directory holding .git)",
            )
        return cls(root, git_dir, shallow_file, output[2] == "true")

    def close(self) -> None:
        """Stop the batch process. Idempotent; the checkout cannot be used afterwards."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> Checkout:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Checkout({str(self.root)!r}, shallow={self.is_shallow})"

    # -- plumbing --------------------------------------------------------------------------------------------

    def _command(self, *arguments: str) -> list[str]:
        return [
            self._git,
            "--no-pager",
            "--no-replace-objects",
            "--literal-pathspecs",
            "-c",
            "core.quotepath=off",
            "-c",
            "diff.relative=false",
            "-c",
            "log.showSignature=false",
            *arguments,
        ]

    def _ask(self, requests: Sequence[str]) -> list[tuple[str, str, bytes] | None]:
        """Memoised batch answers, one round trip for every request not seen before. Call with the lock held."""
        if self._closed:
            raise GitError("this checkout was closed", "open it again with Checkout.open()")
        new = [request for request in dict.fromkeys(requests) if request not in self._objects]
        if new:
            if not self._batches:
                self._batches.append(_Batch(self._command("cat-file", "--batch"), self.root, self._environment))
            try:
                answers = self._batches[0].ask(new)
            except GitError:
                self._batches.pop().close()  # the next question starts a new process
                raise
            for request, answer in zip(new, answers, strict=True):
                self._objects[request] = answer
        return [self._objects[request] for request in requests]

    def _read_trees(self, oids: Iterable[str]) -> None:
        """Parse every tree in ``oids`` not parsed yet (one round trip). Call with the lock held."""
        wanted = [oid for oid in dict.fromkeys(oids) if oid not in self._trees]
        if not wanted:
            return
        for oid, answer in zip(wanted, self._ask(wanted), strict=True):
            if answer is None or answer[1] != "tree":
                raise GitError(
                    f"tree {oid} is not in this checkout (a partial clone?)",
                    "fetch the missing objects (git fetch --refetch), or use a full clone",
                )
            self._trees[oid] = _parse_tree(answer[2], len(oid) // 2)
            self._objects.pop(oid, None)  # the parsed form is enough; keep memory flat

    def _root_trees(self, commits: Sequence[str]) -> dict[str, str]:
        requests = [f"{_check_sha(commit)}^{{tree}}" for commit in commits]
        trees: dict[str, str] = {}
        for commit, answer in zip(commits, self._ask(requests), strict=True):
            if answer is None:
                raise GitError(
                    f"commit {commit} is not in this checkout (shallow or incomplete history)",
                    "fetch more history: git fetch --unshallow (actions/checkout: fetch-depth: 0)",
                )
            trees[commit] = answer[0]
        return trees

    def _lookup(self, commit: str, paths: Sequence[str]) -> dict[str, TreeEntry | None]:
        """The entry of every path at ``commit``, walking trees level by level (one round trip per level)."""
        for path in paths:
            _check_path(path)
        root = self._root_trees([commit])[commit]
        found: dict[str, TreeEntry | None] = {}
        pending = {path: (path.rstrip("/").split("/"), 0, root) for path in paths}
        while pending:
            self._read_trees(tree for _, _, tree in pending.values())
            advanced: dict[str, tuple[list[str], int, str]] = {}
            for path, (parts, depth, tree) in pending.items():
                entry = self._trees[tree].get(parts[depth])
                if entry is None:
                    found[path] = None
                elif depth + 1 == len(parts):
                    wanted_tree = path.endswith("/")
                    is_file = entry.mode.encode() in _BLOB_MODES
                    found[path] = entry if (entry.is_tree if wanted_tree else is_file) else None
                elif not entry.is_tree:
                    found[path] = None
                else:
                    advanced[path] = (parts, depth + 1, entry.oid)
            pending = advanced
        return {path: found[path] for path in paths}

    # -- public questions ------------------------------------------------------------------------------------

    def resolve(self, revs: Iterable[str]) -> dict[str, str | None]:
        """Full commit id of every revision (``rev^{commit}`` semantics), None when it does not resolve
        (unknown name, ambiguous prefix, not a commit, history missing)."""
        revisions = list(dict.fromkeys(revs))
        usable = [rev for rev in revisions if rev and rev.strip() == rev and "\n" not in rev and "\0" not in rev]
        with self._lock:
            answers = dict(zip(usable, self._ask([f"{rev}^{{commit}}" for rev in usable]), strict=True))
        return {
            rev: (answer[0] if (answer := answers.get(rev)) is not None and answer[1] == "commit" else None)
            for rev in revisions
        }

    def has_commit(self, sha: str) -> bool:
        """True when the commit object is in this checkout (False beyond a shallow boundary, or unknown)."""
        lowered = sha.lower()
        if not _HEX.fullmatch(lowered):
            return False
        with self._lock:
            (answer,) = self._ask([lowered])
        return answer is not None and answer[1] == "commit" and answer[0].startswith(lowered)

    def object_ids(self, commit: str, paths: Sequence[str]) -> dict[str, str | None]:
        """Tree id of every directory path (ending '/'), blob id of every file path, at ``commit``; None when the
        path is proven absent (or is not of that kind). Raises GitError when the commit or a tree is missing."""
        answers = self.object_ids_at([(commit, path) for path in paths])
        return {path: answers[(commit, path)] for path in paths}

    def object_ids_at(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """:meth:`object_ids` for many (commit, path) pairs at once: one round trip to git for all of them, plus
        one per tree level for the few that git cannot answer directly (absent paths, blob-less clones)."""
        wanted = list(dict.fromkeys(pairs))
        for commit, path in wanted:
            _check_sha(commit)
            _check_path(path)
        with self._lock:
            unknown = [pair for pair in wanted if pair not in self._ids]
            # Directories: git resolves <commit>:<path> itself. Files go through their parent trees: asking git for
            # a blob that a blob-less partial clone does not hold makes cat-file die (lazy fetching is off).
            slow: dict[str, list[str]] = {}
            for commit, path in unknown:
                if not path.endswith("/"):
                    slow.setdefault(commit, []).append(path)
            direct = [pair for pair in unknown if pair[1].endswith("/")]
            requests = [f"{commit.lower()}:{path.rstrip('/')}" for commit, path in direct]
            for (commit, path), request, answer in zip(direct, requests, self._ask(requests), strict=True):
                self._objects.pop(request, None)  # remembered below by (commit, path), without the contents
                if answer is None:  # absent, or the commit is missing: the trees decide (or raise)
                    slow.setdefault(commit, []).append(path)
                else:
                    self._ids[(commit, path)] = answer[0] if answer[1] == "tree" else None
            for commit, paths in slow.items():
                for path, entry in self._lookup(commit.lower(), paths).items():
                    self._ids[(commit, path)] = entry.oid if entry is not None else None
            return {pair: self._ids[pair] for pair in wanted}

    def remote_urls(self) -> dict[str, str]:
        """Remote name -> URL, with any user:password@ removed."""
        if self._remotes is None:
            completed = subprocess.run(
                self._command("config", "-z", "--get-regexp", r"^remote\..*\.url$"),
                cwd=self.root,
                env=self._environment,
                capture_output=True,
                check=False,
            )
            remotes: dict[str, str] = {}
            for record in completed.stdout.decode("utf-8", "replace").split("\0"):
                key, _, url = record.partition("\n")
                if key.startswith("remote.") and key.endswith(".url"):
                    remotes.setdefault(key[len("remote.") : -len(".url")], _strip_credentials(url))
            self._remotes = remotes
        return dict(self._remotes)

    def read_blob(self, commit: str, path: str, limit: int = 1 << 20) -> bytes | None:
        """The contents of a file at ``commit`` (None when absent or larger than ``limit`` bytes)."""
        with self._lock:
            entry = self._lookup(commit.lower(), [path])[path]
        return None if entry is None else self.blobs([entry.oid], limit)[entry.oid]

    def blobs(self, oids: Iterable[str], limit: int = 1 << 20) -> dict[str, bytes | None]:
        """Contents of blobs by id, one round trip for all (None for one larger than ``limit`` bytes). Not
        memoised. Raises GitError when a blob is not in the checkout (a blob-less partial clone)."""
        wanted = list(dict.fromkeys(oids))
        with self._lock:
            answers = self._ask(wanted)
            for oid in wanted:
                self._objects.pop(oid, None)
        contents: dict[str, bytes | None] = {}
        for oid, answer in zip(wanted, answers, strict=True):
            if answer is None or answer[1] != "blob":
                raise GitError(f"blob {oid} is not in this checkout (a partial clone?)", "git fetch --refetch")
            contents[oid] = answer[2] if len(answer[2]) <= limit else None
        return contents

    def tree(self, commit: str, directory: str) -> dict[str, TreeEntry] | None:
        """The entries of ``directory`` ('' for the root) at ``commit``; None when it is not a directory there."""
        with self._lock:
            if directory.strip("/") == "":
                oid: str | None = self._root_trees([commit.lower()])[commit.lower()]
            else:
                entry = self._lookup(commit.lower(), [directory.rstrip("/") + "/"])[directory.rstrip("/") + "/"]
                oid = entry.oid if entry is not None else None
            if oid is None:
                return None
            self._read_trees([oid])
            return dict(self._trees[oid])

    def trees(self, oids: Iterable[str]) -> dict[str, dict[str, TreeEntry]]:
        """Parsed trees by id, in one round trip for all of them."""
        wanted = list(dict.fromkeys(oids))
        with self._lock:
            self._read_trees(wanted)
            return {oid: dict(self._trees[oid]) for oid in wanted}

    def changed_files(self, a: str, b: str, path: str, limit: int = 10) -> tuple[list[tuple[str, str]], int]:
        """Files under ``path`` (a directory ending '/' or a file) that differ from commit ``a`` to commit ``b``:
        up to ``limit`` of (status, path) sorted by path, and how many there are in all."""
        with self._lock:
            entries = [self._lookup(commit.lower(), [path])[path] for commit in (a, b)]
            changes = list(self._diff(entries[0], entries[1], path.rstrip("/")))
        changes.sort(key=lambda change: change.path)
        return [(change.status, change.path) for change in changes[:limit]], len(changes)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _diff(self, old: TreeEntry | None, new: TreeEntry | None, path: str) -> Iterator[FileChange]:
        if old is not None and new is not None and old.mode == new.mode and old.oid == new.oid:
            return
        old_tree = old if old is not None and old.is_tree else None
        new_tree = new if new is not None and new.is_tree else None
        if old_tree is None and new_tree is None:
            if old is None and new is not None:
                yield FileChange("added", path)
            elif new is None and old is not None:
                yield FileChange("removed", path)
            elif old is not None and new is not None:
                yield FileChange("modified", path)
            return
        if old is not None and old_tree is None:
            yield FileChange("removed", path)
        if new is not None and new_tree is None:
            yield FileChange("added", path)
        self._read_trees(entry.oid for entry in (old_tree, new_tree) if entry is not None)
        old_entries = self._trees[old_tree.oid] if old_tree is not None else {}
        new_entries = self._trees[new_tree.oid] if new_tree is not None else {}
        for name in sorted(old_entries.keys() | new_entries.keys()):
            yield from self._diff(old_entries.get(name), new_entries.get(name), f"{path}/{name}")
