"""Command-line flags of the kernels, generated from the registry (``metricflow.kernels.KERNELS``).

``flow`` takes ``--kernel NAME`` and one flag per kernel option (``--sigma-w`` for sigma_w);
an option that two kernels share is one flag. ``tune`` takes one range flag LOW,HIGH (or a
value, to fix it) per option some kernel's search has. Nothing here names a kernel: a new
kernel's options appear as flags by themselves.
"""

from __future__ import annotations

from metricflow.cli.options import int_arg
from metricflow.errors import MetricflowError
from metricflow.kernels import KERNELS, KernelSpec, kernel_options, kernel_spec

__all__ = ["kernel_choices", "add_kernel_flag", "add_kernel_flags", "kernel_from_args", "add_search_flags",
           "search_bounds_from_args"]


def kernel_choices() -> list[str]:
    """The registered kernel names, in registry order."""
    return list(KERNELS)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _options() -> dict:
    """{option: (type, [(kernel, help), ...])} over every registered kernel, first seen first."""
    out: dict = {}
    for kernel in KERNELS:
        for option in kernel_options(kernel):
            kind, uses = out.setdefault(option["name"], (option["type"], []))
            uses.append((kernel, option["help"]))
    return out


def add_kernel_flag(parser, required: bool = True) -> None:
    """``--kernel NAME``; an unknown name is refused by ``kernel_spec`` (a MetricflowError, so
    the CLI prints one line and exits 2), not by argparse."""
    names = kernel_choices()
    parser.add_argument("--kernel", required=required, metavar="{" + ",".join(names) + "}",
                        help="the kernel: " + ", ".join(f"{n} ({KERNELS[n].label})" for n in names))


def add_kernel_flags(parser) -> None:
    """``--kernel`` and one flag per kernel option (default: the kernel's own, table 1)."""
    add_kernel_flag(parser)
    for name, (kind, uses) in _options().items():
        text = " / ".join(f"{kernel} {help}" for kernel, help in uses)
        if kind == "bool":
            parser.add_argument(_flag(name), dest=name, action="store_const", const=True, default=None, help=text)
        else:
            parser.add_argument(_flag(name), dest=name, type=int_arg if kind == "int" else float, default=None, help=text)


def kernel_from_args(args) -> KernelSpec:
    """The spec of ``args.kernel`` with the options given on the command line.

    Raises MetricflowError for an unknown kernel or an option the kernel does not take.
    """
    given = {name: getattr(args, name, None) for name in _options()}
    return kernel_spec(args.kernel, **{k: v for k, v in given.items() if v is not None})


def _searched() -> dict:
    """{option: [kernel, ...]} of the kernel options some registered kernel searches."""
    out: dict = {}
    for kernel, cls in KERNELS.items():
        options = {option["name"] for option in kernel_options(kernel)}
        for name in cls.search:
            if name in options:
                out.setdefault(name, []).append(kernel)
    return out


def add_search_flags(parser) -> None:
    """One flag LOW,HIGH (or a value) per kernel option some kernel searches (for ``tune``)."""
    for name, kernels in _searched().items():
        scales = {KERNELS[k].search[name].scale for k in kernels}
        parser.add_argument(_flag(name), dest=name, default=None,
                            help=f"{' / '.join(kernels)} {name} range LOW,HIGH ({'/'.join(sorted(scales))} scale), "
                            "or a value to fix it")


def search_bounds_from_args(args, number_list) -> list:
    """(name, low, high) of the search flags given; ``number_list(text, flag)`` parses LOW,HIGH."""
    bounds = []
    for name in _searched():
        text = getattr(args, name, None)
        if text is None:
            continue
        values = number_list(text, _flag(name))
        if len(values) > 2:
            raise MetricflowError(f"give one value or a range LOW,HIGH for {_flag(name)}, got {text!r}")
        bounds.append((name, values[0], values[-1]))
    return bounds
