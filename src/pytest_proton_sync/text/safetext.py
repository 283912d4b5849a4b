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
import unicodedata

DEFAULT_LIMIT = 500
MAX_EVENTS = 20  # events of one sync attempt that are kept; the rest are counted


# Which characters are escaped: every control (C0, DEL, C1: newline and tab included, so one value is one line),
# format character (bidi embeddings, overrides, isolates and marks, zero-width characters, the BOM, soft hyphen,
# tag characters) and surrogate, and the Unicode line and paragraph separators. Letters, symbols and spaces of any
# script are text: a value from an API (a branch with an emoji newer than this Python) must stay comparable as it is.
# Quoted text is escaped by repr(), which escapes these and more (every space but " ").
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Runs of white space, line breaks and separators included, for text whose line breaks are only layout.
_SPACES = re.compile(r"[\s\u2028\u2029\x85]+")
# Workflow commands: GitHub Actions reads "::name ...::" at the start of a (trimmed) line; Azure Pipelines and
# TeamCity read "##vso[" / "##[" / "##teamcity[" anywhere in a line.
_LEADING_COMMAND = re.compile(r"\A(\s*):")
_ANYWHERE_COMMAND = re.compile(r"#(?=#(?:vso\[|\[|teamcity\[))", re.IGNORECASE)


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def clean(text: object, limit: int = DEFAULT_LIMIT, *, quoted: bool = False, fold_spaces: bool = False) -> str:
    """``text`` as one safe printable line: the one sanitiser of text the plugin did not write (API answers, pages,
    git's output, manifest values, a client's request in the fake's log).

    Unquoted, at most ``limit`` characters of the original, then "... N more characters". Ordinary text
    (printable, no workflow command) comes back unchanged. ``quoted``: as ``repr()`` quotes it (a value in a
    message), at most ``limit`` characters inside the quotes, a cut one ending in "...". ``fold_spaces``: runs of
    white space and line breaks become one space first (git's messages, a page's words), instead of ``\\n``.
    Anything not a string is shown with ``str()`` first. The cut comes before escaping: the escaping is bounded
    however long ``text`` is.
    """
    value = text if isinstance(text, str) else str(text)
    if fold_spaces:
        value = _SPACES.sub(" ", value)
    if quoted:
        value = repr(value if len(value) <= limit else value[: max(0, limit - 3)] + "...")
        return _ANYWHERE_COMMAND.sub("\\\\x23", value)
    more = len(value) - limit
    if more > 0:
        value = value[:limit]
    if not value.isprintable():  # the common case needs no look at each character: isprintable() is stricter
        value = "".join(_escape(char) if unicodedata.category(char) in _ESCAPED_CATEGORIES else char for char in value)
    # Each pattern needs its character: most values (names, shas, states) have neither, and two regex passes cost
    # more than the rest of an answer's checks.
    if ":" in value:
        value = _LEADING_COMMAND.sub(lambda m: m.group(1) + "\\x3a", value)
    if "#" in value:
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
