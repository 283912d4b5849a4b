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

import os
import re
import shutil
import subprocess
import tempfile
import threading
import unicodedata
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Literal
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ABSENT",
    "CHANGED",
    "UNKNOWN",
    "Checkout",
    "FileChange",
    "GitError",
    "LastChange",
    "TreeEntry",
    "clean_text",
]

CHANGED: Final = "changed"
ABSENT: Final = "absent"
UNKNOWN: Final = "unknown"

# Variables that make git use another repository, index or object store than the one at ``start``.
_REPOSITORY_VARIABLES = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_SHALLOW_FILE",
        "GIT_GRAFT_FILE",
        "GIT_REPLACE_REF_BASE",
        "GIT_EXTERNAL_DIFF",
        "GIT_DIFF_OPTS",
    }
)

_HEX = re.compile(r"[0-9a-f]{4,64}")
_BATCH_HEADER = re.compile(rb"([0-9a-f]{40}|[0-9a-f]{64}) (commit|tree|blob|tag) ([0-9]+)")
_TREE_MODE = b"40000"
_BLOB_MODES = frozenset({b"100644", b"100755", b"120000", b"100664"})
# Requests written before their answers are read: small enough that the pipe to git never fills (no deadlock).
_CHUNK = 128
_INSTALL_FIX = "install git (https://git-scm.com/downloads) and make sure `git` is on PATH"


class GitError(Exception):
    """The checkout cannot answer. ``str()`` is a message for people; the last line starts with ``fix:``."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}\nfix: {fix}")
        self.problem = problem
        self.fix = fix

    def __reduce__(self) -> tuple[type[GitError], tuple[str, str]]:  # picklable, e.g. across xdist workers
        return (GitError, (self.problem, self.fix))


@dataclass(frozen=True)
class LastChange:
    """The last commit at or before a revision that changed a path, or a bundle of paths, along the first-parent
    chain.

    ``path`` is the bundle's key (:meth:`Checkout.bundle_changes`).
    ``state`` is :data:`CHANGED` (``commit`` is set), :data:`ABSENT` (nothing of it exists at the revision: a
    directory path must be a directory there, a file path a file) or :data:`UNKNOWN` (the history in this
    checkout ends before the change: a shallow clone; ``reason`` says so). Only CHANGED may become an
    expectation. ``contents`` holds (path, tree or blob id at the revision, None if absent) for every path:
    the content at ``commit`` is the same by definition, so a content match compares these with the ids at
    the synced commit (and must never pass an ABSENT bundle, whose ids are all None).
    """

    path: str
    state: Literal["changed", "absent", "unknown"]
    commit: str | None = None
    reason: str = ""
    contents: tuple[tuple[str, str | None], ...] = ()

    def describe(self) -> str:
        if self.state == CHANGED:
            return f"{self.path}: last changed in {self.commit}"
        if self.state == ABSENT:
            if len(self.contents) > 1:
                return f"{self.path}: none of its files exists at the revision"
            return f"{self.path}: no such {'directory' if self.path.endswith('/') else 'file'} at the revision"
        return f"{self.path}: unknown: {self.reason}"


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a git tree: ``mode`` as git writes it (``40000`` for a tree), ``oid`` in hex."""

    name: str
    mode: str
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == "40000"


@dataclass(frozen=True)
class FileChange:
    """A file that differs between two commits: ``status`` is added, removed or modified (going from a to b)."""

    status: Literal["added", "removed", "modified"]
    path: str


def clean_text(text: str) -> str:
    """Repository text (commit subjects, file names) made safe to print: control and bidi/format characters go."""
    return "".join(
        " " if char in "\t\n\r" else char
        for char in text
        if char in "\t\n\r" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )


def _git_executable() -> str:
    found = shutil.which("git")
    if found is None:
        raise GitError("git is not installed, or not on PATH", _INSTALL_FIX)
    return found


def _environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in _REPOSITORY_VARIABLES}
    environment.update(
        LC_ALL="C",
        LANGUAGE="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_NO_LAZY_FETCH="1",
        GIT_OPTIONAL_LOCKS="0",
        GIT_PAGER="cat",
        PAGER="cat",
    )
    return environment


def _strip_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``: remote URLs may carry secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def _failure(command: str, stderr: bytes, where: Path) -> GitError:
    text = clean_text(stderr.decode("utf-8", "replace")).strip() or "no message"
    lowered = text.lower()
    if "dubious ownership" in lowered or "safe.directory" in lowered:
        return GitError(
            f"git refuses to read {where}: it belongs to another user ({text})",
            f"git config --global --add safe.directory {where}",
        )
    if "not a git repository" in lowered:
        return GitError(
            f"{where} is not inside a git repository",
            "run from the repository's checkout, or point --proton-git-dir / proton_git_dir at it",
        )
    return GitError(f"`git {command}` failed in {where}: {text}", "run the same git command by hand to see why")


def _check_path(path: str) -> None:
    if not path or "\n" in path or "\0" in path or path.startswith("/") or path in ("/", "./"):
        raise GitError(f"not a repository path: {path!r}", "give paths relative to the repository root")
    if any(part in ("", ".", "..") for part in path.rstrip("/").split("/")):
        raise GitError(f"not a repository path: {path!r}", "write it without '.', '..' or '//'")


def _check_sha(sha: str) -> str:
    lowered = sha.lower()
    if not _HEX.fullmatch(lowered):
        raise GitError(f"not a commit id: {sha!r}", "give a hex commit id, e.g. from Checkout.resolve()")
    return lowered


class _Batch:
    """One ``git cat-file --batch`` process: requests go in as lines, answers come back with their contents."""

    def __init__(self, command: list[str], cwd: Path, environment: dict[str, str]) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the process
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def ask(self, requests: Sequence[str]) -> list[tuple[str, str, bytes] | None]:
        """(oid, type, contents) per request, or None when git answers missing/ambiguous."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        answers: list[tuple[str, str, bytes] | None] = []
        for start in range(0, len(requests), _CHUNK):
            chunk = requests[start : start + _CHUNK]
            try:
                stdin.write(b"".join(request.encode("utf-8", "surrogateescape") + b"\n" for request in chunk))
                stdin.flush()
            except OSError as error:
                raise self._died() from error
            for _ in chunk:
                header = stdout.readline()
                if not header.endswith(b"\n"):
                    raise self._died()
                match = _BATCH_HEADER.fullmatch(header[:-1])
                if match is None:  # "<request> missing" / "<request> ambiguous"
                    answers.append(None)
                    continue
                size = int(match.group(3))
                contents = stdout.read(size + 1)
                if len(contents) != size + 1:
                    raise self._died()
                answers.append((match.group(1).decode(), match.group(2).decode(), contents[:-1]))
        return answers

    def _died(self) -> GitError:
        _stop(self.process)
        self._stderr.seek(0)
        message = clean_text(self._stderr.read().decode("utf-8", "replace")).strip() or "no message"
        if "promisor" in message:
            return GitError(
                f"this checkout is a partial clone without objects that are needed: {message}",
                "fetch them (git fetch --refetch), or check out without a --filter (actions/checkout: filter unset)",
            )
        return GitError(f"git cat-file stopped answering: {message}", "run `git fsck` in the checkout")

    def close(self) -> None:
        _stop(self.process)
        self._stderr.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def _close_all(batches: list[_Batch]) -> None:
    while batches:
        batches.pop().close()


class Checkout:
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

    def bundle_changes(self, rev_sha: str, bundles: Mapping[str, Sequence[str]]) -> dict[str, LastChange]:
        """For every bundle (key -> its paths), the last commit at or before ``rev_sha`` that changed any of its
        paths, a deletion included: the newest such commit on the first-parent chain. A bundle is ABSENT only
        when none of its paths exists at ``rev_sha``. One ``git log`` process for all bundles."""
        rev = _check_sha(rev_sha)
        groups = {key: list(dict.fromkeys(paths)) for key, paths in bundles.items()}
        present = self.object_ids(rev, list(dict.fromkeys(path for paths in groups.values() for path in paths)))
        contents = {key: tuple((path, present[path]) for path in paths) for key, paths in groups.items()}
        result: dict[str, LastChange] = {
            key: LastChange(key, ABSENT, contents=contents[key])
            for key, paths in groups.items()
            if all(present[path] is None for path in paths)
        }
        open_groups = {key: paths for key, paths in groups.items() if key not in result}
        if not open_groups:
            return {key: result[key] for key in groups}
        # Absent paths of a partly present bundle are walked too: their deletion is a change of the bundle.
        groups_of: dict[str, list[str]] = {}
        for key, paths in open_groups.items():
            for path in paths:
                groups_of.setdefault(path, []).append(key)
        walked = list(groups_of)
        directories = {path for path in walked if path.endswith("/")}
        files = {path for path in walked if not path.endswith("/")}
        shallow = self._shallow_commits()
        command = self._command(
            "log", "--stdin", "-z", "--first-parent", "-m", "--root", "--no-renames", "--name-only",
            "--no-color", "--no-decorate", "--no-mailmap", "--format=%x01%H",
        )  # fmt: skip
        boundary_reason = "the history in this checkout is shallow and ends before the last change"
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                command, cwd=self.root, env=self._environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr,
            )  # fmt: skip
            assert process.stdin is not None and process.stdout is not None
            writer = threading.Thread(
                target=_write_and_close,
                args=(process.stdin, f"{rev}\n--\n" + "".join(f"{path}\n" for path in _pathspecs(walked))),
                daemon=True,
            )
            writer.start()
            read_to_end = False
            try:
                for commit, changed in _log_records(process.stdout):
                    for path in _bundles_of(changed, directories, files):
                        for key in groups_of.get(path, ()):
                            if key not in open_groups:
                                continue
                            del open_groups[key]
                            if commit in shallow:  # the boundary looks as if it added everything: no proof
                                result[key] = LastChange(key, UNKNOWN, reason=boundary_reason, contents=contents[key])
                            else:
                                result[key] = LastChange(key, CHANGED, commit=commit, contents=contents[key])
                    if not open_groups:
                        break
                else:
                    read_to_end = True
            finally:
                if not read_to_end and process.poll() is None:
                    process.kill()  # every bundle is answered (or we are failing): the rest of the walk is not needed
                _stop(process)
                writer.join()
            if read_to_end and process.returncode != 0:
                stderr.seek(0)
                raise _failure("log", stderr.read(), self.root)
        for key in open_groups:
            reason = boundary_reason if self.is_shallow else "the history in this checkout ends before the change"
            result[key] = LastChange(key, UNKNOWN, reason=reason, contents=contents[key])
        return {key: result[key] for key in groups}

    def changed_files(self, a: str, b: str, path: str, limit: int = 10) -> tuple[list[tuple[str, str]], int]:
        """Files under ``path`` (a directory ending '/' or a file) that differ from commit ``a`` to commit ``b``:
        up to ``limit`` of (status, path) sorted by path, and how many there are in all."""
        with self._lock:
            entries = [self._lookup(commit.lower(), [path])[path] for commit in (a, b)]
            changes = list(self._diff(entries[0], entries[1], path.rstrip("/")))
        changes.sort(key=lambda change: change.path)
        return [(change.status, change.path) for change in changes[:limit]], len(changes)

    def commits_touching(
        self, since: str, until: str, bundles: Mapping[str, Sequence[str]], limit: int = 5
    ) -> dict[str, tuple[list[tuple[str, str]], int]]:
        """For every bundle (key -> its paths), the commits reachable from ``until`` but not from ``since`` that
        changed one of its paths, newest first: up to ``limit`` of (short sha, subject), and how many in all.

        Two git processes for all the bundles (one walk, one read of the subjects listed), where
        :meth:`commits_between` takes one per bundle: a failure text for each of 500 targets must not start 500.
        """
        start, stop = _check_sha(since), _check_sha(until)
        groups = {key: list(dict.fromkeys(paths)) for key, paths in bundles.items()}
        directories = {path for paths in groups.values() for path in paths if path.endswith("/")}
        files = {path for paths in groups.values() for path in paths if not path.endswith("/")}
        keys_of: dict[str, list[str]] = {}
        for key, paths in groups.items():
            for path in paths:
                keys_of.setdefault(path, []).append(key)
        found: dict[str, list[str]] = {key: [] for key in groups}
        totals = dict.fromkeys(groups, 0)
        command = self._command("log", "-z", "--no-renames", "--name-only", "--no-color", "--no-decorate",
                                "--format=%x01%H", f"{stop}", f"^{start}")
        process = subprocess.Popen(command, cwd=self.root, env=self._environment, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        try:
            for commit, changed in _log_records(process.stdout):
                hit_keys = {key for path in _bundles_of(changed, directories, files) for key in keys_of[path]}
                for key in hit_keys:
                    totals[key] += 1
                    if len(found[key]) < limit:
                        found[key].append(commit)
        finally:
            _stop(process)
        wanted = sorted({commit for commits in found.values() for commit in commits})
        subjects: dict[str, tuple[str, str]] = {}
        if wanted:
            completed = subprocess.run(
                self._command("log", "--no-walk=unsorted", "--stdin", "-z", "--no-color", "--no-decorate",
                              "--no-mailmap", "--encoding=UTF-8", "--format=%H %h %s"),
                cwd=self.root, env=self._environment, input="\n".join(wanted).encode("ascii"), capture_output=True,
                check=False,
            )
            for record in completed.stdout.decode("utf-8", "replace").split("\0"):
                full, _, rest = record.strip("\n").partition(" ")
                short, _, subject = rest.partition(" ")
                if full:
                    subjects[full] = (short, clean_text(subject))
        return {
            key: ([subjects.get(commit, (commit[:7], "")) for commit in commits], totals[key])
            for key, commits in found.items()
        }

    def commits_between(
        self, a: str, b: str, paths: Sequence[str], limit: int = 5
    ) -> tuple[list[tuple[str, str]], int]:
        """Commits reachable from ``b`` but not from ``a`` that touch ``paths``, newest first: up to ``limit`` of
        (short sha, subject with control characters removed), and how many there are in all."""
        start, stop = _check_sha(a), _check_sha(b)
        for path in paths:
            _check_path(path)
        completed = subprocess.run(
            self._command(
                "log", "-z", "--no-color", "--no-decorate", "--no-mailmap", "--encoding=UTF-8",
                "--format=%h %s", f"{start}..{stop}", "--", *[path.rstrip("/") for path in paths],
            ),
            cwd=self.root, env=self._environment, capture_output=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            raise _failure("log", completed.stderr, self.root)
        records = [record for record in completed.stdout.decode("utf-8", "replace").split("\0") if record]
        commits = []
        for record in records[:limit]:
            short, _, subject = record.partition(" ")
            commits.append((short, clean_text(subject)))
        return commits, len(records)

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

    def _shallow_commits(self) -> frozenset[str]:
        try:
            text = self._shallow_file.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return frozenset()
        except OSError as error:
            raise GitError(f"cannot read {self._shallow_file}: {error}", "check the checkout's permissions") from error
        return frozenset(line.strip() for line in text.splitlines() if line.strip())


def _run(git: str, arguments: list[str], cwd: Path) -> bytes:
    try:
        completed = subprocess.run(
            [git, "--no-pager", "-c", "core.quotepath=off", *arguments],
            cwd=cwd,
            env=_environment(),
            capture_output=True,
            check=False,
        )
    except OSError as error:
        raise GitError(f"cannot run git: {error}", _INSTALL_FIX) from error
    if completed.returncode != 0:
        raise _failure(arguments[0], completed.stderr, cwd)
    return completed.stdout


# git matches every tree entry against every pathspec, so hundreds of them make a walk quadratic (500 bundle paths:
# ~50 s for 10,000 commits). Any pathspec also makes git log diff each commit twice (once to simplify history, once
# for --name-only): with no pathspec a full walk costs ~0.35 s of CPU, with "templates/" ~0.55 s, with 4 bundle
# paths ~0.13 s (benchmarks/bench_git.py's repository). So: a few paths limit the walk, more do not.
_MAX_PATHSPECS = 8


def _pathspecs(paths: Sequence[str]) -> list[str]:
    """What limits the walk: the paths when there are few, else nothing (the output is filtered in Python)."""
    return list(paths) if len(paths) <= _MAX_PATHSPECS else []


def _write_and_close(stream: IO[bytes], text: str) -> None:
    try:
        stream.write(text.encode("utf-8", "surrogateescape"))
        stream.close()
    except OSError:  # git stopped reading: it exited, or we stopped it early
        pass


def _parse_tree(data: bytes, hash_size: int) -> dict[str, TreeEntry]:
    entries: dict[str, TreeEntry] = {}
    position = 0
    while position < len(data):
        space = data.index(b" ", position)
        nul = data.index(b"\0", space)
        mode = data[position:space].decode("ascii")
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        oid = data[nul + 1 : nul + 1 + hash_size].hex()
        entries[name] = TreeEntry(name, mode, oid)
        position = nul + 1 + hash_size
    return entries


_LOG_HEADER = re.compile(rb"\n?\x01([0-9a-f]{40}|[0-9a-f]{64})")


def _log_records(stream: IO[bytes]) -> Iterator[tuple[str, list[str]]]:
    """(commit, changed paths) from ``git log -z --name-only --format=%x01%H``, read as it arrives."""
    remainder = b""
    commit: str | None = None
    files: list[str] = []
    descriptor = stream.fileno()
    while True:
        chunk = os.read(descriptor, 1 << 16)
        if not chunk:
            break
        fields = (remainder + chunk).split(b"\0")
        remainder = fields.pop()
        for field in fields:
            header = _LOG_HEADER.fullmatch(field)
            if header is not None:
                if commit is not None:
                    yield commit, files
                commit, files = header.group(1).decode("ascii"), []
                continue
            name = field[1:] if field.startswith(b"\n") else field
            if name:
                files.append(name.decode("utf-8", "surrogateescape"))
    if commit is not None:
        yield commit, files


def _bundles_of(changed: Iterable[str], directories: set[str], files: set[str]) -> set[str]:
    hits: set[str] = set()
    for path in changed:
        if path in files:
            hits.add(path)
        slash = path.find("/")
        while slash != -1:
            prefix = path[: slash + 1]
            if prefix in directories:
                hits.add(prefix)
            slash = path.find("/", slash + 1)
    return hits
