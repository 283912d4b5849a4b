"""Proton template bundles in a repository, and how they compare with a manifest.

A template bundle is ``{directory}/{name}/v{major}/`` holding ``schema/schema.yaml``, the layout Proton's
template sync reads. The schema says the template's type: ``environment_input_type`` for ENVIRONMENT,
``service_input_type`` for SERVICE. A schema with neither (or both, or one that does not parse) is reported
as a problem, never guessed. Discovery reads trees at one commit through a :class:`~.gitrepo.Checkout` (the
checkout's long-lived batch process: a few round trips, no process per bundle), not the work tree, so what
it finds is what a sync of that commit would see. Imports neither pytest nor boto3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from pytest_proton_sync.git.checkout import Checkout, GitError, TreeEntry, clean_text

__all__ = ["Bundle", "Discovery", "compare_manifest_with_checkout", "discover_bundles", "normal_directory"]

SCHEMA_LIMIT = 1 << 20  # bytes; a larger schema.yaml is reported, not parsed
_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")
_MAJOR_DIRECTORY = re.compile(r"v(0|[1-9][0-9]{0,19})")
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Bundle:
    """One template major version found in the repository: ``path`` is ``{directory}/{name}/v{major}/``."""

    type: Literal["ENVIRONMENT", "SERVICE"]
    name: str
    major: str
    path: str

    @property
    def id(self) -> str:
        return f"{self.type}/{self.name}@{self.major}"


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover_bundles` found at one commit: bundles sorted by path, and one line per problem."""

    commit: str
    directory: str
    bundles: tuple[Bundle, ...]
    problems: tuple[str, ...]


def normal_directory(directory: str) -> str:
    """``./templates/`` -> ``templates``; ``.`` or '' -> '' (the repository root). Raises GitError for paths
    that leave the repository."""
    parts = [part for part in directory.replace("\\", "/").split("/") if part not in ("", ".")]
    if directory.startswith("/") or ".." in parts or any("\n" in part or "\0" in part for part in parts):
        raise GitError(
            f"not a directory inside the repository: {directory!r}",
            "give it relative to the repository root, e.g. --directory templates",
        )
    return "/".join(parts)


def discover_bundles(checkout: Checkout, commit: str, directory: str = "templates") -> Discovery:
    """Every ``{directory}/{name}/v{major}/schema/schema.yaml`` at ``commit`` (a full commit id), typed by its
    schema. Raises GitError when ``directory`` is not a directory at that commit."""
    base = normal_directory(directory)
    prefix = f"{base}/" if base else ""
    shown = f"{base}/" if base else "the repository root"
    top = checkout.tree(commit, base)
    if top is None:
        raise GitError(
            f"no directory {shown} at commit {commit[:12]}",
            "give the directory that holds the template bundles with --directory",
        )
    problems: list[str] = []
    names = [entry for entry in top.values() if entry.is_tree]
    name_trees = checkout.trees(entry.oid for entry in names)
    # (name entry, major directory entry) for every v<N>-looking directory
    candidates: list[tuple[TreeEntry, TreeEntry]] = []
    for name_entry in names:
        for entry in name_trees[name_entry.oid].values():
            if entry.is_tree and entry.name.startswith("v") and entry.name[1:2].isdigit():
                candidates.append((name_entry, entry))
    major_trees = checkout.trees(entry.oid for _, entry in candidates)
    with_schema: list[tuple[TreeEntry, TreeEntry, TreeEntry]] = []
    for name_entry, major_entry in candidates:
        schema_directory = major_trees[major_entry.oid].get("schema")
        where = f"{prefix}{name_entry.name}/{major_entry.name}/"
        if schema_directory is None or not schema_directory.is_tree:
            problems.append(f"{clean_text(where)}: no schema/schema.yaml, not a template bundle")
            continue
        with_schema.append((name_entry, major_entry, schema_directory))
    schema_trees = checkout.trees(entry.oid for _, _, entry in with_schema)

    readable: list[tuple[str, str, str, str]] = []  # (where, name, major, schema blob id)
    for name_entry, major_entry, schema_directory in with_schema:
        where = f"{prefix}{name_entry.name}/{major_entry.name}/"
        shown_where = clean_text(where)
        schema_file = schema_trees[schema_directory.oid].get("schema.yaml")
        if schema_file is None or schema_file.is_tree:
            problems.append(f"{shown_where}: no schema/schema.yaml, not a template bundle")
            continue
        if not _NAME.fullmatch(name_entry.name):
            problems.append(
                f"{shown_where}: {clean_text(name_entry.name)!r} is not a Proton template name "
                "(letters, digits, '-' and '_', starting with a letter or digit, at most 100)"
            )
            continue
        major = _MAJOR_DIRECTORY.fullmatch(major_entry.name)
        if major is None:
            problems.append(
                f"{shown_where}: {clean_text(major_entry.name)!r} is not a major version folder (v1, v2, ...)"
            )
            continue
        readable.append((where, name_entry.name, major.group(1), schema_file.oid))
    schemas = checkout.blobs((oid for _, _, _, oid in readable), limit=SCHEMA_LIMIT)

    bundles: list[Bundle] = []
    for where, name, major_version, oid in readable:
        kind = _schema_type(schemas[oid])
        if kind == "ENVIRONMENT":
            bundles.append(Bundle("ENVIRONMENT", name, major_version, where))
        elif kind == "SERVICE":
            bundles.append(Bundle("SERVICE", name, major_version, where))
        else:
            problems.append(f"{clean_text(where)}schema/schema.yaml: {kind}")
    bundles.sort(key=lambda bundle: bundle.path)
    problems.sort()
    return Discovery(commit, base, tuple(bundles), tuple(problems))


def _schema_type(contents: bytes | None) -> str:
    """ENVIRONMENT, SERVICE, or why neither."""
    if contents is None:
        return f"larger than {SCHEMA_LIMIT} bytes, not read"
    try:
        document = yaml.load(contents, Loader=_YAML_LOADER)  # CSafeLoader or SafeLoader: no arbitrary objects
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as error:
        if isinstance(error, yaml.MarkedYAMLError) and error.problem and error.problem_mark is not None:
            return f"not valid YAML ({clean_text(error.problem)}, line {error.problem_mark.line + 1})"
        return f"not valid YAML ({type(error).__name__})"
    schema = document.get("schema") if isinstance(document, dict) else None
    if not isinstance(schema, dict):
        return "no top-level 'schema' mapping, cannot tell ENVIRONMENT from SERVICE"
    environment = "environment_input_type" in schema
    service = "service_input_type" in schema
    if environment and service:
        return "has both environment_input_type and service_input_type, cannot tell ENVIRONMENT from SERVICE"
    if environment:
        return "ENVIRONMENT"
    if service:
        return "SERVICE"
    return "has neither environment_input_type nor service_input_type, cannot tell ENVIRONMENT from SERVICE"


def compare_manifest_with_checkout(declared: Iterable[tuple[str, str, str, str]], found: Iterable[Bundle]) -> list[str]:
    """One line per disagreement between manifest entries and bundles found, sorted by path.

    ``declared`` holds ``(type, name, major, path)`` for each template entry of the manifest, ``path`` being the
    bundle path the entry implies (``{directory}/{name}/v{major}/``). Reports bundles no entry declares, entries
    with no bundle, and entries whose type differs from the schema's.
    """
    bundles = {_directory_key(bundle.path): bundle for bundle in found}
    lines: list[tuple[str, str]] = []
    seen: set[str] = set()
    for kind, name, major, path in declared:
        key = _directory_key(path)
        if key in seen:
            continue
        seen.add(key)
        entry = clean_text(f"{kind}/{name}@{major}")
        bundle = bundles.get(key)
        if bundle is None:
            lines.append((key, f"{entry}: in the manifest, but there is no bundle at {clean_text(key)}"))
        elif bundle.type != kind:
            lines.append((key, f"{entry}: the manifest says {kind}, but {clean_text(key)}schema/schema.yaml is "
                               f"a {bundle.type} schema"))  # fmt: skip
    for key, bundle in bundles.items():
        if key not in seen:
            lines.append((key, f"{bundle.id}: a bundle at {clean_text(key)}, but no manifest entry"))
    lines.sort()
    return [line for _, line in lines]


def _directory_key(path: str) -> str:
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/".join(parts) + "/"


# -- starter manifests (`pytest-proton-sync init`) ----------------------------------------------------------------

_PROVIDERS = {"github.com": "GITHUB", "bitbucket.org": "BITBUCKET"}
_REMOTE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:]+)(?::[0-9]*)?/|(?:[^@/]*@)?(?P<scp_host>[^/:]+):)"
    r"(?P<name>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)
_REPOSITORY_NAME = re.compile(r"[A-Za-z0-9_.-][^/\s]*/[A-Za-z0-9_.-][^/\s]*")


def repository_from_url(url: str) -> tuple[str | None, str] | None:
    """(provider or None, owner/repo) from a remote URL such as ``git@github.com:acme/x.git``; None when the URL
    does not name an owner/repo on a host (a local path, a file:// URL, a deeper path)."""
    match = _REMOTE.match(url.strip())
    if match is None:
        return None
    host = (match.group("host") or match.group("scp_host") or "").lower()
    if not host or host == "localhost":
        return None
    return _PROVIDERS.get(host), match.group("name")


def is_repository_name(name: str) -> bool:
    """``owner/repo`` as the manifest's schema accepts it."""
    return len(name) <= 100 and _REPOSITORY_NAME.fullmatch(name) is not None


def starter_manifest(
    discovery: Discovery, repository: str, provider: str | None = None, rev: str = "HEAD", source: str = ""
) -> str:
    """A manifest (YAML text, with a comment header) listing every bundle of ``discovery`` with ``rev`` as the
    expectation for all of them. Problems of the discovery are listed as comments, not entries."""
    repository_fields: dict[str, str] = {}
    if provider:
        repository_fields["provider"] = provider
    repository_fields["name"] = repository
    if discovery.directory:
        repository_fields["directory"] = discovery.directory
    data = {
        "version": 1,
        "defaults": {"repository": repository_fields, "rev": rev},
        "templates": [
            {"name": bundle.name, "type": bundle.type, "version": bundle.major} for bundle in discovery.bundles
        ],
    }
    header = [
        "# pytest-proton-sync manifest: one pytest test per entry, each asking AWS whether the template major",
        "# version was synced from the last commit at or before `rev` that changed its bundle",
        f"# ({discovery.directory + '/' if discovery.directory else ''}<name>/v<major>/).",
        f"# Written by `pytest-proton-sync init`{f' from {source}' if source else ''} at commit {discovery.commit}.",
        "# Add `branch:` under repository if your sync watches one branch; `match: content` compares bundle",
        "# contents instead of commit ids. Check it with `pytest-proton-sync validate`, run it with",
        "# `pytest --proton-manifest <this file>`.",
    ]
    if discovery.problems:
        header.append("# Not listed (fix them, then run init again or add entries by hand):")
        header.extend(f"#   {problem}" for problem in discovery.problems)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False, width=1000)
    return "\n".join(header) + "\n" + body
