"""What syncs from Git in an account, read with list calls only (listing.py), printed as lines or as a manifest
(text.py), the `discover` command with the stacks `init` adds (command.py), and what `init` does (init_command.py).

May import git, aws, manifest, fake and below; imported by fetch (link health), reports (coverage) and cli.
"""
