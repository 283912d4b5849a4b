"""Repository link health as the cause of a stack's failure.

When a stack fails because its sync has seen nothing newer than its last successful sync, the real cause is often
the repository link itself (a revoked connection, a repository the connection can no longer read): every stack of
that repository then fails with "not synced from the expected commit". One more read-only call says so:
CodeConnections ``GetRepositorySyncStatus(RepositoryLinkId, Branch, CFN_STACK_SYNC)``, after one
``ListRepositoryLinks`` walk per account and region (cached for the run). When that latest repository sync FAILED,
its status and events go into the failure text as the cause.

Best effort, like the blockers: any error in these calls leaves the failure text as it was (the failure itself
stands either way). Text from the API is cleaned before it is shown. Imports no pytest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pytest_proton_sync.aws.facts import connections_spellings
from pytest_proton_sync.discovery.listing import (
    DiscoveryError,
    Lister,
    RepositoryLink,
    RepositorySync,
    same_repository,
)
from pytest_proton_sync.model import AccountSpec, Observation, SyncStatus
from pytest_proton_sync.text.safetext import clean

_LOG = logging.getLogger(__name__)
_LABEL = 17  # the width of verdict.describe_failure's labels


def nothing_newer_seen(status: SyncStatus) -> bool:
    """Whether the sync has not even tried anything after its last successful sync (or ever, if none)."""
    if not status.found:
        return False
    latest, successful = status.latest, status.latest_successful
    if latest is None:
        return True
    if successful is None:
        return False  # an attempt was made and did not succeed: its own events say why
    return latest == successful or latest.target_revision.sha == successful.target_revision.sha


def cause_lines(link: RepositoryLink, branch: str, sync: RepositorySync) -> list[str]:
    started = sync.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") if sync.started_at else "at an unknown time"
    lines = [f"  {'cause:':<{_LABEL}}the repository link of {clean(link.provider, 40)} {clean(link.repository, 200)}"
             f" (branch {clean(branch, 200)}): its latest repository sync {clean(sync.status, 40)}, started {started}"]
    lines += [f"  {'':<{_LABEL}}{clean(kind, 100)}: {clean(event, 500)}" for kind, event in sync.events[-5:]]
    lines.append(f"  next: fix the repository link (its connection, and the connection's access to "
                 f"{clean(link.repository, 200)}); no commit reaches the stack until the repository syncs again")
    return lines


class LinkHealth:
    """Looks up the repository sync of failing stacks; ``client_for(region, account_spec)`` makes the
    CodeConnections client (the run's shared one)."""

    def __init__(self, client_for: Callable[[str, AccountSpec | None], Any]) -> None:
        self._client_for = client_for
        self._lock = threading.Lock()
        self._links: dict[tuple[str, str], tuple[Lister, tuple[RepositoryLink, ...]]] = {}

    def _links_of(self, region: str, spec: AccountSpec | None) -> tuple[Lister, tuple[RepositoryLink, ...]]:
        key = (region, spec.alias if spec is not None else "")
        with self._lock:
            if key not in self._links:
                lister = Lister(self._client_for(region, spec), region=region, attempts=3)
                try:
                    links = lister.repository_links()
                except DiscoveryError as error:  # asked once per account and region, not once per failing stack
                    _LOG.info("repository links in %s not listed: %s", region, error.message.splitlines()[0])
                    links = ()
                self._links[key] = (lister, links)
            return self._links[key]

    def text(self, observation: Observation) -> str:
        """Lines to append to a stack's failure text (starting with a newline), or "" when there is no cause."""
        status, target = observation.status, observation.target
        if target.kind != "stack" or status is None or not observation.region or not nothing_newer_seen(status):
            return ""
        revision = status.latest_successful.target_revision if status.latest_successful else None
        expected = target.expectation.repository
        name = revision.repository_name if revision is not None else expected.name
        provider = revision.provider if revision is not None else expected.provider
        provider = connections_spellings().get(provider, provider) if provider else None
        branch = (revision.branch if revision is not None else None) or expected.branch
        if not branch:
            return ""
        try:
            lister, links = self._links_of(observation.region, target.account_spec)
            link = next((link for link in links if same_repository(link.repository, name)
                         and (provider is None or link.provider == provider)), None)
            if link is None:
                return ""
            sync = lister.repository_sync(link.id, branch)
        except Exception as error:  # best effort: the failure stands without its cause
            _LOG.info("repository link health for %s not known: %s", target.id, clean(str(error), 300))
            return ""
        if sync is None or sync.status != "FAILED":
            return ""
        return "\n" + "\n".join(cause_lines(link, branch, sync))
