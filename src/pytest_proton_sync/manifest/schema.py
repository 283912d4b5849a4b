"""The manifest's JSON Schema and what its verdicts mean to a person: one finding per mistake, worded with
the schema's own x-expected / x-missing texts, located at the key or value that is wrong."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytest_proton_sync.aws import facts
from pytest_proton_sync.kinds import BY_SECTION
from pytest_proton_sync.text.envsecrets import describe_withheld, plainly_harmless
from pytest_proton_sync.yamlcheck.messages import closest, describe_value, show_text
from pytest_proton_sync.yamlcheck.schema import (
    inline_local_references,
    load_schema,
    passes_pattern,
    subschema,
)
from pytest_proton_sync.yamlcheck.subset import SchemaViolation, SubsetValidator

if TYPE_CHECKING:
    from pytest_proton_sync.yamlcheck.yamlnodes import Document, FieldPath, Location, YamlValue

SCHEMA_RESOURCE = "manifest.schema.json"
_SUPPORTED_VERSION = "1"
_MINOR_VERSION = re.compile(r"\s*v?[0-9]+\.[0-9.]*\s*\Z")
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_SECTIONS = tuple(BY_SECTION)
_SECTION_WORDS = "a " + ", ".join(repr(name) for name in _SECTIONS[:-1]) + f" or {_SECTIONS[-1]!r} list"


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a manifest after interpolation, its AWS enums filled in from the installed botocore."""
    schema: dict[str, Any] = facts.fill_enums(load_schema("pytest_proton_sync", SCHEMA_RESOURCE), {
        "providers": lambda: (spelling for kind in BY_SECTION.values() for spelling in kind.providers),
        "template types": facts.template_types,
    })
    return schema


#: What an editor sees in a string value that ``${VAR}`` interpolation will replace before validation.
_INTERPOLATED = {"type": "string", "pattern": r"\$\{|\$\$", "description": "replaced by ${VAR} interpolation"}
_STRING_RULES = frozenset({"pattern", "enum", "minLength", "maxLength", "x-aws-enum"})


def editor_schema() -> dict[str, Any]:
    """The schema as published (``pytest-proton-sync schema``), for editors and schema-based checks of the file as
    written: the same rules, except that a value containing ``${`` (or ``$$``) passes, since the loader checks it
    only once interpolated. Without that, an editor would flag every valid ``sha: "${DEPLOY_SHA}"``."""
    schema: dict[str, Any] = _accepting_interpolation(manifest_schema())
    return schema


def _accepting_interpolation(node: Any) -> Any:
    if isinstance(node, list):
        return [_accepting_interpolation(item) for item in node]
    if not isinstance(node, dict):
        return node
    inner = {key: _accepting_interpolation(value) for key, value in node.items()}
    if not _STRING_RULES & inner.keys():
        return inner
    described = {key: inner.pop(key) for key in ("description", "title") if key in inner}
    return {**described, "anyOf": [inner, _INTERPOLATED]}


@functools.cache
def _inlined_schema() -> dict[str, Any]:
    schema: dict[str, Any] = inline_local_references(manifest_schema())
    return schema


@functools.cache
def _schema_validator() -> SubsetValidator:
    # Not jsonschema: its import and its validation were a tenth of a 500-target run (yamlcheck/subset.py says why;
    # the tests hold the two to the same verdicts).
    return SubsetValidator(_inlined_schema(), passes_pattern)


def _subschema(path: FieldPath) -> Mapping[str, Any]:
    """The schema that applies at ``path`` of a manifest (an empty mapping where none does)."""
    return subschema(_inlined_schema(), path)


@dataclass(frozen=True)
class _Finding:
    """A problem still in terms of the document (path and location), before it is given a file."""

    path: FieldPath
    location: Location | None
    message: str


# --- schema --------------------------------------------------------------------------------------------


def _schema_findings(document: Document) -> list[_Finding]:
    """Validate against the shipped schema and turn its errors into one human message per mistake."""
    findings: list[_Finding] = []
    value_paths: set[FieldPath] = set()  # one message per value: the first (most basic) error wins
    object_paths: set[FieldPath] = set()  # "required" and "unknown key" are handled per object, once
    errors = sorted(
        _schema_validator().iter_errors(document.value),
        # Type errors first, so that a value with the wrong type gets that message and no other.
        key=lambda error: (error.validator != "type", len(error.absolute_path)),
    )
    for error in errors:
        path: FieldPath = tuple(error.absolute_path)
        if _suppressed(path, document.reported):
            continue
        validator = str(error.validator)
        if validator in ("required", "additionalProperties"):
            object_paths.add(path)  # handled below, once per object, after all unknown keys are known
            continue
        if any(path[:length] in value_paths for length in range(len(path) + 1)):
            continue
        value_paths.add(path)
        findings.append(_Finding(path, _location(document, path), _value_message(document, error, path)))

    findings += _key_findings(document, object_paths)
    return findings


def _suppressed(path: FieldPath, reported: set[FieldPath]) -> bool:
    return any(path[:length] in reported for length in range(len(path) + 1))


def _location(document: Document, path: FieldPath) -> Location | None:
    """Where ``path`` is, or its closest ancestor that has a location."""
    for length in range(len(path), -1, -1):
        location = document.locations.get(path[:length])
        if location is not None:
            return location
    return None


def _allowed_keys(path: FieldPath) -> tuple[str, ...]:
    return tuple(_subschema(path).get("properties") or ())


def _required_keys(path: FieldPath) -> tuple[str, ...]:
    return tuple(_subschema(path).get("required") or ())


def _key_findings(document: Document, object_paths: set[FieldPath]) -> Iterator[_Finding]:
    """Unknown keys (with a did-you-mean) and missing keys, for every object the schema complained about.

    A missing key that an unknown key probably meant (``shaa`` for ``sha``) is not reported again: the
    typo is the mistake, and fixing it fixes both.
    """
    for path in sorted(object_paths, key=lambda p: _location_sort_key(document, p)):
        mapping = _value_at(document.value, path)
        if not isinstance(mapping, dict) or isinstance(_subschema(path).get("additionalProperties"), dict):
            continue  # not a mapping, or a mapping of names (accounts) whose values the schema checks
        allowed = _allowed_keys(path)
        meant: set[str] = set()
        for key in mapping:
            if key in allowed or (*path, key) in document.reported:
                continue
            suggestion = closest(key, allowed)
            if suggestion:
                meant.add(suggestion)
            hint = f"did you mean {suggestion!r}? " if suggestion else ""
            yield _Finding(
                (*path, key),
                document.key_locations.get((*path, key)),
                f"unknown key {key!r}; {hint}allowed: {', '.join(allowed)}",
            )
        for key in _required_keys(path):
            if key in mapping or key in meant or (*path, key) in document.reported:
                continue
            yield _Finding((*path, key), _location(document, path), _missing_message(path, key))


def _location_sort_key(document: Document, path: FieldPath) -> tuple[int, int]:
    location = _location(document, path)
    return (location.line, location.column) if location else (0, 0)


def _missing_message(path: FieldPath, key: str) -> str:
    what = _subschema((*path, key)).get("x-missing")
    return f"missing required key {key!r}: {what}" if what else f"missing required key {key!r}"


def _source_text(document: Document, path: FieldPath, variables: tuple[str, ...]) -> str:
    """How an interpolated value is written in the manifest: ``${NAME}``, or the quoted text around it."""
    scalar = document.scalars.get(path)
    source = scalar.text if scalar is not None else "${" + variables[0] + "}"
    return source if source == "${" + variables[0] + "}" else show_text(source)


def _naming_variables(document: Document, finding: _Finding) -> _Finding:
    """A problem with an interpolated value says which variable to look at, since the value may not be shown."""
    variables = document.variables.get(finding.path)
    if not variables:
        return finding
    names = " and ".join("${" + name + "}" for name in variables)
    verb = "is the variable" if len(variables) == 1 else "are the variables"
    return replace(finding, message=f"{finding.message}; fix: check that {names} {verb} meant here, and what "
                   f"{'it holds' if len(variables) == 1 else 'they hold'}")


def _value_at(value: YamlValue, path: FieldPath) -> YamlValue:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


def _value_message(document: Document, error: SchemaViolation, path: FieldPath) -> str:
    """One message for one bad value, in the words of the schema's x-rule / x-noun / x-expected annotations."""
    instance = error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    validator = str(error.validator)
    shown = _shown(document, path, instance)
    section = len(path) == 1 and path[0] in _SECTIONS

    if section and (instance is None or validator == "minItems"):
        return f"no entries: {path[0]!r} is empty; list at least one entry"
    if validator == "type":
        expected = schema.get("x-expected", "text")
        message = f"expected {expected}, got {'text ' if isinstance(instance, str) else ''}{shown}"
        if isinstance(instance, bool) and expected == "text":
            text = document.scalars[path].text if path in document.scalars else str(instance).lower()
            message += f'; YAML reads {text} as a boolean: quote it ("{text}") if you mean the text'
        elif "x-rule" in schema:
            message += f"; {schema['x-rule']}"
        return message
    if validator == "enum":
        if path == ("version",):
            if instance is None:
                return "missing manifest version; write 'version: 1'"
            return f"unsupported manifest version {shown}; this plugin reads version {_SUPPORTED_VERSION}"
        choices = error.validator_value
        allowed = [str(choice) for choice in choices] if isinstance(choices, list) else []
        suggestion = closest(instance, allowed) if isinstance(instance, str) else None
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        shown = _shown(document, path, instance, by_characters=False)  # not one of the words: a harmless mistake
        message = f"{shown} is not allowed; {hint}allowed: {', '.join(allowed)}"
        if schema.get("x-aws-enum") == "providers":  # the enum AWS extends (CodeConnections, 2026)
            message += (f" (the providers the installed botocore {facts.botocore_version()} knows; if AWS added "
                        "this one since, upgrade it: pip install -U boto3 botocore)")
        return message
    if "x-rule" in schema and isinstance(instance, str):
        what = _what_is_wrong(schema, instance, lambda by_characters: _shown(document, path, instance,
                                                                             by_characters=by_characters))
        return f"{what}; {schema['x-rule']}"
    return f"{shown}: {error.message}"  # a rule without a tailored message (should not happen)


def _what_is_wrong(schema: Mapping[str, Any], text: str, shown: Callable[[bool], str]) -> str:
    """What is wrong with ``text``; ``shown(by_characters)`` quotes it, told whether it fails by its characters or
    form (then an interpolated value is never printed) or only by its length."""
    noun = str(schema.get("x-noun", "value"))
    if noun == "commit sha":
        hex_digits = bool(text) and _HEX.match(text) is not None
        return f"{shown(False)} has {len(text)} hex digits" if hex_digits else f"{shown(True)} is not a hex commit sha"
    if noun == "major version" and _MINOR_VERSION.match(text):
        return f"{shown(True)} is a minor version"
    if not text:
        return f"{shown(False)} is empty"
    if len(text) > int(schema.get("maxLength", len(text))):
        return f"{shown(False)} is {len(text)} characters long"
    return f"{shown(True)} is not a valid {noun}"


def _shown(document: Document, path: FieldPath, instance: object, *, by_characters: bool = True) -> str:
    """A value as the user wrote it, short enough for one line: 'abc', boolean yes, a list, ...

    A value interpolated from the environment is printed only when plainly harmless (``by_characters``: it fails
    by its characters or form, not only by its length or choice); otherwise its source and its length stand in."""
    if isinstance(instance, str):
        variables = document.variables.get(path)
        if variables:
            source = _source_text(document, path, variables)
            if not plainly_harmless(instance, variables, by_characters=by_characters):
                return f"the value of {source} ({describe_withheld(instance, variables)})"
            return f"{show_text(instance)} (from {source})"
        text = instance if len(instance) <= 60 else instance[:57] + "..."
        return repr(text)
    scalar = document.scalars.get(path)
    if instance is None:
        return "nothing (null)" if scalar is None or scalar.text in ("", "~", "null") else f"null {scalar.text}"
    if isinstance(instance, bool):
        return f"boolean {scalar.text if scalar else str(instance).lower()}"
    return describe_value(instance)
