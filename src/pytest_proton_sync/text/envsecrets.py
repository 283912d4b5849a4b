"""Values that come from the environment: which variables hold credentials, which of their values are masked in
every output (by :func:`pytest_proton_sync.text.redact.redact`, the one masking function), and how a manifest message
speaks of an interpolated value it must not print.

The rules, as documented in docs/manifest.md ("Environment variables") and the README:

- A variable holds a credential when it is one of :data:`CREDENTIAL_VARIABLES`, or when a word of its name (the
  parts between ``_``, ``-`` and ``.``) is or ends with TOKEN, SECRET, PASSWORD, PASSWD or KEY, in any case:
  ``MY_TOKEN``, ``GITHUB_TOKEN``, ``PGPASSWORD``, ``API_KEY``, ``apiKey``, ``AWS_ACCESS_KEY_ID``.
- Such a variable's value is masked wherever it appears, when it is at least :data:`MIN_MASKED_LENGTH` characters
  long: ``KEY=1`` must not turn every "1" of a report into a mask, and a value that short guards nothing.
  Surrounding blanks are ignored, and each line of a multi-line value (a PEM key) is masked too.
- An interpolated manifest value that fails a check is printed only when :func:`plainly_harmless`: see there.

Pure standard library: imports neither pytest nor boto3.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping

__all__ = [
    "CREDENTIAL_VARIABLES",
    "CREDENTIAL_WORDS",
    "MAX_SHOWN_LENGTH",
    "MIN_MASKED_LENGTH",
    "credential_values",
    "describe_withheld",
    "is_credential_name",
    "looks_like_credential",
    "mask_values",
    "plainly_harmless",
]

#: Variables that hold a credential whatever the rule on words says (the AWS SDKs' own).
CREDENTIAL_VARIABLES = frozenset({"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"})
#: A word of a variable's name that is, or ends with, one of these says that the variable holds a credential.
CREDENTIAL_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY")
#: Shorter values of credential variables are not masked: they would mask ordinary text ("1", "true", "prod").
MIN_MASKED_LENGTH = 8
#: Longer interpolated values are never printed in a manifest message, whatever they are.
MAX_SHOWN_LENGTH = 32

_NAME_WORDS = re.compile(r"[^A-Za-z0-9]+")
# Characters of names, versions, regions and paths; a value with anything else (blanks, quotes, $, !, ...) is
# not "plainly harmless".
_PLAIN = re.compile(r"[A-Za-z0-9._/:@+=,-]*\Z")
# Shapes of well-known credentials: AWS access key ids, GitHub and GitLab tokens, Slack tokens, OpenAI-style keys,
# JWTs, PEM blocks.
_CREDENTIAL_SHAPE = re.compile(
    r"(?:AKIA|ASIA)[A-Z0-9]{12,}|gh[opsur]_|github_pat_|glpat-|xox[abposr]-|sk-|eyJ[A-Za-z0-9_-]{8,}\.|-----BEGIN "
)


@functools.lru_cache(maxsize=4096)
def is_credential_name(name: str) -> bool:
    """Whether the variable ``name`` holds a credential (see the module's rules)."""
    if name.upper() in CREDENTIAL_VARIABLES:
        return True
    return any(
        word.upper().endswith(credential) for word in _NAME_WORDS.split(name) for credential in CREDENTIAL_WORDS
    )


def looks_like_credential(value: str) -> bool:
    """Whether ``value`` has the shape of a credential: a well-known token format, or 20 or more characters mixing
    upper case, lower case and digits (as random keys do; names and shas do not)."""
    if _CREDENTIAL_SHAPE.match(value.strip()):
        return True
    return (
        len(value) >= 20
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def credential_values(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The texts to mask for ``environ``, each with the variable it came from: the values of its credential
    variables at least MIN_MASKED_LENGTH long (stripped, and each line of a multi-line one), longest first so that
    no shorter one masks part of a longer one first. Two variables with one value: the first name in order."""
    # Names first, values only of credential variables: reading os.environ's values costs more than its names, and
    # redact() reads it on every call (a session may change it; a cached copy would miss that).
    return _credential_values(tuple(sorted(
        (name, value) for name in environ
        if is_credential_name(name) and len(value := environ[name]) >= MIN_MASKED_LENGTH
    )))


@functools.lru_cache(maxsize=16)
def _credential_values(variables: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for name, value in variables:
        for text in (value, *value.splitlines()):
            text = text.strip()
            if len(text) >= MIN_MASKED_LENGTH:
                found.setdefault(text, name)
    return tuple(sorted(found.items(), key=lambda pair: (-len(pair[0]), pair[0])))


def mask_values(text: str, values: Iterable[tuple[str, str]], mask: Callable[[str], str]) -> str:
    """``text`` with every occurrence of each value of ``values`` (value, variable name; longest first, as given)
    replaced by ``mask(name)``. A value found inside a mask is left alone, so that masking twice changes nothing."""
    for value, name in values:
        if value in text and value not in mask(name):
            text = text.replace(value, mask(name))
    return text


def plainly_harmless(value: str, variables: Collection[str], *, by_characters: bool) -> bool:
    """Whether a manifest message may print ``value``, interpolated from ``variables``, that failed a check.

    Only when every one of these holds: it failed by its length, its number or its choice among allowed words, not
    by its characters or its form (``by_characters``: a short password fails a sha's pattern too); no variable it
    came from holds a credential; it is at most MAX_SHOWN_LENGTH characters of letters, digits and ``._/:@+=,-``;
    and it does not look like a credential."""
    return (
        not by_characters
        and not any(is_credential_name(name) for name in variables)
        and len(value) <= MAX_SHOWN_LENGTH
        and _PLAIN.match(value) is not None
        and not looks_like_credential(value)
    )


def describe_withheld(value: str, variables: Collection[str]) -> str:
    """What a message says instead of a value it withholds: its length and whether it looks like a credential."""
    words = [f"{len(value)} character{'' if len(value) == 1 else 's'}"]
    if looks_like_credential(value):
        words[0] += " that look like a credential"
    if any(is_credential_name(name) for name in variables):
        words.append("from a credential's variable")
    return ", ".join(words) + "; not shown"
