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
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import pytest

PROPERTY_FAMILIES = ("xunit1", "legacy")  # pytest's families that allow <properties> in <testcase>


def family(config: pytest.Config) -> str:
    """pytest's ``junit_family`` ini value; "" when pytest's junitxml plugin is disabled."""
    try:
        return str(config.getini("junit_family") or "xunit2")
    except ValueError:  # -p no:junitxml: the ini value is not even declared
        return ""


def per_target_properties(config: pytest.Config) -> bool:
    return family(config) in PROPERTY_FAMILIES


def classname(facts: Mapping[str, Any]) -> str:
    """``proton_sync.<manifest stem>.<TYPE>``; dots inside the parts become "_" so they split nowhere else."""
    stem = PurePath(str(facts.get("manifest") or "manifest")).stem or "manifest"
    kind = str(facts.get("id") or "").split("/", 1)[0] or str(facts.get("kind") or "target").upper()
    return ".".join(["proton_sync", *(re.sub(r"[.\s]+", "_", part) for part in (stem, kind))])


def junit_writer(config: pytest.Config) -> Any | None:
    """pytest's JUnit writer in this process (None without ``--junitxml``, and in xdist workers).

    It is what the ``record_testsuite_property`` and ``record_xml_attribute`` fixtures write to; pytest registers
    it as an unnamed plugin. Found by the two methods those fixtures call, so no ``_pytest`` import is needed."""
    for plugin in config.pluginmanager.get_plugins():
        if callable(getattr(plugin, "add_global_property", None)) and callable(getattr(plugin, "node_reporter", None)):
            return plugin
    return None


def set_classname(writer: Any, report: pytest.TestReport, name: str) -> None:
    """Before pytest's writer sees ``report``: the testcase's classname (kept by every family)."""
    writer.node_reporter(report).add_attribute("classname", name)


def add_suite_properties(writer: Any, properties: Mapping[str, str]) -> None:
    for name, value in properties.items():
        writer.add_global_property(name, value)
