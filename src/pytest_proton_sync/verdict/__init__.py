"""The judge (pure: expectation + sync status -> verdict) and the failure text.

May import model, kinds and text.
"""
