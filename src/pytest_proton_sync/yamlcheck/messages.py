"""Words shared by the messages about YAML files (the manifest and the fake's state file): "did you mean", a value
quoted short, what a value is. Pure standard library, imported by modules that must stay cheap to import."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from pytest_proton_sync.text.safetext import clean


def closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice a typo most likely meant, for "did you mean": same letters in another case first (the first
    spelling listed wins), then difflib. A long word is no typo of a short key, and difflib's cost grows with it."""
    if len(word) > 100:
        return None
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    # A known key with more written after it ("revision" for rev, "names" for name): the key it starts with,
    # the longest if several, before any spelling that merely looks alike ("region").
    prefixes = [choice for choice in choices if len(choice) >= 3 and word.lower().startswith(choice.lower())]
    if prefixes:
        return max(prefixes, key=len)
    lowered: dict[str, str] = {}
    for choice in choices:
        lowered.setdefault(choice.lower(), choice)
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def show_text(text: str) -> str:
    """A value quoted for a message, short enough for one line (safetext.clean, quoted)."""
    return clean(text, 60, quoted=True)


def describe_value(value: object) -> str:
    """What a walked value is, for "expected X, got ..." messages: a list, a mapping, text '...'."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "nothing (null)"
    return f"text {show_text(str(value))}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 error``, ``2 errors``, ``3 sync-status calls``; ``many`` for an irregular plural."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def tally(counts: dict[str, int]) -> str:
    """Outcome counts as a person says them: "1 error, 2 failed, 3 passed" (sorted by outcome; "error" is a noun
    and takes a plural, "failed" and "passed" are not)."""
    return ", ".join(plural(count, outcome) if outcome == "error" else f"{count} {outcome}"
                     for outcome, count in sorted(counts.items()))
