"""The data every other module speaks: targets, expectations and normalised sync statuses.

Plain frozen dataclasses, no I/O; imports neither pytest nor boto3, so every module can share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar


@dataclass(frozen=True)
class RepositorySpec:
    """What the manifest says about the repository. Only ``name`` is required; ``None`` means "not checked"."""

    name: str
    provider: str | None = None
    branch: str | None = None
    directory: str | None = None


@dataclass(frozen=True)
class Declared:
    """What a manifest entry says its target must be synced from, before any checkout is read.

    ``sha`` is the entry's literal sha (lower-case, full or a prefix of >= 7 hex digits), None for a ``rev:`` entry:
    which commit that is, only the checkout can say (git/expectations.py turns a Declared into an
    :class:`Expectation`). ``paths`` are the entry's own files; ``index_file`` names more of them in the repository.
    """

    repository: RepositorySpec
    sha: str | None = None
    rev: str | None = None
    match: str = "exact"
    paths: tuple[str, ...] = ()  # repository paths from the entry's fields; directories end with "/"
    index_file: str | None = None  # a repository file that names the target's files (a proton-ops file)

    @property
    def needs_checkout(self) -> bool:
        """Whether the git checkout must say what is expected (a ``rev:``) or compare contents (``match: content``)."""
        return self.rev is not None or self.match == "content"


@dataclass(frozen=True)
class Expectation:
    """What a target must be synced from, resolved: the expected commit, and the files that say so.

    ``sha`` is lower-case: a full sha or a prefix of >= 7 hex digits. For a ``rev:`` entry it is the expected
    commit found in the checkout (the last commit at or before ``rev`` that changed ``bundle``), and ``rev`` says
    where it came from. ``match`` is "exact" (the synced sha is the expected commit) or "content" (``bundle`` is
    identical at both commits). ``sha`` is "" only when ``history_problem`` says why no commit can be named.
    """

    sha: str
    repository: RepositorySpec
    rev: str | None = None
    match: str = "exact"
    # The target's files, read once where the expectation was resolved (with the ones its index file names there):
    # repository paths, directories ending with "/".
    bundle: tuple[str, ...] = ()
    rev_sha: str | None = None  # the commit ``rev`` resolved to in the checkout
    # Why the checkout cannot say what is expected (a shallow clone, a commit not fetched): the target is an
    # *error* with this text, and the API is not asked about it.
    history_problem: str | None = None


@dataclass(frozen=True)
class AccountSpec:
    """How the manifest says to get one account's credentials: assume ``role_arn`` (from the standard chain, or
    from ``source_profile``), or use ``profile`` from the AWS config files. Exactly one of the two is set.

    ``external_id`` is a shared secret between the pipeline and the role's owner: it is left out of ``repr``.
    """

    alias: str
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    session_name: str | None = None
    duration_seconds: int | None = None
    source_profile: str | None = None
    profile: str | None = None


E = TypeVar("E", Declared, Expectation)


@dataclass(frozen=True)
class Targeted(Generic[E]):
    """One thing whose sync is checked, with where the manifest declares it. Built by :mod:`.kinds`: an
    :class:`Entry` as the manifest declares it, a :class:`Target` once its expectation is resolved."""

    kind: str  # a key of kinds.KINDS: "template", "service_instance", "stack"
    name: str
    id: str  # what users see in test ids, -k expressions and reports: "ENVIRONMENT/vpc-env@1"
    request: tuple[tuple[str, str], ...]  # the API call's arguments
    expectation: E
    keywords: tuple[str, ...] = ()  # extra -k keywords besides the id's parts
    region: str | None = None  # None: boto3's standard chain decides
    account: str | None = None  # an alias from the manifest's accounts; None: the standard credential chain
    # How to get ``account``'s credentials, as its manifest declares them; travels with the target (also to xdist
    # workers and back), so whoever fetches needs nothing else.
    account_spec: AccountSpec | None = field(default=None, compare=False, repr=False)
    manifest: Path = field(default=Path("<memory>"), compare=False)
    line: int = field(default=0, compare=False)  # 1-based line of the entry in the manifest; 0 when unknown

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of the remote resource: two entries with one key ask the API the same question."""
        return (self.kind, self.account or "", self.region or "", self.id)


@dataclass(frozen=True)
class Entry(Targeted[Declared]):
    """A manifest entry's target as the manifest declares it: its expectation is not resolved yet."""

    def literal(self) -> Target:
        """This entry's target when its sha is literal: that commit, and the entry's own paths as its bundle
        (``match: content`` reads the bundle from the checkout: git/expectations.py)."""
        declared = self.expectation
        if declared.sha is None:
            raise ValueError(f"{self.id}: a rev: entry has no literal sha; the checkout resolves it")
        expectation = Expectation(declared.sha, declared.repository, match=declared.match, bundle=declared.paths)
        return self.resolved(expectation)

    def resolved(self, expectation: Expectation) -> Target:
        """This entry's target with ``expectation``, what the checkout (or the literal sha) says it must be."""
        return Target(
            kind=self.kind, name=self.name, id=self.id, request=self.request, expectation=expectation,
            keywords=self.keywords, region=self.region, account=self.account, account_spec=self.account_spec,
            manifest=self.manifest, line=self.line,
        )


@dataclass(frozen=True)
class Target(Targeted[Expectation]):
    """A target whose expectation is resolved: what every layer after the manifest's checks speaks."""


@dataclass(frozen=True)
class Revision:
    """A git revision as the sync APIs report it."""

    sha: str
    repository_name: str
    provider: str
    branch: str
    directory: str


@dataclass(frozen=True)
class SyncEvent:
    event: str
    type: str
    time: datetime | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class SyncAttempt:
    """One sync attempt: ``status`` is INITIATED | IN_PROGRESS | SUCCEEDED | FAILED."""

    status: str
    target_revision: Revision
    started_at: datetime | None = None
    initial_revision: Revision | None = None
    events: tuple[SyncEvent, ...] = ()


@dataclass(frozen=True)
class SyncBlocker:
    """One sync blocker (Proton GetServiceSyncBlockerSummary, CodeConnections GetSyncBlockerSummary)."""

    id: str
    type: str
    status: str  # ACTIVE | RESOLVED
    created_reason: str
    created_at: datetime | None
    resolved_reason: str | None = None
    resolved_at: datetime | None = None
    contexts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SyncStatus:
    """The API's answer, normalised to one shape for every kind. ``found`` is False on ResourceNotFound."""

    found: bool = True
    desired: Revision | None = None
    latest_successful: SyncAttempt | None = None
    latest: SyncAttempt | None = None
    # Sync blockers, asked for only when the target does not pass and its kind has a blockers API.
    blockers: tuple[SyncBlocker, ...] = ()

    @property
    def active_blockers(self) -> tuple[SyncBlocker, ...]:
        return tuple(blocker for blocker in self.blockers if blocker.status == "ACTIVE")


@dataclass(frozen=True)
class CheckError:
    """Why a target could not be checked (the test's outcome is *error*, not *failed*)."""

    code: str  # e.g. "AccessDeniedException", "NoCredentials", "EndpointUnreachable", "ThrottlingException"
    message: str  # one or two lines a person can act on; never contains credentials
    attempts: int = 1


PASSED = "passed"
FAILED = "failed"
ERROR = "error"  # the verdict could not be reached: the answer cannot be compared (a commit missing from the checkout)


@dataclass(frozen=True)
class ContentComparison:
    """The target's files at the synced commit against the expected commit, from the git checkout."""

    synced: str
    expected: str
    equal: bool
    missing_commit: str | None = None  # a commit the checkout does not have: nothing could be compared
    changes: tuple[tuple[str, str], ...] = ()  # (added | removed | modified, path), from synced to expected
    more_changes: int = 0
    commits: tuple[tuple[str, str], ...] = ()  # (short sha, subject) touching the files between the two
    more_commits: int = 0


@dataclass(frozen=True)
class Verdict:
    """The judgement of one sync status: ``outcome`` is PASSED, FAILED or ERROR (the answer could not be compared);
    ``reasons`` say what does not match, ``details`` list what a person needs to see (files that differ) and
    belong under the reason ``details_for`` (else under the last reason), ``blocker_details`` are the active
    blockers' contexts (StackName, FailedCommit), shown under the blocker; ``hints`` say what to do about it."""

    outcome: str
    reasons: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    details_for: str = ""
    blocker_details: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


@dataclass(frozen=True)
class Observation:
    """What the fetcher learned about one target: a status, or why there is none, and how the wait went."""

    target: Target
    status: SyncStatus | None = None
    error: CheckError | None = None
    region: str = ""  # the region actually asked ("" when none could be resolved)
    polls: int = 1  # how many times the API was asked (retries inside one ask not counted)
    waited_seconds: float = 0.0
    wait_note: str | None = None  # set when waiting ended without a settled answer ("timed out", "interrupted")
    verdict: Verdict | None = None  # the judge's verdict on ``status``, made once where the status was fetched
