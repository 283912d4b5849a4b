"""Reading the fake's state file: YAML (or plain Python data) in, a frozen ``FakeState`` out.

The same stages and rules as the manifest, so that a user sees every mistake of a file in one run:

1. bytes -> text (size cap, strict UTF-8),
2. text -> plain values with locations (:mod:`pytest_proton_sync.yamlcheck.yamlnodes`: syntax, tags, aliases, duplicate
   keys, a depth cap; nothing is ever constructed),
3. numbers typed for the schema (a number keeps the text it was written as; ``.inf`` and ``.nan`` are refused),
4. the JSON Schema shipped beside this module (``state.schema.json``): keys, types, enums, patterns, bounds,
5. checks a schema cannot express (a repository name for every resource, no resource twice, Proton
   resources on providers Proton knows, real calendar dates).

Every problem names file, line, column and field. The only exception leaving this module is
:class:`~pytest_proton_sync.fake.state.FakeStateError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..aws import facts
from ..yamlcheck.messages import closest, describe_value, show_text
from ..yamlcheck.problems import Problem, decode_utf8, format_path, ordered
from .state import CONNECTIONS_PROVIDERS, FakeStateError
from .statebuild import (
    _Builder,
    _canonical_provider,
    _Float,
    _Int,
    _repository_fields,
    _text,
    _timestamp,
)
from .stateschema import schema as schema  # the state file's schema, as tests and docs know it here
from .stateschema import validator

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from pytest_proton_sync.yamlcheck.yamlnodes import Document, FieldPath, Location

#: The FakeState class, handed in by its own constructors (this module cannot import it: it imports this).
_State = TypeVar("_State")

#: Larger files are refused before parsing (a state with thousands of resources is well under this).
MAX_STATE_BYTES = 5 * 1024 * 1024
#: Python data given to from_mapping is walked to at most this depth (the YAML reader has the same cap).
MAX_DEPTH = 64
_MAX_PROBLEMS = 200

_SECTIONS = ("templates", "service_instances", "stacks")


# --- entry points ------------------------------------------------------------------------------------------


def load_state_file(path: str | os.PathLike[str], build: Callable[..., _State]) -> _State:
    display = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)  # one byte past the cap tells "too large" without reading it all
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise FakeStateError([Problem(display, None, None, "", f"cannot read the state file: {reason}")]) from None
    return _Reader(display, build).from_bytes(data)


def state_from_mapping(data: Any, source: str, build: Callable[..., _State]) -> _State:
    return _Reader(source, build).from_python(data)


# --- reading -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    path: FieldPath
    message: str


class _Reader(Generic[_State]):
    def __init__(self, display: str, build: Callable[..., _State]) -> None:
        self.display = display
        self.build = build
        self.problems: list[Problem] = []
        self.locations: dict[FieldPath, Location] = {}
        self.key_locations: dict[FieldPath, Location] = {}
        self.scalar_text: dict[FieldPath, str] = {}
        self.reported: set[FieldPath] = set()

    # -- problems --------------------------------------------------------------------------------------
    def fail(self) -> FakeStateError:
        return FakeStateError(ordered(self.problems, _MAX_PROBLEMS))

    def whole_file(self, message: str, location: Location | None = None) -> None:
        line, column = (location.line, location.column) if location else (None, None)
        self.problems.append(Problem(self.display, line, column, "", message))

    def add(self, path: FieldPath, message: str, *, at_key: bool = False, unusable: bool = True) -> None:
        """A problem at ``path``; when ``unusable``, later stages stay quiet about everything under it."""
        location = self.key_locations.get(path) if at_key else None
        location = location or self.location(path)
        self.problems.append(
            Problem(
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
    def from_bytes(self, data: bytes) -> _State:
        if len(data) > MAX_STATE_BYTES:
            self.whole_file(f"the state file is larger than {MAX_STATE_BYTES // (1024 * 1024)} MiB")
            raise self.fail()
        text = decode_utf8(data, self.display, "the state file")
        if isinstance(text, Problem):
            self.problems.append(text)
            raise self.fail()
        from pytest_proton_sync.yamlcheck.yamlnodes import read_document  # PyYAML only once a file is read

        document = read_document(text)
        self.locations = document.locations
        self.key_locations = document.key_locations
        self.reported = set(document.reported)
        for issue in document.issues:
            self.problems.append(
                Problem(
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

    def from_python(self, data: Any) -> _State:
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
    def finish(self, typed: Any) -> _State:
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
        return _Builder(typed, self.display, self.build).state()

    def schema_findings(self, typed: dict[str, Any]) -> None:
        value_paths: set[FieldPath] = set()
        object_errors: dict[FieldPath, list[ValidationError]] = {}
        errors = sorted(
            validator().iter_errors(typed),
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
        proton = facts.proton_providers()
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


def _format(path: FieldPath) -> str:
    return format_path(path)
