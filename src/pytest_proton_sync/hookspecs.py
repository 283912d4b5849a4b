"""The extension API of pytest-proton-sync: hooks a conftest.py or another plugin can implement.

Only hook specifications live here; their docstrings are the documentation. The plugin's own behaviour is
just another implementation of each hook (``default_hooks.py``, registered ``trylast``), so a conftest.py
implementation runs first and, for ``firstresult`` hooks, replaces the default by returning a value.

Example ``conftest.py`` that reads one account through a profile of its own and leaves every other account (and
the standard chain) to the plugin; ``botocore_config`` keeps the plugin's retry and timeout settings, and the
endpoint of ``--proton-fake`` is kept by leaving fake runs to the default::

    import boto3
    from pytest_proton_sync.aws.clients import botocore_config

    def pytest_proton_sync_make_client(service, region, settings, account):
        if account is None or account.alias != "legacy" or settings.endpoint_url:
            return None  # the plugin's default client
        session = boto3.Session(profile_name="legacy-readonly")
        return session.client(service, region_name=region, config=botocore_config(settings))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .aws.accounts import Account
    from .aws.clients import FetchSettings
    from .model import Observation, SyncStatus, Target
    from .verdict.judge import CompareContent, Verdict


@pytest.hookspec(firstresult=True)
def pytest_proton_sync_make_client(
    service: str, region: str, settings: FetchSettings, account: Account | None
) -> Any:
    """Return the boto3 client used for ``service`` (e.g. ``"proton"``) in ``region`` for ``account``.

    ``account`` is None for entries without ``account:`` (boto3's standard chain); otherwise it is the run's
    :class:`~pytest_proton_sync.aws.accounts.Account`: ``account.alias``, ``account.spec`` (the manifest's settings:
    role_arn, session_name, duration_seconds, source_profile or profile) and ``account.session(region)`` (its boto3
    session, with refreshable assumed-role credentials; the role is assumed at the first signed request).

    Called once per (service, region, account), from one thread, before any request of that client; the client is
    then shared by every worker thread (boto3 clients are thread-safe, sessions are not). The default
    (:func:`pytest_proton_sync.aws.clients.default_client`) builds it from the account's session, or boto3's standard
    chain (AWS_PROFILE, AWS_ENDPOINT_URL_PROTON, config files, ...), with the plugin's retry and timeout settings
    (:func:`pytest_proton_sync.aws.clients.botocore_config`), or points it at the bundled fake under ``--proton-fake``
    (where no account's credentials are used). Return ``None`` to fall through to it.
    """


@pytest.hookspec(firstresult=True)
def pytest_proton_sync_judge(
    target: Target, status: SyncStatus, compare_content: CompareContent | None
) -> Verdict | None:
    """Return the Verdict for ``target`` given its normalised sync ``status``.

    The default (``verdict.judge``) passes only when the latest successful sync says SUCCEEDED, its sha is a full
    commit id equal to the expected commit (the manifest's sha may be a prefix) -- or, with ``match: content``,
    ``compare_content(target, synced_sha)`` (the git checkout) finds the target's files identical at both commits
    -- and the repository name, provider, branch and directory match wherever the manifest gives them. Must be
    fast and thread-safe: it is called once per answer as answers arrive (from the fetching thread), and on every
    poll while waiting.

    ``status`` is the sync-status call's answer. When the verdict does not pass and the kind has a blockers API
    (service instances, stacks), the plugin then asks for the target's sync blockers and puts the active ones
    first in a FAILED verdict (``verdict.judge.with_blockers``); the answer is not judged again.
    """


@pytest.hookspec
def pytest_proton_sync_observed(observations: Sequence[Observation], config: pytest.Config) -> None:
    """Called once, in the process that asked the API, with every target's final observation.

    Use it to export metrics or a custom report. Under pytest-xdist it runs in the controller only.
    """
