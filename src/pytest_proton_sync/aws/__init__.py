"""Talking to AWS: accounts and clients, the fake's isolated session, answers -> SyncStatus, foreign pages.

May import model and text.
"""
