"""Fake setup for the benchmarks: the targets, the bundled fake's state for them, and the manifest naming them.

Every benchmark run gets N synthetic templates (``make_entries``). The fake AWS Proton endpoint is given a state
in which they are all synced from the commit the manifest expects (``in_sync_state``), or converge to it after a
few polls (``converging_state``, for wait mode). ``write_manifest`` writes the matching ``manifest.yaml``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_proton_sync.fake import FakeState

REPOSITORY: dict[str, str] = {"provider": "GITHUB", "name": "acme/platform-templates", "branch": "main"}
REGION = "us-east-1"
OPERATION = "GetTemplateSyncStatus"


def sha_of(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    name: str
    type: str
    version: str
    sha: str

    def manifest_entry(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "version": self.version, "sha": self.sha}


def make_entries(count: int) -> list[Entry]:
    return [
        Entry(
            name=f"tmpl-{index:05d}",
            type="ENVIRONMENT" if index % 2 else "SERVICE",
            version=str(index % 3 + 1),
            sha=sha_of(f"commit-{index}"),
        )
        for index in range(count)
    ]


def in_sync_state(entries: Sequence[Entry], latency_ms: float) -> FakeState:
    templates = [{"name": e.name, "type": e.type, "version": e.version, "synced": e.sha} for e in entries]
    return fake_state(templates, latency_ms)


def converging_state(entries: Sequence[Entry], polls: Sequence[int], latency_ms: float) -> FakeState:
    """Entry i answers IN_PROGRESS (of its expected sha) polls[i] times, then synced from it."""
    templates: list[dict[str, Any]] = []
    for entry, extra_polls in zip(entries, polls, strict=True):
        template: dict[str, Any] = {"name": entry.name, "type": entry.type, "version": entry.version}
        if extra_polls == 0:
            template["synced"] = entry.sha
        else:
            template["synced"] = sha_of(f"older-{entry.name}")
            syncing = {"latest": {"status": "IN_PROGRESS", "sha": entry.sha}}
            template["sequence"] = [syncing] * extra_polls + [{"synced": entry.sha}]
        templates.append(template)
    return fake_state(templates, latency_ms)


def fake_state(templates: list[dict[str, Any]], latency_ms: float) -> FakeState:
    return FakeState.from_mapping(
        {
            "defaults": {"repository": dict(REPOSITORY)},
            "templates": templates,
            "faults": {"latency_ms": latency_ms, "seed": 1},
        },
        source="benchmarks/fakesetup.py",
    )


def write_manifest(path: Path, entries: Sequence[Entry]) -> Path:
    document = {
        "version": 1,
        "defaults": {"region": REGION, "repository": dict(REPOSITORY)},
        "templates": [entry.manifest_entry() for entry in entries],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
