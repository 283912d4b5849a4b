"""What a run produced: results, the summary table, JUnit properties, GitHub annotations, the JSON report.

May import fetch, verdict and the layers below them.
"""
