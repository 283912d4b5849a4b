"""What a finished run writes besides pytest's own output: the summary table, JUnit suite properties, the JSON
report, GitHub annotations and step summary. Each reads the same ordered :class:`~.results.TargetResult` list.

The session calls these from its hooks and stays thin; the formatting itself lives in table.py,
github.py (workflow commands, Markdown) and jsonreport.py (the document). No pytest import: ``config`` is only
asked for a plugin by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_proton_sync import __version__
from pytest_proton_sync.reports import github
from pytest_proton_sync.reports.jsonreport import build_report
from pytest_proton_sync.reports.results import NOT_PASSED, TargetResult, counts
from pytest_proton_sync.reports.table import format_table
from pytest_proton_sync.text.redact import redact, redact_strings

# A fleet of 2,000 needs no 2,000 lines: passed rows are listed only for small runs, or with -v.
LIST_PASSED_UP_TO = 50


def summary_lines(results: Sequence[TargetResult], show_passed: bool) -> list[str]:
    if not results:
        return []
    return format_table([result.row() for result in results], show_passed=show_passed
                        or len(results) <= LIST_PASSED_UP_TO)


def suite_properties(manifests: Sequence[Path], results: Sequence[TargetResult],
                     api_calls: int | None) -> dict[str, str]:
    """Run-level facts for ``<testsuite><properties>`` (valid in every JUnit family)."""
    regions = sorted({region for result in results if (region := result.facts.asked_region or result.facts.region)})
    properties = {
        "proton.manifests": ", ".join(str(path) for path in manifests),
        "proton.region": ", ".join(regions) or "-",
        "proton.targets": str(len(results)),
        "proton.plugin_version": __version__,
    }
    if api_calls is not None:
        properties["proton.sync_status_calls"] = str(api_calls)
    return properties


def write_json_report(path: Path, *, started_at: datetime, manifests: Sequence[Path], api_calls: int | None,
                      exit_status: int, results: Sequence[TargetResult],
                      coverage: Mapping[str, Any] | None = None) -> str | None:
    """Write the JSON report; the problem as one line if it cannot be written, else None."""
    document = build_report(
        tool_version=__version__,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc),
        manifests=[str(manifest) for manifest in manifests],
        api_calls=api_calls,
        exit_status=exit_status,
        results=[result.as_dict() for result in results],
        coverage=coverage,
    )
    document = redact_strings(document)  # the facts are already; the texts and the rest too
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        return f"cannot write the JSON report {path}: {error.strerror or error}"
    return None


def problems(results: Sequence[TargetResult]) -> list[github.Problem]:
    return [
        github.Problem(  # redacted before github.py escapes them: the escaped form of a value would not match it
            target=result.id,
            outcome=result.final_outcome,
            manifest=result.facts.manifest,
            manifest_path=result.facts.manifest_path or result.facts.manifest,
            line=result.line,
            text=redact(result.text or f"{result.id}: {result.final_outcome}"),
        )
        for result in results
        if result.final_outcome in NOT_PASSED
    ]


def github_annotations(results: Sequence[TargetResult], workspace: str | None, errors_only: bool) -> list[str]:
    """Errors first (could not check: credentials, access, endpoint -- the run-wide problems, which a cap must not
    hide), then failures, each in manifest order."""
    found = [p for p in errors_first(problems(results)) if p.outcome == "error" or not errors_only]
    return github.annotation_lines(found, workspace)


def errors_first(found: Sequence[github.Problem]) -> list[github.Problem]:
    return sorted(found, key=lambda problem: problem.outcome != "error")  # stable: manifest order within each


def summary_rows(results: Sequence[TargetResult]) -> list[github.SummaryRow]:
    return [
        github.SummaryRow(
            target=result.id,
            outcome=result.final_outcome,
            manifest=result.facts.manifest,
            manifest_path=result.facts.manifest_path or result.facts.manifest,
            line=result.line,
            latest=result.facts.latest_sync,
            next_step=result.next_step,
            text=result.text or (f"{result.id}: {result.final_outcome}" if result.final_outcome in NOT_PASSED
                                 else ""),
            why=result.facts.why,
        )
        for result in results
    ]


def append_step_summary(path: str | None, results: Sequence[TargetResult],
                        manifest_problems: Sequence[github.Located] = (), workspace: str | None = None) -> str | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY``: the manifest problems if any (nothing was asked),
    then the targets (unless none was checked because of them). The problem as one line, else None."""
    if not path:
        return None
    text = github.manifest_summary(manifest_problems) if manifest_problems else ""
    if results or not manifest_problems:
        rows = summary_rows(results)
        ordered = sorted(rows, key=lambda row: row.outcome != "error")  # errors first, stable: manifest order
        text += github.step_summary(counts(list(results)), ordered, total=len(results), workspace=workspace)
    return github.append_to_step_summary(path, text)


def other_annotator_active(config: Any) -> bool:
    """Whether pytest-github-actions-annotate-failures is installed and active in this process: it annotates
    failed calls itself (not errors in setup), so the plugin then annotates errors only."""
    manager = config.pluginmanager
    module = manager.get_plugin("pytest_github_actions_annotate_failures")
    if module is None:
        return False
    # 0.3 and later register an "annotate_errors" object (controller side only); 0.2 annotates from the module's
    # own pytest_runtest_makereport.
    return bool(manager.hasplugin("annotate_errors") or hasattr(module, "pytest_runtest_makereport"))
