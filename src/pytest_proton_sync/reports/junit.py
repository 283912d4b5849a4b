"""The plugin's part of pytest's JUnit XML (``--junitxml``): valid against Jenkins' junit-10.xsd.

- **classname** ``proton_sync.<manifest stem>.<TYPE>`` (``proton_sync.proton-sync.ENVIRONMENT``): Jenkins and
  GitLab split a classname at its dots into package and class, so results group by manifest, then by type.
  pytest's own would be ``proton-sync.yaml`` (package ``proton-sync``, class ``yaml``).
- **per-target properties** (``proton.target``, ``proton.expected_sha``, ...) only in the ``xunit1``/``legacy``
  families, the ones pytest writes ``record_property`` for without a warning. In pytest's default family,
  ``xunit2``, junit-10.xsd allows no ``<properties>`` inside ``<testcase>`` (pytest warns when
  ``record_property`` is used there), so the plugin writes none: the same facts are in the failure text and in
  the JSON report (``--proton-report``).
- **run-level facts** as suite properties (``<testsuite><properties>``, valid in every family): the manifests,
  the region, the number of sync-status calls, the plugin's version.

pytest exposes suite properties and per-test attributes only as fixtures (``record_testsuite_property``,
``record_xml_attribute``), which a plugin's own items cannot request. :func:`junit_writer` is the one place that
reaches pytest's JUnit writer; it does so the way those fixtures do, by the writer's public method names, found
among the registered plugins rather than through a ``_pytest`` import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import pytest

from pytest_proton_sync.reports.facts import TargetFacts

PROPERTY_FAMILIES = ("xunit1", "legacy")  # pytest's families that allow <properties> in <testcase>


def family(config: pytest.Config) -> str:
    """pytest's ``junit_family`` ini value; "" when pytest's junitxml plugin is disabled."""
    try:
        return str(config.getini("junit_family") or "xunit2")
    except ValueError:  # -p no:junitxml: the ini value is not even declared
        return ""


def per_target_properties(config: pytest.Config) -> bool:
    return family(config) in PROPERTY_FAMILIES


def classname(facts: TargetFacts) -> str:
    """``proton_sync.<manifest stem>.<TYPE>``; dots inside the parts become "_" so they split nowhere else."""
    stem = PurePath(facts.manifest or "manifest").stem or "manifest"
    return ".".join(["proton_sync", *(re.sub(r"[.\s]+", "_", part) for part in (stem, facts.type or "target"))])


def junit_writer(config: pytest.Config) -> Any | None:
    """pytest's JUnit writer in this process (None without ``--junitxml``, and in xdist workers).

    It is what the ``record_testsuite_property`` and ``record_xml_attribute`` fixtures write to; pytest registers
    it as an unnamed plugin. Found by the two methods those fixtures call, so no ``_pytest`` import is needed."""
    for plugin in config.pluginmanager.get_plugins():
        if callable(getattr(plugin, "add_global_property", None)) and callable(getattr(plugin, "node_reporter", None)):
            return plugin
    return None


def set_classname(writer: Any, report: pytest.TestReport, name: str) -> Any:
    """Before pytest's writer sees ``report``: the testcase's classname (kept by every family). Returns the
    writer's testcase object (for :func:`order_testcases`)."""
    testcase = writer.node_reporter(report)
    testcase.add_attribute("classname", name)
    return testcase


# Characters of the message's reason and next step: what Jenkins' "Error Message" column and junit2html's summary
# row show. pytest cuts a message attribute at 500 characters; this stays well inside.
REASON_BUDGET = 200
NEXT_BUDGET = 240


def short_message(facts: TargetFacts, text: str) -> str:
    """The failure's ``message`` attribute: the headline, the first reason and the next step, on one line each.
    From the facts (the verdict's reasons and hints, or the error), so it never depends on how the text wraps."""
    lines = [line for line in text.splitlines() if line.strip()]
    headline = lines[0] if lines else facts.id
    reason, step = facts.reason, facts.step
    parts = [headline]
    # "has never synced successfully" is the headline already; "the template has never ..." says it again.
    said = reason.split(" ", 2)[-1] if reason.startswith("the ") else reason
    if reason and said not in headline:
        parts.append(_cut(reason, REASON_BUDGET))
    if step:
        parts.append("next: " + _cut(step, NEXT_BUDGET))
    return "\n".join(parts)


def _cut(text: str, budget: int) -> str:
    return text if len(text) <= budget else text[: budget - 3] + "..."


class ShortMessage:
    """A failure's report body (``str()``: the whole text, kept as the JUnit element text and the terminal's) with
    a short ``reprcrash.message``, which pytest's JUnit writer puts in the ``message`` attribute. Duck-typed the
    way pytest reads a longrepr (``toterminal``, ``reprcrash``), no ``_pytest`` import; pytest-xdist sends such a
    body as its text, so the controller wraps it again."""

    def __init__(self, text: str, message: str) -> None:
        self.text = text
        self.reprcrash = _Crash(message)

    def __str__(self) -> str:
        return self.text

    def toterminal(self, out: Any) -> None:
        for line in self.text.splitlines():
            out.line(line)


class _Crash:
    def __init__(self, message: str) -> None:
        self.message = message
        self.path = ""
        self.lineno = 0


def order_testcases(writer: Any, nodeids: Sequence[str], nodeid_of: Mapping[int, str]) -> None:
    """Put the targets' testcases in manifest order (``nodeids``), as every other output lists them: under
    pytest-xdist the writer keeps them in the order reports arrived. Other tests keep their places; the targets
    fill the places targets held. ``nodeid_of`` maps ``id()`` of each testcase object :func:`set_classname`
    returned to its node id (the writer empties finished testcases). The writer's list of testcases
    (``node_reporters_ordered``) is what it writes from; if a pytest ever lacks it, the order is left as it is."""
    testcases = getattr(writer, "node_reporters_ordered", None)
    if not isinstance(testcases, list):
        return
    rank = {nodeid: index for index, nodeid in enumerate(nodeids)}
    places = [index for index, testcase in enumerate(testcases) if nodeid_of.get(id(testcase)) in rank]
    ours = sorted((testcases[index] for index in places), key=lambda testcase: rank[nodeid_of[id(testcase)]])
    for index, testcase in zip(places, ours, strict=True):
        testcases[index] = testcase


def add_suite_properties(writer: Any, properties: Mapping[str, str]) -> None:
    for name, value in properties.items():
        writer.add_global_property(name, value)
