"""The pytest nodes: a File collector per manifest and one Item per target (cf. pytest's non-python example).

Items ask the session for their observation and raise short, domain-specific exceptions: CouldNotCheck in setup
(JUnit ``<error>``), NotSynced in the call (``<failure>``); ``repr_failure`` shows their text and nothing else.
Every text that leaves here (those, the collection error, warnings, the item's name) goes through redact(): the
values of credential variables in the environment never reach the terminal or the JUnit XML.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_proton_sync.git.expectations import Repository
from pytest_proton_sync.manifest.loader import Manifest, ManifestError
from pytest_proton_sync.model import ERROR, Observation, Target
from pytest_proton_sync.session.selection import shown_path
from pytest_proton_sync.text.redact import redact, redactor
from pytest_proton_sync.verdict.judge import describe_error, describe_failure
from pytest_proton_sync.yamlcheck.problems import Problem


class RunContext(Protocol):
    """What the items ask of the run (the session object satisfies it): the items never import the session, so
    the session can build them without an import circle."""

    @property
    def repository(self) -> Repository: ...

    def manifest(self, path: Path) -> Manifest: ...

    def observation_for(self, target: Target, rerun: bool = False) -> Observation: ...

    def record_manifest_problems(self, path: Path, problems: Sequence[Problem]) -> None: ...

    def link_health(self, observation: Observation) -> str: ...


#: Where plugin.py keeps the run's session in ``config.stash`` (only when a manifest is in play).
SESSION_KEY: pytest.StashKey[RunContext] = pytest.StashKey()
#: Every target's marker, made once: one shared (immutable) Mark rather than one per item.
PROTON_SYNC_MARK = pytest.mark.proton_sync


class NotSynced(Exception):
    """The target's latest successful sync is not what the manifest expects: the test *fails*."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


# pytest.fail.Exception is public, but reached through a function attribute, which mypy cannot take as a base.
class CouldNotCheck(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """The API could not be asked or would not answer: raised in setup, so the test is an *error*.

    A ``pytest.fail`` outcome without a Python traceback: pytest formats setup errors itself (repr_failure is only
    asked for the call phase), and for any other exception that means the source of every frame, ~0.1 s a target
    (200 errors: 17 s against 1.4 s), which a cancelled run or a denied account cannot afford."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message), pytrace=False)


class ManifestFile(pytest.File):
    @property
    def session_plugin(self) -> RunContext:
        return self.config.stash[SESSION_KEY]

    def collect(self) -> Iterator[TargetItem]:
        shown = shown_path(self.path, self.config.invocation_params.dir)
        try:
            # Read with every other manifest of the run: a target declared in two of them is an error.
            manifest = self.session_plugin.manifest(self.path)
            if any(entry.expectation.needs_checkout for entry in manifest.targets):  # git only when one needs it
                repository = self.session_plugin.repository
                said = len(repository.notes)
                targets = repository.resolve(manifest, str(shown))
                for note in repository.notes[said:]:
                    self.warn(pytest.PytestWarning(redact(f"proton-sync: {note}")))
            else:
                targets = tuple(entry.literal() for entry in manifest.targets)
        except ManifestError as exc:
            self.session_plugin.record_manifest_problems(self.path, exc.problems)
            # CollectError shows just its message: every problem, one line each, no traceback.
            raise self.CollectError(redact(f"invalid proton-sync manifest {shown}:\n{exc}")) from None
        self.session_plugin.record_manifest_problems(self.path, ())
        # A name or version interpolated from a credential variable would otherwise print in every report.
        redact_id = redactor()
        for target in targets:
            yield TargetItem.from_parent(self, name=redact_id(target.id), target=target)


class TargetItem(pytest.Item):
    def __init__(self, *, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.observation: Observation | None = None  # set by setup(); read by the session's report hooks
        self.add_marker(PROTON_SYNC_MARK)
        # Let -k select by type, name, region or account without quoting the whole id.
        self.extra_keyword_matches.update(target.keywords)
        self.extra_keyword_matches.update(word for word in (target.region, target.account) if word)

    @property
    def session_plugin(self) -> RunContext:
        return self.config.stash[SESSION_KEY]

    def setup(self) -> None:
        self.observation = None
        session = self.session_plugin
        # A rerun (pytest-rerunfailures counts runs in execution_count) asks the API again: see session/run.py.
        observation = session.observation_for(self.target, rerun=getattr(self, "execution_count", 1) > 1)
        self.observation = observation  # the session's report hook makes the target's facts (and JUnit properties)
        if observation.error is not None or observation.status is None or observation.verdict is None:
            raise CouldNotCheck(describe_error(observation))
        if observation.verdict.outcome == ERROR:  # the answer came, but could not be compared
            raise CouldNotCheck(describe_failure(observation, observation.verdict))

    def runtest(self) -> None:
        assert self.observation is not None  # setup() raised otherwise
        verdict = self.observation.verdict
        assert verdict is not None
        if not verdict.passed:
            cause = self.session_plugin.link_health(self.observation)  # a broken repository link, if that is why
            raise NotSynced(describe_failure(self.observation, verdict) + cause)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (NotSynced, CouldNotCheck)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(0, self.target.line - 1), f"{self.path.name}:{self.target.line}: {self.name}"
