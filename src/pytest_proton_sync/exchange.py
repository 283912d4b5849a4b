"""Hand-over files between the pytest-xdist controller and its workers, so each target is asked exactly once.

Under ``-n N`` every worker collects the same items. The first worker to finish collecting writes its selected
targets here; the controller (which owns the terminal) asks the API about all of them once, with the progress
line, and writes the observations back before any test is scheduled; workers then only read. Pickle is safe
here: the directory is private to this run (mkdtemp, mode 0700) and written only by this plugin's processes.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .model import Observation, Target

Observations = Mapping[tuple[str, ...], Observation]


class Exchange:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def create(cls) -> Exchange:
        return cls(Path(tempfile.mkdtemp(prefix="pytest-proton-sync-")))

    def _write(self, name: str, value: object) -> None:
        # Write then rename: a reader never sees half a file.
        final = self.directory / name
        partial = final.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, final)

    def _read(self, name: str) -> object | None:
        try:
            value: object = pickle.loads((self.directory / name).read_bytes())  # our own private files
            return value
        except FileNotFoundError:
            return None

    def write_targets(self, worker_id: str, targets: Sequence[Target]) -> None:
        self._write(f"targets-{worker_id}.pickle", tuple(targets))

    def read_targets(self, worker_id: str) -> tuple[Target, ...] | None:
        value = self._read(f"targets-{worker_id}.pickle")
        return value if isinstance(value, tuple) else None

    def write_observations(self, observations: Observations) -> None:
        self._write("observations.pickle", dict(observations))

    def read_observations(self) -> dict[tuple[str, ...], Observation] | None:
        value = self._read("observations.pickle")
        return value if isinstance(value, dict) else None

    def remove(self) -> None:
        for path in self.directory.iterdir():
            path.unlink(missing_ok=True)
        self.directory.rmdir()
