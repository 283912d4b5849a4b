"""The checkout's plumbing: git processes (one-shot and batched), their output parsed, and the values they give.

Used by :mod:`.checkout` only; nothing here knows about manifests or targets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from pytest_proton_sync.text.safetext import clean

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
    text = clean(stderr.decode("utf-8", "replace"), limit=2000, fold_spaces=True).strip() or "no message"
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
        stderr = self._stderr.read().decode("utf-8", "replace")
        message = clean(stderr, limit=2000, fold_spaces=True).strip() or "no message"
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
