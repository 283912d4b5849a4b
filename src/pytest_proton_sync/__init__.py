"""pytest-proton-sync: gate a pipeline on AWS Proton template sync status."""

from __future__ import annotations

__version__ = "0.1.0"
