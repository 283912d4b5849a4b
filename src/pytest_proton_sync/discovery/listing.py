"""What syncs from Git in one account and region, read with list calls only.

CodeConnections: ``ListRepositoryLinks``, then ``ListSyncConfigurations(RepositoryLinkId, CFN_STACK_SYNC)`` per
link (and ``GetRepositorySyncStatus`` for a link's health). Proton: ``ListRepositories``, then
``ListRepositorySyncDefinitions`` per repository and sync type. botocore ships no paginators for
CodeConnections, and a service may answer fewer items than ``MaxResults`` asks for, so every list is followed
page by page here until the answer carries no token.

Answers are untrusted: an item without the members the API promises, an item of another link, one resource
listed twice with different facts, or a token that repeats is a :class:`DiscoveryError` ("MalformedAnswer"), never
a shorter list: coverage built on a silently shortened list would pass a stack nobody gates. Every failure is a
:class:`DiscoveryError` whose message says what to do, naming the missing IAM action when access is denied.
Credentials never appear in a message. Imports boto3's exceptions (botocore) but no pytest.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.exceptions

from pytest_proton_sync import __version__
from pytest_proton_sync.aws.hermetic import FAKE_DEFAULT_REGION, fake_client
from pytest_proton_sync.text.redact import redact
from pytest_proton_sync.text.safetext import clean

#: The most items a list call may ask for (the APIs' MaxResults bound).
MAX_RESULTS = 100
#: A list longer than this many pages is refused rather than followed for ever.
MAX_PAGES = 10_000
#: Attempts per list call when the service throttles or fails on its side (botocore's own retries come first).
ATTEMPTS = 5
_CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "ExpiredToken",
    "InvalidClientTokenId", "MissingAuthenticationTokenException", "SignatureDoesNotMatch",
})
_RETRIED_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "InternalServerException", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
})
#: The IAM actions each feature needs (README, "Find what syncs from Git").
STACK_ACTIONS = ("codeconnections:ListRepositoryLinks", "codeconnections:ListSyncConfigurations")
HEALTH_ACTIONS = ("codeconnections:GetRepositorySyncStatus",)
PROTON_ACTIONS = ("proton:ListRepositories", "proton:ListRepositorySyncDefinitions")


class DiscoveryError(Exception):
    """A list could not be read completely. ``code`` is the API's error code or our own ("NoCredentials",
    "MalformedAnswer", ...); ``str()`` is the message, a cause and a ``fix:`` line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RepositoryLink:
    id: str
    provider: str  # CodeConnections' spelling: GitHub, GitLab, ...
    owner: str
    name: str  # the repository's own name; ``repository`` is owner/name

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class StackSync:
    """One CFN_STACK_SYNC sync configuration: the stack ``stack`` deploys ``config_file`` from ``branch``."""

    stack: str
    provider: str  # CodeConnections' spelling
    repository: str  # owner/name
    branch: str
    config_file: str | None
    link_id: str
    role_arn: str
    trigger_resource_update_on: str | None = None
    publish_deployment_status: str | None = None
    pull_request_comment: str | None = None


@dataclass(frozen=True)
class ProtonSync:
    """One Proton sync definition: TEMPLATE_SYNC (``target`` a template) or SERVICE_SYNC (a service instance of
    the service ``parent``)."""

    sync_type: str
    provider: str  # Proton's spelling: GITHUB, ...
    repository: str
    branch: str
    directory: str
    parent: str
    target: str


@dataclass(frozen=True)
class RepositorySync:
    """A repository link's latest sync on one branch (GetRepositorySyncStatus)."""

    status: str
    started_at: datetime | None
    events: tuple[tuple[str, str], ...]  # (type, event)


@dataclass(frozen=True)
class Discovered:
    """What one account and region syncs from Git. ``notes`` say what could not be listed and did not have to be
    (Proton, which reached end of support, answering nothing, say)."""

    links: tuple[RepositoryLink, ...]
    stacks: tuple[StackSync, ...]
    proton: tuple[ProtonSync, ...] = ()
    notes: tuple[str, ...] = ()
    calls: int = 0


def same_repository(repository: str, wanted: str) -> bool:
    """owner/name compared as the gate compares repository names: ASCII case ignored."""
    return _ascii_lower(repository) == _ascii_lower(wanted)


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# -- errors ------------------------------------------------------------------------------------------------------


def explain(error: BaseException, action: str, region: str | None) -> DiscoveryError:
    """A botocore exception of the call ``action`` ("codeconnections:ListRepositoryLinks") -> DiscoveryError."""
    where = f" in {region}" if region else ""
    if isinstance(error, DiscoveryError):
        return error
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        code = clean(str(details.get("Code", "Unknown")), 80)
        message = clean(redact(str(details.get("Message", "")) or str(error)), 300)
        if code in ("AccessDeniedException", "AccessDenied"):
            return DiscoveryError(code, f"access denied: {action}{where}: {message}\n  fix: allow {action} for this "
                                        "identity (README, \"Find what syncs from Git\", lists every action).")
        if code in _CREDENTIAL_CODES:
            return DiscoveryError(code, f"the AWS credentials were refused ({code}): {message}\n  fix: refresh or "
                                        "correct the credentials (AWS_PROFILE, --profile, or the role in use).")
        return DiscoveryError(code, f"{action}{where} answered {code}: {message}")
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return DiscoveryError("NoCredentials", "no AWS credentials found\n  fix: give --profile, set AWS_PROFILE "
                                               "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run in a role.")
    if isinstance(error, botocore.exceptions.NoRegionError):
        return DiscoveryError("NoRegion", "no AWS region\n  fix: give --region, or set AWS_REGION.")
    if isinstance(error, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        return DiscoveryError("EndpointUnreachable", f"{action}{where}: {clean(redact(str(error)), 300)}\n  fix: "
                                                     "check the endpoint (AWS_ENDPOINT_URL), the region and the "
                                                     "network.")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return DiscoveryError(type(error).__name__, f"{action}{where}: {clean(redact(str(error)), 300)}")
    return DiscoveryError(type(error).__name__, f"{action}{where}: unexpected error: "
                                                f"{clean(redact(str(error)), 300)}")


def _retried(error: BaseException) -> bool:
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in _RETRIED_CODES or status == 429 or status >= 500
    return isinstance(error, (botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError))


def _malformed(action: str, what: str) -> DiscoveryError:
    return DiscoveryError("MalformedAnswer", f"{action} answered {what}; the list cannot be trusted, so nothing is "
                                             "concluded from it\n  fix: check AWS_ENDPOINT_URL and any proxy in "
                                             "between.")


# -- one list, every page ----------------------------------------------------------------------------------------


class Lister:
    """List calls against one account and region. ``connections`` and ``proton`` are boto3 clients (either may be
    None when not needed). ``sleep`` is injectable so that retries cost tests nothing."""

    def __init__(
        self,
        connections: Any,
        proton: Any = None,
        *,
        region: str | None = None,
        max_results: int = MAX_RESULTS,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connections = connections
        self.proton = proton
        self.region = region
        self.max_results = max_results
        self.attempts = attempts
        self.sleep = sleep
        self.calls = 0

    def _call(self, client: Any, method: str, action: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        for attempt in range(1, self.attempts + 1):
            self.calls += 1
            try:
                answer = getattr(client, method)(**params)
            except Exception as error:
                if attempt < self.attempts and _retried(error):
                    self.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))
                    continue
                raise explain(error, action, self.region) from None
            if not isinstance(answer, Mapping):
                raise _malformed(action, "something that is not a structure")
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(
        self, client: Any, method: str, action: str, params: Mapping[str, Any], member: str, pascal: bool
    ) -> Iterator[Mapping[str, Any]]:
        """Every item of every page, following the token until an answer has none."""
        token_member, max_member = ("NextToken", "MaxResults") if pascal else ("nextToken", "maxResults")
        seen: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            request = dict(params)
            if self.max_results:
                request[max_member] = self.max_results
            if token is not None:
                request[token_member] = token
            answer = self._call(client, method, action, request)
            items = answer.get(member)
            if not isinstance(items, list):
                raise _malformed(action, f"a page without its {member} list")
            for item in items:
                if not isinstance(item, Mapping):
                    raise _malformed(action, f"an item of {member} that is not a structure")
                yield item
            following = answer.get(token_member)
            if following is None or following == "":
                return
            if not isinstance(following, str) or following in seen:
                raise _malformed(action, f"a {token_member} it had answered before (the list would never end)")
            seen.add(following)
            token = following
        raise _malformed(action, f"more than {MAX_PAGES} pages")

    # -- CodeConnections --------------------------------------------------------------------------------------
    def repository_links(self) -> tuple[RepositoryLink, ...]:
        action = "codeconnections:ListRepositoryLinks"
        links: dict[str, RepositoryLink] = {}
        for item in self._pages(self.connections, "list_repository_links", action, {}, "RepositoryLinks", True):
            fields = _texts(item, ("RepositoryLinkId", "ProviderType", "OwnerId", "RepositoryName"), action)
            link = RepositoryLink(id=fields[0], provider=fields[1], owner=fields[2], name=fields[3])
            if links.setdefault(link.id, link) != link:
                raise _malformed(action, f"repository link {clean(link.id, 80)} twice, with different repositories")
        return tuple(links.values())

    def sync_configurations(self, link: RepositoryLink) -> tuple[StackSync, ...]:
        action = "codeconnections:ListSyncConfigurations"
        params = {"RepositoryLinkId": link.id, "SyncType": "CFN_STACK_SYNC"}
        found: dict[str, StackSync] = {}
        for item in self._pages(self.connections, "list_sync_configurations", action, params,
                                "SyncConfigurations", True):
            stack, branch, link_id, role_arn = _texts(item, ("ResourceName", "Branch", "RepositoryLinkId", "RoleArn"),
                                                      action)
            if link_id != link.id:
                raise _malformed(action, f"a sync configuration of link {clean(link_id, 80)} when asked for link "
                                         f"{link.id}")
            config_file = item.get("ConfigFile")
            if config_file is not None and (not isinstance(config_file, str) or not config_file):
                raise _malformed(action, f"a ConfigFile that is not text for stack {clean(stack, 100)}")
            sync = StackSync(
                stack=stack, provider=link.provider, repository=link.repository, branch=branch,
                config_file=config_file, link_id=link.id, role_arn=role_arn,
                trigger_resource_update_on=_optional_text(item, "TriggerResourceUpdateOn"),
                publish_deployment_status=_optional_text(item, "PublishDeploymentStatus"),
                pull_request_comment=_optional_text(item, "PullRequestComment"),
            )
            if found.setdefault(stack, sync) != sync:
                raise _malformed(action, f"stack {clean(stack, 100)} twice, with different sync configurations")
        return tuple(found.values())

    def repository_sync(self, link_id: str, branch: str) -> RepositorySync | None:
        """The link's latest sync on ``branch``; None when there is none (ResourceNotFoundException)."""
        action = "codeconnections:GetRepositorySyncStatus"
        params = {"RepositoryLinkId": link_id, "Branch": branch, "SyncType": "CFN_STACK_SYNC"}
        try:
            answer = self._call(self.connections, "get_repository_sync_status", action, params)
        except DiscoveryError as error:
            if error.code == "ResourceNotFoundException":
                return None
            raise
        latest = answer.get("LatestSync")
        if not isinstance(latest, Mapping) or not isinstance(latest.get("Status"), str):
            raise _malformed(action, "no LatestSync status")
        events = latest.get("Events") or []
        return RepositorySync(
            status=latest["Status"],
            started_at=latest.get("StartedAt") if isinstance(latest.get("StartedAt"), datetime) else None,
            events=tuple((str(event.get("Type", "")), str(event.get("Event", "")))
                         for event in events if isinstance(event, Mapping)),
        )

    def stacks(self, repository: str | None = None) -> tuple[tuple[RepositoryLink, ...], tuple[StackSync, ...]]:
        """Every link (or those of ``repository``, owner/name) and the stacks synced from them."""
        links = tuple(link for link in self.repository_links()
                      if repository is None or same_repository(link.repository, repository))
        stacks: list[StackSync] = []
        for link in links:
            stacks += self.sync_configurations(link)
        return links, tuple(stacks)

    # -- Proton -----------------------------------------------------------------------------------------------
    def proton_syncs(self, repository: str | None = None) -> tuple[ProtonSync, ...]:
        action = "proton:ListRepositories"
        found: list[ProtonSync] = []
        repositories: list[tuple[str, str]] = []
        for item in self._pages(self.proton, "list_repositories", action, {}, "repositories", False):
            provider, name = _texts(item, ("provider", "name"), action)
            if repository is None or same_repository(name, repository):
                repositories.append((provider, name))
        definitions = "proton:ListRepositorySyncDefinitions"
        for provider, name in dict.fromkeys(repositories):
            for sync_type in ("TEMPLATE_SYNC", "SERVICE_SYNC"):
                params = {"repositoryName": name, "repositoryProvider": provider, "syncType": sync_type}
                answer = self._call(self.proton, "list_repository_sync_definitions", definitions, params)
                items = answer.get("syncDefinitions")
                if not isinstance(items, list):
                    raise _malformed(definitions, "a page without its syncDefinitions list")
                for item in items:
                    if not isinstance(item, Mapping):
                        raise _malformed(definitions, "an item that is not a structure")
                    branch, directory, parent, target = _texts(item, ("branch", "directory", "parent", "target"),
                                                               definitions, empty=("directory",))
                    found.append(ProtonSync(sync_type, provider, name, branch, directory, parent, target))
        return tuple(dict.fromkeys(found))


def _texts(item: Mapping[str, Any], members: tuple[str, ...], action: str, empty: tuple[str, ...] = ()) -> list[str]:
    values = []
    for member in members:
        value = item.get(member)
        if not isinstance(value, str) or (not value and member not in empty):
            raise _malformed(action, f"an item without {member}")
        values.append(value)
    return values


def _optional_text(item: Mapping[str, Any], member: str) -> str | None:
    value = item.get(member)
    return value if isinstance(value, str) else None


def discover(lister: Lister, repository: str | None = None, proton: bool = True) -> Discovered:
    """Stacks (required: their errors are the caller's), then Proton where it answers (its errors become notes:
    Proton reached end of support, and an account without it must still be discoverable)."""
    links, stacks = lister.stacks(repository)
    notes: list[str] = []
    proton_syncs: tuple[ProtonSync, ...] = ()
    if proton and lister.proton is not None:
        try:
            proton_syncs = lister.proton_syncs(repository)
        except DiscoveryError as error:
            notes.append(f"Proton templates and service instances not listed: {error.message.splitlines()[0]}")
    return Discovered(links=links, stacks=stacks, proton=proton_syncs, notes=tuple(notes), calls=lister.calls)


def open_lister(region: str | None, profile: str | None, fake_endpoint: str | None = None) -> Lister:
    """A Lister on boto3's standard chain (endpoints from AWS_ENDPOINT_URL and the like, credentials, region), or on
    the bundled fake at ``fake_endpoint`` whatever the environment says."""
    import boto3
    import botocore.config

    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra=f"pytest-proton-sync/{__version__}",
    )
    if fake_endpoint is not None:
        region = region or FAKE_DEFAULT_REGION
        return Lister(fake_client("codeconnections", region, fake_endpoint, config),
                      fake_client("proton", region, fake_endpoint, config), region=region)
    import os

    # AWS_REGION is what other AWS SDKs honour; boto3's own chain reads AWS_DEFAULT_REGION (as aws/clients.py does).
    region = region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        raise DiscoveryError("ProfileNotFound", f"no AWS profile named {clean(profile, 100)!r}\n  fix: give one "
                                                "that `aws configure list-profiles` shows.") from None
    except botocore.exceptions.BotoCoreError as error:
        raise explain(error, "reading the AWS configuration", region) from None
    region = session.region_name
    if not region:
        raise explain(botocore.exceptions.NoRegionError(), "", None)
    try:
        return Lister(session.client("codeconnections", config=config), session.client("proton", config=config),
                      region=region)
    except botocore.exceptions.BotoCoreError as error:
        raise explain(error, "creating the clients", region) from None
