"""The fake's state built from a document that passed every check: frozen records, defaults applied.

Also the values the reader keeps for it: numbers that remember how they were written, timestamps, repositories.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .state import (
    CONNECTIONS_PROVIDERS,
    DEFAULT_SYNCED_AT,
    FAKE_ACCOUNT_ID,
    FakeAttempt,
    FakeBlocker,
    FakeEvent,
    FakeRepository,
    FakeRepositoryLink,
    FakeServiceInstance,
    FakeStack,
    FakeSyncConfiguration,
    FakeTemplate,
    Faults,
    Listing,
    SyncSnapshot,
)

if TYPE_CHECKING:

    pass

#: The FakeState class, handed in by its own constructors (this module cannot import it: it imports this).

_State = TypeVar("_State")

_LATEST_AFTER_SYNCED = timedelta(hours=1)
_BUILTIN_REPOSITORY: Mapping[str, str] = {"provider": "GITHUB", "branch": "main", "directory": ""}
# CodeConnections' spelling -> the canonical one (GITHUB, ...) where the state file has one; any other is its own.
_CANONICAL_OF_CONNECTIONS = {value: key for key, value in CONNECTIONS_PROVIDERS.items()}


def _canonical_provider(spelling: str) -> str:
    return _CANONICAL_OF_CONNECTIONS.get(spelling, spelling)


_TIMESTAMP = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"[ \t]*(?P<zone>[Zz]|(?P<sign>[+-])(?P<zone_hour>\d{1,2})(?::?(?P<zone_minute>\d{2}))?)?)?\Z"
)


# --- numbers that remember their text ----------------------------------------------------------------------


class _Int(int):
    """An integer as the schema sees it, and the text it was written as (``0123456`` stays ``0123456``)."""

    text: str

    def __new__(cls, value: int, text: str) -> _Int:
        number = super().__new__(cls, value)
        number.text = text
        return number


class _Float(float):
    text: str

    def __new__(cls, value: float, text: str) -> _Float:
        number = super().__new__(cls, value)
        number.text = text
        return number


def _text(value: Any) -> str:
    """A value the schema accepted as text (a string, or a number read as the text written)."""
    if isinstance(value, (_Int, _Float)):
        return value.text
    return value if isinstance(value, str) else str(value)


def _repository_fields(value: Any) -> dict[str, str]:
    """``"acme/x"`` is shorthand for ``{name: acme/x}``."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return {key: _text(item) for key, item in value.items() if item is not None}
    return {}


def _timestamp(text: str) -> datetime:
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError("not an ISO 8601 timestamp")
    parts = match.groupdict()
    fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
    zone = timezone.utc
    if parts["sign"]:
        offset = timedelta(hours=int(parts["zone_hour"]), minutes=int(parts["zone_minute"] or 0))
        if offset >= timedelta(hours=24):
            raise ValueError("the zone offset must be less than 24 hours")
        zone = timezone(offset if parts["sign"] == "+" else -offset)
    return datetime(
        int(parts["year"]),
        int(parts["month"]),
        int(parts["day"]),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int(fraction),
        tzinfo=zone,
    )








def _link_id(provider: str, name: str) -> str:
    """A stable UUID per repository, so that runs over one state file answer the same ids."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pytest-proton-sync:repository-link:{provider}:{name.lower()}"))


# --- building ----------------------------------------------------------------------------------------------


class _Builder(Generic[_State]):
    """Frozen data from a document that passed every check: no validation here, only defaults."""

    def __init__(self, root: dict[str, Any], source: str, build: Callable[..., _State]) -> None:
        self.root = root
        self.source = source
        self.build = build
        defaults = root.get("defaults") or {}
        self.default_repository = {**_BUILTIN_REPOSITORY, **_repository_fields(defaults.get("repository"))}

    def state(self) -> _State:
        root = self.root
        templates = tuple(
            FakeTemplate(
                name=_text(entry["name"]),
                type=entry["type"],
                version=_text(entry["version"]),
                snapshots=self.snapshots(entry),
            )
            for entry in root.get("templates") or []
        )
        instances = tuple(
            FakeServiceInstance(
                service=_text(entry["service"]), name=_text(entry["name"]), snapshots=self.snapshots(entry)
            )
            for entry in root.get("service_instances") or []
        )
        stacks = tuple(
            FakeStack(name=_text(entry["name"]), snapshots=self.snapshots(entry)) for entry in root.get("stacks") or []
        )
        configurations = tuple(self.sync_configuration(entry) for entry in root.get("sync_configurations") or [])
        return self.build(
            templates=templates,
            faults=self.faults(root.get("faults") or {}),
            source=self.source,
            service_instances=instances,
            stacks=stacks,
            repository_links=self.repository_links(root.get("repository_links") or [], configurations),
            sync_configurations=configurations,
            listing=self.listing(root.get("listing") or {}),
        )

    def merged_repository(self, entry: Mapping[str, Any]) -> dict[str, str]:
        merged = {**self.default_repository, **_repository_fields(entry.get("repository"))}
        merged["provider"] = _canonical_provider(merged["provider"])
        return merged

    def sync_configuration(self, entry: dict[str, Any]) -> FakeSyncConfiguration:
        repository = self.merged_repository(entry)
        return FakeSyncConfiguration(
            resource_name=_text(entry["name"]),
            provider=repository["provider"],
            repository=repository["name"],
            branch=repository["branch"],
            config_file=entry.get("config_file"),
            role_arn=entry.get("role_arn") or f"arn:aws:iam::{FAKE_ACCOUNT_ID}:role/cfn-git-sync",
            trigger_resource_update_on=entry.get("trigger_resource_update_on") or "ANY_CHANGE",
            publish_deployment_status=entry.get("publish_deployment_status") or "DISABLED",
            pull_request_comment=entry.get("pull_request_comment") or "DISABLED",
        )

    def repository_links(
        self, entries: list[dict[str, Any]], configurations: tuple[FakeSyncConfiguration, ...]
    ) -> tuple[FakeRepositoryLink, ...]:
        """The declared links, then one for each other repository a sync configuration names."""
        links: dict[tuple[str, str], FakeRepositoryLink] = {}
        for entry in entries:
            repository = self.merged_repository(entry)
            provider, name = repository["provider"], repository["name"]
            link_id = entry.get("id") or _link_id(provider, name)
            raw_sync = entry.get("latest_sync")
            latest_sync = None
            if raw_sync:
                started_at = _timestamp(raw_sync["started_at"]) if raw_sync.get("started_at") else DEFAULT_SYNCED_AT
                latest_sync = self.attempt({**raw_sync, "sha": "-", "initial_sha": "-", "started_at": None}, None,
                                           started_at)
            links[(provider, name.lower())] = FakeRepositoryLink(
                id=link_id.lower(), provider=provider, name=name, connection_id=_link_id("connection", provider),
                latest_sync=latest_sync, deny=bool(entry.get("deny")),
            )
        for configuration in configurations:
            key = (configuration.provider, configuration.repository.lower())
            if key not in links:
                links[key] = FakeRepositoryLink(
                    id=_link_id(*key), provider=configuration.provider, name=configuration.repository,
                    connection_id=_link_id("connection", configuration.provider),
                )
        return tuple(links.values())

    def listing(self, raw: dict[str, Any]) -> Listing:
        return Listing(page_size=int(raw.get("page_size") or Listing.page_size),
                       deny=frozenset(raw.get("deny") or ()))

    def snapshots(self, entry: dict[str, Any]) -> tuple[SyncSnapshot, ...]:
        base = {key: value for key, value in entry.items() if key not in ("name", "type", "version", "service",
                                                                          "sequence")}
        steps = entry.get("sequence")
        if not steps:
            return (self.snapshot(base),)
        built = []
        for step in steps:
            merged = {**base, **step}
            if "repository" in step:
                merged["repository"] = {**_repository_fields(base.get("repository")),
                                        **_repository_fields(step.get("repository"))}
            built.append(self.snapshot(merged))
        return tuple(built)

    def snapshot(self, fields: Mapping[str, Any]) -> SyncSnapshot:
        merged = {**self.default_repository, **_repository_fields(fields.get("repository"))}
        repository = FakeRepository(
            provider=_canonical_provider(merged["provider"]),
            name=merged["name"],
            branch=merged["branch"],
            directory=merged["directory"],
        )
        synced_at = _timestamp(fields["synced_at"]) if fields.get("synced_at") is not None else DEFAULT_SYNCED_AT
        latest_successful = None
        if fields.get("synced") is not None:
            synced = _text(fields["synced"])
            latest_successful = FakeAttempt(status="SUCCEEDED", sha=synced, started_at=synced_at, initial_sha=synced)
        latest = self.attempt(fields["latest"], latest_successful, synced_at) if fields.get("latest") else None
        latest = latest if latest is not None else latest_successful
        if fields.get("desired") is not None:
            desired: str | None = _text(fields["desired"])
        else:
            desired = latest.sha if latest is not None else None
        return SyncSnapshot(
            repository=repository,
            latest_successful=latest_successful,
            latest=latest,
            desired=desired,
            deny=bool(fields.get("deny")),
            blockers=tuple(self.blocker(raw, synced_at) for raw in fields.get("blockers") or []),
        )

    def attempt(self, raw: dict[str, Any], latest_successful: FakeAttempt | None, synced_at: datetime) -> FakeAttempt:
        sha = _text(raw["sha"])
        if raw.get("started_at") is not None:
            started_at = _timestamp(raw["started_at"])
        else:
            started_at = synced_at + _LATEST_AFTER_SYNCED if latest_successful is not None else synced_at
        if raw.get("initial_sha") is not None:
            initial_sha = _text(raw["initial_sha"])
        else:
            initial_sha = latest_successful.sha if latest_successful is not None else sha
        return FakeAttempt(
            status=raw["status"],
            sha=sha,
            started_at=started_at,
            initial_sha=initial_sha,
            events=tuple(
                FakeEvent(
                    type=event["type"],
                    event=event["event"],
                    time=_timestamp(event["time"]) if event.get("time") is not None else None,
                    external_id=event.get("external_id"),
                )
                for event in raw.get("events") or []
            ),
        )

    def blocker(self, raw: dict[str, Any], synced_at: datetime) -> FakeBlocker:
        return FakeBlocker(
            id=_text(raw["id"]),
            type=raw.get("type") or "AUTOMATED",
            status=raw.get("status") or "ACTIVE",
            created_reason=raw["created_reason"],
            created_at=_timestamp(raw["created_at"]) if raw.get("created_at") is not None else synced_at,
            contexts=tuple((key, _text(value)) for key, value in (raw.get("contexts") or {}).items()),
            resolved_reason=raw.get("resolved_reason"),
            resolved_at=_timestamp(raw["resolved_at"]) if raw.get("resolved_at") is not None else None,
        )

    def faults(self, raw: dict[str, Any]) -> Faults:
        def number(key: str, default: float) -> float:
            value = raw.get(key)
            return float(value) if value is not None else default

        return Faults(
            seed=int(raw.get("seed") or 0),
            latency_ms=number("latency_ms", 0.0),
            throttle_rate=number("throttle_rate", 0.0),
            error_5xx_rate=number("error_5xx_rate", 0.0),
            drop_rate=number("drop_rate", 0.0),
            slow_rate=number("slow_rate", 0.0),
            slow_seconds=number("slow_seconds", 5.0),
        )
