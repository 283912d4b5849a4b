"""The contenders: the plugin and the hand-written gates it is measured against, as the commands that run them.

Four commands, each run in a work directory that ``prepare_workdir`` fills with ``manifest.yaml`` and the
hand-written scripts below: the plugin (``pytest --proton-manifest``), a sequential parametrized pytest file,
a 32-thread boto3 loop, and the pytest floor (N no-op tests, no network; a reference, not a gate).
``IDLE_TEST`` and ``MODULE_PROBE`` are the files the idle-overhead measurements run without any manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fakesetup import Entry, write_manifest
from runner import WITHOUT_PLUGIN

THREAD_LOOP_WORKERS = 32
HEAVY_MODULES = ("boto3", "botocore", "yaml", "jsonschema")

# --- the hand-written alternatives, as a person would write them ---------------------------------------------

SEQUENTIAL_TEST = '''\
"""One test per manifest entry, one call after another: the obvious hand-written gate."""

from pathlib import Path

import boto3
import pytest
import yaml

MANIFEST = yaml.safe_load((Path(__file__).parent / "manifest.yaml").read_text())
CLIENT = boto3.client("proton")


@pytest.mark.parametrize(
    "entry", MANIFEST["templates"], ids=[f"{e['type']}/{e['name']}@{e['version']}" for e in MANIFEST["templates"]]
)
def test_synced(entry):
    response = CLIENT.get_template_sync_status(
        templateName=entry["name"], templateType=entry["type"], templateVersion=str(entry["version"])
    )
    assert response["latestSuccessfulSync"]["targetRevision"]["sha"] == entry["sha"]
'''

def thread_loop_script(retries: str | None = None) -> str:
    """The 32-thread loop; ``retries``: botocore's ``retries`` config as Python source (None: its defaults)."""
    config = f"max_pool_connections={THREAD_LOOP_WORKERS}"
    if retries is not None:
        config += f", retries={retries}"
    return f'''\
"""Every manifest entry checked by {THREAD_LOOP_WORKERS} threads sharing one client: the fast hand-written gate."""

import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.config
import yaml

with open(sys.argv[1]) as handle:
    MANIFEST = yaml.safe_load(handle)
CLIENT = boto3.client("proton", config=botocore.config.Config({config}))


def synced(entry):
    response = CLIENT.get_template_sync_status(
        templateName=entry["name"], templateType=entry["type"], templateVersion=str(entry["version"])
    )
    return response["latestSuccessfulSync"]["targetRevision"]["sha"] == entry["sha"]


with ThreadPoolExecutor({THREAD_LOOP_WORKERS}) as pool:
    results = list(pool.map(synced, MANIFEST["templates"]))
failed = results.count(False)
print(f"{{len(results) - failed}} in sync, {{failed}} not")
sys.exit(1 if failed else 0)
'''


THREAD_LOOP = thread_loop_script()
# What a careful user would write against a quota: botocore's client-side rate limiter and 10 attempts.
ADAPTIVE_RETRIES = '{"mode": "adaptive", "max_attempts": 10}'
ADAPTIVE_LOOP = thread_loop_script(ADAPTIVE_RETRIES)

# Not a gate: N no-op tests and no network. What "one pytest test per entry" costs before any API call.
FLOOR_TEST = """\
import pytest


@pytest.mark.parametrize("index", range({count}))
def test_nothing(index):
    pass
"""

IDLE_TEST = "def test_x():\n    pass\n"

MODULE_PROBE = f"""\
import sys

HEAVY = {HEAVY_MODULES!r}


def pytest_unconfigure(config):
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
    ours = sorted(name for name in sys.modules if name.startswith("pytest_proton_sync"))
    print("PROBE heavy=" + ",".join(sorted({{name.split(".")[0] for name in loaded}})), file=sys.stderr)
    print("PROBE ours=" + ",".join(ours), file=sys.stderr)
"""


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    command: list[str]  # run in the work directory that holds manifest.yaml and the hand-written scripts


def contenders(python: str) -> list[Contender]:
    return [
        Contender(
            "plugin",
            "plugin",
            [python, "-m", "pytest", "--proton-manifest", "manifest.yaml", "-q", "-p", "no:cacheprovider"],
        ),
        Contender(
            "sequential",
            "sequential pytest",
            [python, "-m", "pytest", "test_sequential.py", "-q", "-p", "no:cacheprovider", "-p", WITHOUT_PLUGIN],
        ),
        Contender("loop", f"{THREAD_LOOP_WORKERS}-thread loop", [python, "thread_loop.py", "manifest.yaml"]),
        Contender(
            "adaptive",
            f"{THREAD_LOOP_WORKERS}-thread loop, adaptive",
            [python, "thread_loop_adaptive.py", "manifest.yaml"],
        ),
        Contender(
            "floor",
            "pytest floor",
            [python, "-m", "pytest", "test_floor.py", "-q", "-p", "no:cacheprovider", "-p", WITHOUT_PLUGIN],
        ),
    ]


def prepare_workdir(work: Path, entries: Sequence[Entry]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    write_manifest(work / "manifest.yaml", entries)
    (work / "test_sequential.py").write_text(SEQUENTIAL_TEST, encoding="utf-8")
    (work / "thread_loop.py").write_text(THREAD_LOOP, encoding="utf-8")
    (work / "thread_loop_adaptive.py").write_text(ADAPTIVE_LOOP, encoding="utf-8")
    (work / "test_floor.py").write_text(FLOOR_TEST.format(count=len(entries)), encoding="utf-8")
