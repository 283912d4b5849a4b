"""What the fake answers from: templates, service instances, stacks, their sync stories, and faults.

The whole state, :class:`~pytest_proton_sync.fake.fake_state.FakeState`, is built from a YAML state file
(``FakeState.from_file``) or a plain mapping (``FakeState.from_mapping``) by
:mod:`pytest_proton_sync.fake.statefile`, which validates it against the
JSON Schema shipped beside this module (``state.schema.json``, the one source of the file's keys, types and
enums). The format is documented in ``docs/fake-state.md``.

This module is pure data: no I/O, no HTTP, no pytest.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ..yamlcheck.problems import Problem, ProblemsError

# A fixed default keeps answers identical from run to run (and before Proton's end of support, 2026-10-07).
DEFAULT_SYNCED_AT = datetime(2026, 9, 1, 12, 0, tzinfo=timezone.utc)

#: The state file's upper-case spellings -> CodeConnections' spelling. Proton's own spelling is the first three;
#: any other provider the installed botocore's CodeConnections model lists is written in CodeConnections' spelling.
CONNECTIONS_PROVIDERS: Mapping[str, str] = {
    "GITHUB": "GitHub",
    "GITHUB_ENTERPRISE": "GitHubEnterpriseServer",
    "BITBUCKET": "Bitbucket",
    "GITLAB": "GitLab",
    "GITLAB_SELF_MANAGED": "GitLabSelfManaged",
    "AZURE_DEVOPS": "AzureDevOps",
}


#: A mistake in a state file: the one problem type of yamlcheck (file, line, column, field, message).
StateProblem = Problem


class FakeStateError(ProblemsError):
    """A state file (or mapping) the fake cannot use. ``str()`` lists every problem, one per line:
    ``file:line:column: field: what is wrong; what is allowed``."""

    @property
    def source(self) -> str:
        return self.problems[0].file if self.problems else ""


@dataclass(frozen=True)
class FakeRepository:
    """The repository fields every revision of a resource carries. ``provider`` is canonical: GITHUB, ... (or
    CodeConnections' spelling of a provider the state file has no upper-case spelling for)."""

    provider: str
    name: str  # owner/repo
    branch: str
    directory: str

    @property
    def connections_provider(self) -> str:
        """CodeConnections' spelling: GitHub, GitHubEnterpriseServer, Bitbucket, GitLab, ..."""
        return CONNECTIONS_PROVIDERS.get(self.provider, self.provider)

    @property
    def owner(self) -> str:
        """CodeConnections' OwnerId: everything before the last ``/`` (a GitLab group path stays whole)."""
        return self.name.rsplit("/", 1)[0]

    @property
    def repository(self) -> str:
        """CodeConnections' RepositoryName: the part after the last ``/``."""
        return self.name.rsplit("/", 1)[1]


@dataclass(frozen=True)
class FakeEvent:
    type: str
    event: str
    time: datetime | None = None  # None: the attempt's start
    external_id: str | None = None


@dataclass(frozen=True)
class FakeAttempt:
    """A sync attempt: ``latestSync``, or (status SUCCEEDED) ``latestSuccessfulSync``."""

    status: str
    sha: str
    started_at: datetime
    initial_sha: str
    events: tuple[FakeEvent, ...] = ()


@dataclass(frozen=True)
class FakeBlocker:
    """A sync blocker, as both APIs describe one."""

    id: str
    type: str  # AUTOMATED
    status: str  # ACTIVE | RESOLVED
    created_reason: str
    created_at: datetime
    contexts: tuple[tuple[str, str], ...] = ()
    resolved_reason: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class SyncSnapshot:
    """What the fake answers for a resource at one step of its story, every default already resolved."""

    repository: FakeRepository
    latest_successful: FakeAttempt | None
    latest: FakeAttempt | None
    desired: str | None
    deny: bool = False
    blockers: tuple[FakeBlocker, ...] = ()


class _Story:
    snapshots: tuple[SyncSnapshot, ...]

    def snapshot(self, position: int) -> SyncSnapshot:
        """The answer for the ``position``-th (0-based) answered call; the last entry repeats forever."""
        return self.snapshots[min(position, len(self.snapshots) - 1)]


@dataclass(frozen=True)
class FakeTemplate(_Story):
    name: str
    type: str
    version: str
    snapshots: tuple[SyncSnapshot, ...]  # one, or one per sequence entry

    @property
    def id(self) -> str:
        """``ENVIRONMENT/vpc-env@1``, as in test ids and the fake's call counts."""
        return f"{self.type}/{self.name}@{self.version}"


@dataclass(frozen=True)
class FakeServiceInstance(_Story):
    service: str
    name: str
    snapshots: tuple[SyncSnapshot, ...]

    @property
    def id(self) -> str:
        """``web-svc/prod``, as in the fake's call counts."""
        return f"{self.service}/{self.name}"


@dataclass(frozen=True)
class FakeStack(_Story):
    name: str
    snapshots: tuple[SyncSnapshot, ...]

    @property
    def id(self) -> str:
        return self.name


class Fault(enum.Enum):
    NONE = "none"
    DROP = "drop"
    ERROR_5XX = "5xx"
    THROTTLE = "throttle"
    SLOW = "slow"


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    error_5xx_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0

    @property
    def any_rate(self) -> bool:
        return any(rate > 0 for rate in (self.throttle_rate, self.error_5xx_rate, self.drop_rate, self.slow_rate))

    def decide(self, key: str, call_number: int) -> Fault:
        """The fault for the ``call_number``-th (0-based) request with this key.

        Derived from (seed, key, call_number) alone, never from a shared generator, so the same state file
        gives the same faults whatever order concurrent requests arrive in. ``random.Random`` seeded with a
        string hashes it with SHA-512, which is stable across processes and PYTHONHASHSEED.
        """
        if not self.any_rate:
            return Fault.NONE
        rng = random.Random(f"{self.seed}\x00{key}\x00{call_number}")
        # One draw per kind, always all four and in this order, so changing one rate does not reshuffle
        # which calls the other faults hit.
        drop, error_5xx, throttle, slow = (rng.random() for _ in range(4))
        if drop < self.drop_rate:
            return Fault.DROP
        if error_5xx < self.error_5xx_rate:
            return Fault.ERROR_5XX
        if throttle < self.throttle_rate:
            return Fault.THROTTLE
        if slow < self.slow_rate:
            return Fault.SLOW
        return Fault.NONE


#: Listed per page when a request gives no MaxResults (the APIs allow at most 100).
DEFAULT_PAGE_SIZE = 100
#: The account every ARN the fake makes up names.
FAKE_ACCOUNT_ID = "111122223333"


@dataclass(frozen=True)
class FakeRepositoryLink:
    """A CodeConnections repository link (ListRepositoryLinks), and the repository's latest sync
    (GetRepositorySyncStatus). ``provider`` is canonical (GITHUB, ...); ``name`` is owner/repo."""

    id: str  # a UUID, as the API's pattern wants
    provider: str
    name: str
    connection_id: str
    latest_sync: FakeAttempt | None = None  # None: GetRepositorySyncStatus answers ResourceNotFoundException
    deny: bool = False  # ListSyncConfigurations and GetRepositorySyncStatus answer AccessDeniedException

    @property
    def repository(self) -> FakeRepository:
        return FakeRepository(provider=self.provider, name=self.name, branch="main", directory="")


@dataclass(frozen=True)
class FakeSyncConfiguration:
    """A CFN_STACK_SYNC sync configuration (ListSyncConfigurations) of the link of its repository."""

    resource_name: str
    provider: str  # canonical
    repository: str  # owner/repo
    branch: str
    config_file: str | None
    role_arn: str
    trigger_resource_update_on: str = "ANY_CHANGE"
    publish_deployment_status: str = "DISABLED"
    pull_request_comment: str = "DISABLED"


@dataclass(frozen=True)
class Listing:
    """How list operations page and fail: at most ``page_size`` items per page (also when MaxResults asks for
    more, as the services may), and operations answered AccessDeniedException."""

    page_size: int = DEFAULT_PAGE_SIZE
    deny: frozenset[str] = frozenset()


#: The operations ``listing.deny`` may name: the list operations fake/listing.py answers (CodeConnections', then
#: Proton's). Kept here, with the records, so that the state file's reader need not import the handlers.
LIST_OPERATIONS = ("ListRepositoryLinks", "ListSyncConfigurations", "GetRepositorySyncStatus", "ListRepositories",
                   "ListRepositorySyncDefinitions")
