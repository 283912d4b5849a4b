"""Checks beyond the schema (sha or rev, accounts, duplicates, versions) and the targets a valid document gives."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_proton_sync.kinds import BY_SECTION, Kind, make_entry
from pytest_proton_sync.manifest.schema import (
    _SECTION_WORDS,
    _SECTIONS,
    _allowed_keys,
    _Finding,
    _required_keys,
    _shown,
    _suppressed,
)
from pytest_proton_sync.model import AccountSpec, Declared, Entry, RepositorySpec
from pytest_proton_sync.yamlcheck.messages import closest

if TYPE_CHECKING:

    from pytest_proton_sync.yamlcheck.yamlnodes import Document, FieldPath, YamlValue

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
    return findings + _entries_findings(document, present, broken, defaults, declared_accounts)


def _entries_findings(
    document: Document, present: list[str], broken: list[FieldPath], defaults: dict[str, YamlValue],
    declared_accounts: tuple[str, ...],
) -> list[_Finding]:
    """Each entry's findings (only the missing sha of an entry with earlier findings), and targets declared twice."""
    root = document.value
    assert isinstance(root, dict)
    findings: list[_Finding] = []
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
            shown = _shown(document, where, seconds, by_characters=False) if where in document.variables else seconds
            yield _Finding(where, document.locations.get(where, location),
                           f"{shown} seconds is outside what STS allows; use 900 to 43200")


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
        shown = _shown(document, where, provider, by_characters=False)
        yield _Finding(where, document.locations.get(where, location),
                       f"provider {shown} is not one that {kind.operation_name} knows; for {kind.section} "
                       f"use {kind.provider_names()}{shared}")
    account = entry.get("account", defaults.get("account"))
    if isinstance(account, str) and account not in accounts:
        where = (*entry_path, "account") if "account" in entry else ("defaults", "account")
        declared = f"declared: {', '.join(accounts)}" if accounts else "the manifest declares no 'accounts'"
        suggestion = closest(account, accounts)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        shown = _shown(document, where, account, by_characters=False)
        yield _Finding(where, document.locations.get(where, location), f"unknown account {shown}; {hint}{declared}")


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
) -> Iterator[Entry]:
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
            target = make_entry(
                kind,
                fields,
                Declared(
                    sha=str(sha).lower() if sha is not None else None,
                    repository=RepositorySpec(
                        name=repository["name"],
                        provider=kind.providers[provider] if provider is not None else None,
                        branch=repository.get("branch"),
                        directory=repository.get("directory"),
                    ),
                    rev=str(rev) if rev is not None else None,
                    match=str(match),
                    paths=kind.bundle(fields, repository.get("directory", "")),
                    index_file=kind.index_file(fields),
                ),
                region=region if isinstance(region, str) else None,
                account=account if isinstance(account, str) else None,
                manifest=manifest_path,
                line=location.line if location else 0,
            )
            spec = (accounts or {}).get(account) if isinstance(account, str) else None
            yield replace(target, account_spec=spec) if spec is not None else target
