"""The fake's state file: which templates exist, what their sync status says, and which faults to inject.

The file is YAML. Every key below except ``templates`` (and, per template, ``name``, ``type``, ``version``)
is optional; unknown keys are an error so a typo cannot silently change what the fake answers::

    defaults:
      repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}
    templates:
      - name: vpc-env
        type: ENVIRONMENT              # ENVIRONMENT | SERVICE
        version: "1"                   # major version; an integer is accepted
        synced: 0123456789abcdef0123456789abcdef01234567   # latestSuccessfulSync.targetRevision.sha;
                                       # omitted: the template never synced successfully
        synced_at: 2026-11-20T10:00:00Z   # startedAt of that sync (default 2026-09-01T12:00:00Z)
        repository: {name: acme/other} # merges over defaults.repository, for every revision of this template
        latest:                        # latestSync; default: a SUCCEEDED attempt equal to the successful one
          status: FAILED               # INITIATED | IN_PROGRESS | SUCCEEDED | FAILED
          sha: 89abcdef...
          started_at: 2026-11-21T09:00:00Z   # default: synced_at plus one hour
          initial_sha: 0123abcd...     # initialRevision.sha; default: the synced sha, else the attempt's sha
          events: [{type: ..., event: "CloudFormation stack failed: ...", time: ..., external_id: ...}]
        desired: 89abcdef...           # desiredState.sha; default: the latest attempt's sha, else synced
        deny: true                     # answer AccessDeniedException for this template
        sequence:                      # for wait-mode tests: the Nth answered GetTemplateSyncStatus call
          - {latest: {status: IN_PROGRESS, sha: aaa...}}            # for this template answers
          - {synced: aaa..., latest: {status: SUCCEEDED, sha: aaa...}}   # sequence[min(N, len-1)]
    faults:                            # all off by default
      seed: 1
      latency_ms: 50                   # added to every answer
      throttle_rate: 0.25              # fraction answered ThrottlingException (HTTP 400)
      error_5xx_rate: 0.05             # fraction answered InternalServerException (HTTP 500)
      drop_rate: 0.0                   # fraction where the connection is closed without an answer
      slow_rate: 0.0                   # fraction answered only after slow_seconds
      slow_seconds: 5

A sequence entry may set ``synced``, ``synced_at``, ``latest``, ``desired``, ``deny`` and ``repository``; a
field it sets replaces the template's field (``repository`` merges), and ``null`` clears it (``synced: null``
means "never synced" from that step on). The fake ignores the region: every region sees the same templates.

Shas are strings: quote one that YAML would read as a number. Timestamps are ISO 8601 (YAML timestamps),
with ``Z`` or an offset; a timestamp without one is taken as UTC.

This module is pure data and parsing: no I/O besides reading the file, no HTTP, no pytest.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_TYPES = ("ENVIRONMENT", "SERVICE")
REPOSITORY_PROVIDERS = ("GITHUB", "GITHUB_ENTERPRISE", "BITBUCKET")
SYNC_STATUSES = ("INITIATED", "IN_PROGRESS", "SUCCEEDED", "FAILED")

# The API's own constraints (botocore's proton model), so a state file cannot make the fake answer something
# the real service never would.
_TEMPLATE_NAME = re.compile(r"^[0-9A-Za-z]+[0-9A-Za-z_\-]*$")
_TEMPLATE_VERSION = re.compile(r"^(0|[1-9]\d*)$")
_REPOSITORY_NAME = re.compile(r"[A-Za-z0-9_.-].*/[A-Za-z0-9_.-].*")

# A fixed default keeps answers identical from run to run (and before Proton's end of support, 2026-10-07).
DEFAULT_SYNCED_AT = datetime(2026, 9, 1, 12, 0, tzinfo=timezone.utc)
_LATEST_AFTER_SYNCED = timedelta(hours=1)

_BUILTIN_REPOSITORY: Mapping[str, str] = {"provider": "GITHUB", "branch": "main", "directory": ""}

_TOP_KEYS = frozenset({"defaults", "templates", "faults"})
_DEFAULTS_KEYS = frozenset({"repository"})
_REPOSITORY_KEYS = frozenset({"provider", "name", "branch", "directory"})
_SNAPSHOT_KEYS = frozenset({"synced", "synced_at", "latest", "desired", "deny", "repository"})
_TEMPLATE_KEYS = _SNAPSHOT_KEYS | {"name", "type", "version", "sequence"}
_ATTEMPT_KEYS = frozenset({"status", "sha", "started_at", "initial_sha", "events"})
_EVENT_KEYS = frozenset({"type", "event", "time", "external_id"})
_FAULT_KEYS = frozenset(
    {"seed", "latency_ms", "throttle_rate", "error_5xx_rate", "drop_rate", "slow_rate", "slow_seconds"}
)


class FakeStateError(Exception):
    """A state file (or mapping) the fake cannot use. ``str()`` is one line: ``source: where: what``."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


@dataclass(frozen=True)
class FakeRepository:
    """The repository fields every revision of a template carries."""

    provider: str
    name: str
    branch: str
    directory: str


@dataclass(frozen=True)
class FakeEvent:
    type: str
    event: str
    time: datetime | None = None  # None: the attempt's start
    external_id: str | None = None


@dataclass(frozen=True)
class FakeAttempt:
    """A sync attempt: ``latestSync``, or (status SUCCEEDED) ``latestSuccessfulSync``."""

    status: str
    sha: str
    started_at: datetime
    initial_sha: str
    events: tuple[FakeEvent, ...] = ()


@dataclass(frozen=True)
class TemplateSnapshot:
    """What the fake answers for a template at one step of its story, every default already resolved."""

    repository: FakeRepository
    latest_successful: FakeAttempt | None
    latest: FakeAttempt | None
    desired: str | None
    deny: bool = False


@dataclass(frozen=True)
class FakeTemplate:
    name: str
    type: str
    version: str
    snapshots: tuple[TemplateSnapshot, ...]  # one, or one per sequence entry

    @property
    def id(self) -> str:
        """``ENVIRONMENT/vpc-env@1``, as in test ids and the fake's call counts."""
        return f"{self.type}/{self.name}@{self.version}"

    def snapshot(self, position: int) -> TemplateSnapshot:
        """The answer for the ``position``-th (0-based) answered call; the last entry repeats forever."""
        return self.snapshots[min(position, len(self.snapshots) - 1)]


class Fault(enum.Enum):
    NONE = "none"
    DROP = "drop"
    ERROR_5XX = "5xx"
    THROTTLE = "throttle"
    SLOW = "slow"


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    error_5xx_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0

    @property
    def any_rate(self) -> bool:
        return any(rate > 0 for rate in (self.throttle_rate, self.error_5xx_rate, self.drop_rate, self.slow_rate))

    def decide(self, key: str, call_number: int) -> Fault:
        """The fault for the ``call_number``-th (0-based) request with this key.

        Derived from (seed, key, call_number) alone, never from a shared generator, so the same state file
        gives the same faults whatever order concurrent requests arrive in. ``random.Random`` seeded with a
        string hashes it with SHA-512, which is stable across processes and PYTHONHASHSEED.
        """
        if not self.any_rate:
            return Fault.NONE
        rng = random.Random(f"{self.seed}\x00{key}\x00{call_number}")
        # One draw per kind, always all four and in this order, so changing one rate does not reshuffle
        # which calls the other faults hit.
        drop, error_5xx, throttle, slow = (rng.random() for _ in range(4))
        if drop < self.drop_rate:
            return Fault.DROP
        if error_5xx < self.error_5xx_rate:
            return Fault.ERROR_5XX
        if throttle < self.throttle_rate:
            return Fault.THROTTLE
        if slow < self.slow_rate:
            return Fault.SLOW
        return Fault.NONE


@dataclass(frozen=True)
class FakeState:
    """Everything the fake answers from. Build it with :meth:`from_file` or :meth:`from_mapping`."""

    templates: tuple[FakeTemplate, ...] = ()
    faults: Faults = Faults()
    source: str = "<memory>"

    @classmethod
    def from_file(cls, path: str | Path) -> FakeState:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FakeStateError(source, f"cannot read the state file: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise FakeStateError(source, f"the state file is not UTF-8 text: {exc.reason}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FakeStateError(source, f"not valid YAML: {_yaml_problem(exc)}") from None
        if data is None:
            raise FakeStateError(source, "the state file is empty; it needs at least 'templates:'")
        return cls.from_mapping(data, source=source)

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<memory>") -> FakeState:
        return _Parser(source).state(data)

    def find(self, template_type: str, name: str, version: str) -> FakeTemplate | None:
        for template in self.templates:
            if (template.type, template.name, template.version) == (template_type, name, version):
                return template
        return None

    def versions_of(self, template_type: str, name: str) -> tuple[FakeTemplate, ...]:
        return tuple(t for t in self.templates if (t.type, t.name) == (template_type, name))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


class _Parser:
    """Turns the loaded YAML into frozen data; every error names where in the file it is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> FakeStateError:
        return FakeStateError(self.source, f"{where}: {message}" if where else message)

    # -- shapes ----------------------------------------------------------------------------------------
    def mapping(self, value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {_describe(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                raise self.fail(where, f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
        return value

    def text(self, value: Any, where: str, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_describe(value)}")
        if not value and not allow_empty:
            raise self.fail(where, "must not be empty")
        return value

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        text = self.text(value, where)
        if text not in choices:
            raise self.fail(where, f"{text!r} is not one of {', '.join(choices)}")
        return text

    def sha(self, value: Any, where: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise self.fail(where, f"YAML read {value!r} as a number; quote the sha")
        sha = self.text(value, where)
        if len(sha) > 255 or any(ch.isspace() for ch in sha):
            raise self.fail(where, f"{sha!r} is not a git revision (no spaces, at most 255 characters)")
        return sha

    def timestamp(self, value: Any, where: str) -> datetime:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise self.fail(where, f"{value!r} is not an ISO 8601 timestamp") from None
        else:
            raise self.fail(where, f"expected a timestamp such as 2026-11-20T10:00:00Z, got {_describe(value)}")
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_describe(value)}")
        return value

    def number(self, value: Any, where: str, *, low: float, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"expected a number, got {_describe(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise self.fail(where, f"{value!r} must be {bounds}")
        return float(value)

    # -- the file --------------------------------------------------------------------------------------
    def state(self, data: Any) -> FakeState:
        top = self.mapping(data, "", _TOP_KEYS)
        if "templates" not in top:
            raise self.fail("", "missing 'templates:' (a list, may be empty)")
        defaults = self.mapping(top.get("defaults") or {}, "defaults", _DEFAULTS_KEYS)
        default_repository = dict(_BUILTIN_REPOSITORY)
        default_repository.update(
            self.mapping(defaults.get("repository") or {}, "defaults.repository", _REPOSITORY_KEYS)
        )
        raw_templates = top["templates"] if top["templates"] is not None else []
        if not isinstance(raw_templates, list):
            raise self.fail("templates", f"expected a list, got {_describe(raw_templates)}")
        templates: list[FakeTemplate] = []
        seen: dict[str, str] = {}
        for index, raw in enumerate(raw_templates):
            template = self.template(raw, f"templates[{index}]", default_repository)
            if template.id in seen:
                raise self.fail(f"templates[{index}]", f"{template.id} is already defined at {seen[template.id]}")
            seen[template.id] = f"templates[{index}]"
            templates.append(template)
        faults = self.faults(top.get("faults") or {})
        return FakeState(templates=tuple(templates), faults=faults, source=self.source)

    def template(self, raw: Any, where: str, default_repository: Mapping[str, Any]) -> FakeTemplate:
        fields = self.mapping(raw, where, frozenset(_TEMPLATE_KEYS))
        for required in ("name", "type", "version"):
            if required not in fields:
                raise self.fail(where, f"missing '{required}'")
        name = self.text(fields["name"], f"{where}.name")
        if len(name) > 100 or not _TEMPLATE_NAME.match(name):
            raise self.fail(f"{where}.name", f"{name!r} is not a valid Proton template name")
        where = f"{where} ({name})"
        template_type = self.choice(fields["type"], f"{where}.type", TEMPLATE_TYPES)
        raw_version = fields["version"]
        if isinstance(raw_version, int) and not isinstance(raw_version, bool):
            raw_version = str(raw_version)
        version = self.text(raw_version, f"{where}.version")
        if not _TEMPLATE_VERSION.match(version):
            raise self.fail(f"{where}.version", f'{version!r} is not a major version such as "1"')

        base = {key: value for key, value in fields.items() if key in _SNAPSHOT_KEYS}
        raw_sequence = fields.get("sequence")
        if raw_sequence is None:
            snapshots: tuple[TemplateSnapshot, ...] = (self.snapshot(base, where, default_repository),)
        else:
            if not isinstance(raw_sequence, list) or not raw_sequence:
                raise self.fail(f"{where}.sequence", "expected a non-empty list of snapshots")
            built = []
            for step, entry in enumerate(raw_sequence):
                step_where = f"{where}.sequence[{step}]"
                overrides = self.mapping(entry, step_where, _SNAPSHOT_KEYS)
                merged = dict(base)
                merged.update(overrides)
                if "repository" in overrides:
                    merged["repository"] = {
                        **self.mapping(base.get("repository") or {}, f"{where}.repository", _REPOSITORY_KEYS),
                        **self.mapping(overrides["repository"] or {}, f"{step_where}.repository", _REPOSITORY_KEYS),
                    }
                built.append(self.snapshot(merged, step_where, default_repository))
            snapshots = tuple(built)
        return FakeTemplate(name=name, type=template_type, version=version, snapshots=snapshots)

    def snapshot(
        self, fields: Mapping[str, Any], where: str, default_repository: Mapping[str, Any]
    ) -> TemplateSnapshot:
        repository = self.repository(fields.get("repository") or {}, f"{where}.repository", default_repository)
        synced_at = (
            self.timestamp(fields["synced_at"], f"{where}.synced_at")
            if fields.get("synced_at") is not None
            else DEFAULT_SYNCED_AT
        )
        latest_successful = None
        if fields.get("synced") is not None:
            synced = self.sha(fields["synced"], f"{where}.synced")
            latest_successful = FakeAttempt(status="SUCCEEDED", sha=synced, started_at=synced_at, initial_sha=synced)
        if fields.get("latest") is not None:
            latest: FakeAttempt | None = self.attempt(fields["latest"], f"{where}.latest", latest_successful, synced_at)
        else:
            latest = latest_successful
        if fields.get("desired") is not None:
            desired: str | None = self.sha(fields["desired"], f"{where}.desired")
        else:
            desired = latest.sha if latest is not None else None
        deny = self.flag(fields["deny"], f"{where}.deny") if fields.get("deny") is not None else False
        return TemplateSnapshot(
            repository=repository,
            latest_successful=latest_successful,
            latest=latest,
            desired=desired,
            deny=deny,
        )

    def repository(self, raw: Any, where: str, default_repository: Mapping[str, Any]) -> FakeRepository:
        merged = dict(default_repository)
        merged.update(self.mapping(raw, where, _REPOSITORY_KEYS))
        if merged.get("name") is None:
            raise self.fail(where, "no repository name: set defaults.repository.name or the template's own")
        name = self.text(merged["name"], f"{where}.name")
        if len(name) > 100 or not _REPOSITORY_NAME.fullmatch(name):
            raise self.fail(f"{where}.name", f"{name!r} is not a repository name such as acme/templates")
        branch = self.text(merged.get("branch"), f"{where}.branch")
        if len(branch) > 200:
            raise self.fail(f"{where}.branch", "a branch name has at most 200 characters")
        return FakeRepository(
            provider=self.choice(merged.get("provider"), f"{where}.provider", REPOSITORY_PROVIDERS),
            name=name,
            branch=branch,
            directory=self.text(merged.get("directory"), f"{where}.directory", allow_empty=True),
        )

    def attempt(self, raw: Any, where: str, latest_successful: FakeAttempt | None, synced_at: datetime) -> FakeAttempt:
        fields = self.mapping(raw, where, _ATTEMPT_KEYS)
        for required in ("status", "sha"):
            if required not in fields:
                raise self.fail(where, f"missing '{required}'")
        sha = self.sha(fields["sha"], f"{where}.sha")
        if fields.get("started_at") is not None:
            started_at = self.timestamp(fields["started_at"], f"{where}.started_at")
        else:
            started_at = synced_at + _LATEST_AFTER_SYNCED if latest_successful is not None else synced_at
        if fields.get("initial_sha") is not None:
            initial_sha = self.sha(fields["initial_sha"], f"{where}.initial_sha")
        else:
            initial_sha = latest_successful.sha if latest_successful is not None else sha
        raw_events = fields.get("events") or []
        if not isinstance(raw_events, list):
            raise self.fail(f"{where}.events", f"expected a list, got {_describe(raw_events)}")
        return FakeAttempt(
            status=self.choice(fields["status"], f"{where}.status", SYNC_STATUSES),
            sha=sha,
            started_at=started_at,
            initial_sha=initial_sha,
            events=tuple(self.event(event, f"{where}.events[{i}]") for i, event in enumerate(raw_events)),
        )

    def event(self, raw: Any, where: str) -> FakeEvent:
        fields = self.mapping(raw, where, _EVENT_KEYS)
        for required in ("type", "event"):
            if required not in fields:
                raise self.fail(where, f"missing '{required}'")
        return FakeEvent(
            type=self.text(fields["type"], f"{where}.type"),
            event=self.text(fields["event"], f"{where}.event"),
            time=self.timestamp(fields["time"], f"{where}.time") if fields.get("time") is not None else None,
            external_id=(
                self.text(fields["external_id"], f"{where}.external_id")
                if fields.get("external_id") is not None
                else None
            ),
        )

    def faults(self, raw: Any) -> Faults:
        fields = self.mapping(raw, "faults", _FAULT_KEYS)
        seed = fields.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise self.fail("faults.seed", f"expected an integer, got {_describe(seed)}")

        def rate(key: str) -> float:
            return self.number(fields.get(key, 0.0), f"faults.{key}", low=0.0, high=1.0)

        slow_seconds = self.number(fields.get("slow_seconds", 5.0), "faults.slow_seconds", low=0.0)
        if slow_seconds == 0 and fields.get("slow_rate", 0):
            raise self.fail("faults.slow_seconds", "must be more than 0 when slow_rate is set")
        return Faults(
            seed=seed,
            latency_ms=self.number(fields.get("latency_ms", 0.0), "faults.latency_ms", low=0.0),
            throttle_rate=rate("throttle_rate"),
            error_5xx_rate=rate("error_5xx_rate"),
            drop_rate=rate("drop_rate"),
            slow_rate=rate("slow_rate"),
            slow_seconds=slow_seconds,
        )


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"
