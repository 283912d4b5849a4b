"""The pytest-facing run: the session object, items, xdist hand-over, manifest selection.

May import every layer except plugin and cli.
"""
