"""The run's manifests: read once and together (a target declared in two files is a problem of the second), and
every problem their collection found, which GitHub's annotations and step summary list. Imports no pytest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_proton_sync.manifest.loader import Manifest, ManifestError, read_manifests
from pytest_proton_sync.model import Entry
from pytest_proton_sync.session.selection import shown_path
from pytest_proton_sync.yamlcheck.problems import Problem


class RunManifests:
    def __init__(self, paths: Sequence[Path], invocation_dir: Path) -> None:
        self.paths = tuple(paths)
        self.invocation_dir = invocation_dir
        self._loaded: dict[Path, Manifest | ManifestError] | None = None
        # Each manifest's problems as its collection found them (resolved path -> problems; () when valid).
        self._found: dict[Path, tuple[Problem, ...]] = {}
        self.collection_failed = False  # here or, under xdist, in a worker whose report reached the controller

    def get(self, path: Path) -> Manifest:
        """The manifest at ``path``, read once with every other manifest of the run (a target declared in two
        is an error at the second); raises ManifestError with this file's problems only."""
        if self._loaded is None:
            self._loaded = load_together(self.paths, self.invocation_dir)
        found = self._loaded.get(resolved(path))
        if found is None:  # not a manifest of this run (a plugin collecting one itself): read it alone
            found = load_together([path], self.invocation_dir)[resolved(path)]
        if isinstance(found, ManifestError):
            raise found
        return found

    def targets(self) -> list[Entry] | None:
        """Every entry of the run's manifests as declared, or None when one of them cannot be read."""
        targets: list[Entry] = []
        for path in self.paths:
            try:
                targets.extend(self.get(self.invocation_dir / path).targets)
            except ManifestError:
                return None
        return targets

    def record(self, path: Path, problems: Sequence[Problem]) -> None:
        """What collecting ``path`` found wrong (``()``: nothing)."""
        self._found[resolved(path)] = tuple(problems)

    def problems(self, resolve: Callable[[Manifest, str], object]) -> list[Problem]:
        """Every manifest problem of the run, in manifest order. A manifest this process did not collect (the
        xdist controller's: workers collect) is read here, and only when some collection failed; ``resolve``
        (the checkout's) finds the problems of its ``rev:`` entries."""
        problems: list[Problem] = []
        for path in self.paths:
            whole = resolved(self.invocation_dir / path)
            found = self._found.get(whole)
            if found is None and self.collection_failed:
                found = ()
                try:
                    manifest = self.get(self.invocation_dir / path)
                    if any(target.expectation.needs_checkout for target in manifest.targets):
                        resolve(manifest, str(shown_path(whole, self.invocation_dir)))
                except ManifestError as error:
                    found = error.problems
            problems += found or ()
        return problems


def load_together(paths: Sequence[Path], invocation_dir: Path) -> dict[Path, Manifest | ManifestError]:
    """Each manifest (by resolved path) or its own problems, read as one set so that a target declared in two
    files is a problem of the second (manifest.loader.read_manifests, which validate and check read with too)."""
    shown = {resolved(invocation_dir / path): shown_path(path, invocation_dir) for path in paths}
    found = read_manifests(list(shown.values()))
    return {key: found[str(display)] for key, display in shown.items() if str(display) in found}


def resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return path.absolute()
