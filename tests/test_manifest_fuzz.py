"""Property tests: whatever the input, the loader answers with a Manifest or a ManifestError, nothing else.

Inputs start from a valid manifest and are broken in the ways people and tools break YAML: keys deleted,
duplicated, renamed or given values of the wrong type; characters inserted, deleted or replaced in the
source; random bytes. Any manifest that does load must consist of well-formed targets.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import botocore.session
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_proton_sync.manifest.loader import Manifest, ManifestError, parse_manifest

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID: dict[str, Any] = {
    "version": 1,
    "defaults": {
        "region": "us-east-1",
        "repository": {"provider": "GITHUB", "name": "acme/platform-templates", "branch": "main", "directory": "t"},
    },
    "templates": [
        {"name": "vpc-env", "type": "ENVIRONMENT", "version": "1", "sha": "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"},
        {"name": "eks-env", "type": "ENVIRONMENT", "version": 2, "sha": "3f2a9c1"},
        {
            "name": "web-svc",
            "type": "SERVICE",
            "version": 1,
            "sha": "${WEB_SVC_SHA:-7c1e4b2}",
            "repository": {"name": "acme/service-templates"},
            "region": "eu-west-1",
        },
        {"name": "batch-svc", "type": "SERVICE", "version": 3, "sha": "5d4c3b2", "repository": "acme/batch"},
    ],
}
VALID_SOURCE = yaml.safe_dump(VALID, sort_keys=False)
ENVIRON = {"WEB_SVC_SHA": "7c1e4b2a9d8f7e6c5b4a3928170f6e5d4c3b2a19", "EMPTY": ""}

# Real keys, near misses and oddities.
KEYS = ["version", "defaults", "templates", "region", "repository", "provider", "name", "branch", "directory",
        "type", "sha", "shaa", "Name", "<<", "", "templates "]  # fmt: skip
# Values that mean something to the loader (enums, versions, shas, interpolation, YAML 1.1 booleans) or to YAML.
SPECIAL_TEXT = ["ENVIRONMENT", "SERVICE", "GITHUB", "1", "1.2", "01", "3f2a9c1", "us-east-1", "a/b", "${X}",
                "${X:-3f2a9c1}", "$$", "${", "yes", "~", "", " ", "\n", "*a", "&a", "!tag", "0x1f"]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**50), max_value=10**50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_TEXT),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=8,
)
# Characters that carry meaning in YAML or in interpolation, plus some that do not.
EDIT_CHARACTERS = st.sampled_from(list(" \n\t:-?[]{},&*!|>'\"#%@`$\\~.0123456789abcdefxyzAZ_\x00\x85\ufeff\u2028é"))


def paths_in(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a mapping entry or list item in ``value``."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*path, key))
            found.extend(paths_in(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*path, index))
            found.extend(paths_in(item, (*path, index)))
    return found


def draw_place(draw: st.DrawFn, document: Any) -> tuple[Any, Any] | None:
    """A mapping entry or list item of ``document``, drawn: (the mapping or list, the key or index); None if none."""
    paths = paths_in(document)
    if not paths:
        return None
    path = draw(st.sampled_from(paths))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    return parent, path[-1]


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """A valid manifest after a few structural mutations, dumped back to YAML."""
    document = copy.deepcopy(VALID)
    duplicates: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        place = draw_place(draw, document)
        if place is None:
            break
        parent, last = place
        operation = draw(st.sampled_from(["delete", "retype", "rename", "duplicate", "append"]))
        if operation == "delete":
            del parent[last]
        elif operation == "retype":
            parent[last] = draw(VALUES)
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = parent.pop(last)
        elif operation == "duplicate" and isinstance(parent, dict):
            # A dict cannot hold a key twice; the duplicate is added to the YAML text instead.
            duplicates.append(f"{last}: {yaml.safe_dump(parent[last], default_flow_style=True).strip()}")
        elif operation == "append" and isinstance(parent[last], list):
            parent[last].append(copy.deepcopy(draw(st.sampled_from(VALID["templates"]))))
    source = yaml.safe_dump(document, sort_keys=False) if isinstance(document, dict) else ""
    return source + "".join(line + "\n" for line in duplicates if not line.startswith(("{", "[")))


def check(source: str | bytes) -> Manifest | None:
    """Parse; only ManifestError may escape, and then with at least one problem naming the file."""
    try:
        manifest = parse_manifest(source, "fuzz.yaml", ENVIRON)
    except ManifestError as error:
        assert error.problems
        assert all(problem.file == "fuzz.yaml" for problem in error.problems)
        assert all(problem.line is None or problem.line >= 1 for problem in error.problems)
        assert str(error)
        return None
    assert_well_formed(manifest)
    return manifest


SHA = re.compile(r"([0-9a-f]{7,40}|[0-9a-f]{64})")
NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")
VERSION = re.compile(r"0|[1-9][0-9]*")
# The oracle reads botocore's model itself, not the plugin's copy of it.
PROTON_MODEL_PROVIDERS = botocore.session.get_session().get_service_model("proton").shape_for("RepositoryProvider").enum
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
REPOSITORY = re.compile(r"[A-Za-z0-9_.-].*/[A-Za-z0-9_.-].*")


def assert_well_formed(manifest: Manifest) -> None:
    assert manifest.targets
    assert len({target.key for target in manifest.targets}) == len(manifest.targets)
    for target in manifest.targets:
        assert target.kind == "template"
        assert NAME.fullmatch(target.name)
        request = dict(target.request)
        assert request["templateType"] in ("ENVIRONMENT", "SERVICE")
        assert VERSION.fullmatch(request["templateVersion"])
        assert SHA.fullmatch(target.expectation.sha)
        assert target.region is None or REGION.fullmatch(target.region)
        repository = target.expectation.repository
        assert REPOSITORY.fullmatch(repository.name) and len(repository.name) <= 100
        assert repository.provider is None or repository.provider in PROTON_MODEL_PROVIDERS
        assert repository.branch is None or 1 <= len(repository.branch) <= 200
        assert repository.directory is None or 1 <= len(repository.directory) <= 4096
        assert target.line >= 1


def test_the_unmutated_manifest_is_valid() -> None:
    manifest = check(VALID_SOURCE)
    assert manifest is not None and len(manifest.targets) == 4


@FUZZ
@given(mutated_documents())
def test_structural_mutations(source: str) -> None:
    check(source)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.floats(0, 1), EDIT_CHARACTERS),
        min_size=1,
        max_size=6,
    )
)
def test_text_edits(edits: list[tuple[str, float, str]]) -> None:
    source = VALID_SOURCE
    for operation, where, character in edits:
        position = int(where * len(source))
        if operation == "insert":
            source = source[:position] + character + source[position:]
        elif operation == "delete":
            source = source[:position] + source[position + 1 :]
        else:
            source = source[:position] + character + source[position + 1 :]
    check(source)
    check(source.encode("utf-8", errors="surrogatepass"))


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(VALID_SOURCE.encode() + data)


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(text)


@FUZZ
@given(st.text(alphabet="${}:-_AXa9 ", max_size=30), st.dictionaries(st.sampled_from(["A", "X", "_"]), st.text()))
def test_interpolation_of_any_sha_text(sha: str, environ: dict[str, str]) -> None:
    source = yaml.safe_dump({**VALID, "templates": [{**VALID["templates"][0], "sha": sha}]})
    try:
        manifest = parse_manifest(source, "fuzz.yaml", environ)
    except ManifestError:
        return
    assert_well_formed(manifest)
