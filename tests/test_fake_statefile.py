"""The fake's state file: the shipped JSON Schema is the one source of its rules, and every problem of a file is
reported at once, one per line, with file:line:column, never as a Python traceback."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from pytest_proton_sync.fake import FakeState, FakeStateError
from pytest_proton_sync.fake.statefile import MAX_STATE_BYTES, schema

ROOT = Path(__file__).resolve().parent.parent
REPO = {"name": "acme/t"}


def load(tmp_path: Path, text: str | bytes) -> FakeState:
    path = tmp_path / "state.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return FakeState.from_file(path)


def problems(tmp_path: Path, text: str | bytes) -> list[str]:
    """The error's lines, with the file's path taken out."""
    with pytest.raises(FakeStateError) as excinfo:
        load(tmp_path, text)
    lines = str(excinfo.value).splitlines()
    assert len(lines) == len(excinfo.value.problems)
    prefix = str(tmp_path / "state.yaml")
    assert all(line.startswith(prefix) for line in lines), lines
    return [line[len(prefix) :] for line in lines]


def test_every_problem_of_a_file_at_once_in_file_order(tmp_path: Path) -> None:
    text = """\
defaults:
  repository: {name: acme/t}
templates:
  - {name: a, type: NETWRK, version: 01}
  - name: b
    typo: SERVICE
    version: 1.5
service_instances:
  - {service: web, name: prod, blockers: [{id: b1, created_reason: x, status: DONE}]}
  - {service: web}
stacks:
  - {name: net, repository: {name: acme/net, provider: GitLab}, sequence: [{synced: abc1234, desird: abc}]}
faults: {throttle_rate: 1.5, slow_seconds: .inf, latency_ms: -1, seed: abc}
"""
    assert problems(tmp_path, text) == [
        ":4:21: templates[0].type: 'NETWRK' is not allowed; allowed: ENVIRONMENT, SERVICE",
        ':4:38: templates[0].version: 01 is not allowed; a major version such as "1" (a whole number, no leading '
        "zeros)",
        ":6:5: templates[1].typo: unknown key 'typo'; did you mean 'type'? allowed: name, type, version, synced, "
        "synced_at, latest, desired, deny, repository, sequence",
        ':7:14: templates[1].version: expected text or a whole number, got 1.5; YAML reads 1.5 as a number: quote it '
        '("1.5"); a major version such as "1" (a whole number, no leading zeros)',
        ":9:79: service_instances[0].blockers[0].status: 'DONE' is not allowed; allowed: ACTIVE, RESOLVED",
        ":10:5: service_instances[1].name: missing required key 'name'",
        ":12:94: stacks[0].sequence[0].desird: unknown key 'desird'; did you mean 'desired'? allowed: synced, "
        "synced_at, latest, desired, deny, repository, blockers",
        ":13:25: faults.throttle_rate: 1.5 is too large: the most allowed is 1; a fraction of requests, 0 to 1",
        ":13:44: faults.slow_seconds: .inf is not a finite number; give a number within the field's bounds",
        ":13:62: faults.latency_ms: -1 is too small: the least allowed is 0; milliseconds added to every answer, "
        "0 to 600000",
        ":13:72: faults.seed: expected a whole number, got 'abc'; a whole number; the same seed gives the same faults",
    ]


def test_problems_the_schema_cannot_see_are_reported_with_the_schema_ones(tmp_path: Path) -> None:
    text = """\
defaults: {repository: {provider: GitLab, name: acme/t}}
templates:
  - {name: a, type: SERVICE, version: 1, typo: 1}
  - {name: b, type: SERVICE, version: 1}
stacks:
  - {name: net, synced: abc1234, blockers: [{id: x, created_reason: y, created_at: 2026-13-01T00:00:00Z}]}
  - {name: net, repository: "acme/other"}
service_instances:
  - {service: web, name: prod, repository: acme/web, provider: GITHUB}
  - {service: web, name: dev, repository: {name: acme/web, provider: GITHUB}}
"""
    assert problems(tmp_path, text) == [
        ":3:42: templates[0].typo: unknown key 'typo'; did you mean 'type'? allowed: name, type, version, synced, "
        "synced_at, latest, desired, deny, repository, sequence",
        ":4:5: templates[1]: provider GitLab exists in CodeConnections only; Proton templates sync from GITHUB, "
        "GITHUB_ENTERPRISE, BITBUCKET",
        ":6:84: stacks[0].blockers[0].created_at: '2026-13-01T00:00:00Z' is not a real date and time: month must be "
        "in 1..12",
        ":7:5: stacks[1]: stack net is already defined at line 6; each resource may appear once",
        ":9:54: service_instances[0].provider: unknown key 'provider'; allowed: service, name, synced, synced_at, "
        "latest, desired, deny, repository, blockers, sequence",
    ]


def test_str_lists_every_problem_one_per_line_and_the_error_pickles(tmp_path: Path) -> None:
    with pytest.raises(FakeStateError) as excinfo:
        load(tmp_path, "templates: [{name: 'a b', type: X, version: -1}]\n")
    error = excinfo.value
    assert len(error.problems) == 3
    assert str(error).count("\n") == 2
    assert [problem.field for problem in error.problems] == ["templates[0].name", "templates[0].type",
                                                             "templates[0].version"]
    assert all(problem.line == 1 for problem in error.problems)
    assert error.source == str(tmp_path / "state.yaml")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_a_clear_error(tmp_path: Path, depth: int) -> None:
    text = "templates:\n  - name: " + "[" * depth + "]" * depth + "\n"
    (line,) = problems(tmp_path, text)
    assert re.fullmatch(r":2:\d+: (invalid YAML: )?nesting is deeper than 64 levels", line), line


def test_deep_python_data_is_a_clear_error() -> None:
    nested: Any = "x"
    for _ in range(10_000):
        nested = {"a": nested}
    with pytest.raises(FakeStateError) as excinfo:
        FakeState.from_mapping({"templates": [], "defaults": nested}, source="<deep>")
    assert "nesting is deeper than 64 levels" in str(excinfo.value)
    assert str(excinfo.value).startswith("<deep>: defaults.a.a.a")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN", "+.Inf"])
@pytest.mark.parametrize("field", ["throttle_rate", "slow_seconds", "latency_ms"])
def test_non_finite_numbers_are_refused(tmp_path: Path, field: str, value: str) -> None:
    (line,) = problems(tmp_path, f"templates: []\nfaults: {{{field}: {value}}}\n")
    assert line == f":2:{12 + len(field)}: faults.{field}: {value} is not a finite number; give a number within " \
                   "the field's bounds"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_python_numbers_are_refused(value: float) -> None:
    with pytest.raises(FakeStateError, match=r"faults\.slow_rate: .* is not a finite number"):
        FakeState.from_mapping({"templates": [], "faults": {"slow_rate": value}})


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ({"slow_seconds": 601}, "faults.slow_seconds: 601 is too large: the most allowed is 600"),
        ({"latency_ms": 600_001}, "faults.latency_ms: 600001 is too large: the most allowed is 600000"),
        ({"drop_rate": -0.1}, "faults.drop_rate: -0.1 is too small: the least allowed is 0"),
        ({"error_5xx_rate": True}, "faults.error_5xx_rate: expected a number, got boolean true"),
        ({"slow_rate": 0.5, "slow_seconds": 0}, "faults.slow_seconds: must be more than 0 when slow_rate is set"),
    ],
)
def test_fault_values_are_bounded(faults: dict[str, Any], message: str) -> None:
    with pytest.raises(FakeStateError) as excinfo:
        FakeState.from_mapping({"templates": [], "faults": faults}, source="<test>")
    assert str(excinfo.value) == f"<test>: {message}" or message in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"templates: []\n# \xff\xfe\n", ":2:3: the state file is not UTF-8: byte 0xff cannot be decoded"),
        ("templates: !!python/object:os.system []\n", ":1:12: templates: YAML tag '!!python/object:os.system' is not "
         "allowed: a state file holds plain text"),
        ("templates: []\ntemplates: []\n", ":2:1: templates: duplicate key 'templates' (first at line 1)"),
        ("templates: []\n---\ntemplates: []\n", ":2:1: a state file is a single YAML document"),
        ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
         "guard against 'billion laughs'"),
        ("templates:\n\t- x\n", ":2:1: invalid YAML"),
    ],
    ids=["not-utf8", "python-tag", "duplicate-key", "two-documents", "billion-laughs", "tab"],
)
def test_unsafe_or_broken_yaml_is_refused_with_a_location(tmp_path: Path, text: str | bytes, message: str) -> None:
    lines = problems(tmp_path, text)
    assert any(message in line for line in lines), lines


def test_an_oversized_state_file_is_refused_unread(tmp_path: Path) -> None:
    text = "templates: []\n" + "# padding\n" * (MAX_STATE_BYTES // 10 + 1)
    assert problems(tmp_path, text) == [": the state file is larger than 5 MiB"]


def test_python_mapping_problems_name_the_field_without_a_line() -> None:
    with pytest.raises(FakeStateError) as excinfo:
        FakeState.from_mapping({"templates": [{"name": "a", "type": "SERVICE", 1: 2}]}, source="<py>")
    assert str(excinfo.value).splitlines() == [
        "<py>: templates[0]: key 1 is not text; every key is text",
        "<py>: templates[0].version: missing required key 'version'",
    ]


# -- the schema is the one source ------------------------------------------------------------------------
def enum_of(name: str) -> list[str]:
    definitions: dict[str, Any] = schema()["$defs"]
    return list(definitions[name]["enum"]) if "enum" in definitions[name] else []


def test_schema_enums_are_the_apis_own() -> None:
    """The schema's enums are what botocore's models say the APIs answer, so a state cannot make the fake answer
    a value the real services never would."""
    definitions: dict[str, Any] = schema()["$defs"]
    proton = botocore.session.get_session().get_service_model("proton")
    connections = botocore.session.get_session().get_service_model("codeconnections")
    assert definitions["template"]["properties"]["type"]["enum"] == proton.shape_for("TemplateType").enum
    statuses = definitions["attempt"]["properties"]["status"]["enum"]
    assert set(statuses) == set(proton.shape_for("ResourceSyncStatus").enum)
    assert set(statuses) == set(connections.shape_for("ResourceSyncStatus").enum)
    blocker = definitions["blocker"]["properties"]
    for model in (proton, connections):
        assert set(blocker["type"]["enum"]) == set(model.shape_for("BlockerType").enum)
        assert set(blocker["status"]["enum"]) == set(model.shape_for("BlockerStatus").enum)
    providers = set(enum_of("provider"))
    assert set(proton.shape_for("RepositoryProvider").enum) <= providers
    assert set(connections.shape_for("ProviderType").enum) <= providers


def test_the_schema_is_valid_json_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    shipped = ROOT / "src" / "pytest_proton_sync" / "fake" / "state.schema.json"
    # The file names the AWS facts (x-aws-enum); their values come from botocore, never from the file.
    assert '"enum"' not in shipped.read_text()


def test_every_example_state_loads() -> None:
    examples = sorted((ROOT / "examples").glob("fake-*.yaml"))
    assert len(examples) >= 3
    for path in examples:
        FakeState.from_file(path)


def test_the_documented_complete_example_loads_and_has_every_section(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "fake-state.md").read_text()
    block = text.split("## The state file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    state = load(tmp_path, block)
    assert state.templates and state.service_instances and state.stacks
    assert any(snapshot.blockers for stack in state.stacks for snapshot in stack.snapshots)
    assert state.faults.throttle_rate > 0


def test_sequence_steps_replace_and_clear_fields(tmp_path: Path) -> None:
    state = load(tmp_path, """\
defaults: {repository: {name: acme/t}}
stacks:
  - name: s
    synced: aaaaaaa
    blockers: [{id: one, created_reason: first}]
    sequence:
      - {}
      - {synced: null, blockers: null, repository: {branch: other}}
      - {blockers: [{id: two, created_reason: second, status: RESOLVED}]}
""")
    (stack,) = state.stacks
    first, second, third = (stack.snapshot(step) for step in range(3))
    assert [b.id for b in first.blockers] == ["one"] and first.latest_successful is not None
    assert second.blockers == () and second.latest_successful is None and second.repository.branch == "other"
    assert [(b.id, b.status) for b in third.blockers] == [("two", "RESOLVED")]
    assert third.repository.branch == "main"
    assert stack.snapshot(99) == third
