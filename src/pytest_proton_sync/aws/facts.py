"""Facts that AWS owns, read from the installed botocore's service models at run time.

Providers, template types, sync and blocker statuses change when AWS changes them (CodeConnections added
``GitHubEnterpriseCloudDataResidency`` in botocore 1.44); a copy kept in this package would go stale and reject what
the API accepts. So every such value is read here, from the same models botocore serialises requests with, and the
manifest's and the fake's JSON Schemas are filled in from them (``x-aws-enum``). The only knowledge kept here is the
project's own: which spellings of the two APIs name the same provider.

Imports botocore's model loader only (neither boto3 nor pytest); each model is read once per process.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

PROTON = "proton"
CODECONNECTIONS = "codeconnections"

#: Proton's spelling -> CodeConnections' spelling, where both APIs name the same provider. This is what lets a
#: manifest's defaults (which apply to every section) use either spelling; it restricts nothing: every value either
#: model lists is accepted by the kinds that call that API.
SAME_PROVIDER: Mapping[str, str] = {"GITHUB": "GitHub", "GITHUB_ENTERPRISE": "GitHubEnterpriseServer",
                                    "BITBUCKET": "Bitbucket"}


class MissingFact(LookupError):
    """The installed botocore's model lacks a shape this package reads (a botocore older than the supported range,
    or a model AWS reshaped)."""


def botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


_LOADING = threading.Lock()


def _shapes(service: str) -> Mapping[str, Any]:
    # One reader at a time: the fetch's worker threads ask for the same enums at their first answers, and each
    # would read the whole model (hundreds of kilobytes of JSON) again before the cache had it.
    with _LOADING:
        return _read_shapes(service)


@functools.cache
def _loader() -> Any:
    from botocore.loaders import create_loader

    # AWS_DATA_PATH (extra or newer models) counts here as it does for the clients. Not through a botocore session:
    # that would read the user's AWS config file, which a hermetic run (--proton-fake) must never depend on.
    return create_loader(os.environ.get("AWS_DATA_PATH"))


@functools.cache
def _read_shapes(service: str) -> Mapping[str, Any]:
    from botocore.exceptions import DataNotFoundError

    # The model file by its path, as load_service_model finds it, without what that does first: list every service
    # botocore has (a directory scan of some 400 of them, ~15 ms, twice per run) to tell an unknown one apart.
    # The extras it merges in (SDK-only metadata) hold no enum.
    loader = _loader()
    try:
        version = loader.determine_latest_version(service, "service-2")
        model = loader.load_data(f"{service}/{version}/service-2")
    except DataNotFoundError:
        raise MissingFact(f"botocore {botocore_version()} has no model of the {service} API; upgrade it: "
                          "pip install -U boto3 botocore") from None
    shapes: Mapping[str, Any] = model["shapes"]
    return shapes


@functools.cache
def enum(service: str, shape: str) -> tuple[str, ...]:
    """The values of ``service``'s enum shape ``shape``, in the model's order."""
    values = _shapes(service).get(shape, {}).get("enum")
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise MissingFact(f"botocore {botocore_version()}'s {service} model has no enum {shape}; upgrade it: "
                          "pip install -U boto3 botocore")
    return tuple(values)


def enum_if_known(service: str, shape: str) -> tuple[str, ...] | None:
    """``enum(service, shape)``, or None where the installed botocore's model has no such enum (a member AWS added
    after it, such as CodeConnections' PullRequestComment, which botocore 1.35 lacks)."""
    try:
        return enum(service, shape)
    except MissingFact:
        return None


@functools.cache
def members(service: str, shape: str) -> frozenset[str]:
    """The member names of ``service``'s structure ``shape`` in the installed model (empty if it has none)."""
    found = _shapes(service).get(shape, {}).get("members")
    return frozenset(found) if isinstance(found, dict) else frozenset()


def proton_providers() -> tuple[str, ...]:
    return enum(PROTON, "RepositoryProvider")


def connections_providers() -> tuple[str, ...]:
    return enum(CODECONNECTIONS, "ProviderType")


def template_types() -> tuple[str, ...]:
    return enum(PROTON, "TemplateType")


@functools.cache
def sync_statuses() -> tuple[str, ...]:
    """A resource sync's statuses, as either API answers them (Proton's order first)."""
    return _union(enum(PROTON, "ResourceSyncStatus"), enum(CODECONNECTIONS, "ResourceSyncStatus"))


@functools.cache
def blocker_types() -> tuple[str, ...]:
    return _union(enum(PROTON, "BlockerType"), enum(CODECONNECTIONS, "BlockerType"))


@functools.cache
def blocker_statuses() -> tuple[str, ...]:
    return _union(enum(PROTON, "BlockerStatus"), enum(CODECONNECTIONS, "BlockerStatus"))


def stack_sync_types() -> tuple[str, ...]:
    return enum(CODECONNECTIONS, "SyncConfigurationType")


@functools.cache
def proton_spellings() -> Mapping[str, str]:
    """Every manifest spelling a Proton call accepts -> Proton's own spelling."""
    own = proton_providers()
    aliases = {connections: proton for proton, connections in SAME_PROVIDER.items() if proton in own}
    return {**{provider: provider for provider in own}, **aliases}


@functools.cache
def connections_spellings() -> Mapping[str, str]:
    """Every manifest spelling a CodeConnections call accepts -> CodeConnections' own spelling."""
    own = connections_providers()
    aliases = {proton: connections for proton, connections in SAME_PROVIDER.items() if connections in own}
    return {**{provider: provider for provider in own}, **aliases}


def fill_enums(schema: Any, values: Mapping[str, Callable[[], Iterable[str] | None]]) -> Any:
    """A copy of ``schema`` in which every ``{"x-aws-enum": NAME}`` also has ``"enum": values[NAME]()``.

    The schema files keep the name of the fact, not its values, so the schema a run validates with, and the one
    ``pytest-proton-sync schema`` prints, say what the installed botocore knows. A fact the installed botocore does
    not have (None) allows no value, and says why.
    """
    if isinstance(schema, dict):
        filled = {key: fill_enums(value, values) for key, value in schema.items()}
        name = schema.get("x-aws-enum")
        if isinstance(name, str):
            found = values[name]()
            filled["enum"] = list(dict.fromkeys(found)) if found is not None else []
            if found is None:
                filled["x-allowed"] = (f"nothing with botocore {botocore_version()}, whose model lacks it; upgrade "
                                       "botocore to use it: pip install -U boto3 botocore")
        return filled
    if isinstance(schema, list):
        return [fill_enums(item, values) for item in schema]
    return schema


def _union(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for group in groups for value in group))
