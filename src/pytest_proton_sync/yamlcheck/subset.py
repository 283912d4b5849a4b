"""A validator of the part of JSON Schema (Draft 2020-12) the shipped manifest schema uses, for every pytest run.

Why not jsonschema here: importing it (with referencing, attrs and its bundled metaschemas) and validating a
500-entry manifest cost a gate run about 0.1 s of its 1.8 s, on every run, for a schema that uses 14 keywords. This
module implements those keywords with jsonschema's own semantics (its type checker, its ``enum`` equality that
keeps ``true`` apart from ``1``, its keyword order and its messages) and nothing else:
:class:`SubsetValidator` refuses, when it is made, a schema with any keyword it does not implement, so a schema
edit that needs more fails every test at once instead of being half-checked. jsonschema stays the reference:
tests/test_schema_subset.py checks that both give the same errors (keyword, path, message) on every shipped
manifest and thousands of broken ones. (The fake's state file, whose schema uses more keywords and is read only
under --proton-fake, is still validated by jsonschema.)

Expects ``$ref`` inlined (:func:`.schema.inline_local_references`). Pure standard library.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Keywords that validate, in what this module implements.
IMPLEMENTED = frozenset({
    "type", "enum", "properties", "required", "additionalProperties", "propertyNames", "items", "minItems",
    "minLength", "maxLength", "pattern", "minimum", "if", "then",
})
_OBJECT_KEYWORDS = frozenset({"properties", "required", "additionalProperties", "propertyNames"})
#: Keywords that only describe: validators ignore them.
ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"})


class UnsupportedSchema(ValueError):
    """The schema uses a keyword this validator does not implement (or a ``$ref`` left in)."""


@dataclass(frozen=True)
class SchemaViolation:
    """One error, with the attributes of jsonschema's ValidationError that the manifest's messages read."""

    message: str
    validator: str  # the keyword that failed: "type", "enum", "required", ...
    validator_value: Any  # that keyword's value in the schema
    instance: Any  # the value that failed it
    schema: Mapping[str, Any]  # the (sub)schema the keyword is in
    absolute_path: tuple[str | int, ...]  # where the value is, from the document's root


#: ``pattern``'s test: (pattern, text) -> whether the text matches, as the schema means it.
PatternTest = Callable[[str, str], bool]


def _is_integer(value: object) -> bool:
    # bool is an int in Python, not in JSON Schema; 1.0 is an integer in Draft 2020-12.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


_TYPES: dict[str, Callable[[object], bool]] = {
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "null": lambda value: value is None,
    "number": _is_number,
    "object": lambda value: isinstance(value, dict),
    "string": lambda value: isinstance(value, str),
}


def equal(one: object, two: object) -> bool:
    """JSON equality as jsonschema's ``enum`` applies it: ``true`` is not ``1``, lists and objects compare deeply."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return one.keys() == two.keys() and all(equal(one[key], two[key]) for key in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    return one == two


def _check_supported(schema: object, where: str = "#") -> None:
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"{where}: a schema here must be an object (true, false and the rest are not "
                                f"implemented by {__name__})")
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS or keyword.startswith("x-"):
            continue
        if keyword not in IMPLEMENTED:
            raise UnsupportedSchema(f"{where}: the keyword {keyword!r} is not implemented by {__name__}")
        if keyword == "properties":
            for name, subschema in value.items():
                _check_supported(subschema, f"{where}/properties/{name}")
        elif keyword == "additionalProperties" and isinstance(value, bool):
            continue
        elif keyword in ("additionalProperties", "propertyNames", "items", "if", "then"):
            _check_supported(value, f"{where}/{keyword}")


class SubsetValidator:
    """Validates instances (JSON-like data: dict, list, str, int, float, bool, None) against ``schema``.

    ``pattern_test`` decides the ``pattern`` keyword (the shipped schemas mean ECMA-262's ``$``, not Python's)."""

    def __init__(self, schema: Mapping[str, Any], pattern_test: PatternTest) -> None:
        _check_supported(schema)
        self.schema = schema
        self._pattern_test = pattern_test

    def iter_errors(self, instance: object) -> Iterator[SchemaViolation]:
        """Every error, in jsonschema's order: the schema's keywords in the order written, depth first."""
        return self._errors(instance, self.schema, ())

    def _errors(self, instance: Any, schema: Mapping[str, Any], path: tuple[str | int, ...]
                ) -> Iterator[SchemaViolation]:
        for keyword, value in schema.items():
            if keyword not in IMPLEMENTED:
                continue
            message = ""
            if keyword == "type":
                types = [value] if isinstance(value, str) else value
                if not any(_TYPES[name](instance) for name in types):
                    message = f"{instance!r} is not of type {', '.join(repr(name) for name in types)}"
            elif keyword == "enum":
                if all(not equal(choice, instance) for choice in value):
                    message = f"{instance!r} is not one of {value!r}"
            elif isinstance(instance, dict) and keyword in _OBJECT_KEYWORDS:
                yield from self._object_errors(keyword, value, instance, schema, path)
            elif keyword == "items" and isinstance(instance, list):
                for index, item in enumerate(instance):
                    yield from self._errors(item, value, (*path, index))
            elif (((keyword == "minItems" and isinstance(instance, list))
                   or (keyword == "minLength" and isinstance(instance, str))) and len(instance) < value):
                message = f"{instance!r} {'should be non-empty' if value == 1 else 'is too short'}"
            elif keyword == "maxLength" and isinstance(instance, str) and len(instance) > value:
                message = f"{instance!r} {'is expected to be empty' if value == 0 else 'is too long'}"
            elif keyword == "pattern" and isinstance(instance, str) and not self._pattern_test(value, instance):
                message = f"{instance!r} does not match {value!r}"
            elif keyword == "minimum" and _is_number(instance) and instance < value:
                message = f"{instance!r} is less than the minimum of {value!r}"
            elif keyword == "if" and "then" in schema and next(self._errors(instance, value, path), None) is None:
                # "then" is read here, as jsonschema reads it: it means nothing alone.
                yield from self._errors(instance, schema["then"], path)
            if message:
                yield SchemaViolation(message, keyword, value, instance, schema, path)

    def _object_errors(self, keyword: str, value: Any, instance: dict[str, Any], schema: Mapping[str, Any],
                       path: tuple[str | int, ...]) -> Iterator[SchemaViolation]:
        if keyword == "properties":
            for name, subschema in value.items():
                if name in instance:
                    yield from self._errors(instance[name], subschema, (*path, name))
        elif keyword == "required":
            for name in value:
                if name not in instance:
                    yield SchemaViolation(f"{name!r} is a required property", keyword, value, instance, schema, path)
        elif keyword == "additionalProperties":
            known = schema.get("properties", {})
            extras = [name for name in instance if name not in known]
            if isinstance(value, dict):
                for name in extras:
                    yield from self._errors(instance[name], value, (*path, name))
            elif value is False and extras:
                shown = ", ".join(repr(name) for name in sorted(extras, key=str))
                were = "was" if len(extras) == 1 else "were"
                yield SchemaViolation(f"Additional properties are not allowed ({shown} {were} unexpected)", keyword,
                                      value, instance, schema, path)
        else:  # propertyNames: each key, as a value at the object's own path
            for name in instance:
                yield from self._errors(name, value, path)
