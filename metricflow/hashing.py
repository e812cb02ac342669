"""Canonical JSON of a config and the sha256 key of (config, schema version): pure, so a study
can name the stored results it uses; the job runner keys its store with the same functions."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from metricflow.errors import MetricflowError

__all__ = ["KEY_FORMAT", "canonical_json", "key_of", "config_key"]

# Part of every key. 2: configs are named by their modules in the layered package
# (metricflow.geometry.points.SampleConfig, not metricflow.points.SampleConfig), so every
# entry stored before is recomputed, never read.
KEY_FORMAT = 2


def _plain(value):
    """``value`` as JSON-ready data: dataclasses typed, complex as [re, im], numpy unwrapped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field with metadata {"key": "omit-default"} is left out at its default, so adding
        # an option to a config keeps the keys of the results already stored.
        out = {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
            if not (f.metadata.get("key") == "omit-default" and getattr(value, f.name) == f.default)
        }
        out["__type__"] = f"{type(value).__module__}.{type(value).__qualname__}"
        return out
    if isinstance(value, np.ndarray):
        return {"__array__": str(value.dtype), "shape": list(value.shape), "data": _plain(value.tolist())}
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, complex):
        return [_plain(value.real), _plain(value.imag)]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    raise MetricflowError(
        f"cannot make a job key from a {type(value).__name__} ({value!r}); "
        "configs may hold numbers, strings, tuples, arrays and dataclasses"
    )


def canonical_json(config) -> str:
    """The config as JSON with sorted keys and no spaces; the type name is included."""
    return json.dumps(_plain(config), sort_keys=True, separators=(",", ":"))


def key_of(config_json: str, schema_version: int) -> str:
    """sha256 hex of canonical config JSON and a schema version."""
    return hashlib.sha256(f"{config_json}|schema={int(schema_version)}|keys={KEY_FORMAT}".encode()).hexdigest()


def config_key(config, schema_version: int) -> str:
    """sha256 hex of ``config``'s canonical JSON and ``schema_version`` (the job key)."""
    return key_of(canonical_json(config), schema_version)
