"""Proton's operations as the fake answers them: request checking against botocore's model, and answers.

No HTTP here: :func:`answer` takes the operation name and the decoded JSON body and returns the JSON answer
or raises :class:`ApiError`, which the server turns into the protocol's error shape.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StringShape, StructureShape
from botocore.validate import ParamValidator

from .state import FakeAttempt, FakeRepository, FakeState, FakeTemplate

TARGET_PREFIX = "AwsProton20200720."
OPERATIONS = ("GetTemplateSyncStatus", "GetTemplateSyncConfig")


class ApiError(Exception):
    """An error answer: ``code`` goes out as ``__type`` and ``x-amzn-ErrorType``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """botocore's Proton model, loaded once: loading it takes a noticeable fraction of a second."""
    return botocore.session.get_session().get_service_model("proton")


def operation_model(operation: str) -> OperationModel:
    return service_model().operation_model(operation)


def call_key(operation: str, params: Any) -> str:
    """How calls are counted: ``GetTemplateSyncStatus ENVIRONMENT/vpc-env@1``.

    Best effort on purpose: a request too broken to name a template is counted under its operation alone,
    so every request received is counted somewhere.
    """
    if not isinstance(params, Mapping):
        return operation
    name, template_type = params.get("templateName"), params.get("templateType")
    if not isinstance(name, str) or not isinstance(template_type, str):
        return operation
    if operation == "GetTemplateSyncConfig":
        return f"{operation} {template_type}/{name}"
    version = params.get("templateVersion")
    if not isinstance(version, str):
        return operation
    return f"{operation} {template_type}/{name}@{version}"


def answer(
    state: FakeState, operation: str, params: Any, next_position: Callable[[FakeTemplate], int]
) -> dict[str, Any]:
    """The JSON answer to one request. ``next_position`` tells which sequence step a status call is at."""
    if operation not in OPERATIONS:
        raise ApiError("UnknownOperationException", f"the fake does not implement {TARGET_PREFIX}{operation}")
    check_input(operation, params)
    if operation == "GetTemplateSyncStatus":
        return _template_sync_status(state, params, next_position)
    return _template_sync_config(state, params)


def check_input(operation: str, params: Any) -> None:
    """Raise ValidationException unless ``params`` fits the operation's input shape, as the service would.

    botocore's own validator checks presence, types and minimum lengths; the service also enforces enums,
    patterns and maximum lengths, which botocore leaves to it, so those are checked here too.
    """
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    shape = operation_model(operation).input_shape
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
    prefix = f"Value '{value}' at '{member}' failed to satisfy constraint: Member must"
    problems = []
    if shape.enum and value not in shape.enum:
        problems.append(f"{prefix} satisfy enum value set: [{', '.join(shape.enum)}]")
    maximum = shape.metadata.get("max")
    if maximum is not None and len(value) > maximum:
        problems.append(f"{prefix} have length less than or equal to {maximum}")
    pattern = shape.metadata.get("pattern")
    # The service matches the whole value (Java semantics), hence fullmatch.
    if pattern is not None and not re.fullmatch(pattern, value):
        problems.append(f"{prefix} satisfy regular expression pattern: {pattern}")
    return problems


def _not_found(params: Mapping[str, Any], with_version: bool) -> ApiError:
    what = f"{params['templateType']} template {params['templateName']}"
    if with_version:
        what += f" version {params['templateVersion']}"
    return ApiError("ResourceNotFoundException", f"No sync found for {what}")


def _denied(operation: str, template: FakeTemplate) -> ApiError:
    resource = f"{template.type.lower()}-template/{template.name}"
    return ApiError(
        "AccessDeniedException",
        f"User is not authorized to perform: proton:{operation} on resource: {resource} "
        "(deny: true in the fake's state file)",
    )


def _template_sync_status(
    state: FakeState, params: Mapping[str, Any], next_position: Callable[[FakeTemplate], int]
) -> dict[str, Any]:
    template = state.find(params["templateType"], params["templateName"], params["templateVersion"])
    if template is None:
        raise _not_found(params, with_version=True)
    snapshot = template.snapshot(next_position(template))
    if snapshot.deny:
        raise _denied("GetTemplateSyncStatus", template)
    output: dict[str, Any] = {}
    if snapshot.desired is not None:
        output["desiredState"] = _revision(snapshot.desired, snapshot.repository)
    if snapshot.latest_successful is not None:
        output["latestSuccessfulSync"] = _attempt(snapshot.latest_successful, template, snapshot.repository)
    if snapshot.latest is not None:
        output["latestSync"] = _attempt(snapshot.latest, template, snapshot.repository)
    return output


def _template_sync_config(state: FakeState, params: Mapping[str, Any]) -> dict[str, Any]:
    versions = state.versions_of(params["templateType"], params["templateName"])
    if not versions:
        raise _not_found(params, with_version=False)
    # A sync config belongs to the template, not a version: the first version listed speaks for it.
    snapshot = versions[0].snapshot(0)
    if any(version.snapshot(0).deny for version in versions):
        raise _denied("GetTemplateSyncConfig", versions[0])
    config: dict[str, Any] = {
        "branch": snapshot.repository.branch,
        "repositoryName": snapshot.repository.name,
        "repositoryProvider": snapshot.repository.provider,
        "templateName": versions[0].name,
        "templateType": versions[0].type,
    }
    if snapshot.repository.directory:  # the model's Subdirectory has a minimum length of 1
        config["subdirectory"] = snapshot.repository.directory
    return {"templateSyncConfig": config}


def _revision(sha: str, repository: FakeRepository) -> dict[str, Any]:
    return {
        "branch": repository.branch,
        "directory": repository.directory,
        "repositoryName": repository.name,
        "repositoryProvider": repository.provider,
        "sha": sha,
    }


def _attempt(attempt: FakeAttempt, template: FakeTemplate, repository: FakeRepository) -> dict[str, Any]:
    return {
        "events": [
            {
                "event": event.event,
                "type": event.type,
                "time": epoch_seconds(event.time or attempt.started_at),
                **({"externalId": event.external_id} if event.external_id is not None else {}),
            }
            for event in attempt.events
        ],
        "initialRevision": _revision(attempt.initial_sha, repository),
        "startedAt": epoch_seconds(attempt.started_at),
        "status": attempt.status,
        "target": template.name,
        "targetRevision": _revision(attempt.sha, repository),
    }


def epoch_seconds(moment: datetime) -> int | float:
    """Timestamps travel as epoch seconds in AWS JSON 1.0; whole seconds go out as integers."""
    seconds = moment.timestamp()
    return int(seconds) if seconds.is_integer() else seconds
