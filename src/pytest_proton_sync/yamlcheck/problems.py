"""One problem type for every file the package validates (manifests, the fake's state file): where, what, and
one error carrying them all, ordered and capped the same way, decoded from bytes the same way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

MAX_PROBLEMS_PER_FILE = 200

#: Where a value sits in a document: ("templates", 1, "sha").
FieldPath: TypeAlias = tuple[str | int, ...]

_E = TypeVar("_E", bound="ProblemsError")


@dataclass(frozen=True)
class Problem:
    """One mistake in a file, located as precisely as the source allows."""

    file: str  # the path as given/displayed
    line: int | None  # 1-based; None for whole-file problems and for data built in Python
    column: int | None  # 1-based
    field: str  # "templates[1].sha", "defaults.repository.provider"; "" for the whole file
    message: str  # what is wrong and what is allowed

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return ": ".join(part for part in (where, self.field, self.message) if part)


class ProblemsError(Exception):
    """Every problem of the file(s) read; ``str()`` gives one problem per line."""

    problems: tuple[Problem, ...]

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __reduce__(self: _E) -> tuple[type[_E], tuple[tuple[Problem, ...]]]:
        # Exceptions pickle their args by default, which here is the rendered text; xdist workers need
        # the problems themselves.
        return (type(self), (self.problems,))


def ordered(problems: Iterable[Problem], limit: int = MAX_PROBLEMS_PER_FILE) -> list[Problem]:
    """Sorted by position (whole-file problems first), repeats dropped, at most ``limit`` and a count of the rest."""
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
    if len(unique) > limit:
        hidden = len(unique) - limit
        unique = unique[:limit]
        unique.append(Problem(unique[0].file, None, None, "", f"... and {hidden} more problems not shown"))
    return unique


def decode_utf8(data: bytes, display: str, what: str) -> str | Problem:
    """The file's text, or the problem saying where it is not UTF-8. ``what``: "the manifest", "the state file".

    A BOM some Windows editors write is harmless, so it is accepted and dropped (utf-8-sig)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start
        before = data[:offset]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        return Problem(display, line, column, "", f"{what} is not UTF-8: byte 0x{data[offset]:02x} at offset {offset} "
                                                  f"cannot be decoded{hint}; save the file as UTF-8")


def format_path(path: FieldPath) -> str:
    """``("templates", 1, "sha")`` -> ``templates[1].sha``: the form users see in messages."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum() and part.isascii():
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text
