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

import difflib
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_proton_sync.model import Expectation, RepositorySpec, Target

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

_TOP_LEVEL_KEYS = ("version", "defaults", "templates")
_DEFAULTS_KEYS = ("region", "repository")
_ENTRY_KEYS = ("name", "type", "version", "sha", "repository", "region")
_REPOSITORY_KEYS = ("provider", "name", "branch", "directory")

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MINOR_VERSION = re.compile(r"\s*v?[0-9]+\.[0-9.]*\s*\Z")
_HEX = re.compile(r"[0-9a-fA-F]+\Z")


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
    """A valid manifest: its path and its targets, in the order the file declares them."""

    path: Path
    targets: tuple[Target, ...]


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
    return Manifest(Path(display), targets)


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

    first_declared: dict[tuple[str, str, str, str, str], tuple[str, Target]] = {}
    for display, manifest in manifests:
        for index, target in enumerate(manifest.targets):
            if target.key not in first_declared:
                first_declared[target.key] = (display, target)
                continue
            other_file, other = first_declared[target.key]
            problems_by_file.setdefault(display, []).append(
                Problem(
                    display,
                    target.line or None,
                    None,
                    f"templates[{index}]",
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
    return target.id + (f" in {target.region}" if target.region else "")


@functools.lru_cache(maxsize=1)
@functools.cache
def _schema_validator() -> Validator:
    import jsonschema
    from jsonschema import validators

    text = resources.files("pytest_proton_sync").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    validator_class = validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator, {"pattern": _whole_string_pattern}
    )
    return validator_class(_inline_local_references(json.loads(text)))  # type: ignore[no-any-return]


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
                "the manifest is empty; it needs 'version: 1' and a 'templates' list with at least one entry"
            )
            return ()
        if not document.complete:
            return ()
        if not isinstance(document.value, dict):
            if not document.issues:
                self.whole_file(
                    f"the top level must be a mapping with 'version' and 'templates', not {_a(document.value)}",
                    document.locations.get(()),
                )
            return ()

        findings = _interpolate(document, self.environ)
        findings += _schema_findings(document)
        findings += _semantic_findings(document, findings)
        self.add(findings)
        if self.problems:
            return ()
        return tuple(_targets(document, self.manifest_path))

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
                f"{_show(text)} has '${{' without a closing '}}'; write ${{NAME}}, ${{NAME:-default}}, "
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
    if path == ():
        return _TOP_LEVEL_KEYS
    if path == ("defaults",):
        return _DEFAULTS_KEYS
    if path[-1] == "repository":
        return _REPOSITORY_KEYS
    return _ENTRY_KEYS


def _required_keys(path: FieldPath) -> tuple[str, ...]:
    if path == ():
        return ("version", "templates")
    if len(path) == 2 and path[0] == "templates":
        return ("name", "type", "version", "sha")
    return ()


def _key_findings(document: Document, object_paths: set[FieldPath]) -> Iterator[_Finding]:
    """Unknown keys (with a did-you-mean) and missing keys, for every object the schema complained about.

    A missing key that an unknown key probably meant (``shaa`` for ``sha``) is not reported again: the
    typo is the mistake, and fixing it fixes both.
    """
    for path in sorted(object_paths, key=lambda p: _location_sort_key(document, p)):
        mapping = _value_at(document.value, path)
        if not isinstance(mapping, dict):
            continue
        allowed = _allowed_keys(path)
        meant: set[str] = set()
        for key in mapping:
            if key in allowed or (*path, key) in document.reported:
                continue
            suggestion = _closest(key, allowed)
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
    if path == ():
        if key == "version":
            return "missing required key 'version'; add 'version: 1' at the top of the manifest"
        return "no entries: add a 'templates' list with at least one entry"
    what = {
        "name": "the template's name",
        "type": "ENVIRONMENT or SERVICE",
        "version": 'the major version, e.g. "1"',
        "sha": "the commit sha it must be synced from (7 to 40 hex digits)",
    }[key]
    return f"missing required key {key!r}: {what}"


def _closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice a typo most likely meant: same letters in another case first, then difflib."""
    if len(word) > 100:  # no typo of a short word; and difflib's cost grows with the length
        return None
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    lowered = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def _value_at(value: YamlValue, path: FieldPath) -> YamlValue:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


def _field_kind(path: FieldPath, instance: object) -> str:
    """Which rule applies at ``path``: "sha", "repository" (the name), "templates", "entry", ..."""
    if not path:
        return "document"
    last = path[-1]
    if isinstance(last, int):
        return "entry"
    if last == "version" and len(path) == 1:
        return "manifest version"
    if last == "repository" and isinstance(instance, str):
        return "repository name"
    if last == "name" and len(path) >= 2 and path[-2] == "repository":
        return "repository name"
    return last


# What each value must look like, said once so that every message about it agrees.
_RULES = {
    "name": "a template name is 1 to 100 letters, digits, '-' and '_', starting with a letter or digit",
    "version": 'major version only, e.g. "1" (a whole number, no leading zeros)',
    "sha": "use 7 to 40 hex digits (a full commit sha or a prefix of it), or 64 for SHA-256 repositories",
    "region": "use an AWS region name such as us-east-1",
    "repository name": "use owner/repo as the provider names it, e.g. acme/platform-templates (at most 100 characters)",
    "branch": "a branch name is 1 to 200 characters",
    "directory": "a directory is 1 to 4096 characters",
}

_EXPECTED_TYPES = {
    "document": "a mapping with 'version' and 'templates'",
    "templates": "a list of entries",
    "entry": "a mapping with name, type, version and sha",
    "defaults": "a mapping with region and/or repository",
    "repository": "owner/repo or a mapping with name, provider, branch and directory",
}


def _value_message(document: Document, error: ValidationError, path: FieldPath) -> str:
    instance = error.instance
    kind = _field_kind(path, instance)
    validator = str(error.validator)
    shown = _shown(document, path, instance)

    if validator == "type":
        expected = _EXPECTED_TYPES.get(kind, "text")
        if kind == "templates" and instance is None:
            return "no entries: 'templates' is empty; list at least one entry"
        message = f"expected {expected}, got {'text ' if isinstance(instance, str) else ''}{shown}"
        if isinstance(instance, bool) and expected == "text":
            text = document.scalars[path].text if path in document.scalars else str(instance).lower()
            message += f'; YAML reads {text} as a boolean: quote it ("{text}") if you mean the text'
        elif kind in _RULES:
            message += f"; {_RULES[kind]}"
        return message
    if validator == "minItems" and kind == "templates":
        return "no entries: 'templates' is empty; list at least one entry"
    if validator == "enum":
        if kind == "manifest version":
            if instance is None:
                return "missing manifest version; write 'version: 1'"
            return f"unsupported manifest version {shown}; this plugin reads version {_SUPPORTED_VERSION}"
        choices = error.validator_value
        allowed = [str(choice) for choice in choices] if isinstance(choices, list) else []
        suggestion = _closest(instance, allowed) if isinstance(instance, str) else None
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        return f"{shown} is not allowed; {hint}allowed: {', '.join(allowed)}"
    if kind in _RULES and isinstance(instance, str):
        return f"{_what_is_wrong(kind, instance, shown)}; {_RULES[kind]}"
    return f"{shown}: {error.message}"  # a rule without a tailored message (should not happen)


# Longest text each field accepts (the schema's maxLength), to say "too long" rather than "invalid".
_MAX_LENGTHS = {"name": 100, "repository name": 100, "branch": 200, "directory": 4096, "version": 20}


def _what_is_wrong(kind: str, text: str, shown: str) -> str:
    if kind == "sha" and text and _HEX.match(text):
        return f"{shown} has {len(text)} hex digits"
    if kind == "sha":
        return f"{shown} is not a hex commit sha"
    if kind == "version" and _MINOR_VERSION.match(text):
        return f"{shown} is a minor version"
    if not text:
        return f"{shown} is empty"
    if len(text) > _MAX_LENGTHS.get(kind, len(text)):
        return f"{shown} is {len(text)} characters long"
    noun = {"version": "major version", "name": "template name"}
    return f"{shown} is not a valid {noun.get(kind, kind)}"


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
    return _a(instance)


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _a(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "nothing (null)"
    return f"text {_show(str(value))}"


# --- checks beyond the schema ----------------------------------------------------------------------------


def _semantic_findings(document: Document, earlier: list[_Finding]) -> list[_Finding]:
    """A repository name for every entry; no target twice. Only on entries without earlier findings."""
    root = document.value
    assert isinstance(root, dict)
    entries = root.get("templates")
    if not isinstance(entries, list):
        return []
    broken = [finding.path for finding in earlier] + list(document.reported)
    defaults_broken = any(path[:1] == ("defaults",) for path in broken)
    broken_entries = {path[1] for path in broken if len(path) >= 2 and path[0] == "templates"}
    defaults = root.get("defaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    default_repository = _repository_fields(defaults.get("repository"))
    default_region = defaults.get("region")

    findings: list[_Finding] = []
    first_line: dict[tuple[str, str, str, str], int] = {}
    for index, entry in enumerate(entries):
        entry_path: FieldPath = ("templates", index)
        if not isinstance(entry, dict) or index in broken_entries:
            continue
        location = document.locations.get(entry_path)
        if defaults_broken:
            continue  # the defaults' own problem explains whatever follows from it
        repository = {**default_repository, **_repository_fields(entry.get("repository"))}
        if "name" not in repository:
            where = (*entry_path, "repository") if "repository" in entry else entry_path
            findings.append(
                _Finding(
                    where,
                    document.locations.get(where, location),
                    "no repository name; give 'repository: owner/repo' here or 'name' under defaults.repository",
                )
            )
        region = entry.get("region", default_region)
        key = (str(entry.get("type")), str(entry.get("name")), str(entry.get("version")), str(region or ""))
        if key in first_line:
            region_text = f" in {region}" if region else ""
            findings.append(
                _Finding(
                    entry_path,
                    location,
                    f"the same target {key[0]}/{key[1]}@{key[2]}{region_text} is already declared at "
                    f"line {first_line[key]}; each target may appear once",
                )
            )
        elif location is not None:
            first_line[key] = location.line
    return findings


def _repository_fields(value: YamlValue) -> dict[str, str]:
    """``"acme/x"`` is shorthand for ``{name: acme/x}``; either merges over the defaults' repository."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if isinstance(item, str)}
    return {}


def _targets(document: Document, manifest_path: Path) -> Iterator[Target]:
    """Build targets from a document that passed every check: all values are known to be valid text."""
    root = document.value
    assert isinstance(root, dict)
    defaults = root.get("defaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    default_repository = _repository_fields(defaults.get("repository"))
    default_region = defaults.get("region")
    entries = root["templates"]
    assert isinstance(entries, list)
    for index, entry in enumerate(entries):
        assert isinstance(entry, dict)
        repository = {**default_repository, **_repository_fields(entry.get("repository"))}
        region = entry.get("region", default_region)
        location = document.locations.get(("templates", index))
        yield Target(
            kind="template",
            name=str(entry["name"]),
            template_type=str(entry["type"]),
            version=str(entry["version"]),
            expectation=Expectation(
                sha=str(entry["sha"]).lower(),
                repository=RepositorySpec(
                    name=repository["name"],
                    provider=repository.get("provider"),
                    branch=repository.get("branch"),
                    directory=repository.get("directory"),
                ),
            ),
            region=region if isinstance(region, str) else None,
            manifest=manifest_path,
            line=location.line if location else 0,
        )
