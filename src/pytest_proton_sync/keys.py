"""Where a run's state is kept on the pytest Config: a key any module can import without importing the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .run import ProtonSyncRun

RUN_KEY: pytest.StashKey[ProtonSyncRun] = pytest.StashKey()
