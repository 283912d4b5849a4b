"""Talking to AWS: accounts and clients, the fake's isolated session, answers -> SyncStatus, foreign pages, and the
facts AWS owns (providers, statuses), read from the installed botocore's models (facts.py).

May import model and text.
"""
