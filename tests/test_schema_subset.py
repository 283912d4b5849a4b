"""The manifest's run-time validator (yamlcheck/subset.py) against jsonschema, the reference it replaces at run time.

Both validate the same documents with the same schema: the manifests the tests and examples ship (good and bad),
every one of them broken in the ways people break YAML, and values of every JSON type put anywhere. They must give
the same errors: the same keyword, at the same path, with the same message, in the same order at each path (the
manifest's messages keep the first error of a value, so the order decides what a user reads).
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_proton_sync.manifest.schema import _schema_validator, manifest_schema
from pytest_proton_sync.yamlcheck.schema import LONGEST_PATTERN_INPUT, ecma_pattern, validator_for
from pytest_proton_sync.yamlcheck.subset import SubsetValidator, UnsupportedSchema, equal
from pytest_proton_sync.yamlcheck.yamlnodes import read_document
from tests.test_manifest_fuzz import KEYS, VALUES, draw_place

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted([*ROOT.joinpath("tests", "manifests").rglob("*.yaml"), *ROOT.joinpath("examples").glob("*.yaml")])
RICH = yaml.safe_load(
    """\
version: 1
defaults:
  region: us-east-1
  repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}
  account: prod
  match: content
accounts:
  prod: {role_arn: "arn:aws:iam::123456789012:role/gate", external_id: abc}
  dev: {profile: dev}
templates:
  - {name: vpc-env, type: ENVIRONMENT, version: 1, sha: 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39}
service_instances:
  - {service: web-svc, name: prod, sha: 7c1e4b2, repository: acme/web-svc}
stacks:
  - {name: network, rev: HEAD, config_file: deploy/network.yaml, account: dev,
     repository: {provider: GitHub, name: acme/infra}}
"""
)
# The edges of the two validators' own rules: JSON's booleans against numbers, integral floats, NaN, huge numbers,
# text just over the pattern limit, a line break where ECMA-262's $ would stop.
EDGES = [True, False, 0, 1, 1.0, 2.5, -1, 10**40, math.nan, math.inf, "", "1", "1\n", "x" * (LONGEST_PATTERN_INPUT + 1),
         "3f2a9c1\n", [], {}, [1], {"": None}, None]  # fmt: skip
CHECKS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference() -> Any:
    return validator_for(manifest_schema(), {"pattern": ecma_pattern()})


def by_path(errors: Any) -> dict[tuple[Any, ...], list[tuple[str, str]]]:
    """(keyword, message) of each error, in the order given, per path."""
    grouped: dict[tuple[Any, ...], list[tuple[str, str]]] = defaultdict(list)
    for error in errors:
        grouped[tuple(error.absolute_path)].append((str(error.validator), error.message))
    return dict(grouped)


def assert_same_verdict(value: Any) -> None:
    expected = by_path(reference().iter_errors(value))
    assert by_path(_schema_validator().iter_errors(value)) == expected
    assert (next(_schema_validator().iter_errors(value), None) is None) == (not expected)


def test_every_shipped_manifest_gets_the_same_errors() -> None:
    checked = 0
    for path in SHIPPED:
        document = read_document(path.read_bytes().decode("utf-8", errors="replace"))
        if document.complete and not document.empty:
            assert_same_verdict(document.value)
            checked += 1
    assert checked >= 40  # the bad manifests' schema errors are among them


def test_the_rich_manifest_is_valid_for_both() -> None:
    assert not list(reference().iter_errors(RICH))
    assert next(_schema_validator().iter_errors(RICH), None) is None


@st.composite
def broken(draw: st.DrawFn) -> Any:
    """The rich manifest after a few structural mutations (see test_manifest_fuzz), or any JSON value put at any
    place in it."""
    document = copy.deepcopy(RICH)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        place = draw_place(draw, document)
        if place is None:
            return draw(st.one_of(VALUES, st.sampled_from(EDGES)))
        parent, last = place
        operation = draw(st.sampled_from(["delete", "retype", "edge", "rename", "append"]))
        if operation == "delete":
            del parent[last]
        elif operation == "retype":
            parent[last] = draw(VALUES)
        elif operation == "edge":
            parent[last] = copy.deepcopy(draw(st.sampled_from(EDGES)))
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from([*KEYS, "accounts", "stacks", "rev", "match", "account"]))] = parent.pop(last)
        elif operation == "append" and isinstance(parent[last], list):
            parent[last].append(draw(st.one_of(VALUES, st.sampled_from(EDGES))))
    return document


@CHECKS
@given(broken())
def test_broken_manifests_get_the_same_errors(document: Any) -> None:
    assert_same_verdict(document)


@pytest.mark.parametrize("edge", EDGES, ids=repr)
@pytest.mark.parametrize("field", ["version", "sha", "region", "name", "type", "provider", "templates", "accounts"])
def test_edge_values_get_the_same_errors(field: str, edge: Any) -> None:
    document = copy.deepcopy(RICH)
    holder: dict[str, Any] = {
        "version": document, "region": document["defaults"], "provider": document["defaults"]["repository"],
        "templates": document, "accounts": document,
    }.get(field, document["templates"][0])
    holder[field] = edge
    assert_same_verdict(document)


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}]},
        {"properties": {"a": {"$ref": "#/$defs/a"}}},
        {"properties": {"a": True}},
        {"items": {"uniqueItems": True}},
        {"if": {"type": "string"}, "then": {"format": "email"}},
    ],
    ids=["oneOf", "ref-left-in", "boolean-subschema", "nested-uniqueItems", "then-format"],
)
def test_a_schema_beyond_the_subset_is_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchema):
        SubsetValidator(schema, lambda pattern, text: True)


@pytest.mark.parametrize(
    ("one", "two", "same"),
    [(1, True, False), (0, False, False), (1, 1.0, True), ("1", 1, False), ([1, {"a": True}], [1, {"a": True}], True),
     ([1], [True], False), ({"a": 1}, {"a": 1, "b": 2}, False), (None, None, True)],
)
def test_enum_equality_is_json_equality(one: Any, two: Any, same: bool) -> None:
    assert equal(one, two) is same
    assert equal(two, one) is same


def test_a_run_that_validates_a_manifest_does_not_import_jsonschema(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(RICH), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntemplates:\n  - {name: x, type: NOPE, version: 1, sha: zz}\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from pytest_proton_sync.manifest.loader import ManifestError, load_manifest\n"
        f"load_manifest({str(good)!r})\n"
        "try:\n"
        f"    load_manifest({str(bad)!r})\n"
        "except ManifestError as error:\n"
        "    print(len(error.problems))\n"
        "print('jsonschema' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["2", "False"]
