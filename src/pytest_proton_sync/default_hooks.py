"""The plugin's default behaviour, as ordinary ``trylast`` implementations of its own hooks (see hookspecs.py),
so a conftest.py or another plugin runs first and, for ``firstresult`` hooks, replaces them by returning a value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .aws.accounts import Account
    from .aws.clients import FetchSettings
    from .model import SyncStatus, Target
    from .verdict.judge import CompareContent, Verdict


@pytest.hookimpl(trylast=True)
def pytest_proton_sync_make_client(
    service: str, region: str, settings: FetchSettings, account: Account | None
) -> Any:
    from .aws.clients import default_client

    return default_client(service, region, settings, account)


@pytest.hookimpl(trylast=True)
def pytest_proton_sync_judge(target: Target, status: SyncStatus, compare_content: CompareContent | None) -> Verdict:
    from .verdict.judge import judge

    return judge(target, status, compare_content)
