"""The operations the fake answers, for AWS Proton and AWS CodeConnections: request checking against botocore's
model, and answers.

No HTTP here: :func:`answer` takes the service, the operation name and the decoded request body and returns
the answer (timestamps as :class:`~datetime.datetime`; the server encodes them for its protocol) or raises
:class:`ApiError`, which the server turns into the protocol's error shape.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape, StringShape, StructureShape
from botocore.validate import ParamValidator

from ..aws.hermetic import isolated_session
from .api_error import ApiError
from .fake_state import FakeState
from .listing import CONNECTIONS_HANDLERS, PROTON_HANDLERS
from .listing import call_key as list_call_key
from .state import FakeAttempt, FakeBlocker, FakeRepository, FakeServiceInstance, FakeTemplate, SyncSnapshot


@dataclass(frozen=True)
class Service:
    """One AWS service the fake speaks: its botocore model and how requests name it."""

    model_name: str  # botocore's service name
    #: X-Amz-Target prefixes (JSON 1.0) and /service/<name>/ path segments (rpc-v2-cbor) that mean this service.
    names: tuple[str, ...]
    namespace: str  # the Smithy namespace, for rpc-v2-cbor's shape-id error types
    operations: tuple[str, ...]
    cbor: bool  # whether the service speaks smithy-rpc-v2-cbor


PROTON = Service(
    model_name="proton",
    names=("AwsProton20200720",),
    namespace="com.amazonaws.proton",
    operations=(
        "GetTemplateSyncStatus",
        "GetTemplateSyncConfig",
        "GetServiceInstanceSyncStatus",
        "GetServiceSyncBlockerSummary",
        # What syncs from Git (fake/listing.py)
        "ListRepositories",
        "ListRepositorySyncDefinitions",
    ),
    cbor=False,
)
# botocore 1.44 puts the namespace into the model's targetPrefix and sends that; the service's own Smithy
# protocols use the bare service name. Both are answered.
CODECONNECTIONS = Service(
    model_name="codeconnections",
    names=("CodeConnections_20231201", "com.amazonaws.codeconnections.CodeConnections_20231201"),
    namespace="com.amazonaws.codeconnections",
    operations=(
        "GetResourceSyncStatus",
        "GetSyncBlockerSummary",
        # What syncs from Git (fake/listing.py)
        "ListRepositoryLinks",
        "ListSyncConfigurations",
        "GetRepositorySyncStatus",
    ),
    cbor=True,
)
SERVICES = (PROTON, CODECONNECTIONS)
#: Kept for callers of the Proton-only fake.
TARGET_PREFIX = "AwsProton20200720."


def service_named(name: str) -> Service | None:
    """The service an X-Amz-Target prefix or a /service/<name>/ path segment means, if any."""
    for service in SERVICES:
        if name in service.names:
            return service
    return None


@functools.cache
def service_model(model_name: str = "proton") -> ServiceModel:
    """botocore's model of a service, loaded once: loading one takes a noticeable fraction of a second. From a
    session that reads no profile or config file: the user's AWS set-up must not break the fake."""
    return isolated_session().get_service_model(model_name)


def operation_model(operation: str, service: Service = PROTON) -> OperationModel:
    return service_model(service.model_name).operation_model(operation)


def call_key(operation: str, params: Any) -> str:
    """How calls are counted: ``GetTemplateSyncStatus ENVIRONMENT/vpc-env@1``, ``GetResourceSyncStatus network``.

    Best effort on purpose: a request too broken to name its resource is counted under its operation alone,
    so every request received is counted somewhere.
    """
    if not isinstance(params, Mapping):
        return operation

    def text(member: str) -> str | None:
        value = params.get(member)
        return value if isinstance(value, str) else None

    if operation in ("GetTemplateSyncStatus", "GetTemplateSyncConfig"):
        name, template_type = text("templateName"), text("templateType")
        if name is None or template_type is None:
            return operation
        if operation == "GetTemplateSyncConfig":
            return f"{operation} {template_type}/{name}"
        version = text("templateVersion")
        return operation if version is None else f"{operation} {template_type}/{name}@{version}"
    if operation in ("GetServiceInstanceSyncStatus", "GetServiceSyncBlockerSummary"):
        service, instance = text("serviceName"), text("serviceInstanceName")
        if service is None:
            return operation
        if instance is None:
            return operation if operation == "GetServiceInstanceSyncStatus" else f"{operation} {service}"
        return f"{operation} {service}/{instance}"
    if operation in ("GetResourceSyncStatus", "GetSyncBlockerSummary"):
        name = text("ResourceName")
        return operation if name is None else f"{operation} {name}"
    return list_call_key(operation, params) or operation


def answer(
    state: FakeState,
    service: Service,
    operation: str,
    params: Any,
    next_position: Callable[[str], int],
) -> dict[str, Any]:
    """The answer to one request. ``next_position(call_key)`` tells which sequence step a call is at."""
    if operation not in service.operations:
        raise ApiError("UnknownOperationException", f"the fake does not implement {service.names[0]}.{operation}")
    check_input(operation, params, service)
    listed = (PROTON_HANDLERS if service is PROTON else CONNECTIONS_HANDLERS).get(operation)
    handler = listed if listed is not None else _HANDLERS[operation]
    return handler(state, params, lambda: next_position(call_key(operation, params)))


def check_input(operation: str, params: Any, service: Service = PROTON) -> None:
    """Raise ValidationException unless ``params`` fits the operation's input shape, as the service would.

    botocore's own validator checks presence, types and minimum lengths; the service also enforces enums,
    patterns and maximum lengths, which botocore leaves to it, so those are checked here too.
    """
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a structure (a JSON object or CBOR map)")
    shape = operation_model(operation, service).input_shape
    assert isinstance(shape, StructureShape)
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ApiError("ValidationException", " ".join(report.generate_report().split()))
    problems = [
        problem
        for member, member_shape in shape.members.items()
        if member in params
        for problem in _string_constraint_problems(member, params[member], member_shape)
    ]
    if problems:
        count = len(problems)
        raise ApiError(
            "ValidationException",
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems),
        )


def _string_constraint_problems(member: str, value: Any, shape: Shape) -> list[str]:
    if not isinstance(shape, StringShape) or not isinstance(value, str):
        return []
    shown = value if len(value) <= 100 else value[:97] + "..."
    prefix = f"Value '{shown}' at '{member}' failed to satisfy constraint: Member must"
    problems = []
    if shape.enum and value not in shape.enum:
        problems.append(f"{prefix} satisfy enum value set: [{', '.join(shape.enum)}]")
    maximum = shape.metadata.get("max")
    if maximum is not None and len(value) > maximum:
        problems.append(f"{prefix} have length less than or equal to {maximum}")
    pattern = shape.metadata.get("pattern")
    # The service matches the whole value (Java semantics), hence fullmatch. Over-long values already failed.
    if pattern is not None and (maximum is None or len(value) <= maximum) and not re.fullmatch(pattern, value):
        problems.append(f"{prefix} satisfy regular expression pattern: {pattern}")
    return problems


def _denied(action: str, resource: str) -> ApiError:
    return ApiError(
        "AccessDeniedException",
        f"User is not authorized to perform: {action} on resource: {resource} (deny: true in the fake's state file)",
    )


# --- Proton ------------------------------------------------------------------------------------------------


def _template_sync_status(state: FakeState, params: Mapping[str, Any], position: Callable[[], int]) -> dict[str, Any]:
    template = state.find(params["templateType"], params["templateName"], params["templateVersion"])
    if template is None:
        raise ApiError(
            "ResourceNotFoundException",
            f"No sync found for {params['templateType']} template {params['templateName']} "
            f"version {params['templateVersion']}",
        )
    snapshot = template.snapshot(position())
    if snapshot.deny:
        raise _denied("proton:GetTemplateSyncStatus", f"{template.type.lower()}-template/{template.name}")
    return _proton_sync_status(snapshot, template.name)


def _template_sync_config(state: FakeState, params: Mapping[str, Any], position: Callable[[], int]) -> dict[str, Any]:
    versions = state.versions_of(params["templateType"], params["templateName"])
    if not versions:
        raise ApiError(
            "ResourceNotFoundException",
            f"No sync found for {params['templateType']} template {params['templateName']}",
        )
    first: FakeTemplate = versions[0]
    # A sync config belongs to the template, not a version: the first version listed speaks for it.
    snapshot = first.snapshot(0)
    if any(version.snapshot(0).deny for version in versions):
        raise _denied("proton:GetTemplateSyncConfig", f"{first.type.lower()}-template/{first.name}")
    config: dict[str, Any] = {
        "branch": snapshot.repository.branch,
        "repositoryName": snapshot.repository.name,
        "repositoryProvider": snapshot.repository.provider,
        "templateName": first.name,
        "templateType": first.type,
    }
    if snapshot.repository.directory:  # the model's Subdirectory has a minimum length of 1
        config["subdirectory"] = snapshot.repository.directory
    return {"templateSyncConfig": config}


def _service_instance_sync_status(
    state: FakeState, params: Mapping[str, Any], position: Callable[[], int]
) -> dict[str, Any]:
    instance = state.find_service_instance(params["serviceName"], params["serviceInstanceName"])
    if instance is None:
        raise ApiError(
            "ResourceNotFoundException",
            f"No sync found for service instance {params['serviceInstanceName']} of service {params['serviceName']}",
        )
    snapshot = instance.snapshot(position())
    if snapshot.deny:
        resource = f"service/{instance.service}/service-instance/{instance.name}"
        raise _denied("proton:GetServiceInstanceSyncStatus", resource)
    return _proton_sync_status(snapshot, instance.name)


def _service_sync_blocker_summary(
    state: FakeState, params: Mapping[str, Any], position: Callable[[], int]
) -> dict[str, Any]:
    service_name: str = params["serviceName"]
    instance_name: str | None = params.get("serviceInstanceName")
    instances: tuple[FakeServiceInstance, ...]
    if instance_name is not None:
        found = state.find_service_instance(service_name, instance_name)
        instances = (found,) if found is not None else ()
    else:
        instances = state.instances_of(service_name)
    if not instances:
        what = f"service {service_name}"
        if instance_name is not None:
            what = f"service instance {instance_name} of {what}"
        raise ApiError("ResourceNotFoundException", f"No sync blockers found for {what}")
    step = position()
    snapshots = [instance.snapshot(step) for instance in instances]
    if any(snapshot.deny for snapshot in snapshots):
        raise _denied("proton:GetServiceSyncBlockerSummary", f"service/{service_name}")
    blockers: dict[str, FakeBlocker] = {}
    for snapshot in snapshots:  # without an instance name: the blockers of all the service's instances
        for blocker in snapshot.blockers:
            blockers.setdefault(blocker.id, blocker)
    summary: dict[str, Any] = {
        "serviceName": service_name,
        "latestBlockers": [_blocker(blocker, pascal=False) for blocker in blockers.values()],
    }
    if instance_name is not None:
        summary["serviceInstanceName"] = instance_name
    return {"serviceSyncBlockerSummary": summary}


def _proton_sync_status(snapshot: SyncSnapshot, target: str) -> dict[str, Any]:
    output: dict[str, Any] = {}
    if snapshot.desired is not None:
        output["desiredState"] = _proton_revision(snapshot.desired, snapshot.repository)
    if snapshot.latest_successful is not None:
        output["latestSuccessfulSync"] = _proton_attempt(snapshot.latest_successful, target, snapshot.repository)
    if snapshot.latest is not None:
        output["latestSync"] = _proton_attempt(snapshot.latest, target, snapshot.repository)
    return output


def _proton_revision(sha: str, repository: FakeRepository) -> dict[str, Any]:
    return {
        "branch": repository.branch,
        "directory": repository.directory,
        "repositoryName": repository.name,
        "repositoryProvider": repository.provider,
        "sha": sha,
    }


def _proton_attempt(attempt: FakeAttempt, target: str, repository: FakeRepository) -> dict[str, Any]:
    return {
        "events": _events(attempt, pascal=False),
        "initialRevision": _proton_revision(attempt.initial_sha, repository),
        "startedAt": attempt.started_at,
        "status": attempt.status,
        "target": target,
        "targetRevision": _proton_revision(attempt.sha, repository),
    }


# --- CodeConnections ---------------------------------------------------------------------------------------


def _stack(state: FakeState, params: Mapping[str, Any], position: Callable[[], int], action: str) -> SyncSnapshot:
    stack = state.find_stack(params["ResourceName"])
    if stack is None:
        raise ApiError(
            "ResourceNotFoundException", f"No CFN_STACK_SYNC sync configuration found for {params['ResourceName']}"
        )
    snapshot = stack.snapshot(position())
    if snapshot.deny:
        raise _denied(f"codeconnections:{action}", f"sync-configuration/{stack.name}")
    return snapshot


def _resource_sync_status(state: FakeState, params: Mapping[str, Any], position: Callable[[], int]) -> dict[str, Any]:
    snapshot = _stack(state, params, position, "GetResourceSyncStatus")
    name = params["ResourceName"]
    if snapshot.latest is None:  # LatestSync is required in the answer: no attempt, no sync status
        raise ApiError("ResourceNotFoundException", f"No sync attempt found for {name}")
    output: dict[str, Any] = {"LatestSync": _connections_attempt(snapshot.latest, name, snapshot.repository)}
    if snapshot.desired is not None:
        output["DesiredState"] = _connections_revision(snapshot.desired, snapshot.repository)
    if snapshot.latest_successful is not None:
        output["LatestSuccessfulSync"] = _connections_attempt(snapshot.latest_successful, name, snapshot.repository)
    return output


def _sync_blocker_summary(state: FakeState, params: Mapping[str, Any], position: Callable[[], int]) -> dict[str, Any]:
    snapshot = _stack(state, params, position, "GetSyncBlockerSummary")
    return {
        "SyncBlockerSummary": {
            "ResourceName": params["ResourceName"],
            "LatestBlockers": [_blocker(blocker, pascal=True) for blocker in snapshot.blockers],
        }
    }


def _connections_revision(sha: str, repository: FakeRepository) -> dict[str, Any]:
    return {
        "Branch": repository.branch,
        "Directory": repository.directory,
        "OwnerId": repository.owner,
        "RepositoryName": repository.repository,
        "ProviderType": repository.connections_provider,
        "Sha": sha,
    }


def _connections_attempt(attempt: FakeAttempt, target: str, repository: FakeRepository) -> dict[str, Any]:
    return {
        "Events": _events(attempt, pascal=True),
        "InitialRevision": _connections_revision(attempt.initial_sha, repository),
        "StartedAt": attempt.started_at,
        "Status": attempt.status,
        "Target": target,
        "TargetRevision": _connections_revision(attempt.sha, repository),
    }


# --- shared ------------------------------------------------------------------------------------------------


def _member(name: str, pascal: bool) -> str:
    """Proton spells members camelCase, CodeConnections PascalCase."""
    return name[0].upper() + name[1:] if pascal else name


def _events(attempt: FakeAttempt, pascal: bool) -> list[dict[str, Any]]:
    events = []
    for event in attempt.events:
        item: dict[str, Any] = {"event": event.event, "type": event.type, "time": event.time or attempt.started_at}
        if event.external_id is not None:
            item["externalId"] = event.external_id
        events.append({_member(key, pascal): value for key, value in item.items()})
    return events


def _blocker(blocker: FakeBlocker, pascal: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": blocker.id,
        "type": blocker.type,
        "status": blocker.status,
        "createdReason": blocker.created_reason,
        "createdAt": blocker.created_at,
        "contexts": [{_member("key", pascal): key, _member("value", pascal): value} for key, value in blocker.contexts],
    }
    if blocker.resolved_reason is not None:
        item["resolvedReason"] = blocker.resolved_reason
    if blocker.resolved_at is not None:
        item["resolvedAt"] = blocker.resolved_at
    return {_member(key, pascal): value for key, value in item.items()}


def epoch_seconds(moment: datetime) -> int | float:
    """Timestamps travel as epoch seconds in AWS JSON 1.0; whole seconds go out as integers."""
    seconds = moment.timestamp()
    return int(seconds) if seconds.is_integer() else seconds


_HANDLERS: Mapping[str, Callable[[FakeState, Mapping[str, Any], Callable[[], int]], dict[str, Any]]] = {
    "GetTemplateSyncStatus": _template_sync_status,
    "GetTemplateSyncConfig": _template_sync_config,
    "GetServiceInstanceSyncStatus": _service_instance_sync_status,
    "GetServiceSyncBlockerSummary": _service_sync_blocker_summary,
    "GetResourceSyncStatus": _resource_sync_status,
    "GetSyncBlockerSummary": _sync_blocker_summary,
}
