"""Manifest loading: YAML in, frozen :class:`~pytest_proton_sync.model.Entry` tuples out.

A manifest is read in stages, each of which may add problems without stopping the others, so that a user
sees every mistake of a file in one run:

1. bytes -> text (size cap, strict UTF-8),
2. text -> plain values with locations (:mod:`pytest_proton_sync.yamlcheck.yamlnodes`: syntax, tags, aliases,
   duplicate keys; nothing is ever constructed or executed),
3. ``${VAR}`` / ``${VAR:-default}`` interpolation of string values,
4. the JSON Schema shipped next to this module (structure, types, enums, patterns),
5. checks a schema cannot express (a repository for every entry, no target declared twice).

Every problem names file, line, column and field, says what is wrong and what is allowed. The only
exception leaving this module is :class:`ManifestError`.

This module imports neither pytest nor boto3, nor jsonschema (the schema's keywords are checked by
:mod:`pytest_proton_sync.yamlcheck.subset`), and imports yaml only when a manifest is read.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_proton_sync.kinds import BY_SECTION
from pytest_proton_sync.manifest.schema import (
    _SECTION_WORDS,
    _Finding,
    _naming_variables,
    _schema_findings,
    _subschema,
)
from pytest_proton_sync.manifest.schema import SCHEMA_RESOURCE as SCHEMA_RESOURCE
from pytest_proton_sync.manifest.schema import manifest_schema as manifest_schema
from pytest_proton_sync.manifest.semantics import _accounts, _semantic_findings, _targets
from pytest_proton_sync.model import AccountSpec, Entry
from pytest_proton_sync.yamlcheck.messages import describe_value, show_text
from pytest_proton_sync.yamlcheck.problems import Problem, ProblemsError, decode_utf8, format_path, ordered

if TYPE_CHECKING:

    from pytest_proton_sync.yamlcheck.yamlnodes import Document, FieldPath, Location, YamlValue

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
# Past this many problems in one file the rest is noise (usually one systematic mistake repeated).
_MAX_PROBLEMS_PER_FILE = 200
# Every pattern in the schema sits next to a maxLength far below this.

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ManifestError(ProblemsError):
    """Every problem of the manifest file(s) read; ``str()`` gives one problem per line."""


@dataclass(frozen=True)
class Manifest:
    """A valid manifest: its path and its targets, in the order the file declares them, and its accounts."""

    path: Path
    targets: tuple[Entry, ...]  # as declared: git/expectations.py resolves them
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
        raise ManifestError(ordered(reader.problems, _MAX_PROBLEMS_PER_FILE))
    return Manifest(Path(display), targets, reader.accounts)


def read_manifests(
    paths: Sequence[str | os.PathLike[str]], environ: Mapping[str, str] | None = None
) -> dict[str, Manifest | ManifestError]:
    """Each manifest of a set, or its own problems, by its path as given (``os.fspath``), in the order given: what
    a pytest run, ``validate`` and ``check`` read. The set is read as one: a target (``Entry.key``) declared in two
    files is a problem at the second declaration. A file given twice (same real path) is read once: it is the same
    set of declarations, not a conflict.
    """
    found: dict[str, Manifest | ManifestError] = {}
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
            found[display] = load_manifest(path, environ)
        except ManifestError as error:
            found[display] = error
    for display, problems in _declared_twice(found).items():
        found[display] = ManifestError(ordered(problems, _MAX_PROBLEMS_PER_FILE))
    return found


def _declared_twice(found: Mapping[str, Manifest | ManifestError]) -> dict[str, list[Problem]]:
    """The problems of targets declared again after their first declaration, by file."""
    first_declared: dict[tuple[str, ...], tuple[str, Entry]] = {}
    problems_by_file: dict[str, list[Problem]] = {}
    for display, manifest in found.items():
        if isinstance(manifest, ManifestError):
            continue
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
    return problems_by_file


def load_manifests(
    paths: Sequence[str | os.PathLike[str]], environ: Mapping[str, str] | None = None
) -> tuple[Manifest, ...]:
    """Load several manifests as one set (:func:`read_manifests`): every problem of every file is reported in one
    ManifestError, file by file."""
    found = read_manifests(paths, environ)
    problems = [problem for result in found.values() if isinstance(result, ManifestError)
                for problem in result.problems]
    if problems:
        raise ManifestError(problems)
    return tuple(result for result in found.values() if isinstance(result, Manifest))


def _display(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


def _describe_target(target: Entry) -> str:
    return target.id + (f" in {target.region}" if target.region else "") + (
        f" of account {target.account}" if target.account else "")


def entry_fields(targets: Sequence[Entry]) -> list[str]:
    """Each target's field in its manifest, ``templates[0]``: sections in schema order, entries in file order."""
    counts: dict[str, int] = {}
    fields = []
    for target in targets:
        section = next(kind.section for kind in BY_SECTION.values() if kind.name == target.kind)
        fields.append(f"{section}[{counts.get(section, 0)}]")
        counts[section] = counts.get(section, 0) + 1
    return fields


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

    def read(self, data: bytes | str) -> tuple[Entry, ...]:
        if len(data) > MAX_MANIFEST_BYTES:
            self.whole_file(
                f"the manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; "
                "a manifest lists entries, it should be a few kilobytes"
            )
            return ()
        text = self.decode(data) if isinstance(data, bytes) else data
        if text is None:
            return ()

        from pytest_proton_sync.yamlcheck.yamlnodes import read_document  # PyYAML only once a file is read

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
        self.add(_naming_variables(document, finding) for finding in findings)
        if self.problems:
            return ()
        self.accounts = _accounts(document)
        return tuple(_targets(document, self.manifest_path, self.accounts))

    def decode(self, data: bytes) -> str | None:
        text = decode_utf8(data, self.display, "the manifest")
        if isinstance(text, Problem):
            self.problems.append(text)
            return None
        return text


# --- interpolation -----------------------------------------------------------------------------------


def _interpolate(document: Document, environ: Mapping[str, str]) -> list[_Finding]:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value, in place. Keys are left alone.

    It runs before the schema, so an interpolated sha is validated like a literal one. The variables whose values
    a string now holds are kept in ``document.variables``: a message about the value names them, and prints the
    value only when it is plainly harmless (text.envsecrets.plainly_harmless).
    """
    findings: list[_Finding] = []

    def visit(value: YamlValue, path: FieldPath) -> YamlValue:
        if isinstance(value, str):
            expanded, error, variables = _expand(value, environ)
            if error is None:
                if variables:
                    document.variables[path] = variables
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


def _expand(text: str, environ: Mapping[str, str]) -> tuple[str, str | None, tuple[str, ...]]:
    """Shell-like expansion of one string: ``${NAME}``, ``${NAME:-default}``, ``$$``; nothing else.

    Returns the expanded text and the variables whose values it holds (not those whose default was used), or the
    original text and a message. As in sh, ``:-`` also applies the default when the variable is set but empty.
    The default is literal text up to the first ``}``.
    """
    if "$" not in text:
        return text, None, ()
    pieces: list[str] = []
    used: list[str] = []
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
            ), ()
        reference = text[dollar + 2 : close]
        name, has_default, default = reference.partition(":-")
        if not _VARIABLE_NAME.match(name):
            return text, (
                f"'${{{reference}}}' is not a variable reference; write ${{NAME}} or ${{NAME:-default}} "
                "(NAME: letters, digits and '_'), or '$$' for a literal '$'"
            ), ()
        value = environ.get(name)
        if value is None and not has_default:
            return text, (
                f"environment variable {name} is not set and ${{{name}}} has no default; "
                f"set it, or write ${{{name}:-default}}"
            ), ()
        if value:
            pieces.append(value)
            used.append(name)
        elif has_default:
            pieces.append(default)
        position = close + 1
    pieces.append(text[position:])
    return "".join(pieces), None, tuple(dict.fromkeys(used))
