"""Per kind of target: which API call answers "what was it synced from?", and how to normalise the answer.

Adding a kind (a Proton service instance, a CloudFormation Git-synced stack through CodeConnections
``GetResourceSyncStatus``) means adding one ``Kind`` here: its service, operation, request and normaliser. The
answer shapes of those APIs are the same family (desired state, latest successful sync, latest sync), so the
verdict and the reports need no change. Pure: imports neither pytest nor boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import answers
from .model import Revision, SyncAttempt, SyncEvent, SyncStatus, Target


@dataclass(frozen=True)
class Kind:
    name: str  # the value of Target.kind
    service: str  # boto3 service name
    operation: str  # boto3 client method name
    operation_name: str  # the API's name, for messages and IAM policies
    build_request: Callable[[Target], dict[str, str]]
    normalise: Callable[[Mapping[str, Any]], SyncStatus]
    not_found_codes: frozenset[str]  # error codes meaning "no sync status exists for this target"


def _timestamp(value: Any) -> datetime | None:
    # botocore parses timestamps to aware datetimes; a plain number can only come from hand-made input.
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


def _revision(data: Mapping[str, Any] | None) -> Revision | None:
    if not data:
        return None
    return Revision(
        sha=str(data.get("sha", "")),
        repository_name=str(data.get("repositoryName", "")),
        provider=str(data.get("repositoryProvider", "")),
        branch=str(data.get("branch", "")),
        directory=str(data.get("directory", "")),
    )


def _attempt(data: Mapping[str, Any] | None) -> SyncAttempt | None:
    if not data:
        return None
    target_revision = _revision(data.get("targetRevision")) or Revision("", "", "", "", "")
    events = tuple(
        SyncEvent(
            event=str(event.get("event", "")),
            type=str(event.get("type", "")),
            time=_timestamp(event.get("time")),
            external_id=event.get("externalId"),
        )
        for event in data.get("events") or ()
    )
    return SyncAttempt(
        status=str(data.get("status", "")),
        target_revision=target_revision,
        started_at=_timestamp(data.get("startedAt")),
        initial_revision=_revision(data.get("initialRevision")),
        events=events,
    )


def normalise_proton_sync_status(response: Mapping[str, Any]) -> SyncStatus:
    """GetTemplateSyncStatus (and GetServiceInstanceSyncStatus, same shape) -> SyncStatus."""
    return SyncStatus(
        found=True,
        desired=_revision(response.get("desiredState")),
        latest_successful=_attempt(response.get("latestSuccessfulSync")),
        latest=_attempt(response.get("latestSync")),
    )


def _template_request(target: Target) -> dict[str, str]:
    return {
        "templateName": target.name,
        "templateType": target.template_type,
        "templateVersion": target.version,
    }


TEMPLATE = Kind(
    name="template",
    service="proton",
    operation="get_template_sync_status",
    operation_name="proton:GetTemplateSyncStatus",
    build_request=_template_request,
    normalise=answers.proton_sync_status,
    not_found_codes=frozenset({"ResourceNotFoundException"}),
)

KINDS: dict[str, Kind] = {TEMPLATE.name: TEMPLATE}


def kind_of(target: Target) -> Kind:
    return KINDS[target.kind]
