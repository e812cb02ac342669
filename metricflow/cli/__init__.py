"""The command line, ``python -m metricflow``."""
