"""The fake's state file schema (``state.schema.json``) as the reader validates with it: its AWS enums filled in
from the installed botocore's models (aws/facts.py), and string keywords that read a number as the text it was
written as."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..aws import facts
from ..yamlcheck.schema import ecma_pattern, load_schema, validator_for
from .state import CONNECTIONS_PROVIDERS, LIST_OPERATIONS
from .statebuild import _Float, _Int

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SCHEMA_RESOURCE = "state.schema.json"


def _providers() -> tuple[str, ...]:
    """What a state file may name: either API's spelling from botocore's models, and the upper-case ones."""
    return (*facts.proton_providers(), *CONNECTIONS_PROVIDERS, *facts.connections_providers())



@functools.cache
def schema() -> dict[str, Any]:
    """The shipped JSON Schema, its AWS enums filled in from the installed botocore's models."""
    loaded: dict[str, Any] = facts.fill_enums(load_schema(__package__ or "pytest_proton_sync.fake", SCHEMA_RESOURCE), {
        "providers": _providers,
        "template types": facts.template_types,
        "sync statuses": facts.sync_statuses,
        "blocker types": facts.blocker_types,
        "blocker statuses": facts.blocker_statuses,
        # repository_links and sync_configurations (fake/listing.py)
        "repository sync statuses": functools.partial(_connections_enum, "RepositorySyncStatus"),
        "trigger resource update on": functools.partial(_connections_enum, "TriggerResourceUpdateOn"),
        "publish deployment status": functools.partial(_connections_enum, "PublishDeploymentStatus"),
        "pull request comment": functools.partial(_connections_enum, "PullRequestComment"),
        "list operations": lambda: LIST_OPERATIONS,
    })
    return loaded


def _connections_enum(shape: str) -> tuple[str, ...] | None:
    return facts.enum_if_known(facts.CODECONNECTIONS, shape)


@functools.cache
def validator() -> Validator:
    return validator_for(schema(), {"pattern": ecma_pattern(_as_text), "minLength": _min_length,
                                    "maxLength": _max_length})


def _as_text(instance: object) -> str | None:
    """What the string keywords look at: text, or the text a number was written as (for fields that accept
    a plain number as text). Booleans and floats written without text are not text."""
    if isinstance(instance, str):
        return instance
    if isinstance(instance, (_Int, _Float)):
        return instance.text
    if isinstance(instance, int) and not isinstance(instance, bool):
        return str(instance)
    if isinstance(instance, float):
        return repr(instance)
    return None


def _min_length(validator: Validator, minimum: int, instance: object, schema: Mapping[str, Any]) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    text = _as_text(instance)
    if text is not None and len(text) < minimum:
        yield ValidationError(f"{text!r} is too short")


def _max_length(validator: Validator, maximum: int, instance: object, schema: Mapping[str, Any]) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    text = _as_text(instance)
    if text is not None and len(text) > maximum:
        yield ValidationError(f"{len(text)} characters is too long")
