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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from pytest_proton_sync.git.checkout import Checkout, GitError, TreeEntry
from pytest_proton_sync.text.safetext import clean

__all__ = ["Bundle", "Discovery", "StackFile", "compare_manifest_with_checkout", "discover_bundles", "discover_stacks",
           "normal_directory", "starter_manifest"]

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


@dataclass(frozen=True)
class StackFile:
    """A CloudFormation Git sync deployment file found in the repository: a YAML mapping with
    ``template-file-path``. ``name`` is a guess from the file name (the stack's name lives in its sync
    configuration, not in the file)."""

    name: str
    path: str
    template: str


_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_DEPLOYMENT_SUFFIXES = (".yaml", ".yml", ".json")
DEPLOYMENT_FILE_LIMIT = 64 * 1024  # a deployment file is a few lines; a larger YAML file is something else
MAX_FILES_LOOKED_AT = 20_000  # a huge monorepo: init lists what it found so far and says it stopped


def discover_stacks(checkout: Checkout, commit: str) -> tuple[tuple[StackFile, ...], tuple[str, ...]]:
    """Every deployment file (a YAML mapping with a string ``template-file-path``) at ``commit``, outside
    dot-directories, sorted by path; and one line per file that looks like one but cannot be listed."""
    root = checkout.tree(commit, "")
    if root is None:
        return (), ()
    pending: list[tuple[str, dict[str, TreeEntry]]] = [("", root)]
    candidates: list[tuple[str, str]] = []  # (path, blob id)
    looked_at = 0
    problems: list[str] = []
    while pending and looked_at < MAX_FILES_LOOKED_AT:
        subtrees: list[tuple[str, TreeEntry]] = []
        for prefix, entries in pending:
            for entry in entries.values():
                looked_at += 1
                if entry.name.startswith("."):
                    continue
                if entry.is_tree:
                    subtrees.append((f"{prefix}{entry.name}/", entry))
                elif entry.mode.startswith("100") and entry.name.endswith(_DEPLOYMENT_SUFFIXES):
                    candidates.append((f"{prefix}{entry.name}", entry.oid))
        trees = checkout.trees(entry.oid for _, entry in subtrees)
        pending = [(prefix, trees[entry.oid]) for prefix, entry in subtrees]
    if pending:
        problems.append(f"stopped looking for deployment files after {MAX_FILES_LOOKED_AT} files")
    contents = checkout.blobs((oid for _, oid in candidates), limit=DEPLOYMENT_FILE_LIMIT)
    stacks: list[StackFile] = []
    for path, oid in candidates:
        text = contents[oid]
        if text is None or b"template-file-path" not in text:
            continue
        try:
            document = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader: C or pure Python
        except yaml.YAMLError:
            problems.append(f"{clean(path)}: names template-file-path but is not readable YAML")
            continue
        template = document.get("template-file-path") if isinstance(document, dict) else None
        if not isinstance(template, str) or not template.strip():
            continue
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if not _STACK_NAME.fullmatch(stem):
            problems.append(f"{clean(path)}: a deployment file, but {clean(stem, quoted=True)} is not a stack name "
                            "(letters, digits and '-', starting with a letter): add its entry by hand")
            continue
        stacks.append(StackFile(stem, path, clean(template.strip())))
    stacks.sort(key=lambda stack: stack.path)
    return tuple(stacks), tuple(sorted(problems))


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
    readable = _readable_schemas(checkout, prefix, _schema_directories(checkout, prefix, top, problems), problems)
    schemas = checkout.blobs((oid for _, _, _, oid in readable), limit=SCHEMA_LIMIT)

    bundles: list[Bundle] = []
    for where, name, major_version, oid in readable:
        kind = _schema_type(schemas[oid])
        if kind == "ENVIRONMENT":
            bundles.append(Bundle("ENVIRONMENT", name, major_version, where))
        elif kind == "SERVICE":
            bundles.append(Bundle("SERVICE", name, major_version, where))
        else:
            problems.append(f"{clean(where)}schema/schema.yaml: {kind}")
    bundles.sort(key=lambda bundle: bundle.path)
    problems.sort()
    return Discovery(commit, base, tuple(bundles), tuple(problems))


def _schema_directories(
    checkout: Checkout, prefix: str, top: dict[str, TreeEntry], problems: list[str]
) -> list[tuple[TreeEntry, TreeEntry, TreeEntry]]:
    """(name, major version, schema directory) of every ``{name}/v<N>/schema/`` under ``top``, two tree reads for
    all; a v<N> directory without schema/ is a problem."""
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
            problems.append(f"{clean(where)}: no schema/schema.yaml, not a template bundle")
            continue
        with_schema.append((name_entry, major_entry, schema_directory))
    return with_schema


def _readable_schemas(
    checkout: Checkout, prefix: str, with_schema: list[tuple[TreeEntry, TreeEntry, TreeEntry]], problems: list[str]
) -> list[tuple[str, str, str, str]]:
    """(where, name, major, schema blob id) of every bundle with a schema.yaml and a valid name and version folder;
    the others are problems."""
    schema_trees = checkout.trees(entry.oid for _, _, entry in with_schema)
    readable: list[tuple[str, str, str, str]] = []
    for name_entry, major_entry, schema_directory in with_schema:
        where = f"{prefix}{name_entry.name}/{major_entry.name}/"
        shown_where = clean(where)
        schema_file = schema_trees[schema_directory.oid].get("schema.yaml")
        if schema_file is None or schema_file.is_tree:
            problems.append(f"{shown_where}: no schema/schema.yaml, not a template bundle")
            continue
        if not _NAME.fullmatch(name_entry.name):
            problems.append(
                f"{shown_where}: {clean(name_entry.name, quoted=True)} is not a Proton template name "
                "(letters, digits, '-' and '_', starting with a letter or digit, at most 100)"
            )
            continue
        major = _MAJOR_DIRECTORY.fullmatch(major_entry.name)
        if major is None:
            problems.append(
                f"{shown_where}: {clean(major_entry.name, quoted=True)} is not a major version folder (v1, v2, ...)"
            )
            continue
        readable.append((where, name_entry.name, major.group(1), schema_file.oid))
    return readable


def _schema_type(contents: bytes | None) -> str:
    """ENVIRONMENT, SERVICE, or why neither."""
    if contents is None:
        return f"larger than {SCHEMA_LIMIT} bytes, not read"
    try:
        document = yaml.load(contents, Loader=_YAML_LOADER)  # CSafeLoader or SafeLoader: no arbitrary objects
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as error:
        if isinstance(error, yaml.MarkedYAMLError) and error.problem and error.problem_mark is not None:
            return f"not valid YAML ({clean(error.problem)}, line {error.problem_mark.line + 1})"
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


def compare_manifest_with_checkout(declared: Iterable[tuple[str, str, str, str]], found: Iterable[Bundle],
                                   *, report_missing: bool = True) -> list[str]:
    """One line per disagreement between manifest entries and bundles found, sorted by path.

    ``declared`` holds ``(type, name, major, path)`` for each template entry of the manifest, ``path`` being the
    bundle path the entry implies (``{directory}/{name}/v{major}/``). Reports bundles no entry declares, entries
    with no bundle (unless ``report_missing`` is false: the caller has said so at the entry's line already), and
    entries whose type differs from the schema's.
    """
    bundles = {_directory_key(bundle.path): bundle for bundle in found}
    lines: list[tuple[str, str]] = []
    seen: set[str] = set()
    for kind, name, major, path in declared:
        key = _directory_key(path)
        if key in seen:
            continue
        seen.add(key)
        entry = clean(f"{kind}/{name}@{major}")
        bundle = bundles.get(key)
        if bundle is None:
            if report_missing:
                lines.append((key, f"{entry}: in the manifest, but there is no bundle at {clean(key)}"))
        elif bundle.type != kind:
            article = "an" if bundle.type[:1] in ("A", "E", "I", "O", "U") else "a"
            lines.append((key, f"{entry}: the manifest says {kind}, but {clean(key)}schema/schema.yaml is "
                               f"{article} {bundle.type} schema"))  # fmt: skip
    for key, bundle in bundles.items():
        if key not in seen:
            lines.append((key, f"{bundle.id}: a bundle at {clean(key)}, but no manifest entry"))
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
    discovery: Discovery, repository: str, provider: str | None = None, rev: str = "HEAD", source: str = "",
    *, region: str | None = None, stacks: Sequence[StackFile] = (), stack_problems: Sequence[str] = (),
) -> str:
    """A manifest (YAML text, with a comment header) listing every bundle of ``discovery`` and every deployment
    file in ``stacks`` with ``rev`` as the expectation for all of them. Problems are listed as comments, not
    entries. Without ``region``, a commented ``region:`` line says to set one (the first run would otherwise end
    in NoRegion)."""
    repository_fields: dict[str, str] = {}
    if provider:
        repository_fields["provider"] = provider
    repository_fields["name"] = repository
    # The templates' directory is their sync configuration's subdirectory; a stack's sync has none. With both
    # kinds the directory goes on each template entry, so the stacks do not inherit it.
    per_entry_directory = bool(stacks) and bool(discovery.directory)
    if discovery.directory and not per_entry_directory:
        repository_fields["directory"] = discovery.directory
    defaults: dict[str, Any] = {}
    if region:
        defaults["region"] = region
    defaults.update({"repository": repository_fields, "rev": rev})
    data: dict[str, Any] = {"version": 1, "defaults": defaults}
    if discovery.bundles:
        data["templates"] = [
            {"name": bundle.name, "type": bundle.type, "version": bundle.major,
             **({"repository": {"directory": discovery.directory}} if per_entry_directory else {})}
            for bundle in discovery.bundles
        ]
    if stacks:
        data["stacks"] = [{"name": stack.name, "config_file": stack.path} for stack in stacks]
    where = f"{discovery.directory + '/' if discovery.directory else ''}<name>/v<major>/"
    header = [
        "# pytest-proton-sync manifest: one pytest test per entry, each asking AWS whether the target was synced",
        "# from the last commit at or before `rev` that changed its files (compared by content), a template's",
        f"# bundle ({where}), a stack's deployment file and the template it names.",
        f"# Written by `pytest-proton-sync init`{f' from {source}' if source else ''} at commit {discovery.commit}.",
        "# Add `branch:` under repository if your syncs follow one branch. Check it with",
        "# `pytest-proton-sync validate`, run it with `pytest --proton-manifest <this file>`.",
    ]
    if discovery.directory:
        header.append(f"# `directory: {discovery.directory}` must be the template sync configuration's subdirectory.")
    if stacks:
        header.append("# Stack names are guessed from the deployment file names: make each the stack's name in its "
                      "sync configuration.")
    problems = [*discovery.problems, *stack_problems]
    if problems:
        header.append("# Not listed (fix them, then run init again or add entries by hand):")
        header.extend(f"#   {problem}" for problem in problems)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False, width=1000)
    if not region:
        body = body.replace("defaults:\n", "defaults:\n  # region: us-east-1   # set the AWS region of the syncs "
                            "here (or AWS_REGION, or --proton-region)\n", 1)
    return "\n".join(header) + "\n" + body
