"""The pytest-xdist hand-over: each target is asked exactly once however many workers run.

Under ``-n N`` every worker collects the same items. The first worker to finish collecting writes its selected
targets to a private directory; the controller (which owns the terminal) asks the API about all of them once,
with the progress line, and writes the observations back before any test is scheduled; workers only read.

Two plugin objects, registered by the session only under xdist: :class:`ControllerSide` in the controller,
:class:`WorkerSide` in each worker. Pickle is safe here: the directory is private to this run (mkdtemp, mode
0700) and written only by this plugin's processes.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_proton_sync.model import Observation, Target
from pytest_proton_sync.session.items import TargetItem

# The key in xdist's workerinput under which the controller tells each worker where the hand-over directory is.
WORKER_INPUT_KEY = "proton_sync_handover"

Observations = Mapping[tuple[str, ...], Observation]


class HandoverFiles:
    """The files of one run's hand-over directory; writes are atomic (write, then rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def create(cls) -> HandoverFiles:
        return cls(Path(tempfile.mkdtemp(prefix="pytest-proton-sync-")))

    def _write(self, name: str, value: object) -> None:
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
        shutil.rmtree(self.directory, ignore_errors=True)


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def distributes(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller that will start workers."""
    if is_worker(config) or not config.pluginmanager.hasplugin("xdist"):
        return False
    return bool(getattr(config.option, "dist", "no") != "no" and not config.option.collectonly)


class ControllerSide:
    """In the controller: tell workers where to hand over; on the first finished collection, fetch once for all."""

    def __init__(self, fetch_all: Callable[[Sequence[Target]], Observations]) -> None:
        self._fetch_all = fetch_all
        self._files: HandoverFiles | None = None
        self._fetched = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self._files is None:
            self._files = HandoverFiles.create()
        node.workerinput[WORKER_INPUT_KEY] = str(self._files.directory)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self._files is None or self._fetched:
            return
        targets = self._files.read_targets(node.workerinput["workerid"])
        if targets is None:  # that worker's collection failed: the next finished one hands over
            return
        self._fetched = True
        self._files.write_observations(self._fetch_all(targets))

    def pytest_unconfigure(self) -> None:
        if self._files is not None:
            self._files.remove()
            self._files = None


class WorkerSide:
    """In a worker: hand the selected targets to the controller, then read the observations it wrote."""

    def __init__(self, config: pytest.Config) -> None:
        directory = config.workerinput.get(WORKER_INPUT_KEY)  # type: ignore[attr-defined]
        self._files = HandoverFiles(Path(directory)) if directory else None
        self._worker_id = str(config.workerinput["workerid"])  # type: ignore[attr-defined]
        self._observations: dict[tuple[str, ...], Observation] | None = None

    # tryfirst: written before xdist tells the controller this worker's collection is finished.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self._files is None or session.testsfailed:
            return
        self._files.write_targets(self._worker_id, [i.target for i in session.items if isinstance(i, TargetItem)])

    def observation(self, key: tuple[str, ...]) -> Observation | None:
        if self._observations is None and self._files is not None:
            self._observations = self._files.read_observations()
        return (self._observations or {}).get(key)
