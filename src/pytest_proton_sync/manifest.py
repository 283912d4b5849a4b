"""Manifest loading: YAML in, frozen :class:`~pytest_proton_sync.model.Target` tuples out.

A manifest is read in stages, each of which may add problems without stopping the others, so that a user
sees every mistake of a file in one run:

1. bytes -> text (size cap, strict UTF-8),
2. text -> plain values with locations (:mod:`pytest_proton_sync.yamlnodes`: syntax, tags, aliases,
   duplicate keys; nothing is ever constructed or executed),
3. ``${VAR}`` / ``${VAR:-default}`` interpolation of string values,
4. the JSON Schema shipped next to this module (structure, types, enums, patterns),
5. checks a schema cannot express (a repository for every entry, no target declared twice).

Every problem names file, line, column and field, says what is wrong and what is allowed. The only
exception leaving this module is :class:`ManifestError`.

This module imports neither pytest nor boto3, and imports yaml and jsonschema only when a manifest is read.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_proton_sync import awsfacts
from pytest_proton_sync.kinds import BY_SECTION, Kind, make_target
from pytest_proton_sync.messages import closest, describe_value, show_text
from pytest_proton_sync.model import AccountSpec, Expectation, RepositorySpec, Target

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from pytest_proton_sync.yamlnodes import Document, FieldPath, Location, YamlValue

__all__ = [
    "MAX_MANIFEST_BYTES",
    "SCHEMA_RESOURCE",
    "Manifest",
    "ManifestError",
    "Problem",
    "load_manifest",
    "load_manifests",
    "parse_manifest",
]

#: Larger files are refused before parsing: a manifest is a few kilobytes, and PyYAML is pure Python.
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
#: The schema's file name inside the package (also useful to editors: see docs/manifest.md).
SCHEMA_RESOURCE = "manifest.schema.json"
# Past this many problems in one file the rest is noise (usually one systematic mistake repeated).
_MAX_PROBLEMS_PER_FILE = 200
_SUPPORTED_VERSION = "1"
# Every pattern in the schema sits next to a maxLength far below this.
_LONGEST_PATTERN_INPUT = 10_000

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MINOR_VERSION = re.compile(r"\s*v?[0-9]+\.[0-9.]*\s*\Z")
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_SECTIONS = tuple(BY_SECTION)
_SECTION_WORDS = "a " + ", ".join(repr(name) for name in _SECTIONS[:-1]) + f" or {_SECTIONS[-1]!r} list"


@dataclass(frozen=True)
class Problem:
    """One mistake in a manifest, located as precisely as the source allows."""

    file: str  # the path as given/displayed
    line: int | None  # 1-based
    column: int | None  # 1-based
    field: str  # "templates[1].sha", "defaults.repository.provider"; "" for the whole file
    message: str  # what is wrong and what is allowed

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return ": ".join(part for part in (where, self.field, self.message) if part)


class ManifestError(Exception):
    """Every problem of the manifest file(s) read; ``str()`` gives one problem per line."""

    problems: tuple[Problem, ...]

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __reduce__(self) -> tuple[type[ManifestError], tuple[tuple[Problem, ...]]]:
        # Exceptions pickle their args by default, which here is the rendered text; xdist workers need
        # the problems themselves.
        return (type(self), (self.problems,))


@dataclass(frozen=True)
class Manifest:
    """A valid manifest: its path and its targets, in the order the file declares them, and its accounts."""

    path: Path
    targets: tuple[Target, ...]
    accounts: Mapping[str, AccountSpec] = dataclasses.field(default_factory=dict)  # alias -> how to get its credentials


def load_manifest(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Manifest:
    """Read and validate the manifest at ``path``; ``${VAR}`` comes from ``environ`` (default os.environ).

    Raises :class:`ManifestError` (and nothing else) with every problem found, including "cannot read".
    """
    display = _display(path)
    try:
        with open(path, "rb") as handle:
            # One byte past the cap is enough to know the file is too large without reading all of it.
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ManifestError([Problem(display, None, None, "", f"cannot read the manifest: {reason}")]) from None
    except ValueError as error:  # e.g. a NUL character in the path
        raise ManifestError([Problem(display, None, None, "", f"cannot read the manifest: {error}")]) from None
    return parse_manifest(data, path, environ)


def parse_manifest(
    data: bytes | str, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Manifest:
    """Validate manifest source ``data``; ``path`` is what messages and targets name as its file.

    Raises :class:`ManifestError` (and nothing else) with every problem found.
    """
    display = _display(path)
    reader = _ManifestReader(display, Path(display), os.environ if environ is None else environ)
    targets = reader.read(data)
    if reader.problems:
        raise ManifestError(_ordered(reader.problems))
    return Manifest(Path(display), targets, reader.accounts)


def load_manifests(
    paths: Sequence[str | os.PathLike[str]], environ: Mapping[str, str] | None = None
) -> tuple[Manifest, ...]:
    """Load several manifests as one set: every problem of every file is reported in one ManifestError.

    A target (``Target.key``) declared in two files is a problem at the second declaration. A file given
    twice (same real path) is read once: it is the same set of declarations, not a conflict.
    """
    manifests: list[tuple[str, Manifest]] = []
    problems_by_file: dict[str, list[Problem]] = {}
    seen_files: set[str] = set()
    for path in paths:
        display = _display(path)
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError):
            real = display
        if real in seen_files:
            continue
        seen_files.add(real)
        try:
            manifests.append((display, load_manifest(path, environ)))
        except ManifestError as error:
            problems_by_file.setdefault(display, []).extend(error.problems)

    first_declared: dict[tuple[str, ...], tuple[str, Target]] = {}
    for display, manifest in manifests:
        for target, field in zip(manifest.targets, entry_fields(manifest.targets), strict=True):
            if target.key not in first_declared:
                first_declared[target.key] = (display, target)
                continue
            other_file, other = first_declared[target.key]
            problems_by_file.setdefault(display, []).append(
                Problem(
                    display,
                    target.line or None,
                    None,
                    field,
                    f"the same target {_describe_target(target)} is already declared in "
                    f"{other_file}:{other.line}; each target may appear in one manifest only",
                )
            )
    if problems_by_file:
        ordered: list[Problem] = []
        for problems in problems_by_file.values():
            ordered.extend(_ordered(problems))
        raise ManifestError(ordered)
    return tuple(manifest for _, manifest in manifests)


def _display(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Sort by position (whole-file problems first), drop repeats, cap the count."""
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
    if len(unique) > _MAX_PROBLEMS_PER_FILE:
        hidden = len(unique) - _MAX_PROBLEMS_PER_FILE
        unique = unique[:_MAX_PROBLEMS_PER_FILE]
        unique.append(Problem(unique[0].file, None, None, "", f"... and {hidden} more problems not shown"))
    return unique


def _describe_target(target: Target) -> str:
    return target.id + (f" in {target.region}" if target.region else "") + (
        f" of account {target.account}" if target.account else "")


def entry_fields(targets: Sequence[Target]) -> list[str]:
    """Each target's field in its manifest, ``templates[0]``: sections in schema order, entries in file order."""
    counts: dict[str, int] = {}
    fields = []
    for target in targets:
        section = next(kind.section for kind in BY_SECTION.values() if kind.name == target.kind)
        fields.append(f"{section}[{counts.get(section, 0)}]")
        counts[section] = counts.get(section, 0) + 1
    return fields


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a manifest after interpolation, its AWS enums filled in from the installed botocore."""
    text = resources.files("pytest_proton_sync").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = awsfacts.fill_enums(json.loads(text), {
        "providers": lambda: (spelling for kind in BY_SECTION.values() for spelling in kind.providers),
        "template types": awsfacts.template_types,
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
    schema: dict[str, Any] = _inline_local_references(manifest_schema())
    return schema


@functools.cache
def _schema_validator() -> Validator:
    import jsonschema
    from jsonschema import validators

    validator_class = validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator, {"pattern": _whole_string_pattern}
    )
    return validator_class(_inlined_schema())  # type: ignore[no-any-return]


def _subschema(path: FieldPath) -> Mapping[str, Any]:
    """The schema that applies at ``path`` of a manifest (an empty mapping where none does)."""
    schema: Mapping[str, Any] = _inlined_schema()
    for part in path:
        if isinstance(part, int):
            items = schema.get("items")
            schema = items if isinstance(items, dict) else {}
            continue
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        schema = properties.get(part) or (extra if isinstance(extra, dict) else {})
    return schema


def _inline_local_references(schema: Any, root: Any = None) -> Any:
    """Replace each ``{"$ref": "#/$defs/name"}`` with the schema it names (the shipped schema has no recursive
    and no sibling-keyword references). Same verdicts and error paths, but jsonschema no longer resolves five
    references per entry: validating 500 entries drops from about 35 ms to a few."""
    root = schema if root is None else root
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/") and len(schema) == 1:
            return _inline_local_references(root["$defs"][reference[len("#/$defs/"):]], root)
        return {key: _inline_local_references(value, root) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline_local_references(item, root) for item in schema]
    return schema


def _whole_string_pattern(
    validator: Validator, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """``pattern`` with ECMA-262's meaning of ``$`` (end of text).

    Python's ``$`` also matches before a final newline, so ``"1\\n"`` would pass ``^[0-9]+$`` and end up in
    a Target. The schema stays portable (editors read it); this keyword implementation makes Python agree.

    Text longer than any field allows is not matched at all: its ``maxLength`` already fails, and a pattern
    such as the API's ``.*/.*`` for repository names backtracks quadratically over megabytes.
    """
    from jsonschema.exceptions import ValidationError

    if not isinstance(instance, str) or len(instance) > _LONGEST_PATTERN_INPUT:
        return
    match = re.search(pattern, instance)
    if match is None or (pattern.endswith("$") and match.end() != len(instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@dataclass(frozen=True)
class _Finding:
    """A problem still in terms of the document (path and location), before it is given a file."""

    path: FieldPath
    location: Location | None
    message: str


class _ManifestReader:
    """Reads one manifest's source; collects problems in ``problems`` as it goes."""

    def __init__(self, display: str, manifest_path: Path, environ: Mapping[str, str]) -> None:
        self.display = display
        self.manifest_path = manifest_path
        self.environ = environ
        self.problems: list[Problem] = []
        self.accounts: dict[str, AccountSpec] = {}

    def whole_file(self, message: str, location: Location | None = None) -> None:
        line, column = (location.line, location.column) if location else (None, None)
        self.problems.append(Problem(self.display, line, column, "", message))

    def add(self, findings: Iterable[_Finding]) -> None:
        from pytest_proton_sync.yamlnodes import format_path

        for finding in findings:
            location = finding.location
            self.problems.append(
                Problem(
                    self.display,
                    location.line if location else None,
                    location.column if location else None,
                    format_path(finding.path),
                    finding.message,
                )
            )

    def read(self, data: bytes | str) -> tuple[Target, ...]:
        from pytest_proton_sync.yamlnodes import read_document

        if len(data) > MAX_MANIFEST_BYTES:
            self.whole_file(
                f"the manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; "
                "a manifest lists entries, it should be a few kilobytes"
            )
            return ()
        text = self.decode(data) if isinstance(data, bytes) else data
        if text is None:
            return ()

        document = read_document(text)
        self.add(_Finding(issue.path, issue.location, issue.message) for issue in document.issues)
        if document.empty:
            self.whole_file(
                f"the manifest is empty; it needs 'version: 1' and {_SECTION_WORDS} with at least one entry"
            )
            return ()
        if not document.complete:
            return ()
        if not isinstance(document.value, dict):
            if not document.issues:
                self.whole_file(
                    f"the top level must be {_subschema(()).get('x-expected')}, not {describe_value(document.value)}",
                    document.locations.get(()),
                )
            return ()

        findings = _interpolate(document, self.environ)
        findings += _schema_findings(document)
        findings += _semantic_findings(document, findings)
        self.add(findings)
        if self.problems:
            return ()
        self.accounts = _accounts(document)
        return tuple(_targets(document, self.manifest_path, self.accounts))

    def decode(self, data: bytes) -> str | None:
        try:
            # utf-8-sig: a BOM some Windows editors write is harmless, so it is accepted and dropped.
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            offset = error.start
            before = data[:offset]
            line = before.count(b"\n") + 1
            line_start = before.rfind(b"\n") + 1
            column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
            hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
            self.problems.append(
                Problem(
                    self.display,
                    line,
                    column,
                    "",
                    f"the manifest is not UTF-8: byte 0x{data[offset]:02x} at offset {offset} "
                    f"cannot be decoded{hint}; save the file as UTF-8",
                )
            )
            return None


# --- interpolation -----------------------------------------------------------------------------------


def _interpolate(document: Document, environ: Mapping[str, str]) -> list[_Finding]:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value, in place. Keys are left alone.

    It runs before the schema, so an interpolated sha is validated like a literal one.
    """
    findings: list[_Finding] = []

    def visit(value: YamlValue, path: FieldPath) -> YamlValue:
        if isinstance(value, str):
            expanded, error = _expand(value, environ)
            if error is None:
                return expanded
            document.reported.add(path)  # the schema would only repeat the complaint
            findings.append(_Finding(path, document.locations.get(path), error))
        elif isinstance(value, dict):
            for key, item in value.items():
                value[key] = visit(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = visit(item, (*path, index))
        return value

    document.value = visit(document.value, ())
    return findings


def _expand(text: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """Shell-like expansion of one string: ``${NAME}``, ``${NAME:-default}``, ``$$``; nothing else.

    Returns the expanded text, or the original text and a message. As in sh, ``:-`` also applies the
    default when the variable is set but empty. The default is literal text up to the first ``}``.
    """
    if "$" not in text:
        return text, None
    pieces: list[str] = []
    position = 0
    while (dollar := text.find("$", position)) >= 0:
        pieces.append(text[position:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            pieces.append("$")
            position = dollar + 2
            continue
        if following != "{":  # "$5", "a$b": a lone dollar is just a character
            pieces.append("$")
            position = dollar + 1
            continue
        close = text.find("}", dollar + 2)
        if close < 0:
            return text, (
                f"{show_text(text)} has '${{' without a closing '}}'; write ${{NAME}}, ${{NAME:-default}}, "
                "or '$$' for a literal '$'"
            )
        reference = text[dollar + 2 : close]
        name, has_default, default = reference.partition(":-")
        if not _VARIABLE_NAME.match(name):
            return text, (
                f"'${{{reference}}}' is not a variable reference; write ${{NAME}} or ${{NAME:-default}} "
                "(NAME: letters, digits and '_'), or '$$' for a literal '$'"
            )
        value = environ.get(name)
        if has_default:
            pieces.append(value if value else default)
        elif value is None:
            return text, (
                f"environment variable {name} is not set and ${{{name}}} has no default; "
                f"set it, or write ${{{name}:-default}}"
            )
        else:
            pieces.append(value)
        position = close + 1
    pieces.append(text[position:])
    return "".join(pieces), None


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




def _value_at(value: YamlValue, path: FieldPath) -> YamlValue:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


def _value_message(document: Document, error: ValidationError, path: FieldPath) -> str:
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
        message = f"{shown} is not allowed; {hint}allowed: {', '.join(allowed)}"
        if schema.get("x-aws-enum") == "providers":  # the enum AWS extends (CodeConnections, 2026)
            message += (f" (the providers the installed botocore {awsfacts.botocore_version()} knows; if AWS added "
                        "this one since, upgrade it: pip install -U boto3 botocore)")
        return message
    if "x-rule" in schema and isinstance(instance, str):
        return f"{_what_is_wrong(schema, instance, shown)}; {schema['x-rule']}"
    return f"{shown}: {error.message}"  # a rule without a tailored message (should not happen)


def _what_is_wrong(schema: Mapping[str, Any], text: str, shown: str) -> str:
    noun = str(schema.get("x-noun", "value"))
    if noun == "commit sha":
        hex_digits = bool(text) and _HEX.match(text) is not None
        return f"{shown} has {len(text)} hex digits" if hex_digits else f"{shown} is not a hex commit sha"
    if noun == "major version" and _MINOR_VERSION.match(text):
        return f"{shown} is a minor version"
    if not text:
        return f"{shown} is empty"
    if len(text) > int(schema.get("maxLength", len(text))):
        return f"{shown} is {len(text)} characters long"
    return f"{shown} is not a valid {noun}"


def _shown(document: Document, path: FieldPath, instance: object) -> str:
    """A value as the user wrote it, short enough for one line: 'abc', boolean yes, a list, ..."""
    if isinstance(instance, str):
        text = instance if len(instance) <= 60 else instance[:57] + "..."
        return repr(text)
    scalar = document.scalars.get(path)
    if instance is None:
        return "nothing (null)" if scalar is None or scalar.text in ("", "~", "null") else f"null {scalar.text}"
    if isinstance(instance, bool):
        return f"boolean {scalar.text if scalar else str(instance).lower()}"
    return describe_value(instance)






# --- checks beyond the schema ----------------------------------------------------------------------------


def _semantic_findings(document: Document, earlier: list[_Finding]) -> list[_Finding]:
    """What a schema cannot say: at least one entry; per entry a repository name, a provider its API knows, exactly
    one of sha/rev (its own or the defaults'), a declared account; no target twice. Only on entries (and defaults)
    without earlier findings: one mistake, one message."""
    root = document.value
    assert isinstance(root, dict)
    present = [section for section in _SECTIONS if section in root]
    if not present:
        if any(len(finding.path) == 1 and str(finding.path[0]) not in _allowed_keys(()) for finding in earlier):
            return []  # an unknown top-level key, likely a misspelt section: that message says it
        return [_Finding((_SECTIONS[0],), document.locations.get(()), f"no entries: add {_SECTION_WORDS} with at "
                         "least one entry")]
    broken = [finding.path for finding in earlier] + list(document.reported)
    if any(path[:1] in (("defaults",), ("accounts",)) for path in broken):
        return []  # the defaults' (or accounts') own problem explains whatever follows from it
    defaults = root.get("defaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    accounts = root.get("accounts")
    declared_accounts = tuple(accounts) if isinstance(accounts, dict) else ()
    findings: list[_Finding] = []
    findings += _account_findings(document, accounts)
    findings += _unused_accounts(document, root, defaults)
    if "sha" in defaults and "rev" in defaults:
        findings.append(_Finding(("defaults", "rev"), document.locations.get(("defaults", "rev")), _SHA_AND_REV))
        return findings

    first_line: dict[tuple[str, ...], int] = {}
    for section in present:
        kind = BY_SECTION[section]
        entries = root.get(section)
        if not isinstance(entries, list):
            continue
        broken_entries = {path[1] for path in broken if len(path) >= 2 and path[0] == section}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            entry_path: FieldPath = (section, index)
            if index in broken_entries:
                if _lacks_sha(kind, entry, defaults) and not _suppressed(entry_path, document.reported):
                    findings.append(_missing_sha(document, entry_path))  # a missing key is a mistake of its own
                continue
            findings += _entry_findings(document, kind, entry_path, entry, defaults, declared_accounts)
            location = document.locations.get(entry_path)
            if not all(isinstance(entry.get(key), str) for key in _required_keys((section, 0))):
                continue  # an earlier problem (a duplicate key, say) left the entry without its name
            identity = kind.identify({key: str(value) for key, value in entry.items() if isinstance(value, str)})
            region = entry.get("region", defaults.get("region"))
            account = entry.get("account", defaults.get("account"))
            key = (kind.name, identity.id, str(region or ""), str(account or ""))
            if key in first_line:
                where = (f" in {region}" if region else "") + (f" of account {account}" if account else "")
                findings.append(_Finding(entry_path, location, f"the same target {identity.id}{where} is already "
                                         f"declared at line {first_line[key]}; each target may appear once"))
            elif location is not None:
                first_line[key] = location.line
    return findings


def _unused_accounts(
    document: Document, root: dict[str, YamlValue], defaults: dict[str, YamlValue]
) -> Iterator[_Finding]:
    """An alias no entry names (nor the defaults) is a leftover. While an entry names an alias that is not declared,
    that message says it (with the declared ones): the alias it meant is not reported as unused too."""
    accounts = root.get("accounts")
    if not isinstance(accounts, dict):
        return
    named = {defaults.get("account")}
    for section in _SECTIONS:
        entries = root.get(section)
        if isinstance(entries, list):
            named |= {entry.get("account") for entry in entries if isinstance(entry, dict)}
    if any(isinstance(alias, str) and alias not in accounts for alias in named):
        return
    for alias in accounts:
        if alias not in named:
            path: FieldPath = ("accounts", alias)
            yield _Finding(path, document.key_locations.get(path, document.locations.get(path)),
                           f"account {alias!r} is declared but no entry uses it; name it with 'account: {alias}' in "
                           "the entries (or defaults) it is for, or remove it")


_ROLE_ONLY = ("external_id", "session_name", "duration_seconds", "source_profile")


def _account_findings(document: Document, accounts: YamlValue) -> Iterator[_Finding]:
    """Each account says how to get credentials one way: role_arn (with its options) or profile."""
    if not isinstance(accounts, dict):
        return
    for alias, account in accounts.items():
        if not isinstance(account, dict):
            continue
        path: FieldPath = ("accounts", alias)
        location = document.locations.get(path)
        if ("role_arn" in account) == ("profile" in account):
            yield _Finding(path, location, "give either 'role_arn' (a role to assume) or 'profile' (a profile from "
                           "the AWS config files), exactly one")
            continue
        for option in _ROLE_ONLY:
            if option in account and "role_arn" not in account:
                where = (*path, option)
                yield _Finding(where, document.key_locations.get(where, location),
                               f"{option!r} goes with 'role_arn'; a 'profile' account takes nothing else")
        seconds = account.get("duration_seconds")
        if isinstance(seconds, str) and seconds.isdigit() and not 900 <= int(seconds) <= 43200:
            where = (*path, "duration_seconds")
            yield _Finding(where, document.locations.get(where, location),
                           f"{seconds} seconds is outside what STS allows; use 900 to 43200")


_SHA_AND_REV = "give either 'sha' (a literal commit) or 'rev' (a git revision resolved in the checkout), not both"


def _entry_findings(
    document: Document,
    kind: Kind,
    entry_path: FieldPath,
    entry: dict[str, YamlValue],
    defaults: dict[str, YamlValue],
    accounts: tuple[str, ...],
) -> Iterator[_Finding]:
    location = document.locations.get(entry_path)
    if "sha" in entry and "rev" in entry:
        yield _Finding((*entry_path, "rev"), document.locations.get((*entry_path, "rev"), location), _SHA_AND_REV)
    elif _lacks_sha(kind, entry, defaults):
        yield _missing_sha(document, entry_path)
    repository = {**_repository_fields(defaults.get("repository")), **_repository_fields(entry.get("repository"))}
    if "name" not in repository:
        where = (*entry_path, "repository") if "repository" in entry else entry_path
        yield _Finding(where, document.locations.get(where, location),
                       "no repository name; give 'repository: owner/repo' here or 'name' under defaults.repository")
    provider = repository.get("provider")
    if provider is not None and provider not in kind.providers:
        own = isinstance(entry.get("repository"), dict) and "provider" in entry["repository"]  # type: ignore[operator]
        where = (*entry_path, "repository", "provider") if own else ("defaults", "repository", "provider")
        shared = "" if own else " (defaults apply to every section: give this provider in the entries that need it)"
        yield _Finding(where, document.locations.get(where, location),
                       f"provider {provider!r} is not one that {kind.operation_name} knows; for {kind.section} "
                       f"use {kind.provider_names()}{shared}")
    account = entry.get("account", defaults.get("account"))
    if isinstance(account, str) and account not in accounts:
        where = (*entry_path, "account") if "account" in entry else ("defaults", "account")
        declared = f"declared: {', '.join(accounts)}" if accounts else "the manifest declares no 'accounts'"
        suggestion = closest(account, accounts)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        yield _Finding(where, document.locations.get(where, location), f"unknown account {account!r}; {hint}{declared}")


def _lacks_sha(kind: Kind, entry: dict[str, YamlValue], defaults: dict[str, YamlValue]) -> bool:
    """Neither the entry nor the defaults give sha or rev, and no unknown key of the entry looks like a typo of them
    (that key's own message says so)."""
    if any(key in source for key in ("sha", "rev") for source in (entry, defaults)):
        return False
    allowed = _allowed_keys((kind.section, 0))
    return not any(closest(key, allowed) in ("sha", "rev") for key in entry if key not in allowed)


def _missing_sha(document: Document, entry_path: FieldPath) -> _Finding:
    return _Finding((*entry_path, "sha"), document.locations.get(entry_path), "missing required key 'sha' (or "
                    "'rev'): the commit sha it must be synced from (7 to 40 hex digits), or a git revision resolved in "
                    "the checkout such as HEAD")


def _repository_fields(value: YamlValue) -> dict[str, str]:
    """``"acme/x"`` is shorthand for ``{name: acme/x}``; either merges over the defaults' repository."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if isinstance(item, str)}
    return {}


def _accounts(document: Document) -> dict[str, AccountSpec]:
    """The ``accounts:`` of a document that passed every check: alias -> AccountSpec."""
    root = document.value
    assert isinstance(root, dict)
    accounts = root.get("accounts")
    specs: dict[str, AccountSpec] = {}
    for alias, account in (accounts.items() if isinstance(accounts, dict) else ()):
        assert isinstance(account, dict)
        text = {key: value for key, value in account.items() if isinstance(value, str)}
        seconds = text.get("duration_seconds")
        specs[alias] = AccountSpec(
            alias=alias,
            role_arn=text.get("role_arn"),
            external_id=text.get("external_id"),
            session_name=text.get("session_name"),
            duration_seconds=int(seconds) if seconds is not None else None,
            source_profile=text.get("source_profile"),
            profile=text.get("profile"),
        )
    return specs


def _targets(
    document: Document, manifest_path: Path, accounts: Mapping[str, AccountSpec] | None = None
) -> Iterator[Target]:
    """Build targets from a document that passed every check: all values are known to be valid text."""
    root = document.value
    assert isinstance(root, dict)
    defaults = root.get("defaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    for section in _SECTIONS:
        entries = root.get(section)
        if not isinstance(entries, list):
            continue
        kind = BY_SECTION[section]
        for index, entry in enumerate(entries):
            assert isinstance(entry, dict)
            fields = {key: value for key, value in entry.items() if isinstance(value, str)}
            repository = {**_repository_fields(defaults.get("repository")),
                          **_repository_fields(entry.get("repository"))}
            region = entry.get("region", defaults.get("region"))
            account = entry.get("account", defaults.get("account"))
            source = entry if ("sha" in entry or "rev" in entry) else defaults
            sha, rev = source.get("sha"), source.get("rev")
            match = entry.get("match", defaults.get("match")) or ("content" if rev is not None else "exact")
            provider = repository.get("provider")
            location = document.locations.get((section, index))
            target = make_target(
                kind,
                fields,
                Expectation(
                    sha=str(sha).lower() if sha is not None else "",
                    repository=RepositorySpec(
                        name=repository["name"],
                        provider=kind.providers[provider] if provider is not None else None,
                        branch=repository.get("branch"),
                        directory=repository.get("directory"),
                    ),
                    rev=str(rev) if rev is not None else None,
                    match=str(match),
                    bundle=kind.bundle(fields, repository.get("directory", "")),
                    index_file=kind.index_file(fields),
                ),
                region=region if isinstance(region, str) else None,
                account=account if isinstance(account, str) else None,
                manifest=manifest_path,
                line=location.line if location else 0,
            )
            spec = (accounts or {}).get(account) if isinstance(account, str) else None
            yield replace(target, account_spec=spec) if spec is not None else target
