"""The registry of kinds of target: everything the plugin knows about templates, service instances and stacks.

A manifest section (``templates:``, ``service_instances:``, ``stacks:``) decides an entry's kind. Its :class:`Kind`
says how the entry's fields name the target (test id, API request, -k keywords), which API call answers "what was it
synced from?" and how to normalise the answer to the common :class:`~.model.SyncStatus`, which providers the API
knows and how it spells them, which files make up the target's bundle in the repository, and the words messages use.
Nothing outside this module knows what a template is: adding a kind is adding one ``Kind`` to :data:`KINDS` (and its
section to manifest.schema.json). Pure: imports neither pytest nor boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import answers, facts
from .model import Declared, Entry, Expectation, SyncBlocker, SyncStatus, Target, Targeted


@dataclass(frozen=True)
class Identity:
    """How one entry names its target: for people (``id``), for the API (``request``) and for ``-k``."""

    name: str
    id: str
    request: tuple[tuple[str, str], ...]
    keywords: tuple[str, ...]  # the first is the TYPE the id begins with (see type_of)


@dataclass(frozen=True)
class BlockersCall:
    """How to ask for a target's sync blockers, read the answer, and say how one is resolved."""

    operation: str  # boto3 client method name (same service as the kind's status call)
    operation_name: str  # for messages and IAM policies
    build_request: Callable[[Target], dict[str, str]]
    normalise: Callable[[Mapping[str, Any]], tuple[SyncBlocker, ...]]
    resolve_command: Callable[[Target, SyncBlocker], str]


@dataclass(frozen=True)
class Kind:
    name: str  # the value of Target.kind
    section: str  # the manifest section whose entries are of this kind
    noun: str  # "template": the words of messages
    service: str  # boto3 service name
    operation: str  # boto3 client method name
    operation_name: str  # the API's name, for messages and IAM policies
    identify: Callable[[Mapping[str, str]], Identity]
    normalise: Callable[[Mapping[str, Any]], SyncStatus]
    not_found_codes: frozenset[str]  # error codes meaning "no sync status exists for this target"
    not_found_hint: str  # what to check when there is no sync status
    config_hint: str  # where the sync's repository, branch and directory are configured
    syncer: str  # who syncs it, for messages: "Proton"
    files: str  # what a commit must change to be synced, for messages: "the template's directory"
    # Accepted manifest spellings of a repository provider -> this API's spelling, from botocore's model (aws/facts.py).
    provider_spellings: Callable[[], Mapping[str, str]] = dict
    # The repository paths whose content the sync deploys, from the entry's fields and the repository directory.
    bundle: Callable[[Mapping[str, str], str], tuple[str, ...]] = lambda fields, directory: ()
    # A repository YAML file that names (more of) the target's files, the paths it names, and whether that file's
    # own content is part of the target's (a stack's deployment file is; a service's proton-ops file is not).
    index_file: Callable[[Mapping[str, str]], str | None] = lambda fields: None
    files_named: Callable[[Mapping[str, Any], str], tuple[str, ...]] = lambda document, name: ()
    index_is_content: bool = False
    bundle_keys: str = ""  # what an entry must give for its files to be known, for messages
    blockers: BlockersCall | None = None  # Template sync has no blockers API

    @property
    def providers(self) -> Mapping[str, str]:
        return self.provider_spellings()

    def provider_names(self) -> str:
        return ", ".join(dict.fromkeys(self.providers.values()))


# -- the kinds ------------------------------------------------------------------------------------------------------

def _join(directory: str, path: str) -> str:
    return f"{directory.strip('/')}/{path}" if directory.strip("/") else path


def _repository_path(value: object) -> str | None:
    """A path named inside a repository file, repository-relative ("./a/b" and "/a/b" are "a/b")."""
    if not isinstance(value, str) or not value.strip():
        return None
    path = value.strip()
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/") or None


def _spec_of_instance(document: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """proton-ops file: ``instances: [{name, environment, spec}]``."""
    instances = document.get("instances")
    for instance in instances if isinstance(instances, list) else ():
        if isinstance(instance, dict) and instance.get("name") == name:
            path = _repository_path(instance.get("spec"))
            return (path,) if path else ()
    return ()


def _file_paths_of_deployment(document: Mapping[str, Any]) -> tuple[str, ...]:
    """CloudFormation Git sync deployment file: ``template-file-path`` (and any other ``*-file-path``)."""
    paths = (_repository_path(value) for key, value in document.items() if str(key).endswith("file-path"))
    return tuple(path for path in paths if path)


def _template(fields: Mapping[str, str]) -> Identity:
    name, type_, version = fields["name"], fields["type"], fields["version"]
    return Identity(
        name=name,
        id=f"{type_}/{name}@{version}",
        request=(("templateName", name), ("templateType", type_), ("templateVersion", version)),
        keywords=(type_, name),
    )


def _service_instance(fields: Mapping[str, str]) -> Identity:
    service, name = fields["service"], fields["name"]
    return Identity(
        name=name,
        id=f"SERVICE_INSTANCE/{service}/{name}",
        request=(("serviceName", service), ("serviceInstanceName", name)),
        keywords=("SERVICE_INSTANCE", service, name),
    )


def _stack(fields: Mapping[str, str]) -> Identity:
    name = fields["name"]
    return Identity(
        name=name,
        id=f"STACK/{name}",
        request=(("ResourceName", name), ("SyncType", "CFN_STACK_SYNC")),
        keywords=("STACK", name),
    )


TEMPLATE = Kind(
    name="template",
    section="templates",
    noun="template",
    service="proton",
    operation="get_template_sync_status",
    operation_name="proton:GetTemplateSyncStatus",
    identify=_template,
    normalise=answers.proton_sync_status,
    not_found_codes=frozenset({"ResourceNotFoundException"}),
    not_found_hint="Is template sync configured for this template and version? (Proton answered "
    "ResourceNotFoundException; see CreateTemplateSyncConfig.) Check the name, type, version and region too.",
    config_hint="the template's sync configuration (GetTemplateSyncConfig)",
    syncer="Proton",
    files="the template's directory",
    provider_spellings=facts.proton_spellings,
    # Proton's template sync layout: {directory}/{name}/v{major}/
    bundle=lambda fields, directory: (_join(directory, f"{fields['name']}/v{fields['version']}/"),),
)

SERVICE_INSTANCE = Kind(
    name="service_instance",
    section="service_instances",
    noun="service instance",
    service="proton",
    operation="get_service_instance_sync_status",
    operation_name="proton:GetServiceInstanceSyncStatus",
    identify=_service_instance,
    normalise=answers.proton_sync_status,
    not_found_codes=frozenset({"ResourceNotFoundException"}),
    not_found_hint="Is service sync configured for this service (CreateServiceSyncConfig), and does the instance "
    "exist? (Proton answered ResourceNotFoundException.) Check the service, instance name and region too.",
    config_hint="the service's sync configuration (GetServiceSyncConfig)",
    syncer="Proton",
    files="the service's spec or proton-ops file",
    provider_spellings=facts.proton_spellings,
    # The instance's spec file; without one nothing can be compared by content.
    bundle=lambda fields, directory: tuple(p for p in (fields.get("spec"),) if p),
    index_file=lambda fields: None if fields.get("spec") else fields.get("ops_file"),
    bundle_keys="'spec' (or 'ops_file')",
    blockers=BlockersCall(
        operation="get_service_sync_blocker_summary",
        operation_name="proton:GetServiceSyncBlockerSummary",
        build_request=lambda target: {key: value for key, value in target.request},
        normalise=answers.proton_sync_blockers,
        resolve_command=lambda target, blocker: (
            f"aws proton update-service-sync-blocker --id {blocker.id} --resolved-reason \"<why it is safe to "
            "sync again>\""),
    ),
    files_named=lambda document, name: _spec_of_instance(document, name),
)

STACK = Kind(
    name="stack",
    section="stacks",
    noun="stack",
    service="codeconnections",
    operation="get_resource_sync_status",
    operation_name="codeconnections:GetResourceSyncStatus",
    identify=_stack,
    normalise=answers.codeconnections_sync_status,
    not_found_codes=frozenset({"ResourceNotFoundException"}),
    not_found_hint="Is Git sync configured for this stack (CodeConnections CreateSyncConfiguration, sync type "
    "CFN_STACK_SYNC)? (CodeConnections answered ResourceNotFoundException.) Check the stack name and region too.",
    config_hint="the stack's Git sync configuration (codeconnections GetSyncConfiguration)",
    syncer="CloudFormation Git sync",
    files="the stack's deployment file or the files it names",
    provider_spellings=facts.connections_spellings,
    # The deployment file, and the template (and any other *-file-path) it names.
    bundle=lambda fields, directory: tuple(p for p in (fields.get("config_file"),) if p),
    index_file=lambda fields: fields.get("config_file"),
    files_named=lambda document, name: _file_paths_of_deployment(document),
    index_is_content=True,
    bundle_keys="'config_file'",
    blockers=BlockersCall(
        operation="get_sync_blocker_summary",
        operation_name="codeconnections:GetSyncBlockerSummary",
        build_request=lambda target: {key: value for key, value in target.request},
        normalise=answers.codeconnections_sync_blockers,
        resolve_command=lambda target, blocker: (
            f"aws codeconnections update-sync-blocker --id {blocker.id} --resource-name {target.name} "
            "--sync-type CFN_STACK_SYNC --resolved-reason \"<why it is safe to sync again>\""),
    ),
)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (TEMPLATE, SERVICE_INSTANCE, STACK)}
BY_SECTION: dict[str, Kind] = {kind.section: kind for kind in KINDS.values()}


def kind_of(target: Targeted[Any]) -> Kind:
    return KINDS[target.kind]


def type_of(target: Targeted[Any]) -> str:
    """The TYPE a target's id begins with (ENVIRONMENT, SERVICE, SERVICE_INSTANCE, STACK), by which reports group
    targets: every kind's ``identify`` gives it as the first keyword."""
    return target.keywords[0] if target.keywords else target.kind.upper()


def make_entry(
    kind: Kind,
    fields: Mapping[str, str],
    declared: Declared,
    *,
    region: str | None = None,
    account: str | None = None,
    manifest: Path = Path("<memory>"),
    line: int = 0,
) -> Entry:
    """The Entry of one entry of ``kind``'s section, as its manifest declares it."""
    identity = kind.identify(fields)
    return Entry(
        kind=kind.name,
        name=identity.name,
        id=identity.id,
        request=identity.request,
        expectation=declared,
        keywords=identity.keywords,
        region=region,
        account=account,
        manifest=manifest,
        line=line,
    )


def make_target(
    kind: Kind, fields: Mapping[str, str], expectation: Expectation, *, region: str | None = None,
    account: str | None = None, manifest: Path = Path("<memory>"), line: int = 0,
) -> Target:
    """The Target of one entry of ``kind``'s section whose expectation is already resolved."""
    entry = make_entry(kind, fields, Declared(expectation.repository), region=region, account=account,
                       manifest=manifest, line=line)
    return entry.resolved(expectation)
