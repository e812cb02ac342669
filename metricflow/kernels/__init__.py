"""Scalar kernels of the metric flow (3.5): one module per kernel, and the registry ``KERNELS``.

A kernel is one description: its module holds the math and a frozen ``KernelSpec`` (its
options with their constraints and table 1 values, how it builds the flow's matrices, what
that costs, its label and its tuning ranges). The flow config holds a spec; the CLI flags,
tuning's bounds and the page widgets are generated from this registry. A new kernel is one
module and one line in ``KERNELS`` (docs/CONTRIBUTING.md).

Example:
  >>> spec = kernel_spec("gaussian", radius=0.3)
  >>> k_train, k_test, isolated = spec.matrices(train, test, seed=0)
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from metricflow.constraints import describe
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.kernels.base import (
    MAX_DENSE_ENTRIES, TILE_ROWS, KernelSpec, LowRank, Search, check_dense, row_sums, stream_seed,
)
from metricflow.kernels.cosnet import (
    CosNet, CosNetParams, cosnet_apply, cosnet_empirical_kernel, cosnet_features, cosnet_init, cosnet_kernel,
    cosnet_normalisation, cosnet_width,
)
from metricflow.kernels.delta import Delta, delta_kernel
from metricflow.kernels.gaussian import Gaussian, gaussian_kernel, gaussian_kernel_sparse
from metricflow.kernels.relu_ntk import ReluNTK, relu_ntk

__all__ = [
    "KERNELS", "MAX_DENSE_ENTRIES", "TILE_ROWS", "KernelSpec", "LowRank", "Search", "check_dense", "row_sums",
    "stream_seed", "START_KERNEL", "kernel_spec", "kernel_options", "describe_kernels",
    "ReluNTK", "Gaussian", "Delta", "CosNet", "CosNetParams",
    "relu_ntk", "gaussian_kernel", "gaussian_kernel_sparse", "delta_kernel", "cosnet_normalisation", "cosnet_width",
    "cosnet_kernel", "cosnet_init", "cosnet_features", "cosnet_apply", "cosnet_empirical_kernel",
]

# The registry: name -> spec class. A new kernel is a module with its spec and one line here.
KERNELS: dict[str, type] = {
    "relu-ntk": ReluNTK,
    "gaussian": Gaussian,
    "delta": Delta,
    "cosnet": CosNet,
}

# The kernel a search or a page starts from: the cheapest (sparse, no options).
START_KERNEL = "delta"


def _spec_class(name) -> type:
    if not isinstance(name, str):
        raise ConfigTypeError(f"kernel must be a name ({', '.join(KERNELS)}) or a KernelSpec, got {name!r} "
                              f"({type(name).__name__})")
    if name not in KERNELS:
        raise MetricflowError(f"unknown kernel {name!r}; expected one of {', '.join(KERNELS)}")
    return KERNELS[name]


def kernel_spec(name: str, **options) -> KernelSpec:
    """The spec of kernel ``name`` with ``options``; an option left out or None takes its default.

    Raises MetricflowError for an unknown kernel, for an option the kernel does not take (None
    and False are ignored there) and for a value out of its bounds.
    """
    cls = _spec_class(name)
    allowed = [f.name for f in fields(cls)]
    for key in sorted(set(options) - set(allowed)):
        value = options[key]
        if value is not None and value is not False:
            raise MetricflowError(
                f"option {key}={value!r} does not apply to the {name} kernel "
                f"(it takes {', '.join(sorted(allowed)) or 'no options'})"
            )
    return cls(**{k: v for k, v in options.items() if k in allowed and v is not None})


_TYPES = {"Count": "int", "Points": "int", "Positive": "float", "Real": "float", "Flag": "bool", "OneOf": "str"}


def kernel_options(name: str) -> list[dict]:
    """The options of kernel ``name`` as plain data, in field order, for generated flags and widgets.

    Each is {"name", "type" ("int", "float", "bool"), "optional" (None allowed: it switches a
    variant off, such as a dense gaussian), "default", "table1" (the table 1 value or None),
    "label", "help", "bounds" (``metricflow.constraints.describe`` of its constraint)}.
    """
    cls = _spec_class(name)
    out = []
    for f in fields(cls):
        rule = cls.constraints.get(f.name)
        bounds = describe(rule) if rule is not None else {"kind": "", "optional": False, "label": ""}
        out.append({
            "name": f.name,
            "type": _TYPES.get(bounds["kind"], "str"),
            "optional": bounds["optional"],
            "default": None if f.default is MISSING else f.default,
            "table1": cls.table1.get(f.name),
            "label": cls.labels.get(f.name, f.name),
            "help": cls.help.get(f.name, ""),
            "bounds": bounds,
        })
    return out


def describe_kernels() -> dict:
    """Every registered kernel as plain data: {name: {"label", "table1", "options", "search"}}."""
    return {
        name: {
            "label": cls.label,
            "table1": dict(cls.table1),
            "options": kernel_options(name),
            "search": {k: tuple(v) for k, v in cls.search.items()},
        }
        for name, cls in KERNELS.items()
    }
