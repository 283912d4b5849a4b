"""Coverage of the manifest: which Git-synced stacks of its repositories have no entry (ungated), and which entries
disagree with their stack's sync configuration (drift).

Pure: no I/O, no boto3, no pytest. :mod:`pytest_proton_sync.session.coverage_check` lists the sync configurations
(one ``ListRepositoryLinks`` walk per account and region, one ``ListSyncConfigurations`` walk per link of a
repository the manifest names); this module compares them with the manifest's targets and words the findings for
every output: the terminal summary, JUnit properties, the JSON report and GitHub annotations.

Repository names compare as everywhere in the gate (ASCII case ignored), providers in CodeConnections' spelling
whichever spelling the manifest used (a manifest entry without a provider matches any), branches exactly, and
deployment files without a leading ``./`` or surrounding ``/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_proton_sync.aws.facts import connections_spellings
from pytest_proton_sync.discovery.listing import StackSync, same_repository
from pytest_proton_sync.model import Entry
from pytest_proton_sync.reports.github import escape_data, escape_property, workspace_relative
from pytest_proton_sync.text.safetext import clean

OFF, WARN, FAIL = "off", "warn", "fail"
MODES = (OFF, WARN, FAIL)
UNGATED, DRIFT = "ungated", "drift"


@dataclass(frozen=True)
class Scope:
    """Where sync configurations are listed: an account (a manifest alias; None: the standard chain) and region."""

    account: str | None
    region: str

    def __str__(self) -> str:
        return f"{self.region}{f' (account {self.account})' if self.account else ''}"


@dataclass(frozen=True)
class NamedRepository:
    provider: str | None  # CodeConnections' spelling; None: the manifest gives none, any provider matches
    name: str  # owner/repo as the manifest writes it

    def matches(self, provider: str, name: str) -> bool:
        return same_repository(name, self.name) and (self.provider is None or self.provider == provider)


@dataclass(frozen=True)
class Finding:
    kind: str  # UNGATED | DRIFT
    stack: str
    scope: Scope
    repository: str  # "GitHub acme/infra"
    problem: str  # one line: what is wrong
    fix: str  # one line: the entry to add, or the field to change
    manifest: str  # where to fix it: the entry's manifest, or the first that names the repository
    line: int  # the entry's line (drift), or the line of the first entry naming the repository (ungated)

    @property
    def id(self) -> str:
        return f"STACK/{self.stack}"

    @property
    def text(self) -> str:
        return f"{self.kind.upper()} {self.id} in {self.scope}: {self.problem}\n  fix: {self.fix}"


@dataclass(frozen=True)
class Coverage:
    """The outcome of a coverage check. ``errors`` are scopes that could not be listed: coverage is then unknown,
    which ``fail`` treats as a failure (the gate fails closed)."""

    mode: str
    findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = ()
    scopes: int = 0
    sync_configurations: int = 0
    calls: int = 0

    @property
    def failed(self) -> bool:
        return self.mode == FAIL and bool(self.findings or self.errors)


def provider_spelling(provider: str | None) -> str | None:
    return None if provider is None else connections_spellings().get(provider, provider)


def named_repositories(targets: Iterable[Entry]) -> tuple[NamedRepository, ...]:
    named = {NamedRepository(provider_spelling(t.expectation.repository.provider), t.expectation.repository.name)
             for t in targets}
    return tuple(sorted(named, key=lambda item: (item.name.lower(), item.provider or "")))


def _path(text: str | None) -> str | None:
    if text is None:
        return None
    while text.startswith("./"):
        text = text[2:]
    return text.strip("/")


def _entry(sync: StackSync, scope: Scope, default_region: str | None) -> str:
    fields = [f"name: {sync.stack}"]
    if sync.config_file:
        fields.append(f"config_file: {sync.config_file}")
    fields.append(f"repository: {{provider: {sync.provider}, name: {sync.repository}, branch: {sync.branch}}}")
    if scope.region != default_region:
        fields.append(f"region: {scope.region}")
    if scope.account:
        fields.append(f"account: {scope.account}")
    return "- {" + ", ".join(fields) + "}"


def compare(
    scope: Scope, targets: Sequence[Entry], syncs: Sequence[StackSync], default_region: str | None = None
) -> list[Finding]:
    """Findings of one scope: ``targets`` are the manifest's targets there, ``syncs`` the sync configurations of the
    links of the repositories they name."""
    named = named_repositories(targets)
    stacks = {target.name: target for target in targets if target.kind == "stack"}
    first_naming: dict[NamedRepository, Entry] = {}
    for target in targets:  # in manifest order: the first entry naming a repository is where to add its stacks
        spec = target.expectation.repository
        first_naming.setdefault(NamedRepository(provider_spelling(spec.provider), spec.name), target)
    findings: list[Finding] = []
    for sync in sorted(syncs, key=lambda item: (item.stack, item.repository)):
        repository = next((item for item in named if item.matches(sync.provider, sync.repository)), None)
        if repository is None:
            continue  # a repository the manifest does not name: not its business
        shown = f"{clean(sync.provider, 40)} {clean(sync.repository, 200)}"
        entry = stacks.get(sync.stack)
        if entry is None:
            where = first_naming.get(repository)
            findings.append(Finding(
                kind=UNGATED, stack=clean(sync.stack, 100), scope=scope, repository=shown,
                problem=f"synced from {shown} branch {clean(sync.branch, 200)}"
                        f"{f' ({clean(sync.config_file, 300)})' if sync.config_file else ''}, but no manifest entry "
                        "gates it: every commit deploys unchecked",
                fix=f"add under stacks: {clean(_entry(sync, scope, default_region), 800)}",
                manifest=str(where.manifest) if where else "", line=where.line if where else 0,
            ))
            continue
        expected = entry.expectation.repository
        problems: list[str] = []
        fixes: list[str] = []
        if expected.branch is not None and expected.branch != sync.branch:
            problems.append(f"branch: the entry says {clean(expected.branch, 200)}, the sync configuration "
                            f"{clean(sync.branch, 200)}")
            fixes.append(f"branch: {clean(sync.branch, 200)}")
        config_file = entry.expectation.index_file
        if config_file is not None and sync.config_file is not None and _path(config_file) != _path(sync.config_file):
            problems.append(f"config_file: the entry says {clean(config_file, 300)}, the sync configuration "
                            f"{clean(sync.config_file, 300)}")
            fixes.append(f"config_file: {clean(sync.config_file, 300)}")
        if problems:
            findings.append(Finding(
                kind=DRIFT, stack=entry.name, scope=scope, repository=shown, problem="; ".join(problems),
                fix=f"in the entry at {entry.manifest}:{entry.line}, set " + " and ".join(fixes)
                    + " (or change the sync configuration, if the manifest is right)",
                manifest=str(entry.manifest), line=entry.line,
            ))
    return findings


# -- outputs --------------------------------------------------------------------------------------------------


def headline(coverage: Coverage) -> str:
    ungated = sum(1 for finding in coverage.findings if finding.kind == UNGATED)
    drift = len(coverage.findings) - ungated
    text = (f"coverage ({coverage.mode}): {ungated} ungated, {drift} drifted stack{'' if drift == 1 else 's'}; "
            f"{coverage.sync_configurations} sync configuration{'' if coverage.sync_configurations == 1 else 's'} "
            f"of the manifest's repositories in {coverage.scopes} account/region{'' if coverage.scopes == 1 else 's'}"
            f", {coverage.calls} list call{'' if coverage.calls == 1 else 's'}")
    if coverage.errors:
        text += f"; {len(coverage.errors)} could not be listed"
    return text


def summary_lines(coverage: Coverage) -> list[str]:
    lines = [headline(coverage)]
    lines += [finding.text for finding in coverage.findings]
    lines += [f"ERROR coverage unknown: {error}" for error in coverage.errors]
    if coverage.failed:  # the tests above may all have passed: say why the exit status is 1
        lines.append("--proton-coverage fail: the run fails (exit 1) until every stack above is gated as its sync "
                     "configuration says" + (" and coverage can be listed" if coverage.errors else ""))
    return lines


def junit_properties(coverage: Coverage) -> dict[str, str]:
    properties = {"proton.coverage": headline(coverage)}
    for number, finding in enumerate(coverage.findings, 1):
        properties[f"proton.coverage.{number}"] = finding.text.replace("\n  ", " ")
    for number, error in enumerate(coverage.errors, 1):
        properties[f"proton.coverage.error.{number}"] = error.replace("\n  ", " ")
    return properties


def report_section(coverage: Coverage) -> dict[str, Any]:
    return {
        "mode": coverage.mode,
        "failed": coverage.failed,
        "scopes": coverage.scopes,
        "sync_configurations": coverage.sync_configurations,
        "list_calls": coverage.calls,
        "findings": [
            {"kind": finding.kind, "stack": finding.stack, "region": finding.scope.region,
             "account": finding.scope.account, "repository": finding.repository, "problem": finding.problem,
             "fix": finding.fix, "manifest": finding.manifest, "line": finding.line}
            for finding in coverage.findings
        ],
        "errors": list(coverage.errors),
    }


def github_annotations(coverage: Coverage, workspace: str | None) -> list[str]:
    level = "error" if coverage.mode == FAIL else "warning"
    lines = []
    for finding in coverage.findings:
        properties = []
        if finding.manifest:
            properties.append(f"file={escape_property(workspace_relative(finding.manifest, workspace))}")
        if finding.line > 0:
            properties.append(f"line={finding.line}")
        properties.append(f"title={escape_property(f'proton-sync coverage: {finding.id} {finding.kind}')}")
        lines.append(f"::{level} {','.join(properties)}::{escape_data(finding.text)}")
    for error in coverage.errors:
        lines.append(f"::{level} title={escape_property('proton-sync coverage unknown')}::{escape_data(error)}")
    return lines


def by_scope(targets: Iterable[tuple[Scope, Entry]]) -> Mapping[Scope, list[Entry]]:
    grouped: dict[Scope, list[Entry]] = {}
    for scope, target in targets:
        grouped.setdefault(scope, []).append(target)
    return grouped

