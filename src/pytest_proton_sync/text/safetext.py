"""Text from the network is data: make it safe to print on a terminal, in a CI log and in JUnit.

An API answer (or an error message, or an HTML page a proxy sent instead of one) can carry terminal escape
sequences that repaint the screen, carriage returns that overwrite a line, Unicode line separators and bidi
overrides that make a line read differently from what it is, CI workflow commands (GitHub's ``::error ...``,
Azure's ``##vso[...]``, TeamCity's ``##teamcity[...]``), and megabytes of text. :func:`clean` turns any string into
one printable line of bounded length that says what it was: control characters become visible escapes
(``\\x1b``, ``\\n``, ``\\u202e``), workflow-command openers are broken with a visible escape, and the excess is
replaced by "... N more characters". Pure standard library: imports neither pytest nor boto3.
"""

from __future__ import annotations

import re

DEFAULT_LIMIT = 500
MAX_EVENTS = 20  # events of one sync attempt that are kept; the rest are counted


# C0 controls (newline and tab included: one value is one line), DEL, C1 controls, the Unicode line and paragraph
# separators, and every bidirectional formatting character (embeddings, overrides, isolates, marks), plus the
# zero-width characters and BOM that hide text.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Workflow commands: GitHub Actions reads "::name ...::" at the start of a (trimmed) line; Azure Pipelines and
# TeamCity read "##vso[" / "##[" / "##teamcity[" anywhere in a line.
_LEADING_COMMAND = re.compile(r"\A(\s*):")
_ANYWHERE_COMMAND = re.compile(r"#(?=#(?:vso\[|\[|teamcity\[))", re.IGNORECASE)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` as one safe printable line of at most ``limit`` characters of the original (escapes added).

    Ordinary text (printable, no workflow command) comes back unchanged. Anything not a string is shown with
    ``str()`` first. Truncation happens before escaping, so the work is bounded however long ``text`` is.
    """
    value = text if isinstance(text, str) else str(text)
    more = len(value) - limit
    if more > 0:
        value = value[:limit]
    value = _UNSAFE.sub(_escape, value)
    value = _LEADING_COMMAND.sub(lambda m: m.group(1) + "\\x3a", value)
    value = _ANYWHERE_COMMAND.sub("\\\\x23", value)
    if more > 0:
        value += f"... {more} more character{'s' if more != 1 else ''}"
    return value


def more(count: int, noun: str) -> str:
    """"... 99980 more events"."""
    return f"... {count} more {noun}{'s' if count != 1 else ''}"


def excerpt(data: bytes, limit: int = 120) -> str:
    """A short, safe, one-line excerpt of a raw body (decoded leniently) for error messages."""
    text = data[: limit * 4].decode("utf-8", errors="replace")
    shown = clean(text[:limit], limit)
    rest = len(data) - len(text[:limit].encode("utf-8", errors="replace"))
    if rest > 0:
        shown += f"... {rest} more bytes"
    return shown
