"""The manifest loader: valid manifests give exact Targets; every rule gives one precise problem.

Most rules are covered by the corpus in tests/manifests/bad: ``<case>.yaml`` with ``<case>.expected``, one
expected problem per line as an fnmatch pattern (only ``*`` and ``?`` are wildcards; ``[`` is literal, so
field paths such as ``templates[0].sha`` read as they print). The problems must match exactly, in order.
"""

from __future__ import annotations

import fnmatch
import pickle
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from pytest_proton_sync.kinds import BY_SECTION, TEMPLATE, make_entry
from pytest_proton_sync.manifest.loader import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    Problem,
    load_manifest,
    load_manifests,
    manifest_schema,
    parse_manifest,
)
from pytest_proton_sync.model import AccountSpec, Declared, Entry, RepositorySpec

CORPUS = Path(__file__).parent / "manifests"
EXAMPLE = Path(__file__).parent.parent / "examples" / "proton-sync.yaml"
BAD_CASES = sorted(path.stem for path in (CORPUS / "bad").glob("*.yaml"))
GOOD_CASES = sorted(path.name for path in (CORPUS / "good").glob("*.yaml"))
# The corpus's environment: EMPTY is set but empty; every other variable is unset.
CORPUS_ENVIRON = {"EMPTY": ""}

SHA = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"


def problems_of(source: str | bytes, environ: dict[str, str] | None = None) -> list[str]:
    """The rendered problems of ``source`` (as file m.yaml); fails the test if it is valid."""
    with pytest.raises(ManifestError) as caught:
        parse_manifest(source if isinstance(source, bytes) else textwrap.dedent(source), "m.yaml", environ or {})
    return [str(problem) for problem in caught.value.problems]


def targets_of(source: str, environ: dict[str, str] | None = None) -> tuple[Entry, ...]:
    return parse_manifest(textwrap.dedent(source), "m.yaml", environ or {}).targets


# --- the corpus ---------------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(BAD_CASES) >= 30
    assert len(GOOD_CASES) >= 3


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_manifest(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = (CORPUS / "bad" / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    monkeypatch.chdir(CORPUS / "bad")  # so that problems name the file as the .expected files do
    with pytest.raises(ManifestError) as caught:
        load_manifest(f"{case}.yaml", environ=CORPUS_ENVIRON)
    actual = [str(problem) for problem in caught.value.problems]
    assert len(actual) == len(expected), "\n".join(actual)
    for line, pattern in zip(actual, expected, strict=True):
        assert fnmatch.fnmatchcase(line, pattern.replace("[", "[[]")), f"{line!r}\ndoes not match\n{pattern!r}"
    assert str(caught.value) == "\n".join(actual)


@pytest.mark.parametrize("case", GOOD_CASES)
def test_good_manifest(case: str) -> None:
    manifest = load_manifest(CORPUS / "good" / case, environ={})
    assert manifest.path == CORPUS / "good" / case
    assert manifest.targets
    assert all(target.manifest == manifest.path and target.line > 0 for target in manifest.targets)


# --- valid manifests give exact targets ------------------------------------------------------------------


def test_example_manifest_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_SVC_SHA", raising=False)
    manifest = load_manifest(EXAMPLE)
    platform = RepositorySpec("acme/platform-templates", "GITHUB", "main", "templates")

    def expected(type_: str, name: str, version: str, sha: str, repository: RepositorySpec = platform) -> Entry:
        fields = {"name": name, "type": type_, "version": version}
        paths = (f"templates/{name}/v{version}/",)
        return make_entry(TEMPLATE, fields, Declared(repository, sha, paths=paths), region="us-east-1")

    assert manifest.targets == (
        expected("ENVIRONMENT", "vpc-env", "1", "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"),
        expected("ENVIRONMENT", "eks-env", "2", "3f2a9c1"),
        expected("SERVICE", "web-svc", "1", "7c1e4b2a9d8f7e6c5b4a3928170f6e5d4c3b2a19"),
        expected("SERVICE", "worker-svc", "3", "7c1e4b2a9d8f7e6c5b4a3928170f6e5d4c3b2a19"),
        expected(
            "SERVICE",
            "batch-svc",
            "1",
            "5d4c3b2a19f8e7d6c5b4a3928170f6e5d4c3b2a1",
            RepositorySpec("acme/service-templates", "GITHUB", "main", "templates"),
        ),
    )
    assert [target.id for target in manifest.targets] == [
        "ENVIRONMENT/vpc-env@1",
        "ENVIRONMENT/eks-env@2",
        "SERVICE/web-svc@1",
        "SERVICE/worker-svc@3",
        "SERVICE/batch-svc@1",
    ]
    source_lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for target in manifest.targets:
        assert target.manifest == EXAMPLE
        assert source_lines[target.line - 1].split("#")[0].strip() == f"- name: {target.name}"


def test_example_manifest_takes_sha_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_SVC_SHA", "ABCDEF0")  # environ defaults to os.environ
    worker = next(target for target in load_manifest(EXAMPLE).targets if target.name == "worker-svc")
    assert worker.expectation.sha == "abcdef0"


def test_minimal_manifest_gives_exact_target() -> None:
    (target,) = targets_of(
        """\
        version: 1
        templates:
          - name: vpc-env
            type: ENVIRONMENT
            version: 1
            sha: 3F2A9C1
            repository: acme/platform-templates
        """
    )
    assert target == Entry(
        kind="template",
        name="vpc-env",
        id="ENVIRONMENT/vpc-env@1",
        request=(("templateName", "vpc-env"), ("templateType", "ENVIRONMENT"), ("templateVersion", "1")),
        expectation=Declared(RepositorySpec("acme/platform-templates"), "3f2a9c1", paths=("vpc-env/v1/",)),
        keywords=("ENVIRONMENT", "vpc-env"),
        region=None,
    )
    assert (target.manifest, target.line) == (Path("m.yaml"), 3)


@pytest.mark.parametrize(
    ("written", "version"), [("1", "1"), ('"1"', "1"), ("'12'", "12"), ("0", "0"), ("3", "3"), ("100", "100")]
)
def test_major_version_is_text(written: str, version: str) -> None:
    (target,) = targets_of(
        f"version: 1\ntemplates: [{{name: a, type: SERVICE, version: {written}, sha: {SHA}, repository: a/b}}]\n"
    )
    assert dict(target.request)["templateVersion"] == version


@pytest.mark.parametrize(
    ("written", "sha"),
    [
        ("1234567", "1234567"),  # a YAML int
        ("0123456", "0123456"),  # a YAML 1.1 octal int
        ("0000000", "0000000"),
        ("1234567890123456789012345678901234567890", "1234567890123456789012345678901234567890"),
        ("12345_6", None),  # a YAML 1.1 int too, but its text is not hex
        ("ABCDEF1", "abcdef1"),
        ('"3F2A9C1D"', "3f2a9c1d"),
        ("a" * 64, "a" * 64),
    ],
)
def test_sha_keeps_the_text_written(written: str, sha: str | None) -> None:
    source = f"version: 1\ntemplates: [{{name: a, type: SERVICE, version: 1, sha: {written}, repository: a/b}}]\n"
    if sha is None:
        assert problems_of(source) == [
            f"m.yaml:2:55: templates[0].sha: '{written}' is not a hex commit sha; use 7 to 40 hex digits "
            "(a full commit sha or a prefix of it), or 64 for SHA-256 repositories"
        ]
    else:
        assert targets_of(source)[0].expectation.sha == sha


def test_entry_repository_merges_over_defaults() -> None:
    targets = targets_of(
        """\
        version: 1
        defaults:
          region: eu-west-1
          repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}
        templates:
          - {name: a, type: SERVICE, version: 1, sha: 7c1e4b2}
          - {name: b, type: SERVICE, version: 1, sha: 7c1e4b2, repository: acme/other}
          - {name: c, type: SERVICE, version: 1, sha: 7c1e4b2, repository: {branch: dev}, region: us-west-2}
          - {name: d, type: SERVICE, version: 1, sha: 7c1e4b2, repository: {provider: BITBUCKET, name: x/y}}
        """
    )
    assert [(target.expectation.repository, target.region) for target in targets] == [
        (RepositorySpec("acme/platform-templates", "GITHUB", "main", "templates"), "eu-west-1"),
        (RepositorySpec("acme/other", "GITHUB", "main", "templates"), "eu-west-1"),
        (RepositorySpec("acme/platform-templates", "GITHUB", "dev", "templates"), "us-west-2"),
        (RepositorySpec("x/y", "BITBUCKET", "main", "templates"), "eu-west-1"),
    ]


def test_defaults_repository_string_is_the_name_only() -> None:
    (target,) = targets_of(
        """\
        version: 1
        defaults: {repository: acme/platform-templates}
        templates: [{name: a, type: SERVICE, version: 1, sha: 7c1e4b2, repository: {branch: main}}]
        """
    )
    assert target.expectation.repository == RepositorySpec("acme/platform-templates", branch="main")
    assert target.region is None


def test_defaults_repository_without_name_needs_one_per_entry() -> None:
    source = """\
        version: 1
        defaults: {repository: {provider: GITHUB}}
        templates:
          - {name: a, type: SERVICE, version: 1, sha: 7c1e4b2, repository: acme/a}
          - {name: b, type: SERVICE, version: 1, sha: 7c1e4b2}
        """
    assert problems_of(source) == [
        "m.yaml:5:5: templates[1]: no repository name; give 'repository: owner/repo' here or 'name' under "
        "defaults.repository"
    ]


def test_same_name_in_other_region_or_version_is_another_target() -> None:
    targets = targets_of(
        """\
        version: 1
        defaults: {repository: a/b, region: us-east-1}
        templates:
          - {name: a, type: SERVICE, version: 1, sha: 7c1e4b2}
          - {name: a, type: SERVICE, version: 2, sha: 7c1e4b2}
          - {name: a, type: SERVICE, version: 1, sha: 7c1e4b2, region: eu-west-1}
          - {name: a, type: ENVIRONMENT, version: 1, sha: 7c1e4b2}
        """
    )
    assert len({target.key for target in targets}) == 4


def test_aliases_share_values() -> None:
    first, second = targets_of(
        """\
        version: 1
        templates:
          - {name: a, type: SERVICE, version: 1, sha: &sha 7c1e4b2, repository: &repo {name: a/b, branch: main}}
          - {name: b, type: SERVICE, version: 1, sha: *sha, repository: *repo}
        """
    )
    shared = Declared(RepositorySpec("a/b", branch="main"), "7c1e4b2")
    assert (first.expectation.sha, first.expectation.repository) == (shared.sha, shared.repository)
    assert (second.expectation.sha, second.expectation.repository) == (shared.sha, shared.repository)


def test_str_source_and_pathlike_path() -> None:
    source = "version: 1\ntemplates: [{name: a, type: SERVICE, version: 1, sha: 7c1e4b2, repository: a/b}]\n"
    manifest = parse_manifest(source, Path("dir") / "m.yaml", environ={})
    assert manifest == Manifest(Path("dir/m.yaml"), manifest.targets)
    assert manifest.targets[0].manifest == Path("dir/m.yaml")


# --- interpolation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "environ", "value"),
    [
        ("${VPC_SHA}", {"VPC_SHA": "3F2A9C1"}, "3f2a9c1"),
        ("${VPC_SHA:-7c1e4b2}", {}, "7c1e4b2"),
        ("${VPC_SHA:-7c1e4b2}", {"VPC_SHA": ""}, "7c1e4b2"),  # as in sh: empty counts as unset for :-
        ("${VPC_SHA:-7c1e4b2}", {"VPC_SHA": "abcdef0"}, "abcdef0"),
        ("3f2a${MIDDLE}c1", {"MIDDLE": "9"}, "3f2a9c1"),
        ("${A}${B}", {"A": "3f2a", "B": "9c1"}, "3f2a9c1"),
    ],
)
def test_interpolation_of_sha(written: str, environ: dict[str, str], value: str) -> None:
    source = f"version: 1\ntemplates: [{{name: a, type: SERVICE, version: 1, sha: '{written}', repository: a/b}}]\n"
    assert targets_of(source, environ)[0].expectation.sha == value


def test_interpolation_applies_to_every_string_value_and_nothing_else() -> None:
    (target,) = targets_of(
        """\
        version: 1
        defaults:
          region: ${REGION}
          repository: {name: "${OWNER}/templates", branch: "$$release-${TRAIN:-1}", directory: "a$b/$ {x}"}
        templates:
          - {name: a, type: SERVICE, version: 1, sha: 7c1e4b2}
        """,
        {"REGION": "eu-central-1", "OWNER": "acme", "b": "never read"},
    )
    assert target.region == "eu-central-1"
    assert target.expectation.repository == RepositorySpec("acme/templates", branch="$release-1", directory="a$b/$ {x}")


def test_interpolated_default_is_literal_text() -> None:
    source = "version: 1\ntemplates: [{name: a, type: SERVICE, version: 1, sha: '${A:-$${B}}', repository: a/b}]\n"
    # The default runs to the first "}" and is not expanded again: "$${B" stays, then "}" follows.
    assert problems_of(source) == [
        "m.yaml:2:55: templates[0].sha: '$${B}' is not a hex commit sha; use 7 to 40 hex digits (a full "
        "commit sha or a prefix of it), or 64 for SHA-256 repositories"
    ]


def test_keys_are_not_interpolated() -> None:
    assert problems_of("version: 1\n${KEY}: x\ntemplates: []\n", {"KEY": "defaults"})[0] == (
        "m.yaml:2:1: ['${KEY}']: unknown key '${KEY}'; allowed: version, defaults, accounts, templates, "
        "service_instances, stacks"
    )


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PPS_TEST_SHA", "7c1e4b2")
    source = "version: 1\ntemplates: [{name: a, type: SERVICE, version: 1, sha: '${PPS_TEST_SHA}', repository: a/b}]\n"
    assert parse_manifest(source, "m.yaml").targets[0].expectation.sha == "7c1e4b2"
    monkeypatch.delenv("PPS_TEST_SHA")
    with pytest.raises(ManifestError, match="environment variable PPS_TEST_SHA is not set"):
        parse_manifest(source, "m.yaml")


# --- problems, their text and their order ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (Problem("m.yaml", 3, 5, "templates[0].sha", "bad"), "m.yaml:3:5: templates[0].sha: bad"),
        (Problem("m.yaml", 3, None, "templates[0]", "bad"), "m.yaml:3: templates[0]: bad"),
        (Problem("m.yaml", 3, 5, "", "bad"), "m.yaml:3:5: bad"),
        (Problem("m.yaml", None, None, "", "bad"), "m.yaml: bad"),
        (Problem("m.yaml", None, None, "version", "bad"), "m.yaml: version: bad"),
    ],
)
def test_problem_text(problem: Problem, text: str) -> None:
    assert str(problem) == text


def test_all_problems_at_once_sorted_by_line() -> None:
    problems = problems_of(
        """\
        templates:
          - {name: b, type: SERVICE, version: 1, sha: nothex!}
          - {name: a, type: service, version: 1.5, sha: 7c1e4b2, repository: a/b}
        version: 3
        """
    )
    assert [problem.split(": ")[0] for problem in problems] == [
        "m.yaml:2:47",
        "m.yaml:3:21",
        "m.yaml:3:39",
        "m.yaml:4:10",
    ]


def test_manifest_error_survives_pickling() -> None:
    error = ManifestError([Problem("m.yaml", 1, 2, "version", "bad"), Problem("m.yaml", None, None, "", "worse")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == str(error) == "m.yaml:1:2: version: bad\nm.yaml: worse"


def test_problem_count_is_capped() -> None:
    entries = "".join(f"  - {{name: t{index}, type: SERVICE, version: 1, sha: bad}}\n" for index in range(300))
    problems = problems_of("version: 1\ndefaults: {repository: a/b}\ntemplates:\n" + entries)
    assert len(problems) == 201
    assert problems[-1] == "m.yaml: ... and 100 more problems not shown"


def test_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ManifestError) as caught:
        load_manifest(missing)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{missing}: cannot read the manifest: No such file or directory"
    ]
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest("nul\x00byte.yaml")


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{path}: the manifest is larger than 5 MiB; a manifest lists entries, it should be a few kilobytes"
    ]


def test_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    source = f"version: 1\ntemplates: !!python/object/apply:os.system ['touch {marker}']\n"
    assert problems_of(source) == [
        "m.yaml:2:12: templates: YAML tag '!!python/object/apply:os.system' is not allowed: a manifest holds "
        "plain text, lists and mappings only, and tags are never constructed or executed"
    ]
    assert not marker.exists()


def test_billion_laughs_is_refused() -> None:
    # 10**12 values if expanded; must be refused after a bounded amount of work.
    levels = "".join(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]\n" for n in range(1, 13))
    problems = problems_of("version: 1\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + levels + "templates: *l12\n")
    assert len(problems) == 1
    assert "billion laughs" in problems[0]


def test_long_string_aliased_many_times_is_refused() -> None:
    long_text = "x" * 100_000
    source = f"version: 1\na: &a {long_text}\nb: [" + ", ".join(["*a"] * 100) + "]\ntemplates: []\n"
    assert "billion laughs" in problems_of(source)[0]


def test_problems_of_the_file_name_a_deep_nesting_without_recursion_error() -> None:
    problems = problems_of("version: 1\ntemplates: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems == ["m.yaml:2:75: invalid YAML: nesting is deeper than 64 levels"]


# --- several manifests ----------------------------------------------------------------------------------


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_load_manifests_reports_every_problem_of_every_file(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        "good.yaml",
        "version: 1\ntemplates: [{name: a, type: SERVICE, version: 1, sha: 7c1e4b2, repository: a/b}]\n",
    )
    bad_one = write(
        tmp_path, "one.yaml", "version: 2\ntemplates: [{name: a, type: SERVICE, version: 1, sha: x, repository: a/b}]\n"
    )
    bad_two = write(tmp_path, "two.yaml", "")
    with pytest.raises(ManifestError) as caught:
        load_manifests([good, bad_one, bad_two, tmp_path / "missing.yaml"])
    assert [(problem.file, problem.line) for problem in caught.value.problems] == [
        (str(bad_one), 1),
        (str(bad_one), 2),
        (str(bad_two), None),
        (str(tmp_path / "missing.yaml"), None),
    ]


def test_load_manifests_flags_a_target_declared_in_two_files(tmp_path: Path) -> None:
    entry = "  - {name: vpc-env, type: ENVIRONMENT, version: 1, sha: 7c1e4b2, repository: a/b}\n"
    first = write(tmp_path, "first.yaml", "version: 1\ntemplates:\n" + entry)
    second = write(
        tmp_path,
        "second.yaml",
        "version: 1\ntemplates:\n  - {name: other, type: SERVICE, version: 1, sha: 7c1e4b2, repository: a/b}\n" + entry,
    )
    with pytest.raises(ManifestError) as caught:
        load_manifests([first, second])
    assert [str(problem) for problem in caught.value.problems] == [
        f"{second}:4: templates[1]: the same target ENVIRONMENT/vpc-env@1 is already declared in {first}:3; "
        "each target may appear in one manifest only"
    ]


def test_load_manifests_reads_a_file_given_twice_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        "version: 1\ntemplates: [{name: a, type: SERVICE, version: 1, sha: 7c1e4b2, repository: a/b}]\n",
    )
    monkeypatch.chdir(tmp_path)
    manifests = load_manifests([path, "m.yaml"])
    assert len(manifests) == 1


def test_load_manifests_same_name_in_other_region_is_fine(tmp_path: Path) -> None:
    source = (
        "version: 1\ndefaults: {{region: {region}, repository: a/b}}\n"
        "templates: [{{name: a, type: SERVICE, version: 1, sha: 7c1e4b2}}]\n"
    )
    east = write(tmp_path, "east.yaml", source.format(region="us-east-1"))
    west = write(tmp_path, "west.yaml", source.format(region="us-west-2"))
    assert [manifest.targets[0].region for manifest in load_manifests([east, west])] == ["us-east-1", "us-west-2"]


# --- the schema and the module --------------------------------------------------------------------------


def test_schema_ships_in_the_package_and_agrees_with_the_model() -> None:
    from jsonschema import Draft202012Validator

    shipped = resources.files("pytest_proton_sync").joinpath("manifest.schema.json").read_text("utf-8")
    assert '"x-aws-enum": "providers"' in shipped and '"AzureDevOps"' not in shipped  # named, not copied
    schema = manifest_schema()
    Draft202012Validator.check_schema(schema)
    # Every section is a kind, and every provider spelling a kind accepts is one the schema allows.
    assert {name for name, part in schema["properties"].items() if part.get("type") == "array"} == set(BY_SECTION)
    provider = schema["$defs"]["repository"]["properties"]["provider"]
    assert set(provider["enum"]) == {spelling for kind in BY_SECTION.values() for spelling in kind.providers}
    assert schema["$defs"]["template"]["required"] == ["name", "type", "version"]


def test_importing_the_module_is_cheap() -> None:
    code = (
        "import sys, pytest_proton_sync.manifest.loader\n"
        "heavy = sorted(m for m in ('pytest', 'boto3', 'botocore', 'yaml', 'jsonschema') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# --- every section is a kind ---------------------------------------------------------------------------------


def test_every_section_gives_targets_of_its_kind_with_defaults_applied_to_all() -> None:
    template, instance, stack = targets_of(
        """\
        version: 1
        defaults:
          region: eu-west-1
          repository: {name: acme/infra, provider: GITHUB, branch: main}
          rev: HEAD
        stacks:
          - {name: network, config_file: deploy/network.yaml, sha: 3F2A9C1}
        service_instances:
          - {service: web-svc, name: prod, spec: web-svc/prod/spec.yaml, region: us-east-1}
        templates:
          - {name: vpc-env, type: ENVIRONMENT, version: 2, match: exact}
        """
    )
    assert (template.id, instance.id, stack.id) == ("ENVIRONMENT/vpc-env@2", "SERVICE_INSTANCE/web-svc/prod",
                                                    "STACK/network")
    assert dict(instance.request) == {"serviceName": "web-svc", "serviceInstanceName": "prod"}
    assert dict(stack.request) == {"ResourceName": "network", "SyncType": "CFN_STACK_SYNC"}
    assert (template.region, instance.region, stack.region) == ("eu-west-1", "us-east-1", "eu-west-1")
    # The manifest's provider, in the spelling of each kind's API.
    assert template.expectation.repository.provider == "GITHUB"
    assert stack.expectation.repository.provider == "GitHub"
    # An entry's own sha wins over the defaults' rev; rev entries compare content unless told otherwise.
    assert (stack.expectation.sha, stack.expectation.rev, stack.expectation.match) == ("3f2a9c1", None, "exact")
    assert (instance.expectation.rev, instance.expectation.match) == ("HEAD", "content")
    assert (template.expectation.rev, template.expectation.match) == ("HEAD", "exact")
    assert template.expectation.paths == ("vpc-env/v2/",)
    assert instance.expectation.paths == ("web-svc/prod/spec.yaml",)
    assert stack.expectation.paths == ("deploy/network.yaml",)
    assert {"SERVICE_INSTANCE", "web-svc", "prod"} <= set(instance.keywords)


def test_accounts_give_targets_their_alias() -> None:
    (target,) = targets_of(
        """\
        version: 1
        accounts:
          prod: {role_arn: "arn:aws:iam::111111111111:role/proton-read", external_id: x1, session_name: gate}
        defaults: {account: prod, repository: acme/x, sha: 3f2a9c1}
        templates: [{name: vpc-env, type: ENVIRONMENT, version: 1}]
        """
    )
    assert target.account == "prod"
    assert target.key == ("template", "prod", "", "ENVIRONMENT/vpc-env@1")


def test_same_target_in_two_accounts_is_two_targets() -> None:
    first, second = targets_of(
        """\
        version: 1
        accounts: {prod: {profile: prod}, dev: {profile: dev}}
        defaults: {repository: acme/x, sha: 3f2a9c1}
        stacks: [{name: network, account: prod}, {name: network, account: dev}]
        """
    )
    assert first.key != second.key


def test_accounts_settings_reach_each_target() -> None:
    manifest = parse_manifest(
        textwrap.dedent("""
        version: 1
        accounts:
          prod: {role_arn: "arn:aws:iam::111111111111:role/proton-read", external_id: ext-1234,
                 session_name: gate, duration_seconds: 900, source_profile: ci}
          dev: {profile: dev}
        defaults: {account: prod, repository: acme/x, sha: 3f2a9c1}
        templates:
          - {name: a, type: ENVIRONMENT, version: "1"}
          - {name: b, type: ENVIRONMENT, version: "1", account: dev}
        """),
        "m.yaml",
    )
    prod = AccountSpec("prod", role_arn="arn:aws:iam::111111111111:role/proton-read", external_id="ext-1234",
                       session_name="gate", duration_seconds=900, source_profile="ci")
    assert manifest.accounts == {"prod": prod, "dev": AccountSpec("dev", profile="dev")}
    assert [t.account_spec for t in manifest.targets] == [prod, AccountSpec("dev", profile="dev")]
    assert "ext-1234" not in repr(manifest)  # the external id is a shared secret


def test_entries_without_account_have_no_account_settings() -> None:
    manifest = parse_manifest("version: 1\ntemplates: [{name: a, type: ENVIRONMENT, version: '1', "
                              "sha: 3f2a9c1, repository: acme/x}]\n", "m.yaml")
    assert manifest.accounts == {}
    assert manifest.targets[0].account_spec is None


def test_did_you_mean_prefers_the_key_a_typo_starts_with() -> None:
    from pytest_proton_sync.yamlcheck.messages import closest

    allowed = ["name", "type", "version", "sha", "rev", "match", "repository", "region", "account"]
    assert closest("revision", allowed) == "rev"  # not 'region', which merely looks alike
    assert closest("names", allowed) == "name"
    assert closest("shaa", allowed) == "sha"
    assert closest("regoin", allowed) == "region"
