"""Untrusted API answers -> SyncStatus / SyncBlocker, checked strictly against the documented shapes.

Every answer is data from the network: it is checked member by member (types, required members, the status
enum), and anything else raises :class:`MalformedAnswer` saying where and what, so the fetcher reports an *error*
(never "never synced", never a pass). Every string taken from an answer goes through :mod:`safetext`: free text
(event messages, reasons) is cleaned and capped, and the fields a verdict compares (sha, repository, provider,
branch, directory) must already be clean, since a cleaned copy could equal a manifest value the raw one does not.

Accepts both the wire JSON (timestamps as epoch seconds) and what botocore returns (timestamps as datetimes).
Shapes: botocore's models for proton GetTemplateSyncStatus / GetServiceInstanceSyncStatus /
GetServiceSyncBlockerSummary and codeconnections GetResourceSyncStatus / GetSyncBlockerSummary.
Pure: imports neither pytest nor boto3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from . import awsfacts
from .model import Revision, SyncAttempt, SyncBlocker, SyncEvent, SyncStatus
from .safetext import MAX_EVENTS, clean, more

IDENTITY_LIMIT = 4096  # longer than any manifest value it is compared with (directory: 4096)
TEXT_LIMIT = 500  # an event message, a reason
SHORT_LIMIT = 200  # a type, an id, a key


class MalformedAnswer(Exception):
    """The answer is not of the documented shape; the message says where (a member path) and what is wrong."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


class _Reader:
    """Reads one JSON object, naming members by their path in messages."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise MalformedAnswer(f"{path or 'the answer'}: expected an object, got {_kind(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, required: bool) -> Any:
        value = self.data.get(name)
        if value is None and required:
            raise MalformedAnswer(f"{self.where(name)}: missing (the documented shape requires it)")
        return value

    def object(self, name: str, required: bool = False) -> _Reader | None:
        value = self.get(name, required)
        return None if value is None else _Reader(value, self.where(name))

    def list(self, name: str, required: bool = False) -> list[Any]:
        value = self.get(name, required)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise MalformedAnswer(f"{self.where(name)}: expected a list, got {_kind(value)}")
        return list(value)

    def raw_string(self, name: str, required: bool = True) -> str | None:
        value = self.get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise MalformedAnswer(f"{self.where(name)}: expected a string, got {_kind(value)}")
        return value

    def text(self, name: str, required: bool = True, limit: int = TEXT_LIMIT) -> str | None:
        """Free text: cleaned and capped."""
        value = self.raw_string(name, required)
        return None if value is None else clean(value, limit)

    def identity(self, name: str) -> str:
        """A value a verdict compares: it must be printable as it is."""
        value = self.raw_string(name)
        assert value is not None
        shown = clean(value, IDENTITY_LIMIT)
        if shown != value:
            raise MalformedAnswer(
                f"{self.where(name)}: contains control, line-break, bidi or workflow-command characters, or is "
                f"over {IDENTITY_LIMIT} characters: {clean(value, 120)}"
            )
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.raw_string(name)
        assert value is not None
        if value not in allowed:
            raise MalformedAnswer(f"{self.where(name)}: {clean(value, 60)!s} is not one of {'|'.join(allowed)}")
        return value

    def timestamp(self, name: str, required: bool = True) -> datetime | None:
        value = self.get(name, required)
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=timezone.utc)
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            try:
                return datetime.fromtimestamp(value, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                pass
        raise MalformedAnswer(f"{self.where(name)}: expected a timestamp, got {_kind(value)} {clean(value, 40)}")


# -- Proton ---------------------------------------------------------------------------------------------------
def _proton_revision(reader: _Reader | None) -> Revision | None:
    if reader is None:
        return None
    return Revision(
        sha=reader.identity("sha"),
        repository_name=reader.identity("repositoryName"),
        provider=reader.identity("repositoryProvider"),
        branch=reader.identity("branch"),
        directory=reader.identity("directory"),
    )


def _events(reader: _Reader, name: str, keys: tuple[str, str, str, str]) -> tuple[SyncEvent, ...]:
    """(event, type, time, externalId) member names; every event is checked, MAX_EVENTS are kept."""
    event_key, type_key, time_key, external_key = keys
    items = reader.list(name, required=True)
    events: list[SyncEvent] = []
    for index, item in enumerate(items):
        event = _Reader(item, f"{reader.where(name)}[{index}]")
        parsed = SyncEvent(
            event=event.text(event_key) or "",
            type=event.text(type_key, limit=SHORT_LIMIT) or "",
            time=event.timestamp(time_key),
            external_id=event.text(external_key, required=False, limit=SHORT_LIMIT),
        )
        if index < MAX_EVENTS // 2 or index >= len(items) - MAX_EVENTS // 2:
            events.append(parsed)
        elif index == MAX_EVENTS // 2:
            events.append(SyncEvent(event=more(len(items) - MAX_EVENTS, "event"), type="(not shown)"))
    return tuple(events)


def _proton_attempt(reader: _Reader | None) -> SyncAttempt | None:
    if reader is None:
        return None
    target_revision = _proton_revision(reader.object("targetRevision", required=True))
    assert target_revision is not None
    reader.text("target", limit=SHORT_LIMIT)  # required by the shape; not used
    return SyncAttempt(
        status=reader.choice("status", awsfacts.sync_statuses()),
        target_revision=target_revision,
        started_at=reader.timestamp("startedAt"),
        initial_revision=_proton_revision(reader.object("initialRevision", required=True)),
        events=_events(reader, "events", ("event", "type", "time", "externalId")),
    )


def proton_sync_status(response: Mapping[str, Any]) -> SyncStatus:
    """Proton GetTemplateSyncStatus (and GetServiceInstanceSyncStatus, same shape) -> SyncStatus."""
    answer = _Reader(response, "")
    return SyncStatus(
        found=True,
        desired=_proton_revision(answer.object("desiredState")),
        latest_successful=_proton_attempt(answer.object("latestSuccessfulSync")),
        latest=_proton_attempt(answer.object("latestSync")),
    )


# -- CodeConnections ------------------------------------------------------------------------------------------
def _codeconnections_revision(reader: _Reader | None) -> Revision | None:
    if reader is None:
        return None
    return Revision(
        sha=reader.identity("Sha"),
        repository_name=f"{reader.identity('OwnerId')}/{reader.identity('RepositoryName')}",
        provider=reader.identity("ProviderType"),
        branch=reader.identity("Branch"),
        directory=reader.identity("Directory"),
    )


def _codeconnections_attempt(reader: _Reader | None) -> SyncAttempt | None:
    if reader is None:
        return None
    target_revision = _codeconnections_revision(reader.object("TargetRevision", required=True))
    assert target_revision is not None
    reader.text("Target", limit=SHORT_LIMIT)
    return SyncAttempt(
        status=reader.choice("Status", awsfacts.sync_statuses()),
        target_revision=target_revision,
        started_at=reader.timestamp("StartedAt"),
        initial_revision=_codeconnections_revision(reader.object("InitialRevision", required=True)),
        events=_events(reader, "Events", ("Event", "Type", "Time", "ExternalId")),
    )


def codeconnections_sync_status(response: Mapping[str, Any]) -> SyncStatus:
    """CodeConnections GetResourceSyncStatus (CloudFormation Git sync) -> SyncStatus."""
    answer = _Reader(response, "")
    return SyncStatus(
        found=True,
        desired=_codeconnections_revision(answer.object("DesiredState")),
        latest_successful=_codeconnections_attempt(answer.object("LatestSuccessfulSync")),
        latest=_codeconnections_attempt(answer.object("LatestSync", required=True)),
    )


# -- sync blockers --------------------------------------------------------------------------------------------
_BlockerKeys = tuple[str, str, str, str, str, str, str, str, str, str]


def _blockers(summary: _Reader | None, keys: _BlockerKeys) -> tuple[SyncBlocker, ...]:
    if summary is None:
        return ()
    (latest, id_, type_, status, created_reason, created_at, resolved_reason, resolved_at, contexts,
     key_value) = keys
    key_name, value_name = key_value.split(",")
    blockers = []
    for index, item in enumerate(summary.list(latest)):
        blocker = _Reader(item, f"{summary.where(latest)}[{index}]")
        pairs = []
        for number, context in enumerate(blocker.list(contexts)):
            pair = _Reader(context, f"{blocker.where(contexts)}[{number}]")
            pairs.append((pair.text(key_name, limit=SHORT_LIMIT) or "", pair.text(value_name) or ""))
        blockers.append(SyncBlocker(
            id=blocker.text(id_, limit=SHORT_LIMIT) or "",
            type=blocker.text(type_, limit=SHORT_LIMIT) or "",
            status=blocker.choice(status, awsfacts.blocker_statuses()),
            created_reason=blocker.text(created_reason) or "",
            created_at=blocker.timestamp(created_at),
            resolved_reason=blocker.text(resolved_reason, required=False),
            resolved_at=blocker.timestamp(resolved_at, required=False),
            contexts=tuple(pairs),
        ))
    return tuple(blockers)


def proton_sync_blockers(response: Mapping[str, Any]) -> tuple[SyncBlocker, ...]:
    """Proton GetServiceSyncBlockerSummary -> its latest blockers."""
    answer = _Reader(response, "")
    summary = answer.object("serviceSyncBlockerSummary")
    if summary is not None:
        summary.text("serviceName", limit=SHORT_LIMIT)
    return _blockers(summary, ("latestBlockers", "id", "type", "status", "createdReason", "createdAt",
                               "resolvedReason", "resolvedAt", "contexts", "key,value"))


def codeconnections_sync_blockers(response: Mapping[str, Any]) -> tuple[SyncBlocker, ...]:
    """CodeConnections GetSyncBlockerSummary -> its latest blockers."""
    answer = _Reader(response, "")
    summary = answer.object("SyncBlockerSummary", required=True)
    assert summary is not None
    summary.text("ResourceName", limit=SHORT_LIMIT)
    return _blockers(summary, ("LatestBlockers", "Id", "Type", "Status", "CreatedReason", "CreatedAt",
                               "ResolvedReason", "ResolvedAt", "Contexts", "Key,Value"))


Normaliser = Callable[[Mapping[str, Any]], SyncStatus]
