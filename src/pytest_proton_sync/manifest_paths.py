"""Which manifests a pytest run checks, and why a path given as a manifest cannot be one.

How the command line, the ini file and positional paths combine (the README's table says the same):

=====================================================  =========================================================
run                                                    what is collected; which manifests are checked
=====================================================  =========================================================
``pytest --proton-manifest m.yaml``                    only the manifests (a gate run)
``pytest --proton-manifest m.yaml tests/``             the paths and the manifests
ini ``proton_manifests``, bare ``pytest``              testpaths (or the current directory) and the manifests
ini ``proton_manifests``, ``pytest tests/x.py``        the paths only: no manifest, no gate, no API call
ini ``proton_manifests``, ``pytest m.yaml`` or a       the paths; the manifests they name or hold are checked
directory holding it
``pytest m.yaml`` (a manifest, no option, no ini)      the manifest is checked, as with ``--proton-manifest``
=====================================================  =========================================================

Pure: imports neither pytest nor boto3, reads nothing but file metadata and the start of positional YAML files.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: A positional ``.yaml`` / ``.yml`` path is taken for a manifest when a top-level line starts one of its sections.
_MANIFEST_SECTION = re.compile(rb"^(templates|service_instances|stacks)[ \t]*:", re.MULTILINE)
_SNIFF_BYTES = 64 * 1024
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Selection:
    """The manifests in play and what pytest should collect."""

    manifests: tuple[Path, ...]  # checked in this run; empty: the plugin stays out of the way
    args: tuple[str, ...]  # what pytest collects (its ``config.args``), manifests included
    gate_only: bool = False  # only the manifests are collected (--proton-manifest without paths)


def select(
    *,
    command_line: Sequence[str],
    ini: Sequence[Path],
    args: Sequence[str],
    explicit: bool,
    invocation_dir: Path,
) -> Selection:
    """The manifests of a run and its collection arguments.

    ``command_line``: --proton-manifest values as given; ``ini``: proton_manifests, already made absolute;
    ``args``: pytest's collection arguments; ``explicit``: whether they were given on the command line (rather
    than taken from testpaths or the current directory).
    """
    positional = [Path(_path_part(arg)) for arg in args if explicit and looks_like_manifest(invocation_dir /
                                                                                           _path_part(arg))]
    if command_line:
        given = list(_unique([Path(path) for path in command_line], invocation_dir))
        if not explicit:
            return Selection(tuple(given), tuple(str(path) for path in given), gate_only=True)
        manifests = _unique([*given, *positional], invocation_dir)
        return Selection(manifests, _with(args, given, invocation_dir))
    if not explicit:
        manifests = _unique(list(ini), invocation_dir)
        return Selection(manifests, _with(args, manifests, invocation_dir))
    included = [path for path in ini if any(_includes(invocation_dir / _path_part(arg), path) for arg in args)]
    manifests = _unique([*included, *positional], invocation_dir)
    return Selection(manifests, tuple(args))


def _path_part(arg: str) -> str:
    return arg.split("::", 1)[0]


def _with(args: Sequence[str], manifests: Sequence[Path], invocation_dir: Path) -> tuple[str, ...]:
    """``args`` and each manifest that no argument holds already.

    A manifest inside a directory argument is never named again: pytest 8.0 to 8.4 collect only ``DIR/file`` when
    given ``DIR DIR/file`` (every other test in DIR silently dropped; pytest-dev/pytest#12083, fixed in 9.0), and
    pytest 7 collects the file twice. The directory walk reaches it instead, dot-directories such as ``.github``
    included, because the session's ``pytest_ignore_collect`` lets a manifest and its parents through.
    """
    given = [invocation_dir / _path_part(arg) for arg in args]
    extra = [str(path) for path in manifests if not any(_includes(arg, invocation_dir / path) for arg in given)]
    return (*args, *extra)


def _unique(paths: Sequence[Path], invocation_dir: Path) -> tuple[Path, ...]:
    seen: dict[Path, Path] = {}
    for path in paths:
        seen.setdefault(_resolved(invocation_dir / path), path)
    return tuple(seen.values())


def _includes(arg: Path, manifest: Path) -> bool:
    given, wanted = _resolved(arg), _resolved(manifest)
    return given == wanted or given in wanted.parents


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return path.absolute()


def shown_path(path: Path, invocation_dir: Path) -> Path:
    """How messages quote a manifest: relative to where pytest was started when the file is below it, else
    absolute."""
    whole = invocation_dir / path
    try:
        relative = whole.relative_to(invocation_dir)
    except ValueError:
        return whole
    return relative if _resolved(relative) == _resolved(whole) else whole


def looks_like_manifest(path: Path) -> bool:
    """Whether a path given positionally is a proton-sync manifest: a regular ``.yaml``/``.yml`` file named
    ``proton-sync*`` (then the loader says what is wrong with it, if anything) or with a top-level ``templates:``,
    ``service_instances:`` or ``stacks:``."""
    if path.suffix.lower() not in _YAML_SUFFIXES:
        return False
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False
        if path.name.lower().startswith(("proton-sync", "proton_sync")):
            return True
        with open(path, "rb") as handle:
            start = handle.read(_SNIFF_BYTES)
    except (OSError, ValueError):
        return False
    return _MANIFEST_SECTION.search(start) is not None


def path_problem(path: Path, shown: str) -> str | None:
    """Why ``path`` cannot be read as a manifest, as a cause line and a ``fix:`` line; None for a regular file.

    Checked before anything opens the file: a FIFO would block the run, ``/dev/zero`` never ends.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return _missing(path, shown)
    except OSError as error:
        if _is_loop(error):
            return (f"proton-sync manifest {shown} is a symlink loop: following its links never reaches a file\n"
                    "  fix: point the link at the manifest file, or give the file's own path.")
        return (f"proton-sync manifest {shown} cannot be read: {error.strerror or error}\n"
                "  fix: give the path of a readable manifest file.")
    except ValueError as error:  # a NUL character in the path
        return f"proton-sync manifest {shown!r} is not a usable path: {error}\n  fix: give the manifest file's path."
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return (f"proton-sync manifest {shown} is a directory, not a file\n"
                f"  fix: give the manifest file in it, {_candidates(path, shown)}.")
    return (f"proton-sync manifest {shown} is {_file_kind(mode)}, not a regular file, so it cannot be read as a "
            "manifest\n  fix: save the manifest to a file and give that file's path.")


def _missing(path: Path, shown: str) -> str:
    if path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return (f"proton-sync manifest {shown} is a symlink to {target}, which does not exist\n"
                "  fix: point the link at the manifest file, or give the file's own path.")
    return (f"proton-sync manifest not found: {shown}\n"
            "  fix: give the path of the manifest file (on the command line relative to the current directory, "
            "in proton_manifests relative to the ini file's directory).")


def _is_loop(error: OSError) -> bool:
    import errno

    return error.errno == errno.ELOOP


def _candidates(directory: Path, shown: str) -> str:
    try:
        names = sorted(entry.name for entry in os.scandir(directory)
                       if entry.name.lower().endswith(_YAML_SUFFIXES) and entry.is_file())
    except OSError:
        names = []
    if names:
        listed = ", ".join(os.path.join(shown, name) for name in names[:3])
        return f"e.g. {listed}" + (" (more YAML files are there)" if len(names) > 3 else "")
    return f"e.g. {os.path.join(shown, 'proton-sync.yaml')} (it holds no YAML file now)"


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
