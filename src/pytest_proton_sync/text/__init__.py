"""Untrusted text made safe to show, and secrets kept out of every output.

Imports nothing of the package. envsecrets.py says which environment variables hold credentials.
"""
