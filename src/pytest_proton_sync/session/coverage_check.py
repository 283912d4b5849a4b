"""Listing what coverage compares: the sync configurations of the manifest's repositories, per account and region,
in background threads while the sync-status calls run.

Only the list calls coverage needs: one ``ListRepositoryLinks`` walk per account and region the manifest uses, then
one ``ListSyncConfigurations`` walk per link of a repository the manifest names. Clients come from the run's
:class:`~pytest_proton_sync.fetch.clients.ClientPool` (same endpoints, credentials, accounts and pacing as the
status calls), made in the calling thread before the threads start. Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pytest_proton_sync.discovery.listing import DiscoveryError, Lister, explain
from pytest_proton_sync.model import AccountSpec, Entry
from pytest_proton_sync.reports.coverage import Coverage, Finding, Scope, compare, named_repositories

#: Accounts and regions listed at once (each walk is sequential: a page names the next).
MAX_SCOPES_AT_ONCE = 4


class _ScopeResult:
    def __init__(self, findings: list[Finding], configurations: int, calls: int, error: str | None) -> None:
        self.findings = findings
        self.configurations = configurations
        self.calls = calls
        self.error = error


class CoverageCheck:
    """Started with the targets and a client per scope; :meth:`result` waits for every scope."""

    def __init__(self, mode: str, default_region: str | None) -> None:
        self.mode = mode
        self.default_region = default_region
        self._futures: list[Future[_ScopeResult]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._setup_errors: list[str] = []

    def start(
        self,
        scoped: Sequence[tuple[Scope, AccountSpec | None, Entry]],
        client_for: Callable[[str, AccountSpec | None], Any],
    ) -> None:
        """``client_for(region, account_spec)`` makes the CodeConnections client of a scope (in this thread)."""
        groups: dict[Scope, tuple[AccountSpec | None, list[Entry]]] = {}
        for scope, spec, target in scoped:
            groups.setdefault(scope, (spec, []))[1].append(target)
        if not groups:
            return
        self._executor = ThreadPoolExecutor(max_workers=min(MAX_SCOPES_AT_ONCE, len(groups)),
                                            thread_name_prefix="proton-coverage")
        for scope, (spec, targets) in groups.items():
            try:
                client = client_for(scope.region, spec)
            except Exception as error:  # an account's role or profile that cannot be used
                self._setup_errors.append(f"{scope}: {explain(error, 'creating the client', scope.region).message}")
                continue
            lister = Lister(client, region=scope.region)
            self._futures.append(self._executor.submit(self._scope, scope, targets, lister))

    def _scope(self, scope: Scope, targets: Sequence[Entry], lister: Lister) -> _ScopeResult:
        named = named_repositories(targets)
        try:
            links = [link for link in lister.repository_links()
                     if any(repository.matches(link.provider, link.repository) for repository in named)]
            syncs = [sync for link in links for sync in lister.sync_configurations(link)]
        except DiscoveryError as error:
            return _ScopeResult([], 0, lister.calls, f"{scope}: {error.message}")
        except Exception as error:  # never a traceback from a background thread: coverage is unknown, say why
            return _ScopeResult([], 0, lister.calls, f"{scope}: {explain(error, 'listing', scope.region).message}")
        return _ScopeResult(compare(scope, targets, syncs, self.default_region), len(syncs), lister.calls, None)

    def result(self) -> Coverage:
        findings: list[Finding] = []
        errors = list(self._setup_errors)
        configurations = calls = 0
        for future in self._futures:
            outcome = future.result()
            findings += outcome.findings
            configurations += outcome.configurations
            calls += outcome.calls
            if outcome.error is not None:
                errors.append(outcome.error)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        return Coverage(mode=self.mode, findings=tuple(findings), errors=tuple(errors),
                        scopes=len(self._futures) + len(self._setup_errors), sync_configurations=configurations,
                        calls=calls)


def start_for(mode: str, targets: Sequence[Entry], pool: Any) -> CoverageCheck:
    """Start listing for every account and region of ``targets``; ``pool`` is the run's fetch.clients.ClientPool."""
    regions = {id(target): pool.region_for(target) for target in targets}
    default_region = next((regions[id(t)] for t in targets if not t.region), None)
    check = CoverageCheck(mode, default_region)
    unknown = sorted({t.account or "" for t in targets if not regions[id(t)]})
    for account in unknown:
        check._setup_errors.append(f"{f'account {account}: ' if account else ''}no AWS region for entries that name "
                                   "none\n  fix: give --proton-region, AWS_REGION, or `region:` in the manifest")
    scoped = [(Scope(t.account, regions[id(t)]), t.account_spec, t) for t in targets if regions[id(t)]]
    check.start(scoped, lambda region, spec: pool.client("codeconnections", region, spec))
    return check
