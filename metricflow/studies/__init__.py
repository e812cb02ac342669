"""Studies: each a frozen config, a pure run function with its cost estimate, and a result.

A study that runs many configs takes ``map_configs`` (``metricflow.progress``); it never
imports the job runner.
"""
