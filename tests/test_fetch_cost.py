"""What a target costs: each answer's body parsed once; a gate run's long-lived heap frozen, then released.

Against the bundled fake over real HTTP, with the plugin's own clients and fetcher (botocore's real parsing), and
real pytest sessions.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from pytest_proton_sync.aws.clients import FetchSettings
from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.fetch.clients import ClientPool
from pytest_proton_sync.fetch.fetcher import Fetcher
from pytest_proton_sync.kinds import TEMPLATE, make_target
from pytest_proton_sync.model import Expectation, RepositorySpec, Target

from .conftest import REPO, SHA_A, fake_state, write_manifest

pytestmark = pytest.mark.usefixtures("aws_env")


def a_target(name: str = "vpc") -> Target:
    fields = {"name": name, "type": "ENVIRONMENT", "version": "1"}
    return make_target(TEMPLATE, fields, Expectation(SHA_A, RepositorySpec(REPO["name"])), region="us-east-1")


def botocore_parsed(pool: ClientPool, target: Target) -> list[dict[str, Any]]:
    """What botocore's parser made of each answer of ``target``'s client (its ``after-call`` event)."""
    parsed: list[dict[str, Any]] = []
    client = pool.client(TEMPLATE.service, "us-east-1", target.account_spec)
    client.meta.events.register("after-call", lambda parsed=None, **kwargs: parsed_copy(parsed))

    def parsed_copy(answer: Any) -> None:
        parsed.append(dict(answer))

    return parsed


def test_a_200_answer_is_parsed_once_by_the_plugin_not_again_by_botocore(aws_env: FakeServer) -> None:
    aws_env.set_state(fake_state({"name": "vpc", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    settings = FetchSettings()
    pool = ClientPool(settings)
    target = a_target()
    parsed = botocore_parsed(pool, target)
    status, error, _ = Fetcher(settings, pool).ask(target)
    assert error is None and status is not None and status.found
    assert status.latest_successful is not None and status.latest_successful.target_revision.sha == SHA_A
    # botocore parsed an empty object: the answer's members exist only in the plugin's own, checked, parse.
    assert len(parsed) == 1 and set(parsed[0]) == {"ResponseMetadata"}, parsed


def test_botocore_debug_log_still_shows_the_real_body(aws_env: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    aws_env.set_state(fake_state({"name": "vpc", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    caplog.set_level(logging.DEBUG, logger="botocore.parsers")
    settings = FetchSettings()
    pool = ClientPool(settings)
    target = a_target()
    parsed = botocore_parsed(pool, target)
    status, error, _ = Fetcher(settings, pool).ask(target)
    assert error is None and status is not None and status.latest_successful is not None
    assert status.latest_successful.target_revision.sha == SHA_A
    # While botocore's parser logs bodies, it gets the real one, so that its log says what came back.
    assert "latestSuccessfulSync" in parsed[0]
    assert any(SHA_A in record.getMessage() for record in caplog.records if record.name == "botocore.parsers")


# -- the heap of a gate run ---------------------------------------------------------------------------------------
FREEZE_PROBE = '''
import gc

SEEN = []


def pytest_runtest_setup(item):
    SEEN.append(gc.get_freeze_count())


def pytest_unconfigure(config):
    with open("frozen.txt", "w") as out:
        out.write(" ".join(map(str, SEEN)))
'''


def frozen_during(pytester: pytest.Pytester, *args: str) -> list[int]:
    pytester.makeconftest(FREEZE_PROBE)
    result = pytester.runpytest(*args)
    assert result.ret == 0, result.stdout.str()
    return [int(word) for word in (pytester.path / "frozen.txt").read_text().split()]


def in_sync(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = [f"t{i:03d}" for i in range(count)]
    entries = [{"name": name, "type": "ENVIRONMENT", "version": "1", "sha": SHA_A} for name in names]
    return entries, [{"name": name, "type": "ENVIRONMENT", "version": 1, "synced": SHA_A} for name in names]


def test_a_gate_run_freezes_its_long_lived_heap_and_releases_it_at_the_end(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    entries, templates = in_sync(3)
    aws_env.set_state(fake_state(*templates))
    manifest = write_manifest(pytester.path, *entries)
    # Not 0 on every Python: CPython 3.12 starts with a few hundred objects frozen (the matrix's middle row).
    before = gc.get_freeze_count()
    frozen = frozen_during(pytester, "--proton-manifest", str(manifest), "-p", "no:randomly")
    assert len(frozen) == 3 and all(count > before for count in frozen), (before, frozen)
    assert gc.get_freeze_count() == 0  # released: this process (pytest run in-process) collects it as usual again


def test_a_run_with_tests_of_its_own_freezes_nothing(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, templates = in_sync(2)
    aws_env.set_state(fake_state(*templates))
    manifest = write_manifest(pytester.path, *entries)
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    # pytest's check for unraisable exceptions must see every object of the user's own tests.
    before = gc.get_freeze_count()
    frozen = frozen_during(pytester, "--proton-manifest", str(manifest), "test_own.py", "-p", "no:randomly")
    assert frozen == [before] * 3


STARTUP_PROBE = """
import gc


def pytest_sessionstart(session):
    with open("frozen_at_start.txt", "w") as out:
        out.write(str(gc.get_freeze_count()))
"""


@pytest.mark.parametrize("own_tests", [False, True], ids=["manifests-only", "with-own-tests"])
def test_a_run_of_manifests_only_is_frozen_from_configure(
    pytester: pytest.Pytester, aws_env: FakeServer, own_tests: bool
) -> None:
    """Before the gate's imports (their full collections would walk pytest's whole heap), and never when the user's
    own tests run too."""
    entries, templates = in_sync(2)
    aws_env.set_state(fake_state(*templates))
    manifest = write_manifest(pytester.path, *entries)
    pytester.makeconftest(STARTUP_PROBE)
    args = ["--proton-manifest", str(manifest), "-p", "no:randomly"]
    if own_tests:
        pytester.makepyfile(test_own="def test_own():\n    pass\n")
        args.append("test_own.py")
    before = gc.get_freeze_count()
    pytester.runpytest(*args).assert_outcomes(passed=3 if own_tests else 2)
    at_start = int((pytester.path / "frozen_at_start.txt").read_text())
    assert (at_start > before) is not own_tests, (before, at_start)
    assert gc.get_freeze_count() == before  # released at the end either way


MODULES_PROBE = """
import sys


def pytest_unconfigure(config):
    heavy = ("boto3", "s3transfer", "multiprocessing", "jsonschema")
    with open("modules.txt", "w") as out:
        out.write(" ".join(name for name in heavy if name in sys.modules))
"""


def test_a_gate_run_without_accounts_imports_neither_boto3_nor_jsonschema(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    """Its clients come from botocore's session and its manifest is checked by yamlcheck/subset.py: boto3's import
    (s3transfer, multiprocessing) and jsonschema's were about a tenth of a 500-target run."""
    entries, templates = in_sync(2)
    aws_env.set_state(fake_state(*templates))
    manifest = write_manifest(pytester.path, *entries)
    pytester.makeconftest(MODULES_PROBE)
    result = pytester.runpytest_subprocess("--proton-manifest", str(manifest), "-p", "no:randomly",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "modules.txt").read_text() == ""


def test_every_target_carries_the_proton_sync_marker(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, templates = in_sync(2)
    aws_env.set_state(fake_state(*templates))
    manifest = write_manifest(pytester.path, *entries)
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    selected = pytester.runpytest("--proton-manifest", str(manifest), "test_own.py", "-m", "proton_sync")
    selected.assert_outcomes(passed=2, deselected=1)
    others = pytester.runpytest("--proton-manifest", str(manifest), "test_own.py", "-m", "not proton_sync")
    others.assert_outcomes(passed=1, deselected=2)
