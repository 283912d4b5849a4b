"""Targets -> observations with boto3: rounds, retries, polling, cancellation, the observation store.

May import aws, verdict and the layers below them.
"""
