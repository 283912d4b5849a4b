"""The checkout: git plumbing, expectations (rev: -> expected commit), bundles, remotes.

May import manifest and the layers below it.
"""
