"""The pytest nodes: a File collector per manifest and one Item per target (cf. pytest's non-python example)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .model import Target

if TYPE_CHECKING:
    from .run import ProtonSyncRun


class NotSynced(Exception):
    """The target's latest successful sync is not what the manifest expects: the test *fails*."""


class CouldNotCheck(Exception):
    """The API could not be asked or would not answer: raised in setup, so the test is an *error*."""


class ManifestFile(pytest.File):
    def collect(self) -> Iterator[TargetItem]:
        from .manifest import ManifestError, load_manifest

        shown = self._path_as_the_user_sees_it()
        try:
            manifest = load_manifest(shown)
        except ManifestError as exc:
            # CollectError shows just its message: every problem, one line each, no traceback.
            raise self.CollectError(f"invalid proton-sync manifest {shown}:\n{exc}") from None
        for target in manifest.targets:
            yield TargetItem.from_parent(self, name=target.id, target=target)


    def _path_as_the_user_sees_it(self) -> Path:
        """Relative to where pytest was started when the file is below it (messages quote it), else absolute."""
        try:
            relative = self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path
        return relative if relative.resolve() == self.path.resolve() else self.path


class TargetItem(pytest.Item):
    def __init__(self, *, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.add_marker("proton_sync")
        # Let -k select by type, name or region without quoting the whole id.
        self.extra_keyword_matches.update(
            {target.template_type, target.name, *([target.region] if target.region else [])}
        )

    @property
    def run(self) -> ProtonSyncRun:
        from .keys import RUN_KEY

        return self.config.stash[RUN_KEY]

    def setup(self) -> None:
        from .report import junit_properties
        from .verdict import describe_error

        observation = self.run.observation_for(self.target)
        self.observation = observation
        self.user_properties.extend(junit_properties(observation))
        if observation.error is not None or observation.status is None:
            raise CouldNotCheck(describe_error(observation))

    def runtest(self) -> None:
        from .verdict import describe_failure

        status = self.observation.status
        assert status is not None  # setup() raised otherwise
        verdict = self.config.hook.pytest_proton_sync_judge(target=self.target, status=status)
        if not verdict.passed:
            raise NotSynced(describe_failure(self.observation, verdict))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (NotSynced, CouldNotCheck)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # WIRING(hostile): pytest formats a setup error through this, bypassing repr_failure: a whole traceback
        # with source per item, ~0.1-0.3 s each, before makereport replaces it (200 errors: 30 s; a cancelled run
        # could not end in 1-2 s). Our own exceptions are their message.
        if isinstance(excinfo.value, (NotSynced, CouldNotCheck)):
            return str(excinfo.value)
        return super()._repr_failure_py(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(0, self.target.line - 1), f"{self.path.name}:{self.target.line}: {self.target.id}"
