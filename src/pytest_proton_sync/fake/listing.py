"""The fake's list operations: what syncs from Git in the account, page by page.

CodeConnections ``ListRepositoryLinks``, ``ListSyncConfigurations`` and ``GetRepositorySyncStatus``; Proton
``ListRepositories`` and ``ListRepositorySyncDefinitions``. Pages hold at most the state's ``listing.page_size``
items even when ``MaxResults`` asks for more, as a service may; the next page is named by an opaque token that
is refused when it is forged or used for another list. No HTTP here (see :mod:`.server`), no pytest.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..aws import facts
from .api_error import ApiError
from .fake_state import FakeState
from .state import (
    CONNECTIONS_PROVIDERS,
    FAKE_ACCOUNT_ID,
    LIST_OPERATIONS,
    FakeAttempt,
    FakeRepositoryLink,
    FakeSyncConfiguration,
)

_REGION = "us-east-1"  # the fake ignores the request's region; ARNs name one all the same
Item = TypeVar("Item")


def _invalid_input(proton: bool, message: str) -> ApiError:
    return ApiError("ValidationException" if proton else "InvalidInputException", message)


def _denied_if(state: FakeState, operation: str, service: str, resource: str) -> None:
    if operation in state.listing.deny:
        raise ApiError(
            "AccessDeniedException",
            f"User is not authorized to perform: {service}:{operation} on resource: {resource} "
            "(listing.deny in the fake's state file)",
        )


def _token(scope: str, offset: int) -> str:
    return base64.b64encode(json.dumps({"scope": scope, "offset": offset}).encode()).decode()


def _page(
    state: FakeState, items: Sequence[Item], params: Mapping[str, Any], scope: str, proton: bool
) -> tuple[Sequence[Item], str | None]:
    """The page a request asks for, and the token of the next one (None on the last page)."""
    token_member, max_member = ("nextToken", "maxResults") if proton else ("NextToken", "MaxResults")
    offset = 0
    token = params.get(token_member)
    if token is not None:
        try:
            decoded = json.loads(base64.b64decode(token, validate=True))
            offset = decoded["offset"]
            valid = decoded["scope"] == scope and isinstance(offset, int) and 0 < offset <= len(items)
        except (binascii.Error, ValueError, TypeError, KeyError):
            valid = False
        if not valid:
            raise _invalid_input(proton, f"the {token_member} was not issued for this list")
    asked = params.get(max_member) or state.listing.page_size
    size = max(1, min(int(asked), state.listing.page_size))
    page = items[offset: offset + size]
    following = offset + size
    return page, (_token(scope, following) if following < len(items) else None)


# --- CodeConnections ----------------------------------------------------------------------------------------


def connection_arn(link: FakeRepositoryLink) -> str:
    return f"arn:aws:codeconnections:{_REGION}:{FAKE_ACCOUNT_ID}:connection/{link.connection_id}"


def _link(link: FakeRepositoryLink) -> dict[str, Any]:
    repository = link.repository
    return {
        "ConnectionArn": connection_arn(link),
        "OwnerId": repository.owner,
        "ProviderType": CONNECTIONS_PROVIDERS.get(link.provider, link.provider),
        "RepositoryLinkArn": f"arn:aws:codeconnections:{_REGION}:{FAKE_ACCOUNT_ID}:repository-link/{link.id}",
        "RepositoryLinkId": link.id,
        "RepositoryName": repository.repository,
    }


def _list_repository_links(state: FakeState, params: Mapping[str, Any], position: Callable[[], int]) -> dict[str, Any]:
    _denied_if(state, "ListRepositoryLinks", "codeconnections", "*")
    page, following = _page(state, state.repository_links, params, "ListRepositoryLinks", proton=False)
    output: dict[str, Any] = {"RepositoryLinks": [_link(link) for link in page]}
    if following is not None:
        output["NextToken"] = following
    return output


def _known_link(state: FakeState, link_id: str, action: str) -> FakeRepositoryLink:
    link = state.find_repository_link(link_id)
    if link is None:
        raise ApiError("ResourceNotFoundException", f"Repository link {link_id} not found")
    _denied_if(state, action, "codeconnections", f"repository-link/{link_id}")
    if link.deny:
        raise ApiError(
            "AccessDeniedException",
            f"User is not authorized to perform: codeconnections:{action} on resource: repository-link/{link_id} "
            "(deny: true in the fake's state file)",
        )
    return link


def _configuration(link: FakeRepositoryLink, configuration: FakeSyncConfiguration) -> dict[str, Any]:
    repository = link.repository
    item: dict[str, Any] = {
        "Branch": configuration.branch,
        "OwnerId": repository.owner,
        "ProviderType": CONNECTIONS_PROVIDERS.get(link.provider, link.provider),
        "RepositoryLinkId": link.id,
        "RepositoryName": repository.repository,
        "ResourceName": configuration.resource_name,
        "RoleArn": configuration.role_arn,
        "SyncType": "CFN_STACK_SYNC",
        "PublishDeploymentStatus": configuration.publish_deployment_status,
        "TriggerResourceUpdateOn": configuration.trigger_resource_update_on,
        "PullRequestComment": configuration.pull_request_comment,
    }
    if configuration.config_file is not None:
        item["ConfigFile"] = configuration.config_file
    # Only what the installed botocore's model has: an older one lacks PullRequestComment, and its parser (and the
    # fake's own shape check) would refuse a member it does not know.
    known = facts.members(facts.CODECONNECTIONS, "SyncConfiguration")
    return {key: value for key, value in item.items() if key in known}


def _list_sync_configurations(
    state: FakeState, params: Mapping[str, Any], position: Callable[[], int]
) -> dict[str, Any]:
    link = _known_link(state, params["RepositoryLinkId"], "ListSyncConfigurations")
    configurations = state.sync_configurations_of(link.id)
    page, following = _page(state, configurations, params, f"ListSyncConfigurations {link.id}", proton=False)
    output: dict[str, Any] = {"SyncConfigurations": [_configuration(link, item) for item in page]}
    if following is not None:
        output["NextToken"] = following
    return output


def _events(attempt: FakeAttempt) -> list[dict[str, Any]]:
    events = []
    for event in attempt.events:
        item: dict[str, Any] = {"Event": event.event, "Type": event.type, "Time": event.time or attempt.started_at}
        if event.external_id is not None:
            item["ExternalId"] = event.external_id
        events.append(item)
    return events


def _repository_sync_status(
    state: FakeState, params: Mapping[str, Any], position: Callable[[], int]
) -> dict[str, Any]:
    link = _known_link(state, params["RepositoryLinkId"], "GetRepositorySyncStatus")
    branches = {item.branch for item in state.sync_configurations_of(link.id)}
    if link.latest_sync is None or params["Branch"] not in branches:
        raise ApiError(
            "ResourceNotFoundException",
            f"No repository sync found for repository link {link.id} on branch {params['Branch']}",
        )
    attempt = link.latest_sync
    return {"LatestSync": {"StartedAt": attempt.started_at, "Status": attempt.status, "Events": _events(attempt)}}


# --- Proton -------------------------------------------------------------------------------------------------


def _proton_repositories(state: FakeState) -> list[tuple[str, str]]:
    """(provider, owner/repo) of every repository a template or service instance syncs from, in state order."""
    seen: dict[tuple[str, str], None] = {}
    for resource in (*state.templates, *state.service_instances):
        for snapshot in resource.snapshots[:1]:
            repository = snapshot.repository
            if repository.provider in facts.proton_providers():
                seen.setdefault((repository.provider, repository.name), None)
    return list(seen)


def _list_repositories(state: FakeState, params: Mapping[str, Any], position: Callable[[], int]) -> dict[str, Any]:
    _denied_if(state, "ListRepositories", "proton", "*")
    page, following = _page(state, _proton_repositories(state), params, "ListRepositories", proton=True)
    output: dict[str, Any] = {
        "repositories": [
            {
                "arn": f"arn:aws:proton:{_REGION}:{FAKE_ACCOUNT_ID}:repository/{provider.lower()}:{name}",
                "connectionArn": f"arn:aws:codestar-connections:{_REGION}:{FAKE_ACCOUNT_ID}:connection/fake",
                "name": name,
                "provider": provider,
            }
            for provider, name in page
        ]
    }
    if following is not None:
        output["nextToken"] = following
    return output


def _list_repository_sync_definitions(
    state: FakeState, params: Mapping[str, Any], position: Callable[[], int]
) -> dict[str, Any]:
    _denied_if(state, "ListRepositorySyncDefinitions", "proton", f"repository/{params['repositoryName']}")
    wanted = (params["repositoryProvider"], params["repositoryName"].lower())
    definitions: dict[tuple[str, str], dict[str, Any]] = {}
    resources: Sequence[Any] = state.templates if params["syncType"] == "TEMPLATE_SYNC" else state.service_instances
    for resource in resources:
        repository = resource.snapshots[0].repository
        if (repository.provider, repository.name.lower()) != wanted:
            continue
        parent = resource.name if params["syncType"] == "TEMPLATE_SYNC" else resource.service
        definitions.setdefault((parent, resource.name), {
            "branch": repository.branch,
            "directory": repository.directory,
            "parent": parent,
            "target": resource.name,
        })
    # The model bounds nextToken to length 0: this list is never paged.
    return {"syncDefinitions": list(definitions.values())}


CONNECTIONS_HANDLERS: Mapping[str, Callable[[FakeState, Mapping[str, Any], Callable[[], int]], dict[str, Any]]] = {
    "ListRepositoryLinks": _list_repository_links,
    "ListSyncConfigurations": _list_sync_configurations,
    "GetRepositorySyncStatus": _repository_sync_status,
}
PROTON_HANDLERS: Mapping[str, Callable[[FakeState, Mapping[str, Any], Callable[[], int]], dict[str, Any]]] = {
    "ListRepositories": _list_repositories,
    "ListRepositorySyncDefinitions": _list_repository_sync_definitions,
}
# The state file's schema lets listing.deny name exactly these (fake/state.py keeps the names for its reader).
assert (*CONNECTIONS_HANDLERS, *PROTON_HANDLERS) == LIST_OPERATIONS


def call_key(operation: str, params: Mapping[str, Any]) -> str | None:
    """How list calls are counted (None: not a list operation): ``ListSyncConfigurations <link id>``."""
    if operation in ("ListRepositoryLinks", "ListRepositories"):
        return operation
    if operation == "ListSyncConfigurations" and isinstance(params.get("RepositoryLinkId"), str):
        return f"{operation} {params['RepositoryLinkId']}"
    if operation == "GetRepositorySyncStatus" and isinstance(params.get("RepositoryLinkId"), str):
        return f"{operation} {params['RepositoryLinkId']}/{params.get('Branch')}"
    if operation == "ListRepositorySyncDefinitions" and isinstance(params.get("repositoryName"), str):
        return f"{operation} {params.get('syncType')} {params['repositoryName']}"
    return None
