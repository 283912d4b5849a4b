"""The JSON Schemas shipped as data (manifest, fake state): loading, ``$ref`` inlining, ECMA-262 patterns.

Both schemas stay portable for editors; the keyword implementations here make Python's validation agree with
what the schema means to every other reader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

#: Text longer than any field allows is not matched at all: its maxLength already fails, and a pattern such as
#: the API's ``.*/.*`` for repository names backtracks quadratically over megabytes.
LONGEST_PATTERN_INPUT = 10_000

Keyword = Callable[["Validator", Any, object, Mapping[str, Any]], Iterator[Any]]


def load_schema(package: str, name: str) -> dict[str, Any]:
    """A schema shipped as package data, as data."""
    loaded: dict[str, Any] = json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))
    return loaded


def inline_local_references(node: Any, root: Any = None) -> Any:
    """Replace each ``{"$ref": "#/$defs/name"}`` with the schema it names (the shipped schemas have no recursive
    and no sibling-keyword references). Same verdicts and error paths, but jsonschema no longer resolves several
    references per entry: validating 500 manifest entries drops from about 35 ms to a few."""
    root = node if root is None else root
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/") and len(node) == 1:
            return inline_local_references(root["$defs"][reference[len("#/$defs/"):]], root)
        return {key: inline_local_references(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [inline_local_references(item, root) for item in node]
    return node


def plain_text(instance: object) -> str | None:
    return instance if isinstance(instance, str) else None


def passes_pattern(pattern: str, text: str) -> bool:
    """Whether ``text`` passes the schema keyword ``pattern``, with ECMA-262's meaning of ``$`` (end of text).

    Python's ``$`` also matches before a final newline, so ``"1\\n"`` would pass ``^[0-9]+$`` and end up in
    a Target. Text over LONGEST_PATTERN_INPUT characters passes: its maxLength fails it."""
    if len(text) > LONGEST_PATTERN_INPUT:
        return True
    match = re.search(pattern, text)
    return match is not None and (not pattern.endswith("$") or match.end() == len(text))


def ecma_pattern(text_of: Callable[[object], str | None] = plain_text) -> Keyword:
    """jsonschema's ``pattern`` keyword as :func:`passes_pattern` decides it, applied to what ``text_of`` reads as
    text."""

    def pattern_keyword(
        validator: Validator, pattern: str, instance: object, schema: Mapping[str, Any]
    ) -> Iterator[Any]:
        from jsonschema.exceptions import ValidationError

        text = text_of(instance)
        if text is not None and not passes_pattern(pattern, text):
            yield ValidationError(f"{text!r} does not match {pattern!r}")

    return pattern_keyword


def validator_for(schema: Mapping[str, Any], keywords: Mapping[str, Keyword]) -> Validator:
    """A Draft 2020-12 validator of ``schema`` (references inlined) with ``keywords`` implemented our way."""
    import jsonschema  # a few ms, paid only when a file is validated
    from jsonschema import validators

    validator_class = validators.extend(jsonschema.Draft202012Validator, dict(keywords))  # type: ignore[no-untyped-call]
    return validator_class(inline_local_references(schema))  # type: ignore[no-any-return]


def subschema(schema: Mapping[str, Any], path: tuple[str | int, ...]) -> Mapping[str, Any]:
    """The part of an inlined ``schema`` that applies at ``path`` (an empty mapping where none does)."""
    for part in path:
        if isinstance(part, int):
            items = schema.get("items")
            schema = items if isinstance(items, dict) else {}
            continue
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        schema = properties.get(part) or (extra if isinstance(extra, dict) else {})
    return schema
