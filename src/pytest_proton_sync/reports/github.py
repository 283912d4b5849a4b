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
from typing import Protocol

from pytest_proton_sync.yamlcheck.messages import plural, tally

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


class Located(Protocol):
    """A manifest problem as the manifest reader gives it (``manifest.Problem``): where, which field, what."""

    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> int | None: ...
    @property
    def field(self) -> str: ...
    @property
    def message(self) -> str: ...


def manifest_annotation(problem: Located, workspace: str | None) -> str:
    """``::error file=…,line=…,col=…`` for one manifest problem: GitHub shows it on that line of the diff."""
    properties = [f"file={escape_property(workspace_relative(os.path.abspath(problem.file), workspace))}"]
    if problem.line:
        properties.append(f"line={problem.line}")
        if problem.column:
            properties.append(f"col={problem.column}")
    properties.append(f"title={escape_property('proton-sync: invalid manifest')}")
    message = f"{problem.field}: {problem.message}" if problem.field else problem.message
    return f"::error {','.join(properties)}::{escape_data(message)}"


def manifest_annotation_lines(problems: Sequence[Located], workspace: str | None,
                              limit: int = MAX_ANNOTATIONS) -> list[str]:
    lines = [manifest_annotation(problem, workspace) for problem in problems[:limit]]
    more = len(problems) - limit
    if more > 0:
        message = (f"{plural(more, 'more manifest problem')} (GitHub shows {limit} error annotations per step): "
                   "see the job summary or the log")
        lines.append(f"::warning title={escape_property('proton-sync: more manifest problems')}::"
                     f"{escape_data(message)}")
    return lines


def manifest_summary(problems: Sequence[Located], limit: int = MAX_SUMMARY_ROWS) -> str:
    """The Markdown section listing manifest problems (nothing was asked of AWS)."""
    files = len({problem.file for problem in problems})
    lines = ["### proton-sync: invalid manifest", "",
             f"{plural(len(problems), 'problem')} in {plural(files, 'manifest')}; nothing was asked of AWS.", "",
             "| where | field | problem |", "| --- | --- | --- |"]
    for problem in problems[:limit]:
        where = problem.file + (f":{problem.line}" if problem.line else "") + (
            f":{problem.column}" if problem.line and problem.column else "")
        lines.append(f"| {markdown_text(where)} | {markdown_text(problem.field or '-')} | "
                     f"{markdown_text(problem.message)} |")
    if len(problems) > limit:
        lines += ["", f"... and {len(problems) - limit} more: see the log."]
    return "\n".join(lines) + "\n\n"


def append_to_step_summary(path: str | None, text: str) -> str | None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY``; the problem as one line, else None."""
    if not path:
        return None
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as error:
        return f"cannot append to GITHUB_STEP_SUMMARY {path}: {error.strerror or error}"
    return None


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


@dataclass(frozen=True)
class SummaryRow:
    """One target in the step summary: what happened, what the sync says now, and what to do next."""

    target: str
    outcome: str  # passed | failed | error | skipped
    manifest: str  # as the user gave it
    manifest_path: str  # absolute
    line: int
    latest: str  # SUCCEEDED | IN_PROGRESS | FAILED | blocked | an error code | NOT_FOUND ...
    next_step: str  # wait | fix and push | resolve the blocker | fix the manifest ... ("" when passed)
    text: str  # the failure or error text ("" when passed)
    why: str = ""  # the one line that says why: the first mismatch, or the error and its first line


def source_link(path: str, line: int, workspace: str | None, environ: Mapping[str, str]) -> str | None:
    """The manifest line at the commit under test on GitHub (``/blob/<sha>/<path>#L<line>``), when the runner
    says where (GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA) and the file is inside the workspace."""
    from urllib.parse import quote

    server, repository, sha = (environ.get(name, "") for name in
                               ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA"))
    relative = workspace_relative(path, workspace) if workspace else ""
    if not (server and repository and sha and relative) or relative.startswith("/") or relative.startswith(".."):
        return None
    if not server.startswith(("https://", "http://")) or any(c in server + repository + sha for c in " ()<>\n"):
        return None
    anchor = f"#L{line}" if line > 0 else ""
    return f"{server.rstrip('/')}/{quote(repository)}/blob/{quote(sha)}/{quote(relative)}{anchor}"


def step_summary(counts: Mapping[str, int], rows: Sequence[SummaryRow], *, total: int,
                 workspace: str | None = None, environ: Mapping[str, str] | None = None,
                 limit: int = MAX_SUMMARY_ROWS) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``: counts first, then every target that did not pass with
    its latest sync status, the next step and a link to its manifest line; passed targets folded under
    ``<details>``."""
    environ = os.environ if environ is None else environ
    problems = [row for row in rows if row.outcome in ("failed", "error")]
    others = [row for row in rows if row.outcome not in ("failed", "error")]
    noun = "target" if total == 1 else "targets"
    verdict = "all passed" if not problems and total else "did not pass" if problems else "nothing checked"
    lines = [f"### proton-sync: {verdict}", "", f"**{total} {noun}: {tally(dict(counts)) or 'none'}**", ""]
    heading = "| target | outcome | latest sync | next step | manifest | why |\n| --- | --- | --- | --- | --- | --- |"
    if problems:
        lines.append(heading)
        lines += [_summary_row(row, workspace, environ, why=row.why or first_line(row.text))
                  for row in problems[:limit]]
        more = len(problems) - limit
        if more > 0:
            lines += ["", f"... and {more} more that did not pass: see the test log."]
        lines.append("")
    if others:
        shown = others[:limit]
        lines += ["<details>", f"<summary>{tally(_count(others))}</summary>", "",
                  "| target | outcome | latest sync | manifest |", "| --- | --- | --- | --- |"]
        lines += [_summary_row(row, workspace, environ) for row in shown]
        if len(others) > limit:
            lines += ["", f"... and {len(others) - limit} more."]
        lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def _count(rows: Sequence[SummaryRow]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for row in rows:
        counted[row.outcome] = counted.get(row.outcome, 0) + 1
    return counted


def _summary_row(row: SummaryRow, workspace: str | None, environ: Mapping[str, str], why: str | None = None) -> str:
    where = f"{row.manifest}:{row.line}" if row.line else row.manifest
    link = source_link(row.manifest_path, row.line, workspace, environ)
    manifest = f"[{markdown_text(where)}]({link})" if link else markdown_text(where)
    cells = [markdown_text(row.target), row.outcome, markdown_text(row.latest or "-")]
    if why is not None:
        cells.append(markdown_text(row.next_step or "-"))
    cells.append(manifest)
    if why is not None:
        cells.append(markdown_text(why))
    return "| " + " | ".join(cells) + " |"
