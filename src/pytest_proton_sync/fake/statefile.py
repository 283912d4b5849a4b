"""Reading the fake's state file: YAML (or plain Python data) in, a frozen :class:`FakeState` out.

The same stages and rules as the manifest, so that a user sees every mistake of a file in one run:

1. bytes -> text (size cap, strict UTF-8),
2. text -> plain values with locations (:mod:`pytest_proton_sync.yamlnodes`: syntax, tags, aliases, duplicate
   keys, a depth cap; nothing is ever constructed),
3. numbers typed for the schema (a number keeps the text it was written as; ``.inf`` and ``.nan`` are refused),
4. the JSON Schema shipped beside this module (``state.schema.json``): keys, types, enums, patterns, bounds,
5. checks a schema cannot express (a repository name for every resource, no resource twice, Proton
   resources on providers Proton knows, real calendar dates).

Every problem names file, line, column and field. The only exception leaving this module is
:class:`~pytest_proton_sync.fake.state.FakeStateError`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import awsfacts
from ..messages import closest, describe_value, show_text
from .state import (
    CONNECTIONS_PROVIDERS,
    DEFAULT_SYNCED_AT,
    FAKE_ACCOUNT_ID,
    FakeAttempt,
    FakeBlocker,
    FakeEvent,
    FakeRepository,
    FakeRepositoryLink,
    FakeServiceInstance,
    FakeStack,
    FakeState,
    FakeStateError,
    FakeSyncConfiguration,
    FakeTemplate,
    Faults,
    Listing,
    StateProblem,
    SyncSnapshot,
)

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from pytest_proton_sync.yamlnodes import Document, FieldPath, Location

#: Larger files are refused before parsing (a state with thousands of resources is well under this).
MAX_STATE_BYTES = 5 * 1024 * 1024
SCHEMA_RESOURCE = "state.schema.json"
#: Python data given to from_mapping is walked to at most this depth (the YAML reader has the same cap).
MAX_DEPTH = 64
_MAX_PROBLEMS = 200
_LONGEST_PATTERN_INPUT = 10_000

_SECTIONS = ("templates", "service_instances", "stacks")
_LATEST_AFTER_SYNCED = timedelta(hours=1)
_BUILTIN_REPOSITORY: Mapping[str, str] = {"provider": "GITHUB", "branch": "main", "directory": ""}
# CodeConnections' spelling -> the canonical one (GITHUB, ...) where the state file has one; any other is its own.
_CANONICAL_OF_CONNECTIONS = {value: key for key, value in CONNECTIONS_PROVIDERS.items()}


def _canonical_provider(spelling: str) -> str:
    return _CANONICAL_OF_CONNECTIONS.get(spelling, spelling)


def _providers() -> tuple[str, ...]:
    """What a state file may name: either API's spelling from botocore's models, and the upper-case ones."""
    return (*awsfacts.proton_providers(), *CONNECTIONS_PROVIDERS, *awsfacts.connections_providers())
_TIMESTAMP = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"[ \t]*(?P<zone>[Zz]|(?P<sign>[+-])(?P<zone_hour>\d{1,2})(?::?(?P<zone_minute>\d{2}))?)?)?\Z"
)


# --- numbers that remember their text ----------------------------------------------------------------------


class _Int(int):
    """An integer as the schema sees it, and the text it was written as (``0123456`` stays ``0123456``)."""

    text: str

    def __new__(cls, value: int, text: str) -> _Int:
        number = super().__new__(cls, value)
        number.text = text
        return number


class _Float(float):
    text: str

    def __new__(cls, value: float, text: str) -> _Float:
        number = super().__new__(cls, value)
        number.text = text
        return number


def _text(value: Any) -> str:
    """A value the schema accepted as text (a string, or a number read as the text written)."""
    if isinstance(value, (_Int, _Float)):
        return value.text
    return value if isinstance(value, str) else str(value)


# --- entry points ------------------------------------------------------------------------------------------


def load_state_file(path: str | os.PathLike[str]) -> FakeState:
    display = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)  # one byte past the cap tells "too large" without reading it all
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise FakeStateError([StateProblem(display, None, None, "", f"cannot read the state file: {reason}")]) from None
    return _Reader(display).from_bytes(data)


def state_from_mapping(data: Any, source: str = "<memory>") -> FakeState:
    return _Reader(source).from_python(data)


# --- the schema --------------------------------------------------------------------------------------------


@functools.cache
def schema() -> dict[str, Any]:
    """The shipped JSON Schema, its AWS enums filled in from the installed botocore's models."""
    text = resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = awsfacts.fill_enums(json.loads(text), {
        "providers": _providers,
        "template types": awsfacts.template_types,
        "sync statuses": awsfacts.sync_statuses,
        "blocker types": awsfacts.blocker_types,
        "blocker statuses": awsfacts.blocker_statuses,
        # repository_links and sync_configurations (fake/listing.py)
        "repository sync statuses": functools.partial(_connections_enum, "RepositorySyncStatus"),
        "trigger resource update on": functools.partial(_connections_enum, "TriggerResourceUpdateOn"),
        "publish deployment status": functools.partial(_connections_enum, "PublishDeploymentStatus"),
        "pull request comment": functools.partial(_connections_enum, "PullRequestComment"),
        "list operations": _list_operations,
    })
    return loaded


def _connections_enum(shape: str) -> tuple[str, ...] | None:
    return awsfacts.enum_if_known(awsfacts.CODECONNECTIONS, shape)


def _list_operations() -> tuple[str, ...]:
    """The operations listing.deny may name: the list operations the fake answers (fake/listing.py)."""
    from .listing import CONNECTIONS_HANDLERS, PROTON_HANDLERS

    return (*CONNECTIONS_HANDLERS, *PROTON_HANDLERS)


@functools.cache
def _validator() -> Validator:
    import jsonschema
    from jsonschema import validators

    validator_class = validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator,
        {"pattern": _pattern, "minLength": _min_length, "maxLength": _max_length},
    )
    return validator_class(_inline_local_references(schema()))  # type: ignore[no-any-return]


def _inline_local_references(node: Any, root: Any = None) -> Any:
    """Replace each ``{"$ref": "#/$defs/name"}`` with the schema it names (the schema has no recursive
    references): same verdicts, and jsonschema no longer resolves references for every entry."""
    root = node if root is None else root
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/") and len(node) == 1:
            return _inline_local_references(root["$defs"][reference[len("#/$defs/") :]], root)
        return {key: _inline_local_references(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_local_references(item, root) for item in node]
    return node


def _as_text(instance: object) -> str | None:
    """What the string keywords look at: text, or the text a number was written as (for fields that accept
    a plain number as text). Booleans and floats written without text are not text."""
    if isinstance(instance, str):
        return instance
    if isinstance(instance, (_Int, _Float)):
        return instance.text
    if isinstance(instance, int) and not isinstance(instance, bool):
        return str(instance)
    if isinstance(instance, float):
        return repr(instance)
    return None


def _pattern(validator: Validator, pattern: str, instance: object, schema: Mapping[str, Any]) -> Iterator[Any]:
    """``pattern`` with ECMA-262's ``$`` (end of text, not before a final newline), applied to numbers' text."""
    from jsonschema.exceptions import ValidationError

    text = _as_text(instance)
    if text is None or len(text) > _LONGEST_PATTERN_INPUT:
        return
    match = re.search(pattern, text)
    if match is None or (pattern.endswith("$") and match.end() != len(text)):
        yield ValidationError(f"{text!r} does not match {pattern!r}")


def _min_length(validator: Validator, minimum: int, instance: object, schema: Mapping[str, Any]) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    text = _as_text(instance)
    if text is not None and len(text) < minimum:
        yield ValidationError(f"{text!r} is too short")


def _max_length(validator: Validator, maximum: int, instance: object, schema: Mapping[str, Any]) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    text = _as_text(instance)
    if text is not None and len(text) > maximum:
        yield ValidationError(f"{len(text)} characters is too long")


# --- reading -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    path: FieldPath
    message: str


class _Reader:
    def __init__(self, display: str) -> None:
        self.display = display
        self.problems: list[StateProblem] = []
        self.locations: dict[FieldPath, Location] = {}
        self.key_locations: dict[FieldPath, Location] = {}
        self.scalar_text: dict[FieldPath, str] = {}
        self.reported: set[FieldPath] = set()

    # -- problems --------------------------------------------------------------------------------------
    def fail(self) -> FakeStateError:
        unique = list(dict.fromkeys(self.problems))
        unique.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
        if len(unique) > _MAX_PROBLEMS:
            hidden = len(unique) - _MAX_PROBLEMS
            unique = [*unique[:_MAX_PROBLEMS], StateProblem(self.display, None, None, "", f"... and {hidden} more")]
        return FakeStateError(unique)

    def whole_file(self, message: str, location: Location | None = None) -> None:
        line, column = (location.line, location.column) if location else (None, None)
        self.problems.append(StateProblem(self.display, line, column, "", message))

    def add(self, path: FieldPath, message: str, *, at_key: bool = False, unusable: bool = True) -> None:
        """A problem at ``path``; when ``unusable``, later stages stay quiet about everything under it."""
        from pytest_proton_sync.yamlnodes import format_path

        location = self.key_locations.get(path) if at_key else None
        location = location or self.location(path)
        self.problems.append(
            StateProblem(
                self.display,
                location.line if location else None,
                location.column if location else None,
                format_path(path),
                message,
            )
        )
        if unusable:
            self.reported.add(path)

    def location(self, path: FieldPath) -> Location | None:
        for length in range(len(path), -1, -1):
            location = self.locations.get(path[:length])
            if location is not None:
                return location
        return None

    def suppressed(self, path: FieldPath) -> bool:
        return any(path[:length] in self.reported for length in range(len(path) + 1))

    # -- stage 1 and 2: bytes to values ----------------------------------------------------------------
    def from_bytes(self, data: bytes) -> FakeState:
        from pytest_proton_sync.yamlnodes import read_document

        if len(data) > MAX_STATE_BYTES:
            self.whole_file(f"the state file is larger than {MAX_STATE_BYTES // (1024 * 1024)} MiB")
            raise self.fail()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            before = data[: error.start]
            line = before.count(b"\n") + 1
            column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
            self.problems.append(
                StateProblem(
                    self.display, line, column, "",
                    f"the state file is not UTF-8: byte 0x{data[error.start]:02x} cannot be decoded; save it as UTF-8",
                )
            )
            raise self.fail() from None
        document = read_document(text)
        self.locations = document.locations
        self.key_locations = document.key_locations
        self.reported = set(document.reported)
        for issue in document.issues:
            from pytest_proton_sync.yamlnodes import format_path

            self.problems.append(
                StateProblem(
                    self.display,
                    issue.location.line if issue.location else None,
                    issue.location.column if issue.location else None,
                    format_path(issue.path),
                    # The reader words its few messages for manifests; the rule is the same for a state file.
                    issue.message.replace("manifest", "state file"),
                )
            )
        if document.empty:
            self.whole_file("the state file is empty; it needs at least one of 'templates:', 'service_instances:', "
                            "'stacks:' (each a list, may be empty)")
        if document.empty or not document.complete:
            raise self.fail()
        typed = self.typed_yaml(document, document.value, ())
        return self.finish(typed)

    def typed_yaml(self, document: Document, value: Any, path: FieldPath) -> Any:
        """The walked document with YAML numbers as numbers (keeping their text) for the schema to see."""
        if isinstance(value, dict):
            return {key: self.typed_yaml(document, item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.typed_yaml(document, item, (*path, index)) for index, item in enumerate(value)]
        scalar = document.scalars.get(path)
        if scalar is not None:
            self.scalar_text[path] = scalar.text
            if isinstance(value, str) and scalar.kind in ("integer", "float"):
                return self.number(value, scalar.kind, path)
        return value

    def number(self, text: str, kind: str, path: FieldPath) -> Any:
        import yaml
        from yaml.nodes import ScalarNode

        constructor = yaml.constructor.SafeConstructor()
        tag = f"tag:yaml.org,2002:{'int' if kind == 'integer' else 'float'}"
        try:
            value = (
                constructor.construct_yaml_int(ScalarNode(tag, text))
                if kind == "integer"
                else constructor.construct_yaml_float(ScalarNode(tag, text))
            )
        except (ValueError, OverflowError):
            return text
        if isinstance(value, float):
            if not math.isfinite(value):
                self.add(path, f"{text} is not a finite number; give a number within the field's bounds")
                return None
            return _Float(value, text)
        return _Int(value, text)

    def from_python(self, data: Any) -> FakeState:
        return self.finish(self.typed_python(data, (), 0))

    def typed_python(self, value: Any, path: FieldPath, depth: int) -> Any:
        """Plain Python data in the YAML reader's terms: datetimes as ISO text, tuples as lists, str keys."""
        if depth > MAX_DEPTH:
            self.add(path, f"nesting is deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.add(path, f"key {key!r} is not text; every key is text", unusable=False)
                    continue
                result[key] = self.typed_python(item, (*path, key), depth + 1)
            return result
        if isinstance(value, (list, tuple)):
            return [self.typed_python(item, (*path, index), depth + 1) for index, item in enumerate(value)]
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"{value} is not a finite number; give a number within the field's bounds")
            return None
        return value

    # -- stages 4 and 5 ------------------------------------------------------------------------------------
    def finish(self, typed: Any) -> FakeState:
        if self.problems and not isinstance(typed, dict):
            raise self.fail()
        if not isinstance(typed, dict):
            self.whole_file(
                "the top level must be a mapping with 'templates:', 'service_instances:' and/or 'stacks:', "
                f"not {describe_value(typed)}",
                self.locations.get(()),
            )
            raise self.fail()
        self.schema_findings(typed)
        if not self.suppressed(()):
            self.semantic_findings(typed)
        if self.problems:
            raise self.fail()
        return _Builder(typed, self.display).state()

    def schema_findings(self, typed: dict[str, Any]) -> None:
        value_paths: set[FieldPath] = set()
        object_errors: dict[FieldPath, list[ValidationError]] = {}
        errors = sorted(
            _validator().iter_errors(typed),
            key=lambda error: (error.validator != "type", len(error.absolute_path)),
        )
        for error in errors:
            path: FieldPath = tuple(error.absolute_path)
            if self.suppressed(path):
                continue
            if error.validator in ("required", "additionalProperties", "anyOf") and isinstance(error.instance, dict):
                object_errors.setdefault(path, []).append(error)
                continue
            if any(path[:length] in value_paths for length in range(len(path) + 1)):
                continue
            value_paths.add(path)
            self.add(path, self.value_message(error, path))
        for path, errors_here in sorted(object_errors.items(), key=lambda item: self.sort_key(item[0])):
            if any(path[:length] in value_paths for length in range(len(path))):
                continue
            self.key_findings(path, errors_here)

    def sort_key(self, path: FieldPath) -> tuple[int, int]:
        location = self.location(path)
        return (location.line, location.column) if location else (0, 0)

    def key_findings(self, path: FieldPath, errors: list[ValidationError]) -> None:
        mapping: dict[str, Any] = errors[0].instance  # type: ignore[assignment]
        allowed: list[str] = []
        required: list[str] = []
        for error in errors:
            schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
            if error.validator == "additionalProperties":
                allowed = list(schema.get("properties", {}))
            elif error.validator == "required":
                required = [key for key in schema.get("required", []) if key not in mapping]
                allowed = allowed or list(schema.get("properties", {}))
            elif error.validator == "anyOf" and path == ():
                self.whole_file(
                    "nothing to answer from: add 'templates:', 'service_instances:' or 'stacks:' "
                    "(each a list, may be empty)",
                    self.locations.get(()),
                )
        meant: set[str] = set()
        for key in mapping:
            if not allowed or key in allowed or self.suppressed((*path, key)):
                continue
            suggestion = closest(key, allowed)
            if suggestion:
                meant.add(suggestion)
            hint = f"did you mean {suggestion!r}? " if suggestion else ""
            self.add((*path, key), f"unknown key {show_text(key)}; {hint}allowed: {', '.join(allowed)}", at_key=True)
        for key in sorted(set(required) - meant):
            self.add((*path, key), f"missing required key {key!r}")

    def value_message(self, error: ValidationError, path: FieldPath) -> str:
        instance = error.instance
        schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
        rule = schema.get("x-allowed")
        allowed = f"; {rule}" if rule else ""
        shown = self.shown(instance, path)
        validator = str(error.validator)
        if validator == "type":
            value: Any = error.validator_value
            types = value if isinstance(value, list) else [value]
            expected = " or ".join(_TYPE_WORDS[str(kind)] for kind in types if kind != "null")
            message = f"expected {expected}, got {shown}"
            if isinstance(instance, bool) and "string" in types:
                word = self.scalar_text.get(path, str(instance).lower())
                message += f'; YAML reads {word} as a boolean: quote it ("{word}") if you mean the text'
            elif isinstance(instance, float) and "string" in types:
                message += f'; YAML reads {_text(instance)} as a number: quote it ("{_text(instance)}")'
            return message + allowed
        if validator == "enum":
            choices = [str(choice) for choice in schema.get("enum", [])]
            suggestion = closest(instance, choices) if isinstance(instance, str) else None
            hint = f"did you mean {suggestion!r}? " if suggestion else ""
            return f"{shown} is not allowed; {hint}allowed: {', '.join(choices)}"
        if validator in ("minimum", "exclusiveMinimum"):
            return f"{shown} is too small: the least allowed is {error.validator_value}{allowed}"
        if validator in ("maximum", "exclusiveMaximum"):
            return f"{shown} is too large: the most allowed is {error.validator_value}{allowed}"
        if validator == "minItems":
            return "the list must not be empty"
        if validator == "maxLength":
            return f"{shown} is {len(_text(instance))} characters long{allowed}"
        if validator == "minLength":
            return f"{shown} is empty{allowed}"
        if validator == "pattern":
            return f"{shown} is not allowed{allowed}"
        return f"{shown}: {error.message}{allowed}"

    def shown(self, instance: Any, path: FieldPath) -> str:
        if isinstance(instance, bool):
            return f"boolean {self.scalar_text.get(path, str(instance).lower())}"
        if isinstance(instance, str):
            return show_text(instance)
        if isinstance(instance, (int, float)):
            return _text(instance)
        return describe_value(instance)

    def semantic_findings(self, root: dict[str, Any]) -> None:
        """Rules the schema cannot state: repository names, duplicates, Proton's providers, calendar dates."""
        # Only where the schema found nothing: one mistake, one message.
        broken = {path[:2] for path in self.reported}
        defaults = root.get("defaults") or {}
        defaults_broken = ("defaults",) in {path[:1] for path in self.reported}
        default_repository = _repository_fields(defaults.get("repository"))
        faults = root.get("faults") or {}
        if ("faults",) not in broken and faults.get("slow_rate") and not faults.get("slow_seconds", 5.0):
            self.add(("faults", "slow_seconds"), "must be more than 0 when slow_rate is set")
        for section in _SECTIONS:
            seen: dict[str, FieldPath] = {}
            entries = root.get(section)
            if (section,) in broken or not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                entry_path: FieldPath = (section, index)
                if entry_path in broken:
                    continue
                identity = _identity(section, entry)
                if identity in seen:
                    line = self.location(seen[identity])
                    at = f"line {line.line}" if line else _format(seen[identity])
                    self.add(entry_path, f"{identity} is already defined at {at}; each resource may appear once")
                else:
                    seen[identity] = entry_path
                self.timestamp_findings(entry, entry_path)
                if defaults_broken:
                    continue
                base = {**default_repository, **_repository_fields(entry.get("repository"))}
                where = (*entry_path, "repository") if entry.get("repository") is not None else entry_path
                self.repository_findings(section, base, where)
                for number, step in enumerate(entry.get("sequence") or []):
                    if step.get("repository") is not None:
                        step_repository = {**base, **_repository_fields(step["repository"])}
                        step_path = (*entry_path, "sequence", number, "repository")
                        self.repository_findings(section, step_repository, step_path)
        if not defaults_broken:
            self.timestamp_findings(defaults, ("defaults",))
            self.git_sync_findings(root, default_repository, broken)

    def git_sync_findings(self, root: dict[str, Any], default_repository: dict[str, str],
                          broken: set[FieldPath]) -> None:
        """Repository links and sync configurations: a repository name each, one link per repository, one sync
        configuration per stack, real dates."""
        sections = (("repository_links", _link_identity), ("sync_configurations", _configuration_identity))
        for section, identity in sections:
            entries = root.get(section)
            if (section,) in broken or not isinstance(entries, list):
                continue
            seen: dict[str, FieldPath] = {}
            for index, entry in enumerate(entries):
                entry_path: FieldPath = (section, index)
                if entry_path in broken:
                    continue
                repository = {**default_repository, **_repository_fields(entry.get("repository"))}
                if "name" not in repository:
                    self.add(entry_path, "no repository name: give 'repository: owner/repo' here or 'name' under "
                                         "defaults.repository")
                    continue
                self.timestamp_findings(entry, entry_path)
                key = identity(entry, repository)
                if key in seen:
                    line = self.location(seen[key])
                    at = f"line {line.line}" if line else _format(seen[key])
                    self.add(entry_path, f"{key} is already defined at {at}; each may appear once")
                else:
                    seen[key] = entry_path

    def repository_findings(self, section: str, repository: dict[str, str], where: FieldPath) -> None:
        if "name" not in repository:
            self.add(where, "no repository name: give 'repository: owner/repo' here or 'name' under "
                            "defaults.repository")
        provider = _canonical_provider(repository.get("provider", "GITHUB"))
        proton = awsfacts.proton_providers()
        if section != "stacks" and provider not in proton:
            self.add(where, f"provider {repository.get('provider')} exists in CodeConnections only; Proton "
                            f"{section.replace('_', ' ')} sync from {', '.join(proton)}")

    def timestamp_findings(self, value: Any, path: FieldPath) -> None:
        """Every timestamp the schema let through is also a real moment (no 2026-02-30)."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "contexts":
                    continue  # free text, whatever its keys are called
                if key in _TIMESTAMP_KEYS and isinstance(item, str):
                    try:
                        _timestamp(item)
                    except ValueError as error:
                        self.add((*path, key), f"{show_text(item)} is not a real date and time: {error}")
                else:
                    self.timestamp_findings(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.timestamp_findings(item, (*path, index))


_TIMESTAMP_KEYS = frozenset({"synced_at", "started_at", "time", "created_at", "resolved_at"})
_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "nothing",
}


def _identity(section: str, entry: dict[str, Any]) -> str:
    if section == "templates":
        return f"{entry['type']}/{_text(entry['name'])}@{_text(entry['version'])}"
    if section == "service_instances":
        return f"service instance {_text(entry['service'])}/{_text(entry['name'])}"
    return f"stack {_text(entry['name'])}"


def _link_identity(entry: dict[str, Any], repository: dict[str, str]) -> str:
    provider = _canonical_provider(repository.get("provider", "GITHUB"))
    return f"the repository link of {CONNECTIONS_PROVIDERS.get(provider, provider)} {repository['name'].lower()}"


def _configuration_identity(entry: dict[str, Any], repository: dict[str, str]) -> str:
    return f"the sync configuration of stack {_text(entry['name'])}"


def _link_id(provider: str, name: str) -> str:
    """A stable UUID per repository, so that runs over one state file answer the same ids."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pytest-proton-sync:repository-link:{provider}:{name.lower()}"))


def _format(path: FieldPath) -> str:
    from pytest_proton_sync.yamlnodes import format_path

    return format_path(path)


def _repository_fields(value: Any) -> dict[str, str]:
    """``"acme/x"`` is shorthand for ``{name: acme/x}``."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return {key: _text(item) for key, item in value.items() if item is not None}
    return {}


def _timestamp(text: str) -> datetime:
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError("not an ISO 8601 timestamp")
    parts = match.groupdict()
    fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
    zone = timezone.utc
    if parts["sign"]:
        offset = timedelta(hours=int(parts["zone_hour"]), minutes=int(parts["zone_minute"] or 0))
        if offset >= timedelta(hours=24):
            raise ValueError("the zone offset must be less than 24 hours")
        zone = timezone(offset if parts["sign"] == "+" else -offset)
    return datetime(
        int(parts["year"]),
        int(parts["month"]),
        int(parts["day"]),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int(fraction),
        tzinfo=zone,
    )








# --- building ----------------------------------------------------------------------------------------------


class _Builder:
    """Frozen data from a document that passed every check: no validation here, only defaults."""

    def __init__(self, root: dict[str, Any], source: str) -> None:
        self.root = root
        self.source = source
        defaults = root.get("defaults") or {}
        self.default_repository = {**_BUILTIN_REPOSITORY, **_repository_fields(defaults.get("repository"))}

    def state(self) -> FakeState:
        root = self.root
        templates = tuple(
            FakeTemplate(
                name=_text(entry["name"]),
                type=entry["type"],
                version=_text(entry["version"]),
                snapshots=self.snapshots(entry),
            )
            for entry in root.get("templates") or []
        )
        instances = tuple(
            FakeServiceInstance(
                service=_text(entry["service"]), name=_text(entry["name"]), snapshots=self.snapshots(entry)
            )
            for entry in root.get("service_instances") or []
        )
        stacks = tuple(
            FakeStack(name=_text(entry["name"]), snapshots=self.snapshots(entry)) for entry in root.get("stacks") or []
        )
        configurations = tuple(self.sync_configuration(entry) for entry in root.get("sync_configurations") or [])
        return FakeState(
            templates=templates,
            faults=self.faults(root.get("faults") or {}),
            source=self.source,
            service_instances=instances,
            stacks=stacks,
            repository_links=self.repository_links(root.get("repository_links") or [], configurations),
            sync_configurations=configurations,
            listing=self.listing(root.get("listing") or {}),
        )

    def merged_repository(self, entry: Mapping[str, Any]) -> dict[str, str]:
        merged = {**self.default_repository, **_repository_fields(entry.get("repository"))}
        merged["provider"] = _canonical_provider(merged["provider"])
        return merged

    def sync_configuration(self, entry: dict[str, Any]) -> FakeSyncConfiguration:
        repository = self.merged_repository(entry)
        return FakeSyncConfiguration(
            resource_name=_text(entry["name"]),
            provider=repository["provider"],
            repository=repository["name"],
            branch=repository["branch"],
            config_file=entry.get("config_file"),
            role_arn=entry.get("role_arn") or f"arn:aws:iam::{FAKE_ACCOUNT_ID}:role/cfn-git-sync",
            trigger_resource_update_on=entry.get("trigger_resource_update_on") or "ANY_CHANGE",
            publish_deployment_status=entry.get("publish_deployment_status") or "DISABLED",
            pull_request_comment=entry.get("pull_request_comment") or "DISABLED",
        )

    def repository_links(
        self, entries: list[dict[str, Any]], configurations: tuple[FakeSyncConfiguration, ...]
    ) -> tuple[FakeRepositoryLink, ...]:
        """The declared links, then one for each other repository a sync configuration names."""
        links: dict[tuple[str, str], FakeRepositoryLink] = {}
        for entry in entries:
            repository = self.merged_repository(entry)
            provider, name = repository["provider"], repository["name"]
            link_id = entry.get("id") or _link_id(provider, name)
            raw_sync = entry.get("latest_sync")
            latest_sync = None
            if raw_sync:
                started_at = _timestamp(raw_sync["started_at"]) if raw_sync.get("started_at") else DEFAULT_SYNCED_AT
                latest_sync = self.attempt({**raw_sync, "sha": "-", "initial_sha": "-", "started_at": None}, None,
                                           started_at)
            links[(provider, name.lower())] = FakeRepositoryLink(
                id=link_id.lower(), provider=provider, name=name, connection_id=_link_id("connection", provider),
                latest_sync=latest_sync, deny=bool(entry.get("deny")),
            )
        for configuration in configurations:
            key = (configuration.provider, configuration.repository.lower())
            if key not in links:
                links[key] = FakeRepositoryLink(
                    id=_link_id(*key), provider=configuration.provider, name=configuration.repository,
                    connection_id=_link_id("connection", configuration.provider),
                )
        return tuple(links.values())

    def listing(self, raw: dict[str, Any]) -> Listing:
        return Listing(page_size=int(raw.get("page_size") or Listing.page_size),
                       deny=frozenset(raw.get("deny") or ()))

    def snapshots(self, entry: dict[str, Any]) -> tuple[SyncSnapshot, ...]:
        base = {key: value for key, value in entry.items() if key not in ("name", "type", "version", "service",
                                                                          "sequence")}
        steps = entry.get("sequence")
        if not steps:
            return (self.snapshot(base),)
        built = []
        for step in steps:
            merged = {**base, **step}
            if "repository" in step:
                merged["repository"] = {**_repository_fields(base.get("repository")),
                                        **_repository_fields(step.get("repository"))}
            built.append(self.snapshot(merged))
        return tuple(built)

    def snapshot(self, fields: Mapping[str, Any]) -> SyncSnapshot:
        merged = {**self.default_repository, **_repository_fields(fields.get("repository"))}
        repository = FakeRepository(
            provider=_canonical_provider(merged["provider"]),
            name=merged["name"],
            branch=merged["branch"],
            directory=merged["directory"],
        )
        synced_at = _timestamp(fields["synced_at"]) if fields.get("synced_at") is not None else DEFAULT_SYNCED_AT
        latest_successful = None
        if fields.get("synced") is not None:
            synced = _text(fields["synced"])
            latest_successful = FakeAttempt(status="SUCCEEDED", sha=synced, started_at=synced_at, initial_sha=synced)
        latest = self.attempt(fields["latest"], latest_successful, synced_at) if fields.get("latest") else None
        latest = latest if latest is not None else latest_successful
        if fields.get("desired") is not None:
            desired: str | None = _text(fields["desired"])
        else:
            desired = latest.sha if latest is not None else None
        return SyncSnapshot(
            repository=repository,
            latest_successful=latest_successful,
            latest=latest,
            desired=desired,
            deny=bool(fields.get("deny")),
            blockers=tuple(self.blocker(raw, synced_at) for raw in fields.get("blockers") or []),
        )

    def attempt(self, raw: dict[str, Any], latest_successful: FakeAttempt | None, synced_at: datetime) -> FakeAttempt:
        sha = _text(raw["sha"])
        if raw.get("started_at") is not None:
            started_at = _timestamp(raw["started_at"])
        else:
            started_at = synced_at + _LATEST_AFTER_SYNCED if latest_successful is not None else synced_at
        if raw.get("initial_sha") is not None:
            initial_sha = _text(raw["initial_sha"])
        else:
            initial_sha = latest_successful.sha if latest_successful is not None else sha
        return FakeAttempt(
            status=raw["status"],
            sha=sha,
            started_at=started_at,
            initial_sha=initial_sha,
            events=tuple(
                FakeEvent(
                    type=event["type"],
                    event=event["event"],
                    time=_timestamp(event["time"]) if event.get("time") is not None else None,
                    external_id=event.get("external_id"),
                )
                for event in raw.get("events") or []
            ),
        )

    def blocker(self, raw: dict[str, Any], synced_at: datetime) -> FakeBlocker:
        return FakeBlocker(
            id=_text(raw["id"]),
            type=raw.get("type") or "AUTOMATED",
            status=raw.get("status") or "ACTIVE",
            created_reason=raw["created_reason"],
            created_at=_timestamp(raw["created_at"]) if raw.get("created_at") is not None else synced_at,
            contexts=tuple((key, _text(value)) for key, value in (raw.get("contexts") or {}).items()),
            resolved_reason=raw.get("resolved_reason"),
            resolved_at=_timestamp(raw["resolved_at"]) if raw.get("resolved_at") is not None else None,
        )

    def faults(self, raw: dict[str, Any]) -> Faults:
        def number(key: str, default: float) -> float:
            value = raw.get(key)
            return float(value) if value is not None else default

        return Faults(
            seed=int(raw.get("seed") or 0),
            latency_ms=number("latency_ms", 0.0),
            throttle_rate=number("throttle_rate", 0.0),
            error_5xx_rate=number("error_5xx_rate", 0.0),
            drop_rate=number("drop_rate", 0.0),
            slow_rate=number("slow_rate", 0.0),
            slow_seconds=number("slow_seconds", 5.0),
        )
