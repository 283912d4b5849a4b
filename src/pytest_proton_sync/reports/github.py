"""GitHub Actions output: ``::error`` workflow commands and the Markdown step summary, as plain text.

Pure formatting (no pytest, no boto3, no I/O): the session decides when (``GITHUB_ACTIONS=true``) and where
(stdout, ``$GITHUB_STEP_SUMMARY``) to write it.

Text from the API (event messages, names) is untrusted: it could carry a newline followed by ``::set-env`` or
``::add-mask``. Every message and property goes through the workflow-command escaping (``%``, CR and LF in the
message; also ``:`` and ``,`` in properties), so each annotation stays one line that starts with our ``::error``;
Markdown cells are escaped so that no text from the API becomes markup, a link or HTML.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# GitHub shows at most 10 error annotations per step (and 50 per job); more are dropped without a word.
MAX_ANNOTATIONS = 10
# Rows of the step summary's table of targets that did not pass; the rest are counted.
MAX_SUMMARY_ROWS = 50
# Characters of one annotation message: the first lines of the failure text say what and why.
MAX_MESSAGE = 4000


def escape_data(text: str) -> str:
    """The message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def defuse(text: str) -> str:
    """``text`` for a CI log: a line that starts (after blanks) with ``::`` would be a workflow command to the
    runner, so it gets a backslash before the ``::``; a carriage return shows as ``\\r``. Applied to every
    failure and error text of a target, since those quote the API's event messages."""
    if "::" not in text and "\r" not in text:
        return text
    lines = text.replace("\r", "\\r").split("\n")
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "\\" + line.lstrip() if line.lstrip().startswith("::") else line
        for line in lines
    )


def escape_property(text: str) -> str:
    """A property value (``file=``, ``title=``) of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class Problem:
    """One target that did not pass, as annotations and the summary need it."""

    target: str  # the target's id, "ENVIRONMENT/vpc-env@1"
    outcome: str  # "failed" or "error"
    manifest: str  # the manifest path as the user gave it
    manifest_path: str  # absolute
    line: int  # 1-based; 0 when unknown
    text: str  # the failure or error text


def workspace_relative(path: str, workspace: str | None) -> str:
    """``path`` relative to the workspace (what GitHub needs to place an annotation), else as given."""
    if not workspace:
        return path
    try:
        relative = os.path.relpath(path, workspace)
    except ValueError:  # another drive on Windows
        return path
    return path if relative == ".." or relative.startswith(".." + os.sep) else relative.replace(os.sep, "/")


def annotation(problem: Problem, workspace: str | None) -> str:
    word = "not synced" if problem.outcome == "failed" else "could not be checked"
    title = f"proton-sync: {problem.target} {word}"
    properties = [f"file={escape_property(workspace_relative(problem.manifest_path, workspace))}"]
    if problem.line > 0:
        properties.append(f"line={problem.line}")
    properties.append(f"title={escape_property(title)}")
    message = problem.text if len(problem.text) <= MAX_MESSAGE else problem.text[:MAX_MESSAGE] + "\n[...]"
    return f"::error {','.join(properties)}::{escape_data(message)}"


def annotation_lines(problems: Sequence[Problem], workspace: str | None, limit: int = MAX_ANNOTATIONS) -> list[str]:
    """One ``::error`` line per problem, at most ``limit``; then one ``::warning`` saying how many were left out
    (a warning, so that it is not itself dropped by GitHub's limit on errors)."""
    lines = [annotation(problem, workspace) for problem in problems[:limit]]
    more = len(problems) - limit
    if more > 0:
        noun = "target" if more == 1 else "targets"
        message = (f"{more} more {noun} did not pass (GitHub shows {limit} error annotations per step): "
                   "see the job summary or the test log")
        lines.append(f"::warning title={escape_property('proton-sync: more targets did not pass')}::"
                     f"{escape_data(message)}")
    return lines


_MARKDOWN_SPECIAL = str.maketrans({
    # Backslash-escaped: markup, tables, and what would autolink (``https:``, ``www.``) or mention (``@``).
    **{c: "\\" + c for c in "\\`*_{}[]()#+!|~>@:."},
    "<": "&lt;", "&": "&amp;", "\n": " ", "\r": " ",
})


def markdown_text(text: str) -> str:
    """Text shown as itself in a Markdown table cell: no markup, links, HTML or line breaks."""
    return text.translate(_MARKDOWN_SPECIAL)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def step_summary(counts: Mapping[str, int], problems: Sequence[Problem], *, total: int,
                 limit: int = MAX_SUMMARY_ROWS) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``: outcome counts, then the targets that did not pass."""
    tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    noun = "target" if total == 1 else "targets"
    verdict = "all passed" if not problems and total else "did not pass" if problems else "nothing checked"
    lines = [f"### proton-sync: {verdict}", "", f"{total} {noun}: {tally or 'none'}", ""]
    if problems:
        lines += ["| target | outcome | manifest | why |", "| --- | --- | --- | --- |"]
        for problem in problems[:limit]:
            where = f"{problem.manifest}:{problem.line}" if problem.line else problem.manifest
            why = _why(problem.text)
            lines.append(f"| {markdown_text(problem.target)} | {problem.outcome} | {markdown_text(where)} | "
                         f"{markdown_text(why)} |")
        more = len(problems) - limit
        if more > 0:
            lines += ["", f"... and {more} more that did not pass: see the test log."]
        lines.append("")
    return "\n".join(lines) + "\n"


def _why(text: str) -> str:
    """The one line of a failure text that says why: the first mismatch, else the error's line, else the head."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("mismatch:"):
            return line[len("mismatch:"):].strip()
    if len(lines) > 1 and " could not be checked" in lines[0]:
        return f"{lines[0].split(' could not be checked: ', 1)[-1]}: {lines[1]}"
    return lines[0] if lines else ""
