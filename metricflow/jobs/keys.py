"""Job keys: the sha256 of a config's canonical JSON and its kind's schema version."""

from __future__ import annotations

from metricflow.hashing import canonical_json, config_key, key_of
from metricflow.jobs.kinds import job_kind

__all__ = ["canonical_json", "job_key", "key_of"]


def job_key(config, schema_version: int | None = None) -> str:
    """sha256 hex of the config's canonical JSON and the schema version of its kind."""
    if schema_version is None:
        schema_version = job_kind(config).schema_version
    return config_key(config, schema_version)
