"""Every command-line option and ini value of the plugin, its default, and the checks on it: the one place they live.

:data:`OPTIONS` declares each option once; the pytest layer registers them from it (help texts render the
defaults from here) and :func:`read_options` turns command line + ini into one validated, frozen :class:`Options`.
A bad value is an :class:`OptionError` with one line naming the flag, the ini name and what is allowed, raised
before anything starts. Pure: imports neither pytest nor boto3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

# The AWS region pattern the manifest's schema uses too (manifest.schema.json, $defs/region).
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+\Z")


class OptionError(ValueError):
    """A bad option or ini value; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class OptionSpec:
    dest: str  # also the ini name
    kind: str  # "int", "float", "choice", "text", "region", "path"
    default: Any
    help: str
    metavar: str = ""
    minimum: float | None = None
    above_zero: bool = False  # the value must be > 0 (a rate, say), where ``minimum`` says >=
    choices: tuple[str, ...] = ()
    ini: bool = True  # also readable from the ini file

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    def help_text(self) -> str:
        if self.default is None:
            return self.help
        default = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
        return f"{self.help} (default {default})"


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("proton_region", "region", None, metavar="REGION",
               help="region for entries that name none (default: AWS_REGION, then boto3's chain)"),
    OptionSpec("proton_fake", "path", None, metavar="STATE", ini=False,
               help="start the bundled fake endpoint on 127.0.0.1 with this state file and point every client at "
               "it (no AWS credentials or calls)"),
    OptionSpec("proton_concurrency", "int", 32, metavar="N", minimum=1, help="targets asked at once"),
    OptionSpec("proton_wait", "float", 0.0, metavar="SECONDS", minimum=0,
               help="wait up to SECONDS for targets to sync; a failed sync of the expected commit fails at once "
               "(0: look once)"),
    OptionSpec("proton_poll_interval", "float", 10.0, metavar="SECONDS", minimum=0.01,
               help="seconds between polls while waiting, with jitter; doubles under throttling"),
    OptionSpec("proton_max_attempts", "int", 10, metavar="N", minimum=1,
               help="attempts per API call, retries included, within --proton-call-timeout"),
    OptionSpec("proton_call_timeout", "float", 30.0, metavar="SECONDS", minimum=0.001,
               help="deadline of one API call, whatever the bytes do: connect, read and retries"),
    OptionSpec("proton_retry_mode", "choice", "standard", metavar="MODE", choices=("standard", "adaptive"),
               help="botocore retry mode; botocore makes one attempt per call (the plugin retries), so 'adaptive' "
               "only adds botocore's client-side rate limiting"),
    OptionSpec("proton_connect_timeout", "float", 5.0, metavar="SECONDS", minimum=0.001, help="seconds to connect"),
    OptionSpec("proton_read_timeout", "float", 20.0, metavar="SECONDS", minimum=0.001,
               help="seconds to wait for an answer"),
    OptionSpec("proton_max_rps", "float", None, metavar="N", above_zero=True,
               help="client-side cap on requests per second per (account, region, service), retries "
                    "included (default: none)"),
    OptionSpec("proton_git_dir", "path", None, metavar="PATH",
               help="git checkout that `rev:` entries are resolved in (default: the work tree holding the "
               "manifest)"),
    OptionSpec("proton_report", "path", None, metavar="PATH",
               help="write a JSON report of the run to PATH (shape: report.schema.json in the package; ini: relative "
               "to the ini file's directory)"),
    OptionSpec("proton_coverage", "choice", "off", metavar="MODE", choices=("off", "warn", "fail"),
               help="after the checks, list the Git sync configurations of the manifest's repositories and name the "
               "stacks with no entry (ungated) or whose entry disagrees (drift): 'warn' reports them, 'fail' also "
               "fails the run; 'off' makes no list call"),
)

SPECS: dict[str, OptionSpec] = {spec.dest: spec for spec in OPTIONS}


@dataclass(frozen=True)
class Options:
    """The validated values of :data:`OPTIONS` (field names are their ``dest`` without ``proton_``)."""

    region: str | None
    fake: str | None
    concurrency: int
    wait: float
    poll_interval: float
    max_attempts: int
    call_timeout: float
    retry_mode: str
    connect_timeout: float
    read_timeout: float
    max_rps: float | None
    git_dir: str | None
    report: str | None
    coverage: str


def defaults() -> Options:
    """Every option at its default: what a run with no option and no ini value gets."""
    return Options(**{field.name: SPECS["proton_" + field.name].default for field in fields(Options)})


# (command-line value, ini value) of one option; None where not given.
Lookup = Callable[[OptionSpec], "tuple[object | None, object | None]"]


def read_options(lookup: Lookup) -> Options:
    """The command line's value of each option, else the ini file's, else the default; every value checked."""
    values: dict[str, Any] = {}
    for field in fields(Options):
        spec = SPECS["proton_" + field.name]
        given, ini = lookup(spec)
        raw = given if given is not None else (ini if spec.ini and ini not in (None, "") else None)
        values[field.name] = spec.default if raw is None else _checked(spec, raw)
    return Options(**values)


def _checked(spec: OptionSpec, raw: object) -> Any:
    where = f"{spec.flag} (ini {spec.dest})" if spec.ini else spec.flag
    if spec.kind in ("int", "float"):
        number_type: type[int] | type[float] = int if spec.kind == "int" else float
        try:
            number = number_type(str(raw).strip())
        except ValueError:
            whole = "whole " if spec.kind == "int" else ""
            raise OptionError(f"{where} takes a {whole}number, not {raw!r}") from None
        if number != number or number in (float("inf"), float("-inf")):  # NaN or infinite
            raise OptionError(f"{where} takes a finite number, not {raw!r}")
        if spec.above_zero and number <= 0:
            raise OptionError(f"{where} must be more than 0, not {raw!r}")
        if spec.minimum is not None and number < spec.minimum:
            raise OptionError(f"{where} must be at least {spec.minimum:g}, not {raw!r}")
        return number
    text = str(raw)
    if spec.kind == "choice" and text not in spec.choices:
        raise OptionError(f"{where} is one of {', '.join(spec.choices)}, not {raw!r}")
    if spec.kind == "region" and not REGION_PATTERN.match(text):
        raise OptionError(f"{where} takes an AWS region name such as us-east-1, not {raw!r}")
    return text
