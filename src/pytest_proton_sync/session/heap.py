"""A gate run's long-lived objects kept out of the cyclic garbage collector's full collections.

A gate run keeps every item, test report and result until its end, so its heap grows with the targets, and each
of CPython's full collections walks all of it: at 5,000 targets about a tenth of the run's CPU went to them. From
the start of the test loop, the objects alive are frozen (``gc.freeze()``: a generation no collection walks) after
a collection of the young generations, and again every :data:`FREEZE_EVERY` targets, so a full collection walks
only what the last few hundred targets left.

A run of manifests only (no test paths of the user's) is frozen earlier too, at configure, before the gate's own
modules are imported: importing boto3, botocore and PyYAML set off a full collection over all of pytest's heap
(15 to 25 ms of a 500-target run's 1.8 s). Should the run's items turn out not to be targets only, that freeze is
undone when the test loop starts.

Only when every item of the run is a target: pytest's check for unraisable exceptions (a collection at the end)
must still see every object of a user's own tests. Undone at the end of the run (a config clean-up, which runs
after pytest's own last collection), so a process that runs pytest again gets a heap collected as usual; what was
frozen meanwhile and became garbage is collected then. Memory stays bounded: a frozen object is still freed the
moment nothing refers to it; only garbage in a reference cycle waits for the end.
"""

from __future__ import annotations

import atexit
import gc

import pytest

FREEZE_EVERY = 500  # targets between freezes: a full collection then walks the objects of at most this many


class HeapFreezer:
    """Freezes the long-lived heap of a run whose every item is a target; nothing otherwise."""

    def __init__(self) -> None:
        self.active = False
        self._since_freeze = 0
        # What is frozen before the run: not always 0 (CPython 3.12 starts with a few hundred objects frozen).
        self._frozen_before = gc.get_freeze_count()

    def install(self, config: pytest.Config) -> None:
        """At configure: registered then, its clean-up runs after pytest's own (clean-ups run last in, first out)."""
        if not self.active:
            self._frozen_before = gc.get_freeze_count()
        config.add_cleanup(self.release)

    def freeze_startup(self, config: pytest.Config) -> None:
        """At the configure of a run of manifests only, before the gate's modules are imported: freeze what pytest
        and its plugins built, until the loop starts (kept) or the run ends."""
        if not self.active and gc.isenabled():
            self._frozen_before = gc.get_freeze_count()
            config.add_cleanup(self.release)  # now: a usage error before the session starts still undoes it
            gc.freeze()
            self.active = True

    def loop_started(self, only_targets: bool) -> None:
        """The test loop starts; ``only_targets``: every item of the run is a target."""
        if self.active:  # frozen since configure
            if only_targets:
                self._freeze()
            else:
                self.release()
            return
        # Not when the collector is off (nothing to spare) or something froze objects since configure (a plugin or
        # the user's conftest: unfreezing at the end would undo its choice).
        if only_targets and not self.active and gc.isenabled() and gc.get_freeze_count() == self._frozen_before:
            self.active = True
            self._freeze()

    def target_done(self) -> None:
        if self.active:
            self._since_freeze += 1
            if self._since_freeze >= FREEZE_EVERY:
                self._freeze()

    def release(self) -> None:
        if self.active:
            self.active = False
            gc.unfreeze()

    def _freeze(self) -> None:
        # The young generations' garbage is collected first, so that it is not kept until the end.
        gc.collect(1)
        gc.freeze()
        self._since_freeze = 0


_EXIT_HOOK_REGISTERED = False


def skip_collection_at_exit() -> None:
    """At interpreter exit, spare the final garbage collections the walk over every object still alive.

    A gate run ends with some 110,000 tracked objects (pytest's, botocore's service models, one item per target);
    CPython's shutdown runs full collections over all of them, which cost about 0.3 s of a 1.6 s run at 500
    targets, for memory the OS takes back anyway. gc.freeze() in an atexit handler runs only when the process
    really exits, so a long-lived host that calls pytest.main() repeatedly is not affected. (Measured again: a
    million live objects still cost 0.2 s at exit without it.)
    """
    global _EXIT_HOOK_REGISTERED
    if not _EXIT_HOOK_REGISTERED:
        atexit.register(gc.freeze)
        _EXIT_HOOK_REGISTERED = True
