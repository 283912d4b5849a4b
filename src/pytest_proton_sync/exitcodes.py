"""The command line's exit codes, one home for ``pytest-proton-sync`` (cli.py) and its ``discover`` command
(discovery/command.py), which the layers keep from importing cli.py. Scripts test these numbers: they do not change.
"""

from __future__ import annotations

EXIT_OK = 0
# The answer is no: a manifest with problems, a check that found some (validate, check, init).
EXIT_INVALID = 1
# discover: an account could not be listed (credentials, access denied, an unreachable endpoint, an untrusted answer).
EXIT_UNLISTED = EXIT_INVALID
EXIT_USAGE = 2  # bad usage, as argparse says it
