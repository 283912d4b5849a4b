"""Walks of a checkout's history (``git log``): which commit last changed each bundle, and which commits changed
it between two commits. :class:`~pytest_proton_sync.git.checkout.Checkout` has these as methods; the reading of
objects (trees, blobs, revisions) is checkout.py's. Why ``--first-parent -m`` and what a shallow boundary means:
see checkout.py's docstring.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pytest_proton_sync.git.plumbing import (
    ABSENT,
    CHANGED,
    UNKNOWN,
    GitError,
    LastChange,
    _bundles_of,
    _check_path,
    _check_sha,
    _failure,
    _log_records,
    _pathspecs,
    _stop,
    _write_and_close,
)
from pytest_proton_sync.text.safetext import clean

_BOUNDARY_REASON = "the history in this checkout is shallow and ends before the last change"


class HistoryWalks:
    """The ``git log`` half of a checkout: a fixed number of git processes per question, whatever the bundles."""

    root: Path
    is_shallow: bool
    _environment: dict[str, str]
    _shallow_file: Path

    def _command(self, *arguments: str) -> list[str]:
        raise NotImplementedError  # Checkout's: git with the options every process of the checkout runs with

    def object_ids(self, commit: str, paths: Sequence[str]) -> dict[str, str | None]:
        raise NotImplementedError  # Checkout's: tree or blob id of every path at ``commit``

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
        if open_groups:
            # Absent paths of a partly present bundle are walked too: their deletion is a change of the bundle.
            shallow = self._shallow_commits()
            for key, commit in self._last_changes(rev, open_groups):
                if commit in shallow:  # the boundary looks as if it added everything: no proof
                    result[key] = LastChange(key, UNKNOWN, reason=_BOUNDARY_REASON, contents=contents[key])
                else:
                    result[key] = LastChange(key, CHANGED, commit=commit, contents=contents[key])
        for key in groups.keys() - result.keys():
            reason = _BOUNDARY_REASON if self.is_shallow else "the history in this checkout ends before the change"
            result[key] = LastChange(key, UNKNOWN, reason=reason, contents=contents[key])
        return {key: result[key] for key in groups}

    def _last_changes(self, rev: str, groups: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, str]]:
        """(key, commit) for each group the first time a commit of the first-parent walk from ``rev`` changes one
        of its paths; the walk stops once every group is answered. Raises GitError when git fails."""
        open_groups = dict(groups)
        groups_of: dict[str, list[str]] = {}
        for key, paths in groups.items():
            for path in paths:
                groups_of.setdefault(path, []).append(key)
        directories = {path for path in groups_of if path.endswith("/")}
        files = {path for path in groups_of if not path.endswith("/")}
        command = self._command(
            "log", "--stdin", "-z", "--first-parent", "-m", "--root", "--no-renames", "--name-only",
            "--no-color", "--no-decorate", "--no-mailmap", "--format=%x01%H",
        )  # fmt: skip
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                command, cwd=self.root, env=self._environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr,
            )  # fmt: skip
            assert process.stdin is not None and process.stdout is not None
            arguments = f"{rev}\n--\n" + "".join(f"{path}\n" for path in _pathspecs(list(groups_of)))
            writer = threading.Thread(target=_write_and_close, args=(process.stdin, arguments), daemon=True)
            writer.start()
            read_to_end = False
            try:
                for commit, changed in _log_records(process.stdout):
                    for path in _bundles_of(changed, directories, files):
                        for key in groups_of.get(path, ()):
                            if open_groups.pop(key, None) is not None:
                                yield key, commit
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
        subjects = self._subjects(sorted({commit for commits in found.values() for commit in commits}))
        return {
            key: ([subjects.get(commit, (commit[:7], "")) for commit in commits], totals[key])
            for key, commits in found.items()
        }

    def _subjects(self, commits: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(short sha, subject made safe) of each commit, in one git process."""
        subjects: dict[str, tuple[str, str]] = {}
        if not commits:
            return subjects
        completed = subprocess.run(
            self._command("log", "--no-walk=unsorted", "--stdin", "-z", "--no-color", "--no-decorate",
                          "--no-mailmap", "--encoding=UTF-8", "--format=%H %h %s"),
            cwd=self.root, env=self._environment, input="\n".join(commits).encode("ascii"), capture_output=True,
            check=False,
        )
        for record in completed.stdout.decode("utf-8", "replace").split("\0"):
            full, _, rest = record.strip("\n").partition(" ")
            short, _, subject = rest.partition(" ")
            if full:
                subjects[full] = (short, clean(subject))
        return subjects

    def commits_between(
        self, a: str, b: str, paths: Sequence[str], limit: int = 5
    ) -> tuple[list[tuple[str, str]], int]:
        """Commits reachable from ``b`` but not from ``a`` that touch ``paths``, newest first: up to ``limit`` of
        (short sha, subject made safe), and how many there are in all."""
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
            commits.append((short, clean(subject)))
        return commits, len(records)

    def _shallow_commits(self) -> frozenset[str]:
        try:
            text = self._shallow_file.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return frozenset()
        except OSError as error:
            raise GitError(f"cannot read {self._shallow_file}: {error}", "check the checkout's permissions") from error
        return frozenset(line.strip() for line in text.splitlines() if line.strip())

