"""The pytest entry point: options, the plugin's own hookspecs, and whether a manifest is in play.

Only when one is does :func:`pytest_configure` register the stateful :class:`~.session.ProtonSyncSession`, which
carries every other hook; a pytest run without a manifest pays for nothing but these few functions. Nothing heavy
is imported at plugin load (boto3 and PyYAML come in only with a manifest; jsonschema and the fake only with
--proton-fake).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .options import OPTIONS, OptionError, OptionSpec, read_options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("proton-sync", "AWS Proton sync gate (pytest-proton-sync)")
    group.addoption("--proton-manifest", action="append", dest="proton_manifests", metavar="PATH",
                    help="manifest of expected syncs; repeatable. Without other paths, only the manifests' checks "
                    "are collected.")
    parser.addini("proton_manifests", type="linelist",
                  help="manifests, relative to the ini file's directory: checked by a bare `pytest` along with "
                  "testpaths, and when a path on the command line names them or holds them")
    for spec in OPTIONS:
        # Values are checked in options.py, so the command line and the ini file get the same one-line usage error.
        choices = {"choices": spec.choices} if spec.kind == "choice" else {}
        group.addoption(spec.flag, dest=spec.dest, metavar=spec.metavar, help=spec.help_text(), **choices)
        if spec.ini:
            parser.addini(spec.dest, help=f"default for {spec.flag}")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import default_hooks, hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.register(default_hooks, "proton_sync_default_hooks")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # A gate run (--proton-manifest and no paths) collects only the manifests (pytest_configure). Look for the
    # first conftest.py files beside them too, not in testpaths: a gate run in a repository must not fail because
    # tests/conftest.py imports the unit tests' own dependencies. (known_args_namespace is the pre-parse
    # namespace pytest itself reads here; it has no underscore but no documentation either.)
    namespace = early_config.known_args_namespace
    if getattr(namespace, "file_or_dir", None):
        return
    manifests = [Path(path) for path in getattr(namespace, "proton_manifests", None) or []]
    # Said here, before pytest would fall back to loading conftest.py files from tests/ and the like.
    _check_paths(early_config, manifests)
    if manifests:
        namespace.file_or_dir = [str(path) for path in manifests]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "proton_sync: a sync check generated from a proton-sync manifest")
    from .session.selection import select

    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    base = config.inipath.parent if config.inipath else config.invocation_params.dir
    selection = select(
        command_line=config.getoption("proton_manifests") or [],
        ini=[base / path for path in config.getini("proton_manifests") or []],
        args=config.args,
        explicit=explicit,
        invocation_dir=config.invocation_params.dir,
    )
    if not selection.manifests:
        return
    _check_paths(config, selection.manifests)
    from .session.heap import HeapFreezer  # gc and atexit only

    heap = HeapFreezer()
    if selection.gate_only:
        heap.freeze_startup(config)  # before the imports below: their full collections then skip pytest's heap
    from .session.run import SESSION_KEY, ProtonSyncSession

    try:
        options = read_options(lambda spec: _given(config, spec))
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    session = ProtonSyncSession(config, selection.manifests, options, heap)
    config.args[:] = selection.args
    if selection.gate_only:
        # Say so in the header too: pytest would otherwise print "testpaths: ..." it no longer collects.
        config.args_source = pytest.Config.ArgsSource.ARGS
    config.stash[SESSION_KEY] = session
    # Registered before it starts: if starting fails (a bad fake state is a usage error), pytest still calls the
    # session's pytest_unconfigure, which undoes what did start.
    config.pluginmanager.register(session, "proton_sync_session")
    session.start()


def _check_paths(config: pytest.Config, manifests: list[Path] | tuple[Path, ...]) -> None:
    """A usage error, cause and fix, for a manifest path that is no readable file (before anything opens it)."""
    from .session.selection import path_problem

    for path in manifests:
        problem = path_problem(config.invocation_params.dir / path, str(path))
        if problem is not None:
            raise pytest.UsageError(problem)


def _given(config: pytest.Config, spec: OptionSpec) -> tuple[Any, Any]:
    return config.getoption(spec.dest), (config.getini(spec.dest) if spec.ini else None)
